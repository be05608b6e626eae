"""`/login`: the admin token, typed once into a form (or given as `?token=`), becomes an
HttpOnly, SameSite=Strict session cookie; then the browser goes back where it was headed."""

from __future__ import annotations

from html import escape

from aiohttp import web

from ivr.web.guard import COOKIE, Guard, session_value
from ivr.web.layout import page

DEFAULT_NEXT = "/flows"


def local_path(wanted: str | None) -> str:
    """`wanted` when it is a path on this listener, else the default: never a redirect to
    another site (`//evil.example`, `/\\evil.example`, `https://...`)."""
    if not wanted or not wanted.startswith("/") or wanted.startswith(("//", "/\\")):
        return DEFAULT_NEXT
    if any(c in wanted for c in "\r\n\t"):
        return DEFAULT_NEXT
    return wanted


def form(request: web.Request, error: str = "") -> str:
    """The login page: one password field; `next` is where it goes after."""
    wanted = request.query.get("next")
    alert = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    body = (
        "<p>This admin listener asks for its token (<code>IVR_ADMIN_TOKEN</code>).</p>"
        f'{alert}<form method="post" action="/login" class="login">'
        f'<input type="hidden" name="next" value="{escape(local_path(wanted))}">'
        '<label for="token">Admin token</label>'
        '<input id="token" name="token" type="password" autocomplete="current-password" '
        "required autofocus>"
        '<button type="submit">Sign in</button></form>'
    )
    return page("Sign in", body, [], current="")


def handlers(guard: Guard) -> tuple[web.RouteDef, ...]:
    """`GET /login` (the form, or `?token=` straight to the cookie) and `POST /login`."""

    async def show(request: web.Request) -> web.StreamResponse:
        if guard.token is None:
            raise web.HTTPSeeOther(local_path(request.query.get("next")))
        if "token" in request.query:
            return _signed_in(request, guard, request.query["token"], request.query.get("next"))
        return web.Response(text=form(request), content_type="text/html")

    async def submit(request: web.Request) -> web.StreamResponse:
        data = await request.post()
        token, wanted = data.get("token"), data.get("next")
        return _signed_in(
            request,
            guard,
            token if isinstance(token, str) else "",
            wanted if isinstance(wanted, str) else None,
        )

    return (web.get("/login", show), web.post("/login", submit))


def _signed_in(
    request: web.Request, guard: Guard, token: str, wanted: str | None
) -> web.StreamResponse:
    if guard.token is None or not guard.token_matches(token):
        return web.Response(
            text=form(request, "That is not the admin token."),
            content_type="text/html",
            status=401,
        )
    response = web.HTTPSeeOther(local_path(wanted))
    response.set_cookie(
        COOKIE,
        session_value(guard.token),
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/",
    )
    raise response
