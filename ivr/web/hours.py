"""The admin API for hours closed by ops: what `ivr hours` does, over HTTP on the admin
listener (behind its guard: the token beyond loopback), checked against the flows this
server runs.

- `GET /hours`: the flows' hours (time zone, open now) and the closures in force;
- `POST /hours/NAME/close` with JSON `{"until": "18:00", "say": "...", "flow": "..."}`
  (all optional): 200 and the closure; 404 for hours no flow has, 400 for a bad end;
- `POST /hours/NAME/open` with JSON `{"flow": "..."}` (optional): 200 and how many
  closures ended, 404 when there was none.

The process that was asked sees the change at once; the others within their refresh.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ivr.closures import ClosuresCache, closure_for
from ivr.flow.hours import Closure, with_closures
from ivr.registry import FlowRegistry

log = logging.getLogger("ivr.hours")
MAX_BODY = 4096


def add_hours(
    app: web.Application, flows: FlowRegistry, cache: Callable[[], ClosuresCache]
) -> None:
    """The `/hours` routes on the admin app; `cache` gives the server's closures once its
    stores are open."""

    async def listing(request: web.Request) -> web.Response:
        now, closures = time.time(), cache()()
        hours = {}
        for flow in flows.current.values():
            closed = with_closures(flow.hours, flow.id, closures) or flow.hours
            hours[flow.id] = {
                name: {"tz": h.tz.key, "open": h.is_open(now)} for name, h in closed.items()
            }
        shown = [_shown(c) for c in closures if c.covers(now)]
        return web.json_response({"hours": hours, "closures": shown})

    async def close(request: web.Request) -> web.Response:
        body = await _body(request)
        name = request.match_info["name"]
        try:
            closure = closure_for(
                flows.current.values(),
                name,
                _text(body, "flow"),
                _text(body, "until"),
                _text(body, "say"),
            )
        except LookupError as e:
            raise _error(web.HTTPNotFound, str(e.args[0])) from None
        except ValueError as e:
            raise _error(web.HTTPBadRequest, str(e).replace("--", "", 1)) from None
        await _stored(lambda: cache().store.close_hours(closure, closure.closed_at))
        await _stored(cache().refresh)
        log.info("hours %s closed by ops (%s)", name, closure.flow or "every flow")
        return web.json_response({"closed": _shown(closure)})

    async def reopen(request: web.Request) -> web.Response:
        body = await _body(request)
        name, flow = request.match_info["name"], _text(body, "flow")
        count: int = await _stored(lambda: cache().store.open_hours(name, flow))
        await _stored(cache().refresh)
        if not count:
            raise _error(web.HTTPNotFound, f"{name!r} was not closed by ops")
        log.info("hours %s reopened by ops", name)
        return web.json_response({"reopened": count})

    app.router.add_get("/hours", listing)
    app.router.add_post("/hours/{name}/close", close)
    app.router.add_post("/hours/{name}/open", reopen)


def _shown(closure: Closure) -> dict[str, Any]:
    return {
        "hours": closure.hours,
        "flow": closure.flow or None,
        "until": closure.until,
        "say": closure.message,
        "closed_at": closure.closed_at,
    }


async def _body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object (none: an empty one); 400 for anything else."""
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        body = json.dumps({"error": f"at most {MAX_BODY} bytes"})
        raise web.HTTPRequestEntityTooLarge(
            MAX_BODY, len(raw), text=body, content_type="application/json"
        )
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise _error(
            web.HTTPBadRequest, 'the body must be JSON: {"until": ..., "say": ...}'
        ) from None
    if not isinstance(body, dict):
        raise _error(web.HTTPBadRequest, "the body must be a JSON object")
    return body


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise _error(web.HTTPBadRequest, f"{key!r} must be text")
    return value


async def _stored(operation: Callable[[], Any]) -> Any:
    """An operation on the records store; 503 when it does not answer."""
    try:
        return await operation()
    except Exception:
        log.exception("the ops-state table could not be used")
        raise _error(web.HTTPServiceUnavailable, "the records store does not answer") from None


def _error(kind: type[web.HTTPException], message: str) -> web.HTTPException:
    return kind(text=json.dumps({"error": message}), content_type="application/json")
