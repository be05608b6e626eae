"""Telephony adapters: Twilio webhooks (TwiML) and, later, Media Streams."""
