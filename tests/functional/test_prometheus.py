"""The metrics as Prometheus reads them: a real `prometheus` scrapes the admin listener of
the real app after a known mix of calls, and its recording rules give that mix's exact
containment; promtool checks the rules, runs the alert tests and parses every query of
the Grafana dashboard. Needs the Debian package `prometheus` (make test installs it)."""

from __future__ import annotations

import asyncio
import json
import math
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ivr.cli import main
from ivr.server import FLOWS
from tests.conftest import free_port
from tests.functional.conftest import (
    BANK,
    CALLER,
    OPEN,
    REPO,
    SHOP,
    Backend,
    MakeServer,
    Server,
    metric,
)
from tests.functional.twilio_sim import Call, TwilioSim

MISSING = "{} is not installed: run `apt-get install -y prometheus` (make test does this)"
RULES = REPO / "docs" / "prometheus-rules.yml"
RULE_TESTS = REPO / "tests" / "prometheus" / "rules.test.yml"
DASHBOARD = REPO / "docs" / "grafana-dashboard.json"
START_WAIT = 30.0  # seconds for prometheus to be ready
SCRAPE_WAIT = 20.0  # seconds for a scrape and a rule evaluation (each every second) to show
TOOL_WAIT = 120.0  # seconds a promtool run may take
# Grafana's variables, as a dashboard user would set them (a multi-flow choice is a regex)
VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "${flow}": "telebanking|order_status",
    "$flow": "telebanking|order_status",
    "$window": "1h",
}
# Rate-based rules extrapolate each series' increase to the ends of the window; all series
# here come from one target, start at 0 before the first call and share their scrape
# times, so the ratios match the exact ones but for that extrapolation's rounding.
RATE_TOLERANCE = 0.02
TOKEN = "scrape-secret"


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(MISSING.format(name), pytrace=False)
    return found


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("promtool"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TOOL_WAIT,
        cwd=REPO,
    )


# -- the rules and the dashboard, checked by promtool ------------------------------------------


def test_the_rules_pass_promtool_check() -> None:
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_each_alert_fires_and_stays_quiet_as_its_tests_say() -> None:
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    alerts = set(re.findall(r"- alert: (\w+)", RULES.read_text()))
    assert tested == alerts  # every alert has a test
    done = promtool("test", "rules", str(RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of the dashboard, its variables substituted."""
    found = []
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for name, value in VARIABLES.items():
                expr = expr.replace(name, value)
            assert "$" not in expr, f"{panel['title']}: a variable left in {expr}"
            found.append((panel["title"], expr))
    return found


def test_the_dashboard_has_a_flow_variable_and_the_figures_ops_read() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["flow"]["definition"] == "label_values(ivr_flow_info, flow)"
    assert variables["flow"]["multi"] and variables["flow"]["includeAll"]
    titles = " / ".join(p["title"] for p in dashboard["panels"]).lower()
    for figure in ("containment", "resolution", "outcomes", "transfer reasons", "drop-off"):
        assert figure in titles
    for figure in ("input success by mode", "latency", "containment by channel"):
        assert figure in titles
    flowless = [e for t, e in dashboard_queries() if "flow=~" not in e]
    assert all(re.search(r"ivr_(webhook|flow_reload|store)_", e) for e in flowless), flowless


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    """promtool parses each query as the expression of a recording rule."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": expr}
        for i, (_, expr) in enumerate(dashboard_queries())
    ]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout


