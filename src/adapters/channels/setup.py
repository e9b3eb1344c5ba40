"""The patient channels a process sends through, from its settings.

Each channel has a real adapter and a development default that needs no server:

| channel | configured by | unset |
|---|---|---|
| e-mail | ``SMTP_URL``, ``MAIL_FROM`` | a Maildir, ``DATA_DIR/mail`` |
| SMS | ``TWILIO_ACCOUNT_SID``, ``TWILIO_AUTH_TOKEN``, ``TWILIO_FROM`` | ``DATA_DIR/sms.jsonl`` |
| push | ``VAPID_PRIVATE_KEY``, ``VAPID_SUBJECT`` | ``DATA_DIR/push.jsonl`` |

Every choice is one log line at start-up (the defaults warn: nothing leaves the machine).
Twilio posts each message's delivery status to ``PUBLIC_BASE_URL/v1/hooks/twilio/status``
with the delivery's id in the query.
"""

from pathlib import Path

import structlog

from adapters.channels.email_smtp import SmtpSender, send_timeout
from adapters.channels.file_channels import push_file, sms_file
from adapters.channels.maildir import MaildirSender
from adapters.channels.sms_twilio import TWILIO_API, TwilioConfig, TwilioSmsSender
from adapters.channels.smtp_url import parse_smtp_url
from adapters.channels.vapid_keys import vapid_of
from adapters.channels.web_push import WebPushSender
from adapters.channels.worker import NoticeSettings
from adapters.settings import Settings
from application.channels import EMAIL, PUSH, SMS, ChannelSender
from domain.reminders import QuietHours

log = structlog.get_logger(__name__)

STATUS_CALLBACK_PATH = "/v1/hooks/twilio/status"


def status_callback_url(settings: Settings) -> str:
    """Where Twilio posts a message's delivery status (``{delivery_id}`` filled per send)."""
    return f"{settings.base_url}{STATUS_CALLBACK_PATH}?delivery={{delivery_id}}"


def email_sender(settings: Settings) -> ChannelSender:
    if settings.smtp_url is None:
        return MaildirSender(Path(settings.data_dir) / "mail", settings.mail_from)
    target = parse_smtp_url(settings.smtp_url.get_secret_value())
    log.info("email_channel", smtp=target.describe())
    timeout = send_timeout(settings.delivery_lease_seconds)
    return SmtpSender(target, settings.mail_from, timeout=timeout)


def sms_sender(settings: Settings) -> ChannelSender:
    if not settings.twilio_account_sid:
        return sms_file(Path(settings.data_dir))
    token = settings.twilio_auth_token
    config = TwilioConfig(
        account_sid=settings.twilio_account_sid,
        auth_token=token.get_secret_value() if token else "",
        sender=settings.twilio_from,
        base_url=settings.twilio_base_url or TWILIO_API,
        status_callback=status_callback_url(settings),
    )
    log.info("sms_channel", provider="twilio", api=config.base_url)
    return TwilioSmsSender(config)


def push_sender(settings: Settings) -> ChannelSender:
    if settings.vapid_private_key is None:
        return push_file(Path(settings.data_dir))
    log.info("push_channel", provider="web push", subject=settings.vapid_subject)
    return WebPushSender(vapid_of(settings), settings.vapid_subject)


def channel_senders(settings: Settings) -> dict[str, ChannelSender]:
    """A sender for each patient channel (ValueError naming a setting that cannot work)."""
    return {EMAIL: email_sender(settings), SMS: sms_sender(settings), PUSH: push_sender(settings)}


def notice_settings(settings: Settings) -> NoticeSettings:
    quiet = settings.default_quiet_hours.strip()
    return NoticeSettings(
        base_url=settings.base_url,
        centre_name=settings.centre_name,
        default_quiet_hours=QuietHours.parse(quiet) if quiet else None,
        reset_link=settings.reset_link or "",
    )
