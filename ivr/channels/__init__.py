"""Text channels: SMS and WhatsApp (Twilio Messaging) and web chat, over the same flows."""
