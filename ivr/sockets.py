"""Listening sockets, bound before the server starts: a port in use is one clear error."""

from __future__ import annotations

import errno
import socket

from ivr.errors import ConfigError

_PORT_ERRORS = (errno.EADDRINUSE, errno.EACCES)  # the port is the trouble, not the address


def listen(host: str, port: int, what: str = "", fix: str | None = None) -> list[socket.socket]:
    """Sockets listening on every address `host` resolves to, bound as asyncio would bind
    them, for aiohttp to serve. ConfigError says which address failed, why, and what to
    set (`fix`, when given, instead of the flags)."""
    where = f"{host}:{port}" + (f" for {what}" if what else "")
    try:
        found = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as e:
        raise ConfigError(
            f"cannot listen on {where}: {e.strerror} ({fix or 'set IVR_HOST or --host'})"
        ) from None
    bound: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(found):
            sock = socket.socket(family, kind, proto)
            bound.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # or it takes the IPv4 port of the next address too
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen()  # taken from here: a second `ivr serve` fails at its bind
    except OSError as e:
        for sock in bound:
            sock.close()
        setting = "IVR_PORT or --port" if e.errno in _PORT_ERRORS else "IVR_HOST or --host"
        reason = (e.strerror or str(e)).lower()
        raise ConfigError(
            f"cannot listen on {where}: {reason} ({fix or 'set ' + setting})"
        ) from None
    return bound
