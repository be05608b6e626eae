"""The admin pages in headless Chromium, on the real server after a known mix of calls:
`/flows` draws every flow with the records' heat and lights a live node, shows a broken
edit's file:line:col; `/dashboard` shows `ivr report --json`'s numbers and refreshes;
no page logs an error. Screenshots are kept under the test's tmp dir."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ivr.report.render_text import ci, pct, tables
from ivr.server import FLOWS
from ivr.store.records import CallRecord
from ivr.web import live
from tests.functional.conftest import EXPERIMENT, OPEN, MakeServer, Server, edit_file, write_file
from tests.functional.test_report import AGENT_OPTION, drive, report, written
from tests.functional.test_report_page import browser  # noqa: F401 (a fixture)

CONSOLE = ("SEVERE", "WARNING")  # what a page must not log
COPYCAT = (
    'flow: copycat\nnumbers: ["+15550110"]\nstart: bye\nnodes:\n  bye:\n    end: {say: "Hi."}\n'
)
BROKEN = "flow: order_status\nstart: greet\nnodes:\n  greet:\n    say: [unclosed\n"


async def run(call: Callable[..., Any], *args: Any) -> Any:
    """A selenium call off the loop: the server under test answers on this loop."""
    return await asyncio.to_thread(call, *args)


async def until(browser: Any, script: str, *args: Any) -> Any:  # noqa: F811
    """Waits (polling, no clock asserted) until `script` returns something truthy."""
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30, poll_frequency=0.05)
    return await run(wait.until, lambda b: b.execute_script(script, *args))


async def open_page(browser: Any, url: str) -> None:  # noqa: F811
    await run(browser.get, url)
    await until(browser, "return document.readyState === 'complete'")


def console_errors(browser: Any) -> list[dict[str, Any]]:  # noqa: F811
    return [e for e in browser.get_log("browser") if e["level"] in CONSOLE]


def heat_of(records: list[CallRecord], flow_id: str) -> dict[str, tuple[int, int, int]]:
    """Per node of `flow_id`: calls that reached it, hung up at it, went to an agent from
    it, counted from the call records themselves."""
    reached: Counter[str] = Counter()
    hung_up: Counter[str] = Counter()
    to_agent: Counter[str] = Counter()
    for record in records:
        if record.flow_id != flow_id:
            continue
        reached.update(set(record.path))
        if record.outcome == "abandoned" and record.path:
            hung_up[record.path[-1]] += 1
        if record.outcome == "transferred" and record.transfer_from:
            to_agent[record.transfer_from] += 1
    return {n: (reached[n], hung_up[n], to_agent[n]) for n in reached}


async def known_mix(make_server: MakeServer, flows_dir: Path, monkeypatch: Any) -> Server:
    """The server of `ivr report`'s functional test, after its ten calls."""
    edit_file(flows_dir / "telebanking.yaml", "start: welcome\n", EXPERIMENT + "start: welcome\n")
    edit_file(flows_dir / "telebanking.yaml", *AGENT_OPTION)
    monkeypatch.setenv("IVR_FLOWS", str(flows_dir))  # `ivr report`'s funnel order: the server's
    server = await make_server()
    server.set_hours(OPEN)
    async with server.twilio() as sim:
        await drive(sim)
    await written(f"sqlite://{server.config.records_path}", 10)
    return server


