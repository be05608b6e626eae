"""The `ivr` command, run for real: `python -m ivr` in a subprocess, or `main(argv)`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

import ivr
from ivr.cli import main

ROOT = Path(__file__).resolve().parents[2]
FLOWS = ROOT / "flows"
RUN_WAIT = 60.0  # seconds any one `ivr` run may take before the test fails


def ivr_run(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    """`python -m ivr ARGS` from the repository's root, its output as text."""
    return subprocess.run(
        [sys.executable, "-m", "ivr", *args],
        cwd=kw.pop("cwd", ROOT),
        env={**os.environ, **(env or {})},
        stdout=kw.pop("stdout", subprocess.PIPE),
        stderr=subprocess.PIPE,
        text=True,
        timeout=RUN_WAIT,
        **kw,
    )


def test_python_dash_m_ivr_is_the_command():
    done = ivr_run("--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: ivr ")


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out == f"ivr {metadata.version('ivr')}\n"


def test_the_source_version_is_the_package_version():
    """`ivr.__version__` answers when the package metadata is not installed: keep them one."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert ivr.__version__ == project["version"]


def flow_text(flow_id: str, *numbers: str) -> str:
    listed = ", ".join(f'"{n}"' for n in numbers)
    return (
        f"flow: {flow_id}\nnumbers: [{listed}]\nstart: hello\nnodes:\n"
        "  hello:\n    say: Hello.\n    next: bye\n  bye:\n    end: {say: Goodbye.}\n"
    )


@pytest.fixture
def two_claims(tmp_path: Path) -> tuple[Path, Path]:
    """Two flows of different ids, both listing +15550100 (the second as its second number)."""
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(flow_text("a", "+15550100"))
    second.write_text(flow_text("b", "+15550111", "+15550100"))
    return first, second


@pytest.mark.parametrize("as_directory", [True, False], ids=["directory", "files"])
def test_validate_two_flows_claiming_one_number(two_claims, as_directory, capsys):
    first, second = two_claims
    paths = [str(first.parent)] if as_directory else [str(first), str(second)]
    assert main(["validate", *paths]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{first}: ok (a version {out[0].split('version ')[1]}",  # the first claim stands
        f"{second}:2:24: numbers[1]: number +15550100 is already routed to flow 'a' ({first}): "
        "a number routes to one flow; remove it from one of the two",
        "2 file(s): 1 error(s), 0 warning(s)",
    ]


def test_validate_the_same_flow_twice_is_no_conflict(two_claims, capsys):
    first, _ = two_claims
    assert main(["validate", str(first), str(first)]) == 0


SPLIT = "experiment:\n  name: voice_vs_dtmf\n  split:\n    a: 50\n    a_voice: 50\n"


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    """Flow `a` splits its calls with `a_voice`, which is not there yet."""
    path = tmp_path / "a.yaml"
    path.write_text(flow_text("a", "+15550100").replace("start:", SPLIT + "start:"))
    return path


def test_validate_a_variant_that_is_no_flow(experiment, capsys):
    assert main(["validate", str(experiment.parent)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{experiment}:7:5: experiment.split.a_voice: variant 'a_voice' is not a flow served "
        "here (no flow file beside this one has 'flow: a_voice', or it has errors)",
        "1 file(s): 1 error(s), 0 warning(s)",
    ]


@pytest.mark.parametrize("given", ["directory", "file"])
def test_validate_finds_variants_beside_the_file(experiment, given, capsys):
    """One file validated alone: its variants are looked for beside it, as `ivr serve`
    would load them; a variant that splits again is an error at the experiment's variant."""
    voice = experiment.with_name("a_voice.yaml")
    voice.write_text(flow_text("a_voice"))
    path = experiment.parent if given == "directory" else experiment
    assert main(["validate", str(path)]) == 0
    voice.write_text(flow_text("a_voice").replace("start:", SPLIT + "start:"))
    capsys.readouterr()
    assert main(["validate", str(path)]) == 1
    errors = [line for line in capsys.readouterr().out.splitlines() if ": experiment" in line]
    assert errors[0].startswith(
        f"{experiment}:7:5: experiment.split.a_voice: variant 'a_voice' runs an experiment of "
        f"its own ('voice_vs_dtmf', {voice})"
    )
    if given == "directory":  # a_voice's own split names `a`, which splits: said there too
        assert errors[1].startswith(f"{voice}:6:5: experiment.split.a: variant 'a' runs ")
    assert len(errors) == (2 if given == "directory" else 1)


CONVERSATION = """\
flow: ../hello.yaml
tests:
  - name: greets and ends
    steps:
      - expect: {heard: Hello, outcome: contained}
"""


@pytest.fixture
def flows_with_tests(tmp_path: Path) -> Path:
    """A flows directory like the repository's: a flow, and its test in `tests/`."""
    flows = tmp_path / "myflows"
    (flows / "tests").mkdir(parents=True)
    (flows / "hello.yaml").write_text(flow_text("hello", "+15550100"))
    (flows / "tests" / "hello.yaml").write_text(CONVERSATION)
    return flows


def test_test_takes_a_directory(flows_with_tests, capsys):
    status = main(["test", str(flows_with_tests / "tests")])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "1 passed" in captured.out


