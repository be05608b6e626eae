"""ivr: a programmable IVR and voice self-service engine."""

__version__ = "0.1.0"
