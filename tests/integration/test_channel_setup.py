"""Which channel a process sends through, from its settings: the development defaults
when nothing is configured (and the log says so), the real adapters otherwise."""

from pydantic import SecretStr
from structlog.testing import capture_logs

from adapters.channels.email_smtp import SmtpSender
from adapters.channels.file_channels import JsonLinesSender
from adapters.channels.maildir import MaildirSender
from adapters.channels.setup import channel_senders, notice_settings, status_callback_url
from adapters.channels.sms_twilio import TwilioSmsSender
from adapters.channels.vapid_keys import vapid_of
from adapters.channels.web_push import WebPushSender
from adapters.settings import Settings
from tests.providers.fake_twilio import ACCOUNT_SID, AUTH_TOKEN


def test_nothing_configured_means_files_under_the_data_folder_said_at_start(tmp_path):
    settings = Settings(_env_file=None, environment="test", data_dir=tmp_path)

    with capture_logs() as logs:
        senders = channel_senders(settings)

    assert isinstance(senders["email"], MaildirSender)
    assert senders["email"].folder == tmp_path / "mail"
    assert isinstance(senders["sms"], JsonLinesSender)
    assert senders["sms"].path == tmp_path / "sms.jsonl"
    assert isinstance(senders["push"], JsonLinesSender)
    assert senders["push"].path == tmp_path / "push.jsonl"
    warned = {entry["event"] for entry in logs if entry["log_level"] == "warning"}
    assert {
        "email_channel_writes_to_maildir",
        "sms_channel_writes_to_file",
        "push_channel_writes_to_file",
    } <= warned


def test_configured_channels_use_the_providers(tmp_path):
    settings = Settings(
        _env_file=None,
        environment="test",
        data_dir=tmp_path,
        public_base_url="https://portal.centre.example",
        smtp_url=SecretStr("smtp+starttls://user:pw@mail.centre.example:587"),
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=SecretStr(AUTH_TOKEN),
        twilio_from="+15550100",
        vapid_private_key=SecretStr(
            vapid_of(Settings(_env_file=None, data_dir=tmp_path)).private_pem().decode()
        ),
    )

    senders = channel_senders(settings)

    assert isinstance(senders["email"], SmtpSender)
    assert senders["email"].target.host == "mail.centre.example"
    assert isinstance(senders["sms"], TwilioSmsSender)
    assert senders["sms"].config.status_callback == (
        "https://portal.centre.example/v1/hooks/twilio/status?delivery={delivery_id}"
    )
    assert status_callback_url(settings) == senders["sms"].config.status_callback
    assert isinstance(senders["push"], WebPushSender)


def test_the_development_vapid_key_is_kept_in_the_data_folder(tmp_path):
    settings = Settings(_env_file=None, data_dir=tmp_path)
    first = vapid_of(settings)
    assert (tmp_path / "vapid-key.pem").exists()
    assert vapid_of(settings).private_pem() == first.private_pem()


def test_default_quiet_hours_and_reset_link_come_from_the_settings(tmp_path):
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        default_quiet_hours="22:00-07:00",
        reset_link="https://id.centre.example/reset#token={token}",
    )
    notices = notice_settings(settings)
    assert str(notices.default_quiet_hours) == "22:00-07:00"
    assert notices.reset_link == "https://id.centre.example/reset#token={token}"
    assert (
        notice_settings(settings.model_copy(update={"default_quiet_hours": ""})).default_quiet_hours
        is None
    )
