"""Local stand-ins for the channel providers, on loopback: an SMTP server (aiosmtpd), a
Twilio Messages API, a web push service. They speak the providers' documented protocols,
so the real adapters and the official client libraries talk to them unchanged."""
