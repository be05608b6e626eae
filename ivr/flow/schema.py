"""Stage 2: check a loaded flow against the JSON Schema, as located, readable problems."""

from __future__ import annotations

import difflib
import json
from functools import cache
from importlib import resources
from typing import Any, cast

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from ivr.errors import Problem
from ivr.flow.loader import Document, Path

NODE_KINDS = (
    *("say", "menu", "ask", "http", "set", "branch"),
    *("transfer", "record", "callback", "message", "subflow", "end"),
)

_TYPE_NAMES = {
    "string": "text",
    "object": "a mapping",
    "array": "a list",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "nothing",
}


def packaged(name: str) -> dict[str, Any]:
    """A JSON Schema shipped as package data beside this module (for editors too)."""
    schema: dict[str, Any] = json.loads(
        resources.files("ivr.flow").joinpath(name).read_text("utf-8")
    )
    return schema


@cache
def flow_schema() -> dict[str, Any]:
    """The flow language's JSON Schema."""
    return packaged("schema.json")


@cache
def _validator() -> Draft202012Validator:
    """The schema made quick to check: $refs inlined (resolving them was half the time) and
    the node's exactly-one-kind `oneOf` left to `_kind_problem`, which also says it better."""
    schema = flow_schema()
    node = {k: v for k, v in schema["$defs"]["node"].items() if k != "oneOf"}
    return Draft202012Validator(_inline({**schema, "$defs": {**schema["$defs"], "node": node}}))


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    defs = schema["$defs"]

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            ref = value.get("$ref", "")
            if ref.startswith("#/$defs/"):
                target: Any = defs
                for part in ref.removeprefix("#/$defs/").split("/"):
                    target = target[part]
                return {**walk(target), **{k: walk(v) for k, v in value.items() if k != "$ref"}}
            return {k: walk(v) for k, v in value.items() if k != "$defs"}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    inlined: dict[str, Any] = walk(schema)
    return inlined


def check_schema(doc: Document) -> list[Problem]:
    """Every schema violation in `doc`, one problem each, in file order."""
    problems = violations(doc, _validator())
    nodes = doc.data.get("nodes") if isinstance(doc.data, dict) else None
    if isinstance(nodes, dict):
        for name, node in nodes.items():
            kind = _kind_problem(doc, ("nodes", name), node)
            if kind is not None:
                problems.append(kind)
    return sorted(problems, key=lambda p: (p.line, p.col))


def violations(doc: Document, validator: Draft202012Validator) -> list[Problem]:
    """Every violation of `validator`'s schema in `doc`, as located, readable problems."""
    return [_describe(doc, e) for e in validator.iter_errors(doc.data)]


def _kind_problem(doc: Document, path: Path, node: Any) -> Problem | None:
    """Node-kind errors read better as one sentence than as a oneOf dump."""
    if not isinstance(node, dict):
        return None
    kinds = [k for k in NODE_KINDS if k in node]
    if not kinds:
        unknown = [k for k in node if k not in ("next", "on_error", "resolves", "description")]
        hint = ""
        if unknown:
            close = difflib.get_close_matches(unknown[0], NODE_KINDS, 1)
            hint = f"; did you mean '{close[0]}' for '{unknown[0]}'?" if close else ""
        return doc.problem(path, f"a node needs one kind: {', '.join(NODE_KINDS)}{hint}")
    if len(kinds) > 1:
        return doc.problem(
            path,
            f"a node has exactly one kind, found {' and '.join(kinds)} "
            "(split it into two nodes linked by next)",
        )
    return None


_PREFERRED = ("additionalProperties", "enum", "pattern", "required")


def _deepest(error: ValidationError) -> ValidationError:
    """Within oneOf/anyOf, the sub-error that got furthest into the document."""
    while error.context:
        longest = max(len(e.absolute_path) for e in error.context)
        candidates = [e for e in error.context if len(e.absolute_path) == longest]
        if longest == len(error.absolute_path) and all(
            e.validator in ("type", "const", "required") for e in candidates
        ):
            return error  # no branch fits at all: the oneOf itself says it best
        # a type mismatch on another branch says little; prefer what a near branch complained of
        candidates.sort(
            key=lambda e: _PREFERRED.index(e.validator) if e.validator in _PREFERRED else 9
        )
        error = candidates[0]
    return error