async def test_the_flows_page(
    make_server: MakeServer,
    flows_dir: Path,
    browser: Any,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = await known_mix(make_server, flows_dir, monkeypatch)
    current = server.app[FLOWS].current
    await open_page(browser, server.admin_url + "/flows")
    assert browser.title == "Flows · ivr"
    shown = await run(
        browser.execute_script,
        "return Object.fromEntries([...document.querySelectorAll('section[data-flow]')].map("
        "s => [s.dataset.flow, [s.querySelector('.version').textContent,"
        " s.querySelectorAll('svg .ivr-node').length]]))",
    )
    assert shown == {f.id: [f.version, len(f.nodes)] for f in current.values()}

    # the heat map's counts are the records' own
    records = await server.records()
    for flow_id in current:
        table = await run(
            browser.execute_script,
            "return Object.fromEntries([...document.querySelectorAll("
            "`section[data-flow='${arguments[0]}'] details.heat tbody tr`)].map(r =>"
            " [r.dataset.node, ['reached', 'abandoned', 'to_agent'].map(k =>"
            " Number(r.querySelector(`[data-key=${k}]`).dataset.value))]))",
            flow_id,
        )
        expected = heat_of(records, flow_id)
        assert {n: tuple(c) for n, c in table.items() if any(c)} == expected, flow_id
    assert heat_of(records, "telebanking")["main"] == (8, 1, 3)
    label = await run(
        browser.execute_script,
        "return document.getElementById('ivr-node--telebanking--main').textContent",
    )
    assert "8 calls, 1 hung up, 3 to agent" in label

    # a node lights up as a live call reaches it, and goes out when the call ends
    await until(
        browser, "return /connected/.test(document.getElementById('live-status').textContent)"
    )
    live.publish("telebanking", "main")
    lit = "return [...document.querySelectorAll('.ivr-node.lit')].map(n => n.dataset.node)"
    assert await until(browser, lit) == ["main"]
    live.publish("telebanking", "ask_account")
    assert await until(browser, f"{lit}.filter(n => n === 'ask_account')") == ["ask_account"]
    assert await run(browser.execute_script, lit) == ["ask_account"]
    await run(
        browser.execute_script,
        "document.querySelector('.ivr-node.lit').scrollIntoView({block: 'center'})",
    )
    await run(browser.save_screenshot, str(tmp_path / "flows-live.png"))
    live.ended("telebanking")
    await until(browser, "return document.querySelectorAll('.ivr-node.lit').length === 0")
    assert console_errors(browser) == []

    # a broken edit: its file:line:col beside the version still serving
    old = current["order_status"].version
    write_file(flows_dir / "order_status.yaml", BROKEN)
    assert server.app[FLOWS].reload() == []
    await open_page(browser, server.admin_url + "/flows")
    failure = await run(
        browser.execute_script,
        "const s = document.querySelector(\"section[data-flow='order_status']\");"
        "return [s.querySelector('.version').textContent, s.querySelector('.failure').textContent,"
        " [...s.querySelectorAll('.problem.error')].map(p => p.textContent)]",
    )
    assert failure[0] == old
    assert f"version {old} still serves" in failure[1]
    assert failure[2] and all(
        re.match(rf"{re.escape(str(flows_dir / 'order_status.yaml'))}:\d+:\d+: ", line)
        for line in failure[2]
    ), failure[2]
    await run(browser.save_screenshot, str(tmp_path / "flows-broken.png"))
    await run(browser.set_window_size, 390, 844)  # a phone's screen: diagrams shrink to fit
    await run(browser.save_screenshot, str(tmp_path / "flows-phone.png"))
    fits = "return document.documentElement.scrollWidth <= window.innerWidth + 1"
    assert await run(browser.execute_script, fits)
    assert console_errors(browser) == []


async def test_the_dashboard_page(
    make_server: MakeServer,
    flows_dir: Path,
    browser: Any,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = await known_mix(make_server, flows_dir, monkeypatch)
    url = f"sqlite://{server.config.records_path}"
    cli = await report(url, capsys=capsys)
    cli_experiment = (await report(url, "--experiment", "voice_vs_dtmf", capsys=capsys))[
        "experiment"
    ]
    async with aiohttp.ClientSession() as http:
        async with http.get(server.admin_url + "/dashboard/data") as reply:
            assert reply.status == 200
            data = await reply.json()
    for found in (cli, data["report"]):
        found.pop("generated_at")
    assert data["report"] == cli  # one source: every figure of `ivr report --json`
    assert data["experiments"] == {"voice_vs_dtmf": cli_experiment}
    assert data["rates_per_day"][0]["calls"] == cli["per_day"][0]["calls"]

    await open_page(browser, server.admin_url + "/dashboard")
    assert browser.title == "Dashboard · ivr"
    cards = await run(
        browser.execute_script,
        "return Object.fromEntries([...document.querySelectorAll('#panel .card')].map("
        "c => [c.dataset.key, [Number(c.dataset.value), c.querySelector('.value').textContent,"
        " c.querySelector('.note').textContent]]))",
    )
    rates = {"abandoned": cli["abandoned"], **{k: cli[k] for k in ("transfers", "zero_outs")}}
    assert {k: v[0] for k, v in cards.items()} == {
        "calls": cli["calls"],
        "containment": cli["containment"]["rate"],
        "resolution": cli["resolution"]["rate"],
        **{key: figure["rate"] for key, figure in rates.items()},
    }
    for key in ("containment", "resolution"):
        assert cards[key][1:] == [pct(cli[key]["rate"]), ci(cli[key])]
    shown = await run(
        browser.execute_script,
        "return [...document.querySelectorAll('#panel > h3')].map(h => { const t ="
        " h.nextElementSibling; return [h.textContent, [...t.querySelectorAll('tbody tr')].map("
        "r => [...r.children].map(c => c.textContent))]; })",
    )
    assert shown == [[title, [list(row) for row in rows]] for title, _, rows in tables(cli)]
    variants = await run(
        browser.execute_script,
        "return [...document.querySelectorAll('#panel h2')].map(h => h.textContent)",
    )
    assert "Experiment: voice_vs_dtmf" in variants and "Drop-off funnel" in variants
    charts = await run(
        browser.execute_script,
        "return [...document.querySelectorAll('#panel svg')].map(s => {"
        " const r = s.getBoundingClientRect(); return [r.width, r.height]; })",
    )
    assert len(charts) >= 5 and all(w > 200 and h > 100 for w, h in charts)

    # refreshed live: a new call shows without reloading the page
    async with server.twilio() as sim:
        call = sim.new_call(
            "+15550100", "+15557654321", voice_path="/twilio/voice?variant=telebanking"
        )
        await call.start()
        await call.hangup()
    await written(url, 11)
    await until(
        browser,
        "return /^11 ended calls/.test(document.getElementById('generated')?.textContent)",
    )
    await run(browser.save_screenshot, str(tmp_path / "dashboard.png"))
    await run(browser.set_window_size, 390, 844)  # a phone's screen
    await run(browser.save_screenshot, str(tmp_path / "dashboard-phone.png"))
    overflow = await run(
        browser.execute_script,
        "return document.documentElement.scrollWidth <= window.innerWidth + 1",
    )
    assert overflow
    assert console_errors(browser) == []


async def test_every_page_opens_without_console_errors(
    server: Server,
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Before any call: the index, the pages, and the keyboard's way through the nav."""
    for path in ("/", "/phone", "/flows", "/dashboard", "/login"):
        await open_page(browser, server.admin_url + path)
        name = path.strip("/") or "index"
        await run(browser.save_screenshot, str(tmp_path / f"{name}.png"))
        assert console_errors(browser) == [], path
    await open_page(browser, server.admin_url + "/dashboard")
    text = await run(browser.execute_script, "return document.getElementById('panel').textContent")
    assert "No calls recorded yet" in text
    links = await run(
        browser.execute_script,
        "return [...document.querySelectorAll('nav a')].map(a => [a.textContent, a.tabIndex])",
    )
    assert links == [["Phone", 0], ["Flows", 0], ["Dashboard", 0]]


async def test_signing_in_with_the_token_in_the_browser(
    make_server: MakeServer,
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """With IVR_ADMIN_TOKEN, a page opens on the login form; the token typed once becomes
    the cookie that the page, its scripts and its live stream use from then on."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    server = await make_server(admin_token="browser-secret")
    await open_page(browser, server.admin_url + "/flows")
    assert await run(browser.execute_script, "return document.title") == "Sign in · ivr"
    field = await run(browser.find_element, By.ID, "token")
    assert await run(browser.execute_script, "return document.activeElement.id") == "token"
    label = await run(browser.execute_script, "return document.querySelector('label').htmlFor")
    assert label == "token"
    await run(field.send_keys, "browser-secret" + Keys.ENTER)  # the keyboard alone
    await until(browser, "return document.title === 'Flows · ivr'")
    assert await run(browser.execute_script, "return document.cookie") == ""  # HttpOnly
    (cookie,) = await run(browser.get_cookies)
    assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == ("ivr_admin", True, "Strict")
    assert "browser-secret" not in cookie["value"]
    await until(
        browser, "return /connected/.test(document.getElementById('live-status').textContent)"
    )
    live.publish("order_status", "ask_order")
    lit = "return [...document.querySelectorAll('.ivr-node.lit')].map(n => n.dataset.node)"
    assert await until(browser, lit) == ["ask_order"]
    await run(browser.save_screenshot, str(tmp_path / "signed-in.png"))
    assert console_errors(browser) == []


async def test_warnings_and_refused_files_over_http(server: Server, flows_dir: Path) -> None:
    """A warning is listed under its flow; a file refused for taking another flow's number
    shows its file:line:col though no version of it serves."""
    edit_file(
        flows_dir / "order_status.yaml",
        "  goodbye:\n",
        '  orphan:\n    end: {say: "Nobody comes here."}\n\n  goodbye:\n',
    )
    (flows_dir / "copycat.yaml").write_text(COPYCAT)
    assert server.app[FLOWS].reload() == ["order_status"]
    async with aiohttp.ClientSession() as http:
        async with http.get(server.admin_url + "/flows") as reply:
            assert reply.status == 200
            assert "default-src 'self'" in reply.headers["Content-Security-Policy"]
            html = await reply.text()
    order = html[html.index('data-flow="order_status"') : html.index('data-flow="telebanking"')]
    path = re.escape(str(flows_dir / "order_status.yaml"))
    assert re.search(
        rf'<li class="problem warning">{path}:\d+:\d+: warning: nodes\.orphan: unreachable', order
    )
    copycat = html[html.index('id="flow-copycat"') :]
    assert "did not load; none serves" in copycat
    copied = re.escape(str(flows_dir / "copycat.yaml"))
    assert re.search(rf'<li class="problem error">{copied}:2:\d+: numbers\[0\]: number', copycat)
