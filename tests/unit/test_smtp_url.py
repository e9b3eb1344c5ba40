"""SMTP_URL: parsed with the right defaults, refused with errors that never repeat the
password."""

import pytest

from adapters.channels.smtp_url import SmtpTarget, SmtpUrlError, parse_smtp_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://relay.centre.example", SmtpTarget("smtp", "relay.centre.example", 25)),
        ("smtp://10.0.0.7:2525", SmtpTarget("smtp", "10.0.0.7", 2525)),
        (
            "smtp+starttls://bridge:p%40ss%3Aword@mail.example:587",
            SmtpTarget("smtp+starttls", "mail.example", 587, "bridge", "p@ss:word"),
        ),
        ("SMTPS://u:p@mail.example", SmtpTarget("smtps", "mail.example", 465, "u", "p")),
        ("smtp+starttls://mail.example", SmtpTarget("smtp+starttls", "mail.example", 587)),
    ],
)
def test_urls_parse_with_default_ports(url, expected):
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://u:hunter22@mail.example", "must start with"),
        ("smtp://u:hunter22@mail.example", "in clear"),
        ("smtps://:hunter22@mail.example", "without a user"),
        ("smtps://u:hunter22@mail.example:99999", "invalid port"),
        ("smtps://u:hunter22@mail.example:0", "port 0"),
        ("smtps://u:hunter22@mail.example/box?x=hunter22", "no path"),
        ("smtps://u:hunter22@:465", "no host"),
    ],
)
def test_bad_urls_are_refused_without_the_password(url, says):
    with pytest.raises(SmtpUrlError, match=says) as refused:
        parse_smtp_url(url)
    assert "hunter22" not in str(refused.value)


def test_the_password_stays_out_of_repr_and_description():
    target = parse_smtp_url("smtps://bridge:hunter22@mail.example")

    assert "hunter22" not in repr(target)
    assert target.describe() == "smtps://mail.example:465"
    assert target.tls