def test_test_without_paths_runs_ivr_flows_tests(flows_with_tests, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = ivr_run("test", cwd=elsewhere, env={"IVR_FLOWS": str(flows_with_tests)})
    assert done.returncode == 0, done.stderr
    assert "1 passed" in done.stdout


def test_test_without_paths_and_no_tests(tmp_path):
    done = ivr_run("test", cwd=tmp_path, env={"IVR_FLOWS": str(tmp_path / "none")})
    assert done.returncode == 1
    assert done.stderr == f"ivr test: no conversation tests in {tmp_path / 'none' / 'tests'}\n"


def test_graph_into_a_closed_pipe_exits_quietly():
    """`ivr graph FLOW | head -1`: the reader left; no traceback, the shell's SIGPIPE status."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    try:
        done = ivr_run("graph", str(FLOWS / "telebanking.yaml"), stdout=write_end)
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == 141


def test_serve_on_a_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = ivr_run(
            *("serve", "--host", "127.0.0.1", "--port", str(port), "--flows", str(FLOWS)),
            *("--data", str(tmp_path), "--insecure", "--no-watch"),
        )
    assert done.returncode == 2
    assert done.stderr == (
        f"ivr: cannot listen on 127.0.0.1:{port}: address already in use (set IVR_PORT or --port)\n"
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("IVR_PORT", "abc", "IVR_PORT: expected a port number 1-65535, got 'abc'"),
        ("IVR_PORT", "70000", "IVR_PORT: expected a port number 1-65535, got '70000'"),
        (
            "IVR_TURN_BUDGET",
            "15",
            "IVR_TURN_BUDGET: expected seconds more than 0 and less than 15 "
            "(Twilio gives up on a webhook after 15 s), got '15'",
        ),
    ],
)
def test_serve_with_a_bad_setting(name, value, message, tmp_path):
    done = ivr_run("serve", "--data", str(tmp_path), env={name: value})
    assert done.returncode == 2
    assert done.stderr == f"ivr: {message}\n"


def test_serve_with_a_bad_flag(tmp_path):
    done = ivr_run("serve", "--data", str(tmp_path), "--turn-budget", "0")
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        "ivr serve: error: argument --turn-budget: expected seconds more than 0 and less "
        "than 15 (Twilio gives up on a webhook after 15 s), got '0'"
    )


def _serve_args(tmp_path: Path) -> list[str]:
    with socket.socket() as probe:  # a port free now, for the public listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return ["serve", "--host", "127.0.0.1", "--port", str(port), "--flows", str(FLOWS)] + [
        *("--data", str(tmp_path), "--insecure", "--no-watch")
    ]


def test_serve_admin_beyond_loopback_needs_a_token(tmp_path):
    """/metrics tells call volumes and flow versions: not to the world without a token."""
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        port = probe.getsockname()[1]
    done = ivr_run(*_serve_args(tmp_path), "--admin", f"0.0.0.0:{port}")
    assert done.returncode == 2
    assert done.stderr == (
        f"ivr: IVR_ADMIN: the admin listener (0.0.0.0:{port}) would answer on 0.0.0.0, beyond "
        "loopback, without a token: set IVR_ADMIN_TOKEN, or listen on loopback "
        "(--admin 127.0.0.1:8081)\n"
    )


def test_serve_admin_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = ivr_run(*_serve_args(tmp_path), env={"IVR_ADMIN": f"127.0.0.1:{port}"})
    assert done.returncode == 2
    assert done.stderr == (
        f"ivr: cannot listen on 127.0.0.1:{port} for the admin listener: address already in "
        "use (set IVR_ADMIN or --admin)\n"
    )


def test_serve_with_a_bad_admin_flag(tmp_path):
    done = ivr_run("serve", "--data", str(tmp_path), "--admin", "9100")
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        "ivr serve: error: argument --admin: expected HOST:PORT (127.0.0.1:8081, [::1]:8081), "
        "got '9100'"
    )


def test_serve_with_a_model_that_is_not_there(tmp_path):
    done = ivr_run("serve", "--data", str(tmp_path), "--vosk-model", "ko-KR=/no/such/model")
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].startswith(
        "ivr serve: error: argument --vosk-model: /no/such/model: no such model directory"
    )
    done = ivr_run("serve", "--data", str(tmp_path), env={"IVR_VOSK_MODELS": "ko-KR=/no/such"})
    assert done.returncode == 2
    assert done.stderr.startswith("ivr: IVR_VOSK_MODELS: /no/such: no such model directory")


@pytest.mark.parametrize("as_directory", [True, False], ids=["directory", "file"])
def test_validate_checks_holiday_calendars(tmp_path: Path, as_directory: bool, capsys) -> None:
    (tmp_path / "calendars").mkdir()
    good, bad = tmp_path / "calendars" / "good.yaml", tmp_path / "calendars" / "bad.yaml"
    good.write_text('days: [{date: "12-25", name: Christmas Day}]\n')
    bad.write_text('days:\n  - {date: "13-01", name: x}\n')
    paths = [str(tmp_path)] if as_directory else [str(bad), str(good)]
    assert main(["validate", *paths]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{bad}:2:12: days[0].date: 13-01 is not a date (month must be in 1..12)",
        f"{good}: ok (calendar, 1 days)",
        "2 file(s): 1 error(s), 0 warning(s)",
    ]
