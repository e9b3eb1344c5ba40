"""Patient channels behind ``application.channels.ChannelSender``: e-mail (SMTP, or a
Maildir in development), SMS (Twilio, or a JSON-lines file) and web push (pywebpush with
VAPID, or a JSON-lines file)."""