# -- a real Prometheus scraping the real app ---------------------------------------------------


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    http: aiohttp.ClientSession

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector `expr` evaluates to now; AssertionError on an error."""
        async with self.http.get(self.url + "/api/v1/query", params={"query": expr}) as reply:
            body = await reply.json()
        assert body["status"] == "success", f"{expr}: {body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def values(self, expr: str) -> dict[str, float]:
        """`expr`'s samples by their labels but the name (as `k=v,...`), a float each; a
        ratio of no calls (NaN: a flow nobody called) is left out."""
        found = {}
        for sample in await self.query(expr):
            labels = sorted(i for i in sample["metric"].items() if i[0] != "__name__")
            value = float(sample["value"][1])
            if not math.isnan(value):
                found[",".join(f"{k}={v}" for k, v in labels)] = value
        return found

    async def next_evaluation(self, rule: str) -> None:
        """Wait until the group of `rule` (its first rule) has been evaluated once more."""
        stamp = f"max(timestamp({rule}))"
        before = await self.values(stamp)
        await self.until(stamp, lambda now: now != before, f"the next evaluation of {rule}")

    async def targets(self) -> str:
        async with self.http.get(self.url + "/api/v1/targets") as reply:
            return str((await reply.json())["data"]["activeTargets"])

    async def until(self, expr: str, check: Any, what: str) -> dict[str, float]:
        """Poll `expr` until `check(values)` holds (scrapes and rule evaluations come every
        second); on timeout, fail with what it last was and what the targets say."""
        deadline = time.monotonic() + SCRAPE_WAIT
        while True:
            values = await self.values(expr)
            if check(values):
                return values
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{what}: {expr} is {values} after {SCRAPE_WAIT:g} s; targets: "
                    f"{await self.targets()}\n{self.log.read_text(errors='replace')[-3000:]}"
                )
            await asyncio.sleep(0.2)


@pytest.fixture
async def make_prometheus(tmp_path: Path) -> AsyncIterator[Any]:
    """Starts `prometheus` on a free loopback port scraping a given admin listener every
    second with the token, rules evaluated every second; stops it at the end."""
    started: list[Prometheus] = []

    async def start(target: str, token: str) -> Prometheus:
        binary = tool("prometheus")
        config = tmp_path / "prometheus.yml"
        config.write_text(
            json.dumps(
                {
                    "global": {
                        "scrape_interval": "1s",
                        "scrape_timeout": "1s",
                        "evaluation_interval": "1s",
                    },
                    "rule_files": [str(RULES)],
                    "scrape_configs": [
                        {
                            "job_name": "ivr",
                            "authorization": {"credentials": token},
                            "static_configs": [{"targets": [target]}],
                        }
                    ],
                }
            )
        )
        log = tmp_path / "prometheus.log"
        address = f"127.0.0.1:{free_port()}"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [binary, f"--config.file={config}", f"--web.listen-address={address}"]
                + [f"--storage.tsdb.path={tmp_path / 'tsdb'}", "--log.level=warn"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        running = Prometheus(f"http://{address}", process, log, aiohttp.ClientSession())
        started.append(running)
        await _ready(running)
        return running

    yield start
    for running in started:
        await running.http.close()
        running.process.terminate()
        try:
            running.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            running.process.kill()
            running.process.wait()


async def _ready(prometheus: Prometheus) -> None:
    deadline = time.monotonic() + START_WAIT
    while True:
        if prometheus.process.poll() is not None:
            raise AssertionError(
                f"prometheus exited with {prometheus.process.returncode}:\n"
                + prometheus.log.read_text(errors="replace")
            )
        try:
            async with prometheus.http.get(prometheus.url + "/-/ready") as reply:
                if reply.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"prometheus not ready in {START_WAIT:g} s")
        await asyncio.sleep(0.1)


async def bank(sim: TwilioSim, script: list[Any]) -> Call:
    """A whole call to telebanking itself: its experiment's other variant is pinned away."""
    call = sim.new_call(BANK, CALLER, voice_path="/twilio/voice?variant=telebanking")
    await call.start()
    for step in script:
        kind, _, arg = step.partition(":") if isinstance(step, str) else (step[0], "", "")
        if kind == "press":
            await call.press(arg)
        elif kind == "say":
            await call.say(*step[1:])
        elif kind == "silence":
            await call.silence()
        else:
            await call.hangup()
    return call


