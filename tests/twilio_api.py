"""A stand-in for Twilio's REST API: a real aiohttp server on loopback, for tests.

It takes what the twilio library sends (`POST .../Messages.json`, `POST .../Calls.json`,
`GET .../Calls/{sid}.json`, `GET .../Messages/{sid}.json`), checks basic auth as Twilio
does, keeps every request with its form, and answers like Twilio (a `SM...` or `CA...`
sid, a status). A test points
the code at it with `IVR_TWILIO_API` (the `twilio_api` fixture does) and may make it
fail (`fail_next`) or tell a call's or message's status (`statuses`, and `answered_by`).
No request leaves the machine.

    async def test_sends(twilio_api):
        rest = TwilioRest(ACCOUNT, AUTH_TOKEN, base_url=twilio_api.url)
        await rest.send_message("+15557654321", "hello", "+15550100")
        assert twilio_api.messages[0].form["Body"] == "hello"
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

ACCOUNT = "AC" + "0" * 31 + "1"  # the account the tests' credentials name
AUTH_TOKEN = "test-token"
API_KEY = "SK" + "0" * 31 + "2"
API_SECRET = "test-key-secret"


@dataclass(frozen=True)
class ApiRequest:
    """One request as the API got it: which resource, its form, who it authenticated as."""

    method: str
    path: str
    form: dict[str, list[str]]
    user: str

    def __getitem__(self, name: str) -> str:
        """A form field's (first) value: `request["To"]`."""
        return self.form[name][0]

    def form_fields(self) -> dict[str, str]:
        """The form, each field's first value."""
        return {name: values[0] for name, values in self.form.items()}


@dataclass
class TwilioApi:
    """The fake API's state: what it received, and what it is told to do next."""

    url: str = ""
    requests: list[ApiRequest] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)  # call or message sid -> status now
    answered_by: dict[str, str] = field(default_factory=dict)  # call sid -> its AnsweredBy
    # (HTTP status, Twilio error code) the next requests get, in order, instead of success
    failures: list[tuple[int, int]] = field(default_factory=list)
    credentials: dict[str, str] = field(
        default_factory=lambda: {ACCOUNT: AUTH_TOKEN, API_KEY: API_SECRET}
    )

    @property
    def messages(self) -> list[ApiRequest]:
        return [r for r in self.requests if r.path.endswith("/Messages.json")]

    @property
    def calls(self) -> list[ApiRequest]:
        return [r for r in self.requests if r.path.endswith("/Calls.json")]

    def fail_next(self, status: int = 400, code: int = 21211) -> None:
        """The next request is refused with `status` and Twilio's error `code` (21211:
        invalid To; 500 with code 20500: Twilio's internal error)."""
        self.failures.append((status, code))

    def app(self) -> web.Application:
        app = web.Application()
        base = "/2010-04-01/Accounts/{account}"
        app.router.add_post(base + "/Messages.json", self.create)
        app.router.add_post(base + "/Calls.json", self.create)
        app.router.add_get(base + "/Calls/{sid}.json", self.fetch)
        app.router.add_get(base + "/Messages/{sid}.json", self.fetch)
        return app

    def _user(self, request: web.Request) -> str | None:
        """Who the basic auth names, when its password is theirs."""
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Basic":
            return None
        user, _, password = base64.b64decode(encoded).decode().partition(":")
        return user if self.credentials.get(user) == password else None

    async def create(self, request: web.Request) -> web.Response:
        user = self._user(request)
        if user is None:
            return _error(401, 20003, "Authenticate")
        account = request.match_info["account"]
        form: dict[str, list[str]] = {}
        for name, value in (await request.post()).items():
            form.setdefault(name, []).append(str(value))
        self.requests.append(ApiRequest(request.method, request.path, form, user))
        if self.failures:
            status, code = self.failures.pop(0)
            return _error(status, code, f"The 'To' number {form.get('To', ['?'])[0]} is not valid")
        message = request.path.endswith("/Messages.json")
        sid = ("SM" if message else "CA") + uuid.uuid4().hex
        self.statuses[sid] = "queued"
        return web.json_response(_resource(sid, account, "queued", form), status=201)

    async def fetch(self, request: web.Request) -> web.Response:
        if self._user(request) is None:
            return _error(401, 20003, "Authenticate")
        sid = request.match_info["sid"]
        self.requests.append(ApiRequest("GET", request.path, {}, self._user(request) or ""))
        if sid not in self.statuses:
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        found = _resource(sid, request.match_info["account"], self.statuses[sid], {})
        if sid.startswith("CA"):
            found["answered_by"] = self.answered_by.get(sid)
        return web.json_response(found)


def _resource(sid: str, account: str, status: str, form: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "sid": sid,
        "account_sid": account,
        "status": status,
        "to": form.get("To", [""])[0],
        "from": form.get("From", [""])[0],
        "body": form.get("Body", [""])[0] if "Body" in form else None,
        "api_version": "2010-04-01",
        "uri": f"/2010-04-01/Accounts/{account}/{'Messages' if sid[:2] == 'SM' else 'Calls'}"
        f"/{sid}.json",
    }


def _error(status: int, code: int, message: str) -> web.Response:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status)