def _describe(doc: Document, error: ValidationError) -> Problem:
    path: Path = tuple(error.absolute_path)
    if error.validator == "oneOf" and len(path) == 2 and path[0] == "nodes":
        kind = _kind_problem(doc, path, error.instance)
        if kind:
            return kind
    error = _deepest(error)
    path = tuple(error.absolute_path)
    v, inst, sch = error.validator, error.instance, error.schema
    if v == "additionalProperties" and isinstance(inst, dict):
        allowed = sorted(sch.get("properties", {}) if isinstance(sch, dict) else {})
        extra = [k for k in inst if k not in allowed]
        key = extra[0] if extra else "?"
        close = difflib.get_close_matches(key, allowed, 1)
        hint = f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(allowed)}"
        return doc.problem((*path, key), f"unknown key '{key}' ({hint})", key=True)
    if v == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else error.message
        return doc.problem(path, f"missing '{missing}'", key=True)
    if v == "type":
        return doc.problem(path, _type_message(inst, [error.validator_value]))
    if v in ("oneOf", "anyOf") and error.context:
        # no branch fits (say: 5): tell what would, not "not valid under any of the given schemas"
        here = [e for e in error.context if len(e.absolute_path) == len(path)]
        if here and all(e.validator == "type" or e.validator == "const" for e in here):
            types = list(dict.fromkeys(e.validator_value for e in here if e.validator == "type"))
            return doc.problem(path, _type_message(inst, types))
    if v == "enum":
        return doc.problem(
            path,
            f"{_show(inst)} is not allowed (use one of: "
            f"{', '.join(str(v) for v in cast(list[Any], error.validator_value))})",
        )
    if v == "pattern":
        about = sch.get("description", "") if isinstance(sch, dict) else ""
        return doc.problem(
            path, f"{_show(inst)} is not valid here" + (f" ({about})" if about else "")
        )
    if path == ("experiment", "split") and v == "minProperties":
        found = f"found {len(inst)}" if isinstance(inst, dict) else "found none"
        return doc.problem(
            path, f"an experiment splits calls between at least two flows (flow: weight), {found}"
        )
    if path[:2] == ("experiment", "split") and v == "minimum":
        return doc.problem(
            path,
            f"a weight is a whole number above 0, got {_show(inst)} "
            "(to give a variant no calls, take it out of the split)",
        )
    if v in ("minProperties", "minItems") and not inst:
        return doc.problem(path, "must not be empty")
    if v == "oneOf" and len(path) == 2 and path[0] == "nodes":
        kind = _kind_problem(doc, path, inst)
        if kind:
            return kind
    if v == "oneOf" and isinstance(inst, dict) and "goto" in inst and "repeat" in inst:
        return doc.problem(path, "an option has either goto or repeat, not both")
    if v == "oneOf" and isinstance(inst, dict) and not ({"goto", "repeat"} & inst.keys()):
        if path and "options" in path or (path and path[0] == "global"):
            return doc.problem(path, "an option needs 'goto: NODE' (or 'repeat: true')", key=True)
    if (
        v == "anyOf"
        and isinstance(inst, dict)
        and path
        and ("options" in path or path[0] == "global")
    ):
        return doc.problem(
            path, "an option needs a key ('dtmf: \"1\"') or phrases ('speech: [...]')", key=True
        )
    return doc.problem(path, error.message)


def _type_message(inst: Any, types: list[Any]) -> str:
    wants = [w for t in types for w in ([t] if isinstance(t, str) else t)]
    msg = f"expected {' or '.join(_TYPE_NAMES.get(w, w) for w in wants)}, got {_show(inst)}"
    if "string" in wants and isinstance(inst, int | float | bool):
        quoted = "" if isinstance(inst, bool) else f': "{inst}"'
        msg += f" (write it in quotes{quoted})"
    return msg


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "nothing" if value is None else str(value)
