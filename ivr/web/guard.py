"""Who may use the admin listener: a middleware over every admin route (metrics, health, the
pages, their WebSockets and event streams, whoever adds them).

- `Host` must name the listener itself (its address, localhost, loopback) or one of
  IVR_ADMIN_HOSTS: a page on `evil.example` that rebinds its name to 127.0.0.1 sends
  `Host: evil.example`, so DNS rebinding cannot reach a loopback admin listener.
- `Origin`, when a browser sends one on a WebSocket upgrade or a state-changing request,
  must be the listener's own origin: no cross-site WebSocket hijacking, no CSRF.
- With IVR_ADMIN_TOKEN, a request carries `Authorization: Bearer TOKEN` (Prometheus) or
  the session cookie `/login` sets (browsers: their WebSocket cannot send a header). The
  cookie holds an HMAC of the token, never the token itself.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware

log = logging.getLogger("ivr.admin")
COOKIE = "ivr_admin"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARDS = frozenset({"", "0.0.0.0", "::"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN_PATHS = ("/login", "/static/")  # reachable without the token (still Host-checked)
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ivr admin"'}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def session_value(token: str) -> str:
    """The session cookie's value for `token`: a keyed hash, so the cookie (which a
    browser stores and may show) never holds the token; a new token ends old sessions."""
    return hmac.new(token.encode(), b"ivr admin session/1", hashlib.sha256).hexdigest()


def host_name(header: str) -> str:
    """The name in a `Host` header, without its port or IPv6 brackets, in lower case."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    if value.count(":") == 1:
        value = value.partition(":")[0]
    return value.rstrip(".")


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _is_loopback(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return name in LOOPBACK_NAMES


@dataclass(frozen=True)
class Guard:
    """The admin listener's rules: made from the listener's address, its token and the
    extra host names; `middleware` applies them to every request."""

    bound: str  # the address the listener binds ('' or 0.0.0.0: every address)
    token: str | None = None
    names: frozenset[str] = frozenset()  # IVR_ADMIN_HOSTS

    @classmethod
    def of(cls, bound: str, token: str | None, names: Iterable[str] = ()) -> Guard:
        return cls(bound.strip("[]").lower(), token, frozenset(n.lower() for n in names))

    def host_allowed(self, header: str | None) -> bool:
        """A request without `Host` comes from no browser (all send one): it cannot be a
        rebinding. An address literal cannot be rebound either, but it must be one this
        listener answers on: loopback, its bound address, any when bound to all."""
        if header is None:
            return True
        name = host_name(header)
        if name in self.names or _is_loopback(name) or name == self.bound:
            return True
        return self.bound in WILDCARDS and _is_address(name)

    @staticmethod
    def origin_allowed(origin: str | None, host: str | None) -> bool:
        """Same origin only: `Origin`'s host and port are the request's `Host` (a client
        that is not a browser sends no Origin, and is let through to the token check)."""
        if origin is None:
            return True
        scheme, sep, rest = origin.strip().lower().partition("://")
        if not sep or scheme not in ("http", "https") or host is None:
            return False  # `null` (a sandboxed frame, a file page) included
        default = ":80" if scheme == "http" else ":443"
        return rest.removesuffix(default) == host.strip().lower().removesuffix(default)

    def authenticated(self, request: web.Request) -> bool:
        """No token: everyone (the listener is on loopback). Else a bearer header or the
        session cookie, compared in constant time."""
        if self.token is None:
            return True
        if self.bearer(request):
            return True
        cookie = request.cookies.get(COOKIE, "")
        return hmac.compare_digest(
            cookie.encode(errors="surrogateescape"), session_value(self.token).encode()
        )

    def bearer(self, request: web.Request) -> bool:
        """The request carries the right `Authorization: Bearer TOKEN`."""
        if self.token is None:
            return False
        scheme, _, given = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
        # compare_digest: how long the comparison takes tells nothing of the token
        matches = hmac.compare_digest(
            given.strip().encode(errors="surrogateescape"), self.token.encode()
        )
        return scheme.lower() == "bearer" and matches

    def token_matches(self, given: str) -> bool:
        """A token typed into the login form (or `?token=`) is the right one."""
        if self.token is None:
            return True
        return hmac.compare_digest(given.encode(errors="surrogateescape"), self.token.encode())

    def middleware(self) -> Middleware:
        """The aiohttp middleware: Host, then Origin, then the token. A client with the
        bearer token knows the secret, so no rebinding page can be it: its Host is not
        checked (Prometheus may scrape by any name)."""

        @web.middleware
        async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
            host = request.headers.get(hdrs.HOST)
            if not self.bearer(request) and not self.host_allowed(host):
                log.warning(
                    "admin listener: refused %s %s for Host %r (not this listener: set "
                    "IVR_ADMIN_HOSTS to serve it under that name)",
                    request.method,
                    request.path[:100],
                    (host or "")[:100],
                )
                raise web.HTTPMisdirectedRequest(
                    text="this admin listener does not answer to that Host (IVR_ADMIN_HOSTS)"
                )
            if _upgrade(request) or request.method not in SAFE_METHODS:
                origin = request.headers.get(hdrs.ORIGIN)
                if not self.origin_allowed(origin, host):
                    log.warning(
                        "admin listener: refused %s %s from Origin %r (not the same origin)",
                        request.method,
                        request.path[:100],
                        (origin or "")[:100],
                    )
                    raise web.HTTPForbidden(text="cross-origin request refused")
            if not request.path.startswith(OPEN_PATHS) and not self.authenticated(request):
                raise _unauthorized(request)
            response = await handler(request)
            if not response.prepared:  # a WebSocket or a stream has sent its headers
                response.headers.setdefault("X-Content-Type-Options", "nosniff")
                response.headers.setdefault("X-Frame-Options", "DENY")
                response.headers.setdefault("Referrer-Policy", "same-origin")
            return response

        return guard


def _upgrade(request: web.Request) -> bool:
    return "websocket" in request.headers.get(hdrs.UPGRADE, "").lower()


def _unauthorized(request: web.Request) -> web.HTTPException:
    """401 with the bearer challenge; a browser asking for a page is sent to the login
    form instead, to come back here once signed in."""
    wants_page = request.method == "GET" and "text/html" in request.headers.get(hdrs.ACCEPT, "")
    if wants_page:
        return web.HTTPSeeOther("/login?" + urlencode({"next": request.path_qs}))
    return web.HTTPUnauthorized(
        text="a bearer token is needed (IVR_ADMIN_TOKEN)", headers=CHALLENGE
    )
