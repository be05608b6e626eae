"""Proactive notifications: campaigns of outbound calls and texts (`ivr notify --csv`)."""
