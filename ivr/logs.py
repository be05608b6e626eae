"""Structured JSON logs; every line written during a webhook carries its call SID."""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar

from aiohttp.http_exceptions import HttpProcessingError

from ivr.engine.session import MASK

call_sid: ContextVar[str | None] = ContextVar("call_sid", default=None)
# what a caller said or keyed in this webhook, and the call's sensitive answers: a
# traceback may quote them, and no log line may show them
hidden: ContextVar[tuple[str, ...]] = ContextVar("hidden", default=())
SHORTEST_HIDDEN = 4  # a menu key ("1") masked would blot out every 1 of a traceback


def hide(*values: object) -> None:
    """Mask these values in the log lines of the current webhook."""
    more = tuple(str(v) for v in values if v is not None and len(str(v)) >= SHORTEST_HIDDEN)
    if more:
        hidden.set(hidden.get() + more)


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        sid = call_sid.get()
        if sid:
            line["call_sid"] = sid
        line.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        for value in hidden.get():
            for key in ("msg", "error"):
                if key in line:
                    line[key] = line[key].replace(value, MASK)
        return json.dumps(line, default=str)


class Malformed(logging.Filter):
    """aiohttp logs a traceback for each request it cannot parse: anyone can send those,
    so each is one line (what was wrong, from where) and never a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            peer = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            why = (str(error.message).strip().splitlines() or ["?"])[0][:100]
            record.msg, record.args = "refused a malformed request from %s: %s", (peer, why)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def setup(level: str = "INFO") -> None:
    """JSON lines on stderr for the whole process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.server").addFilter(Malformed())
