"""The pure call engine: events in, actions out, all state in a Session."""

from ivr.engine.engine import new_session, step
from ivr.engine.session import OUTCOMES, Session

__all__ = ["OUTCOMES", "Session", "new_session", "step"]
