"""How many SMS segments a text takes, and the GSM-7 form of a text that would not fit.

A text written only in the GSM 03.38 alphabet goes as 7-bit septets: 160 in one segment,
153 per segment once split (the rest of each segment is the concatenation header). The
characters of the extension table (``^{}\\[~]|€`` and form feed) take two septets, and the
two are never split across segments. Any other character turns the whole text into
UCS-2: 70 UTF-16 code units in one segment, 67 per segment once split, a surrogate pair
(an emoji) never split.

Spanish often needs UCS-2 (á, í, ó, ú are not in GSM-7, while é, ñ, ü, ¿, ¡ are), which
halves what two segments hold (134 characters). ``fit_sms`` keeps the accents when the
text fits anyway, and otherwise writes the letters outside GSM-7 without their accent
(as carriers' "smart encoding" does), which usually brings it back under 306.
"""

import unicodedata

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = "^{}\\[~]|€\f"
GSM_7 = "GSM-7"
UCS_2 = "UCS-2"
MAX_SEGMENTS = 2

_SINGLE = {GSM_7: 160, UCS_2: 70}
_PART = {GSM_7: 153, UCS_2: 67}
# Characters with a plain GSM-7 stand-in (typography a template or a locale may bring).
_STAND_INS = {
    "\u00a0": " ",  # no-break space
    "\u202f": " ",  # narrow no-break space (Babel's "9:45 AM" in newer CLDR)
    "\u2009": " ",
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u2026": "...",
    "\u00b7": ".",
}


def sms_encoding(text: str) -> str:
    """``GSM-7`` when every character is in the GSM 03.38 alphabet, else ``UCS-2``."""
    allowed = GSM_BASIC + GSM_EXTENSION
    return GSM_7 if all(character in allowed for character in text) else UCS_2


def sms_segments(text: str) -> int:
    """How many segments ``text`` is sent in (an empty text still takes one)."""
    encoding = sms_encoding(text)
    units = [_units(character, encoding) for character in text]
    if sum(units) <= _SINGLE[encoding]:
        return 1
    segments, used = 1, 0
    for size in units:
        if used + size > _PART[encoding]:
            segments, used = segments + 1, 0
        used += size
    return segments


def to_gsm(text: str) -> str:
    """``text`` with each character outside GSM-7 replaced by its stand-in or its letter
    without the accent (``á`` -> ``a``); characters with neither are kept (the text
    then stays UCS-2)."""
    written = []
    for character in text:
        if sms_encoding(character) == GSM_7:
            written.append(character)
        elif character in _STAND_INS:
            written.append(_STAND_INS[character])
        else:
            bare = "".join(
                part
                for part in unicodedata.normalize("NFD", character)
                if not unicodedata.combining(part)
            )
            written.append(bare if bare and sms_encoding(bare) == GSM_7 else character)
    return "".join(written)


def fit_sms(text: str) -> str:
    """``text`` as is when it fits in ``MAX_SEGMENTS``, else its GSM-7 form."""
    text = "".join(_STAND_INS.get(character, character) for character in text)
    if sms_segments(text) <= MAX_SEGMENTS:
        return text
    return to_gsm(text)


def _units(character: str, encoding: str) -> int:
    if encoding == GSM_7:
        return 2 if character in GSM_EXTENSION else 1
    return 2 if ord(character) > 0xFFFF else 1