# the mix: (flow, outcome) of each call, and what it did
MIX = {
    "self-service, completed": ("telebanking", "contained"),
    "zero-out to an agent": ("telebanking", "transferred"),
    "not understood: on_fail": ("telebanking", "transferred"),
    "backend failed: on_error": ("telebanking", "transferred"),
    "hung up at the menu": ("telebanking", "abandoned"),
    "hung up at the account number": ("telebanking", "abandoned"),
    "hung up after the balance": ("telebanking", "abandoned"),
    "order status, completed": ("order_status", "contained"),
    "hung up at the order number": ("order_status", "abandoned"),
    "no such order: on_error": ("order_status", "transferred"),
    "a number no flow serves": ("unknown", "failed"),
}
RESOLVED = {"telebanking": 2, "order_status": 1, "unknown": 0}  # a task done and no agent


async def drive_the_mix(sim: TwilioSim) -> list[Call]:
    calls = [
        await bank(sim, ["press:1", "press:12345674#", "press:2"]),
        await bank(sim, ["press:0", "press:5"]),  # an agent, then the survey
        await bank(sim, ["silence", "silence", "silence", "press:4"]),
        await bank(sim, ["press:1", "press:44444446#", "press:3"]),
        await bank(sim, ["hangup"]),
        await bank(sim, ["press:1", "hangup"]),
        await bank(sim, [("say", "balance", 0.9), "press:12345674#", "hangup"]),
        await sim.call(SHOP, CALLER, ["press:123456#", "press:2"]),
        await sim.call(SHOP, CALLER, ["hangup"]),
        await sim.call(SHOP, CALLER, ["press:404404#"]),
        await sim.start("+15559999999", CALLER),
    ]
    ends = [call.end for call in calls]
    assert ends == ["hangup"] * 4 + ["caller-hung-up"] * 3 + ["hangup"] + [
        "caller-hung-up",
        "dial",
        "hangup",
    ]
    return calls


