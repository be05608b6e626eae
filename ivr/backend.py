"""Backend HTTP calls for `http` nodes: one shared aiohttp client, allowed hosts only."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterable
from fnmatch import fnmatch
from urllib.parse import SplitResult, urlsplit

import aiohttp
import orjson
from yarl import URL

from ivr.engine.actions import Fetch
from ivr.engine.events import FetchResult

MAX_BODY = 1 << 20  # a backend answer larger than 1 MiB is an error, not a memory problem


def allowed_hosts(env: str | None = None) -> tuple[str, ...]:
    """`IVR_HTTP_ALLOW`: comma-separated host patterns (`api.example.com`, `*.bank.internal`,
    `127.0.0.1:8099`). Empty means no backend may be called."""
    raw = os.environ.get("IVR_HTTP_ALLOW", "") if env is None else env
    return tuple(h.strip().lower() for h in raw.split(",") if h.strip())


class Backend:
    """Performs Fetch actions. Hosts outside `allow` are refused before anything is sent."""

    def __init__(self, allow: Iterable[str] = ()) -> None:
        self.allow = tuple(allow)
        self._session: aiohttp.ClientSession | None = None
        self._origins: dict[tuple[str, str], bool] = {}  # (scheme, host:port) -> allowed

    def permits(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = (parts.scheme, parts.netloc)
        known = self._origins.get(origin)
        if known is None:
            if len(self._origins) >= 1024:  # hosts come from flows, but stay bounded
                self._origins.clear()
            known = self._origins[origin] = self._allowed(parts)
        return known

    def _allowed(self, parts: SplitResult) -> bool:
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False
        host = parts.hostname.lower()
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:  # a port that is not a number
            return False
        return any(fnmatch(host, p) or fnmatch(f"{host}:{port}", p) for p in self.allow)

    async def fetch(self, action: Fetch, timeout: float | None = None) -> FetchResult:
        """One attempt of `action` (within `timeout` seconds, default the action's own)."""
        timeout = action.timeout if timeout is None else timeout
        if not self.permits(action.url):
            host = urlsplit(action.url).netloc or action.url
            return FetchResult(error=f"host {host} is not in IVR_HTTP_ALLOW", at=time.time())
        if self._session is None:
            # backends are APIs, not browsers: no cookies carried from one call to the next
            self._session = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(), json_serialize=_json
            )
        try:
            async with self._session.request(
                action.method,
                # as rendered: its values are encoded already (`compile_url`), and yarl's
                # normalising would decode %2E%2E back into a segment that climbs the path
                URL(action.url, encoded=True),
                headers=action.headers or None,
                json=action.json,
                timeout=_timeout(timeout),
                allow_redirects=False,
            ) as response:
                raw = b""  # read(n) answers what has arrived, up to n: read to the end
                while chunk := await response.content.read(MAX_BODY + 1 - len(raw)):
                    raw += chunk
                    if len(raw) > MAX_BODY:
                        break
                if len(raw) > MAX_BODY:
                    error = "answer larger than 1 MiB"
                    return FetchResult(response.status, error=error, at=time.time())
                return _answer(response.status, raw, action.text)
        except TimeoutError:
            return FetchResult(error=f"timed out after {timeout:g} s", at=time.time())
        except (aiohttp.ClientError, OSError, ValueError) as e:
            return FetchResult(error=f"{type(e).__name__}: {e}", at=time.time())

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _json(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


@functools.cache
def _timeout(seconds: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=seconds)


def _answer(status: int, raw: bytes, text: bool) -> FetchResult:
    """The answer as the node wants it: text when it asks for text, else JSON (or nothing).
    A 2xx that is not JSON is an error: the caller must not hear "Your balance is ."."""
    now = time.time()
    if text:
        return FetchResult(status, raw.decode("utf-8", "replace"), at=now)
    try:
        return FetchResult(status, orjson.loads(raw) if raw.strip() else None, at=now)
    except orjson.JSONDecodeError:
        if 200 <= status < 300:
            return FetchResult(status, error="the answer is not JSON", at=now)
        return FetchResult(status, raw.decode("utf-8", "replace")[:500], at=now)
