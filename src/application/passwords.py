"""Password rules (OWASP ASVS 5.0 V6): length only, no composition rules, and not one
of the passwords attackers try first."""

from functools import cache

from zxcvbn.frequency_lists import FREQUENCY_LISTS

from application.errors import WeakPasswordError

MIN_LENGTH = 8
MAX_LENGTH = 128


@cache
def common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of public breach corpora (from zxcvbn)."""
    return frozenset(FREQUENCY_LISTS["passwords"])


def check_password(password: str, email: str = "") -> None:
    """Refuse a password that is too short, too long, common, or the e-mail address."""
    if len(password) < MIN_LENGTH:
        raise WeakPasswordError(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPasswordError(f"a password may have at most {MAX_LENGTH} characters")
    lowered = password.lower()
    if lowered in common_passwords():
        raise WeakPasswordError("that password is too common; choose another")
    if email and lowered in (email.lower(), email.lower().partition("@")[0]):
        raise WeakPasswordError("a password must not be your e-mail address")