async def report(url: str, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    """`ivr report --json` as a person runs it, off the loop (the server shares it)."""
    status = await asyncio.to_thread(main, ["report", "--records", url, "--json", *args])
    out, err = capsys.readouterr()
    assert status == 0, err
    found: dict[str, Any] = json.loads(out)
    return found


def expected_ratios() -> dict[str, dict[str, float]]:
    """Containment and resolution of the mix, per flow and for all, worked out by hand."""
    flows = {flow for flow, _ in MIX.values()}
    out: dict[str, dict[str, float]] = {"containment": {}, "resolution": {}}
    for flow in flows:
        ended = [o for f, o in MIX.values() if f == flow]
        out["containment"][flow] = ended.count("contained") / len(ended)
        out["resolution"][flow] = RESOLVED[flow] / len(ended)
    out["containment"]["all"] = 2 / 11
    out["resolution"]["all"] = 3 / 11
    return out


async def test_prometheus_reads_the_mix_as_the_records_tell_it(
    make_server: MakeServer,
    backend: Backend,
    make_prometheus: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = await make_server(admin_token=TOKEN)
    server.set_hours(OPEN)  # agents in: transfers are transfers, not voicemail
    host, port = server.config.admin
    prometheus = await make_prometheus(f"{host}:{port}", TOKEN)

    # the zero series scraped before the first call: rates start from them
    def scraped(values: dict[str, float]) -> bool:
        return len(values) >= 12 and not any(values.values())

    await prometheus.until("ivr_calls_ended_total", scraped, "the first scrape")

    async with server.twilio() as sim:
        calls = await drive_the_mix(sim)
    records = [await server.record(call.sid) for call in calls]
    assert [(r.flow_id, r.outcome) for r in records] == list(MIX.values())

    text = await server.metrics()
    check_exposition(text, server, backend)
    lint = promtool("check", "metrics", stdin=text)
    assert lint.returncode == 0, lint.stdout + lint.stderr

    # what `ivr report --json` gives over these calls' records: the figures the rules equal
    expected = expected_ratios()
    url = f"sqlite://{server.config.records_path}"
    for flow in ("all", "telebanking", "order_status", "unknown"):
        found = await report(url, capsys, *([] if flow == "all" else ["--flow", flow]))
        assert found["calls"] == sum(flow in ("all", f) for f, _ in MIX.values())
        assert found["containment"]["rate"] == expected["containment"][flow], flow
        assert found["resolution"]["rate"] == expected["resolution"][flow], flow
        if flow == "all":
            by_reason = found["transfers"]["by_reason"].items()
            transfers = {f"reason={r}": v["calls"] / found["calls"] for r, v in by_reason}
    assert transfers["reason=on_error"] == 2 / 11

    # lifetime rules: exact, once the last call's scrape has been evaluated
    await prometheus.until(
        "sum(flow:ivr_calls_ended:sum)", lambda v: v == {"": 11.0}, "all calls ended"
    )
    for rule, figure in [
        ("ivr_containment:ratio", "containment"),
        ("ivr_self_service_resolution:ratio", "resolution"),
    ]:
        by_flow = {f"flow={flow}": v for flow, v in expected[figure].items() if flow != "all"}
        await prometheus.until(f"flow:{rule}", lambda v, want=by_flow: v == want, rule)
        want = {"": expected[figure]["all"]}
        await prometheus.until(f":{rule}", lambda v, want=want: v == want, rule)
    await prometheus.until(
        "reason:ivr_transfers:ratio", lambda v: v == transfers, "transfer rate by reason"
    )

    # rate-based rules: within RATE_TOLERANCE, from the first evaluation of their group
    # that began after they had seen every call (extrapolation only adds to an increase)
    gate = "flow:ivr_calls_ended:increase1h"
    await prometheus.until(f"sum({gate})", lambda v: v.get("", 0) >= 10.99, "all calls, 1h")
    await prometheus.next_evaluation(gate)
    for rule, labels, want in [
        (":ivr_containment:ratio_rate1h", "", expected["containment"]["all"]),
        (":ivr_self_service_resolution:ratio_rate1h", "", expected["resolution"]["all"]),
        ("flow:ivr_containment:ratio_rate1h", "flow=telebanking", 1 / 7),
        ("flow:ivr_self_service_resolution:ratio_rate1h", "flow=order_status", 1 / 3),
    ]:
        got = (await prometheus.values(rule)).get(labels)
        assert got == pytest.approx(want, abs=RATE_TOLERANCE), rule

    # every dashboard query runs on the live data without an error
    for _, expr in dashboard_queries():
        await prometheus.query(expr)
    dropped = await prometheus.values(
        'sum by (node) (increase(ivr_call_exits_total{flow="telebanking",outcome="abandoned"}[1h]))'
    )
    assert {k for k, v in dropped.items() if v > 0} == {
        "node=main",
        "node=ask_account",
        "node=anything_else",
    }


def check_exposition(text: str, server: Server, backend: Backend) -> None:
    """The exact counts of the mix in /metrics."""
    current = server.app[FLOWS].current
    bank, shop = current["telebanking"].version, current["order_status"].version

    def ended(flow: str, version: str, outcome: str, name: str = "ivr_calls_ended_total") -> float:
        return metric(text, name, flow=flow, version=version, outcome=outcome, channel="voice")

    for flow, version in [("telebanking", bank), ("order_status", shop), ("unknown", "")]:
        for outcome in ("contained", "transferred", "abandoned", "failed"):
            want = sum(1 for f, o in MIX.values() if (f, o) == (flow, outcome))
            assert ended(flow, version, outcome) == want, (flow, outcome)
    resolved = "ivr_calls_resolved_total"
    assert ended("telebanking", bank, "contained", resolved) == 1
    assert ended("telebanking", bank, "abandoned", resolved) == 1  # after the balance
    assert ended("telebanking", bank, "transferred", resolved) == 0
    assert ended("order_status", shop, "contained", resolved) == 1
    assert metric(text, "ivr_calls_started_total") == 10  # the unknown number never started
    assert metric(text, "ivr_calls_active") == 0

    def transfers(flow: str, queue: str, reason: str) -> float:
        return metric(text, "ivr_transfers_total", flow=flow, queue=queue, reason=reason)

    assert transfers("telebanking", "support", "global") == 1
    assert transfers("telebanking", "support", "on_fail") == 1
    assert transfers("telebanking", "support", "on_error") == 1
    assert transfers("order_status", "orders", "on_error") == 1
    assert metric(text, "ivr_transfers_total") == 4
    assert metric(text, "ivr_transfer_results_total", result="completed") == 4

    assert metric(text, "ivr_tasks_resolved_total", flow="telebanking") == 2
    assert metric(text, "ivr_tasks_resolved_total", task="balance_inquiry") == 2
    assert metric(text, "ivr_tasks_resolved_total", task="order_status") == 1

    def exits(flow: str, node: str, outcome: str) -> float:
        return metric(text, "ivr_call_exits_total", flow=flow, node=node, outcome=outcome)

    assert exits("telebanking", "main", "abandoned") == 1
    assert exits("telebanking", "ask_account", "abandoned") == 1
    assert exits("telebanking", "anything_else", "abandoned") == 1
    assert exits("telebanking", "main", "transferred") == 2  # zero-out and on_fail, both there
    assert exits("telebanking", "lookup", "transferred") == 1
    assert exits("telebanking", "goodbye", "contained") == 1
    assert exits("order_status", "ask_order", "abandoned") == 1
    assert exits("order_status", "lookup", "transferred") == 1
    assert metric(text, "ivr_call_exits_total") == 10  # the unknown number was at no node

    def inputs(node: str, mode: str, result: str, flow: str = "telebanking") -> float:
        return metric(text, "ivr_inputs_total", flow=flow, node=node, mode=mode, result=result)

    assert inputs("main", "none", "no_input") == 3
    assert inputs("main", "dtmf", "match") == 4  # 1, 1, 0 (a global option), 1
    assert inputs("main", "speech", "match") == 1
    assert inputs("ask_account", "dtmf", "match") == 3
    assert inputs("anything_else", "dtmf", "match") == 1
    assert inputs("ask_order", "dtmf", "match", "order_status") == 2
    for node in ("welcome", "main"):
        assert metric(text, "ivr_node_visits_total", flow="telebanking", node=node) == 7
    assert metric(text, "ivr_node_visits_total", flow="telebanking", node="balance") == 2
    assert metric(text, "ivr_node_visits_total", flow="telebanking", node="agent") == 3

    def backend_calls(flow: str, status: str) -> float:
        labels = {"flow": flow, "node": "lookup", "status": status}
        return metric(text, "ivr_backend_seconds_count", **labels)

    failing = backend.seen.count("GET /accounts/44444446")
    assert failing == 2  # a GET is tried again after a 5xx
    assert backend_calls("telebanking", "2xx") == 2
    assert backend_calls("telebanking", "5xx") == failing
    assert backend_calls("order_status", "2xx") == 1
    assert backend_calls("order_status", "4xx") == 1
    assert metric(text, "ivr_backend_seconds_count", status="error") == 0

    def webhooks(route: str) -> float:
        return metric(text, "ivr_webhook_seconds_count", route=route)

    assert webhooks("voice") == 11
    assert webhooks("status") == 11
    assert webhooks("dial") == 4
    # a turn is a step of a flow: not the status callbacks, nor the unknown number's call;
    # the bank's three transfers end in steps (its flow goes on to the survey), the shop's not
    turns = webhooks("voice") - 1 + webhooks("gather") + 3
    assert metric(text, "ivr_turns_total") == turns
    assert metric(text, "ivr_call_duration_seconds_count") == 11
    assert metric(text, "ivr_flow_info", flow="telebanking", version=bank) == 1
