"""Experiments in the flow language: the schema's located errors, the compiled split, the
variant a caller gets (stable, weighted), and the checks across flows."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from scipy import stats

from ivr.errors import FlowError
from ivr.flow import load_flow, parse_and_compile
from ivr.flow.experiment import choose, conflict_problems, conflicts
from ivr.flow.model import Experiment
from ivr.keys import Keys

END = "nodes:\n  bye:\n    end: {say: Goodbye.}\n"


def flow_text(flow_id: str, experiment: str = "") -> str:
    return f"flow: {flow_id}\nstart: bye\n{experiment}{END}"


def problems(experiment: str) -> list[str]:
    with pytest.raises(FlowError) as e:
        parse_and_compile(flow_text("a", experiment), "a.yaml", {})
    return [str(p) for p in e.value.problems]


# -- the language --------------------------------------------------------------------------------


def test_the_split_compiles_in_flow_id_order():
    flow = parse_and_compile(
        flow_text("a", "experiment: {name: voice_vs_dtmf, split: {b: 30, a: 70}}\n"), "a.yaml", {}
    )
    assert flow.experiment == Experiment("voice_vs_dtmf", (("a", 70), ("b", 30)))
    assert flow.experiment.variants == ("a", "b") and flow.experiment.total == 100


def test_a_flow_without_an_experiment_has_none():
    assert parse_and_compile(flow_text("a"), "a.yaml", {}).experiment is None


@pytest.mark.parametrize(
    "experiment, expected",
    [
        (
            "experiment: {name: voice vs dtmf, split: {a: 1, b: 1}}\n",
            "a.yaml:3:20: experiment.name: 'voice vs dtmf' is not valid here (The experiment's "
            "name: letters, digits, '_' and '-', not starting with a digit.",
        ),
        (
            "experiment: {name: x, split: {a: 1}}\n",
            "a.yaml:3:30: experiment.split: an experiment splits calls between at least two "
            "flows (flow: weight), found 1",
        ),
        (
            "experiment: {name: x, split: {}}\n",
            "a.yaml:3:30: experiment.split: an experiment splits calls between at least two "
            "flows (flow: weight), found 0",
        ),
        (
            "experiment:\n  name: x\n  split:\n    a: 50\n    b: 0\n",
            "a.yaml:7:8: experiment.split.b: a weight is a whole number above 0, got 0 "
            "(to give a variant no calls, take it out of the split)",
        ),
        (
            "experiment: {name: x, split: {a: 50, b: 12.5}}\n",
            "a.yaml:3:41: experiment.split.b: expected a whole number, got 12.5",
        ),
        (
            "experiment: {name: x}\n",
            "a.yaml:3:1: experiment: missing 'split'",
        ),
    ],
    ids=["name", "one variant", "no variant", "zero weight", "fraction", "no split"],
)
def test_schema_errors_are_located(experiment, expected):
    (found,) = problems(experiment)
    assert found.startswith(expected)


# -- the variant a caller gets -------------------------------------------------------------------

FIXED = Keys(b"a fixed customer key for these tests", b"unused")  # the split is reproducible
CALLERS = [f"+1555{n:07d}" for n in range(20_000)]


def split(experiment: Experiment, keys: Keys = FIXED) -> Counter[str]:
    return Counter(choose(experiment, keys.customer_id(c) or "") for c in CALLERS)


@pytest.mark.parametrize("weights", [(50, 50), (70, 30), (1, 1, 2)], ids=str)
def test_the_split_follows_the_weights(weights):
    """A chi-square goodness-of-fit test of 20,000 callers' variants against the weights.
    The callers and the key are fixed, so the outcome is too; alpha 0.001 is generous."""
    names = [f"v{i}" for i in range(len(weights))]
    experiment = Experiment("voice_vs_dtmf", tuple(zip(names, weights, strict=True)))
    seen = split(experiment)
    observed = [seen[n] for n in names]
    expected = [len(CALLERS) * w / sum(weights) for w in weights]
    assert sum(observed) == len(CALLERS)
    assert stats.chisquare(observed, expected).pvalue > 0.001, (observed, expected)
    for got, wanted in zip(observed, expected, strict=True):  # and within 2% of the share
        assert abs(got - wanted) < 0.02 * len(CALLERS)


def test_a_caller_keeps_a_variant_across_calls_and_processes(tmp_path: Path):
    """Keys loaded twice from one data directory (two processes, or a restart) give every
    caller the same variant; other keys give another split."""
    experiment = Experiment("voice_vs_dtmf", (("telebanking", 50), ("telebanking_voice", 50)))
    first, again = Keys.load(tmp_path, env={}), Keys.load(tmp_path, env={})
    picks = [choose(experiment, first.customer_id(c) or "") for c in CALLERS[:2000]]
    assert picks == [choose(experiment, again.customer_id(c) or "") for c in CALLERS[:2000]]
    assert picks == [choose(experiment, first.customer_id(c) or "") for c in CALLERS[:2000]]
    other = Keys.for_tests()
    assert picks != [choose(experiment, other.customer_id(c) or "") for c in CALLERS[:2000]]


def test_two_experiments_split_the_same_callers_independently():
    one = Experiment("voice_vs_dtmf", (("a", 1), ("b", 1)))
    two = Experiment("short_greeting", (("a", 1), ("b", 1)))
    ids = [FIXED.customer_id(c) or "" for c in CALLERS]
    same = sum(choose(one, i) == choose(two, i) for i in ids)
    assert abs(same - len(ids) / 2) < 0.02 * len(ids)  # about half agree, not all


def test_changing_one_weight_moves_only_the_callers_it_must():
    """50/50 -> 70/30: callers of the growing variant stay; only some of the other move."""
    before = Experiment("x", (("a", 50), ("b", 50)))
    after = Experiment("x", (("a", 70), ("b", 30)))
    ids = [FIXED.customer_id(c) or "" for c in CALLERS]
    assert all(choose(after, i) == "a" for i in ids if choose(before, i) == "a")


# -- across flows --------------------------------------------------------------------------------


def write(directory: Path, flow_id: str, experiment: str = "") -> Path:
    path = directory / f"{flow_id}.yaml"
    path.write_text(flow_text(flow_id, experiment))
    return path


SPLIT = "experiment:\n  name: voice_vs_dtmf\n  split:\n    bank: 50\n    bank_voice: 50\n"


def test_a_variant_that_is_not_a_flow_is_located_at_its_name(tmp_path: Path):
    bank = load_flow(write(tmp_path, "bank", SPLIT))
    other = load_flow(write(tmp_path, "bank_vocie"))
    found = conflict_problems(bank, conflicts(bank, {"bank": bank, "bank_vocie": other}))
    assert [str(p) for p in found] == [
        f"{tmp_path / 'bank.yaml'}:7:5: experiment.split.bank_voice: variant 'bank_voice' is "
        "not a flow served here (no flow file beside this one has 'flow: bank_voice', or it "
        "has errors); did you mean 'bank_vocie'?"
    ]


def test_the_flow_itself_may_be_a_variant(tmp_path: Path):
    bank = load_flow(write(tmp_path, "bank", SPLIT))
    voice = load_flow(write(tmp_path, "bank_voice"))
    assert conflicts(bank, {"bank_voice": voice}) == []


def test_a_variant_may_not_split_again(tmp_path: Path):
    bank = load_flow(write(tmp_path, "bank", SPLIT))
    chained = "experiment: {name: greeting, split: {bank_voice: 1, bank_short: 1}}\n"
    voice = load_flow(write(tmp_path, "bank_voice", chained))
    flows = {
        "bank": bank,
        "bank_voice": voice,
        "bank_short": load_flow(write(tmp_path, "bank_short")),
    }
    (at_variant,) = conflict_problems(bank, conflicts(bank, flows))
    assert str(at_variant).startswith(
        f"{tmp_path / 'bank.yaml'}:7:5: experiment.split.bank_voice: variant 'bank_voice' runs "
        f"an experiment of its own ('greeting', {tmp_path / 'bank_voice.yaml'})"
    )
    # and the variant's side, for a reload that adds an experiment to a variant
    (at_experiment,) = conflict_problems(voice, conflicts(voice, flows))
    assert str(at_experiment).startswith(
        f"{tmp_path / 'bank_voice.yaml'}:3:1: experiment: this flow is a variant of experiment "
        f"'voice_vs_dtmf' in flow 'bank' ({tmp_path / 'bank.yaml'})"
    )
    assert conflicts(voice, flows, as_variant=False) == []  # `ivr validate` says it once
