"""What a template may cost: every render is bounded, so no template can stall the event loop.

Pure-Python Jinja cannot be pre-empted, and the sandbox stops escapes, not cost: a 10^8
loop, `10**100000000`, `'a' * 10**9` or `'a'|center(10**9)` each ran for seconds to
minutes, freezing every call. Here each operation that can grow without bound is
checked before it runs, against limits a prompt, URL or JSON body never comes near:
- `*`, `**`, `%`, `+` and `~` (intercepted by the sandbox) and the string methods and
  filters that pad, repeat or replace (`center`, `ljust`, `zfill`, `indent`, `replace`,
  `format`, `batch`, `slice`, ...) may not make a value over `MAX_SIZE`;
- `range()` gives at most `MAX_RANGE` numbers, and all `for` loops of one render take at
  most `MAX_ITERATIONS` steps together (nested loops multiply);
- a render's output is at most `MAX_SIZE` characters;
- `lipsum`, `cycler`, `joiner` and `namespace` are gone (a namespace is how a loop would
  grow a value from one step to the next).
A template over a limit raises `TemplateCost`: at compile time where its operands are
constants (`ivr validate` reports it at its place), at run time where they are not (the
call fails the flow's way). Every check is O(1) or linear in what was already built.
"""

from __future__ import annotations

import contextvars
import math
import operator
import re
import string
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import SecurityError

MAX_SIZE = 64 * 1024  # characters (or items) in any value a template makes, and its output
MAX_RANGE = 1000  # numbers one range() gives
MAX_ITERATIONS = 10_000  # loop steps in one render
MAX_POWER_BITS = 4096  # an int power's size: 10**1233 and less
MAX_WIDTH = 1000  # a padding width in a format spec ("%1000d", "{:>1000}")
GONE = ("lipsum", "cycler", "joiner", "namespace")
BINOPS = frozenset({"*", "**", "%", "+"})  # those the sandbox hands to `binop`

_steps: contextvars.ContextVar[list[int]] = contextvars.ContextVar("template_steps")
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_NUMBERS = re.compile(r"\d+")


class TemplateCost(SecurityError):
    """A template would compute or make more than the limits allow."""


def binop(operator: str, left: Any, right: Any) -> Any:
    """`left <operator> right`, refused before it runs when it would be too big."""
    check_binop(operator, left, right)
    return sized(_OPERATORS[operator](left, right))


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Whether `left <operator> right` stays within the limits, without computing it."""
    if operator == "*":
        for seq, n in ((left, right), (right, left)):
            if isinstance(n, int) and isinstance(seq, str | bytes | list | tuple):
                _size(len(seq) * max(n, 0))
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
            if right * math.log2(abs(left)) > MAX_POWER_BITS:
                raise TemplateCost(f"{left} ** {right} is too big a number")
    elif operator == "%" and isinstance(left, str):
        _percent_spec(left)


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "*": operator.mul,
    "**": operator.pow,
    "%": operator.mod,
    "+": operator.add,
}


def sized(value: Any) -> Any:
    """`value`, refused when it is over `MAX_SIZE` long (`~` and `+` results, output)."""
    if isinstance(value, Sized) and not isinstance(value, dict):
        _size(len(value))
    return value


def _size(n: int) -> None:
    if n > MAX_SIZE:
        raise TemplateCost(f"a value of {n} characters or items (at most {MAX_SIZE})")


def _width(n: Any, what: str) -> None:
    if isinstance(n, int) and n > MAX_WIDTH:
        raise TemplateCost(f"{what} of {n} (at most {MAX_WIDTH})")


def _percent_spec(fmt: str) -> None:
    for m in _PERCENT_SPEC.finditer(fmt):
        for part in m.groups():
            if part == "*":
                raise TemplateCost("a '*' width in a % format")
            if part:
                _width(int(part), "a % format width")


def _brace_spec(fmt: str) -> None:
    """The widths in a str.format string; a nested `{}` in a spec is refused (its width
    would come from a value)."""
    for _, _, spec, _ in string.Formatter().parse(fmt):
        if spec and "{" in spec:
            raise TemplateCost("a format spec taken from a value")
        for number in _NUMBERS.findall(spec or ""):
            _width(int(number), "a format width")


def bounded_range(*args: int) -> range:
    """range(), at most `MAX_RANGE` numbers."""
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise TemplateCost(f"range of {len(numbers)} numbers (at most {MAX_RANGE})")
    return numbers


def loop(items: Iterable[Any]) -> Iterator[Any]:
    """A `for` loop's items, each a step of the render's `MAX_ITERATIONS`."""
    steps = _steps.get(None)
    for item in items:
        if steps is not None:
            steps[0] += 1
            if steps[0] > MAX_ITERATIONS:
                raise TemplateCost(f"more than {MAX_ITERATIONS} loop steps in one render")
        yield item


def counting(render: Callable[..., Any]) -> Callable[..., Any]:
    """`render` with its own loop budget (renders nest: a template calls no other, but
    a budget per call keeps them apart all the same)."""

    def counted(*args: Any) -> Any:
        token = _steps.set([0])
        try:
            return render(*args)
        finally:
            _steps.reset(token)

    return counted


def joined(pieces: Iterable[Any]) -> str:
    """A render's output, refused once it passes `MAX_SIZE` (while it is made)."""
    out: list[str] = []
    total = 0
    for piece in pieces:
        text = str(piece)
        total += len(text)
        _size(total)
        out.append(text)
    return "".join(out)


# -- filters and str methods that pad, repeat or replace ------------------------------------


def _check_padding(value: str, width: Any = 8, *rest: Any) -> None:
    if isinstance(width, int):
        _size(width * max(value.count("\t"), 1) + len(value))


def _check_replace(value: str, old: Any, new: Any, count: Any = -1) -> None:
    if isinstance(old, str) and isinstance(new, str):
        times = value.count(old) if old else len(value) + 1
        if isinstance(count, int) and count >= 0:
            times = min(times, count)
        _size(len(value) + times * max(len(new) - len(old), 0))


# str methods that can grow a value (a width, or a replacement), and their checks
STR_METHODS: dict[str, Callable[..., None]] = {
    **dict.fromkeys(("center", "ljust", "rjust", "zfill", "expandtabs"), _check_padding),
    "replace": _check_replace,
}


def bounded_filters(filters: dict[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """Jinja's filters that can grow a value, checked first (the others only shrink it
    or keep it, or come to a limit above through `*`, `~` or the output)."""
    center, indent, batch, slice_, fmt, wordwrap = (
        filters[name] for name in ("center", "indent", "batch", "slice", "format", "wordwrap")
    )
    do_replace = filters["replace"]

    def center_(value: Any, width: int = 80) -> Any:
        _size(width if isinstance(width, int) else 0)
        return center(value, width)

    def indent_(s: Any, width: Any = 4, *rest: Any, **kw: Any) -> Any:
        size = len(str(s)) * (width if isinstance(width, int) else len(str(width)) + 1)
        _size(size)
        return indent(s, width, *rest, **kw)

    def batch_(value: Any, linecount: int, fill_with: Any = None) -> Any:
        if fill_with is not None:  # a last batch filled up to `linecount`
            _width(linecount, "a batch")
        return batch(value, linecount, fill_with)

    def slice_batch(value: Any, slices: int, fill_with: Any = None) -> Any:
        _width(slices, "a slice count")
        return slice_(value, slices, fill_with)

    def format_(value: Any, *args: Any, **kwargs: Any) -> Any:
        _percent_spec(str(value))
        return sized(fmt(value, *args, **kwargs))

    def wordwrap_(*args: Any, **kwargs: Any) -> Any:
        return sized(wordwrap(*args, **kwargs))

    def replace_(eval_ctx: Any, s: Any, old: Any, new: Any, count: Any = None) -> Any:
        _check_replace(str(s), str(old), str(new), -1 if count is None else count)
        return do_replace(eval_ctx, s, old, new, count)

    replace_.jinja_pass_arg = do_replace.jinja_pass_arg  # type: ignore[attr-defined]
    wordwrap_.jinja_pass_arg = wordwrap.jinja_pass_arg  # type: ignore[attr-defined]
    return {
        "center": center_,
        "indent": indent_,
        "batch": batch_,
        "slice": slice_batch,
        "format": format_,
        "wordwrap": wordwrap_,
        "replace": replace_,
    }


def str_method(value: str, attribute: str) -> Callable[..., Any] | None:
    """A bounded stand-in for `value.<attribute>`, when that method can grow a value."""
    if attribute in ("format", "format_map"):
        _brace_spec(value)
    if attribute not in STR_METHODS:
        return None
    check, method = STR_METHODS[attribute], getattr(value, attribute)

    def bounded(*args: Any) -> Any:
        check(value, *args)
        return method(*args)

    return bounded


# -- the template's tree --------------------------------------------------------------------


def bounded_tree(tree: nodes.Template) -> nodes.Template:
    """`tree` with each `for` loop's items counted (`loop`) and each `~` checked
    (`sized`): the names are globals of the environment (`GLOBALS`)."""
    for node in list(tree.find_all(nodes.For)):
        node.iter = _call("_ivr_loop", node.iter)  # type: ignore[arg-type]
    for parent in list(tree.find_all(nodes.Node)):  # listed first: wrapping adds nodes
        for field in parent.fields:
            value = getattr(parent, field, None)
            if isinstance(value, nodes.Concat):
                setattr(parent, field, _call("_ivr_sized", value))
            elif isinstance(value, list):
                value[:] = [
                    _call("_ivr_sized", v) if isinstance(v, nodes.Concat) else v for v in value
                ]
    return tree


def _call(name: str, arg: nodes.Expr) -> nodes.Call:
    call = nodes.Call(nodes.Name(name, "load"), [arg], [], None, None)
    call.set_lineno(arg.lineno)
    return call


GLOBALS = {"_ivr_loop": loop, "_ivr_sized": sized, "range": bounded_range}


def constant_costs(tree: nodes.Node, eval_ctx: nodes.EvalContext) -> list[str]:
    """What `tree` is sure to exceed, from its constants alone (for `ivr validate`)."""
    found: list[str] = []

    def const(node: nodes.Expr) -> Any:
        """The constant `node` stands for, with the sandbox's operators applied the
        bounded way (Jinja folds no intercepted operator); else _UNKNOWN."""
        if isinstance(node, nodes.BinExpr) and node.operator in BINOPS:
            left, right = const(node.left), const(node.right)
            if left is _UNKNOWN or right is _UNKNOWN:
                return _UNKNOWN
            return binop(node.operator, left, right)  # over a limit: TemplateCost
        try:
            return node.as_const(eval_ctx)
        except Exception:  # nodes.Impossible, or an error the run would raise too
            return _UNKNOWN

    for node in tree.find_all((nodes.BinExpr, nodes.Call, nodes.Filter)):
        try:
            if isinstance(node, nodes.BinExpr):
                const(node)
            elif isinstance(node, nodes.Call) and not node.kwargs:
                args = [const(a) for a in node.args]
                if _UNKNOWN in args:
                    continue
                if isinstance(node.node, nodes.Name) and node.node.name == "range":
                    bounded_range(*args)
                elif isinstance(node.node, nodes.Getattr):
                    owner = const(node.node.node)
                    if isinstance(owner, str) and node.node.attr in STR_METHODS:
                        STR_METHODS[node.node.attr](owner, *args)
                    elif isinstance(owner, str) and node.node.attr in ("format", "format_map"):
                        _brace_spec(owner)
            elif isinstance(node, nodes.Filter) and node.args and not node.kwargs:
                args = [const(a) for a in node.args]
                if node.name in ("center", "indent") and isinstance(args[0], int):
                    _size(args[0])
                elif node.name == "slice" and isinstance(args[0], int):
                    _width(args[0], "a slice count")
        except TemplateCost as e:
            found.append(str(e))
        except Exception:  # not a cost: the run says what is wrong with it
            continue
    return found


_UNKNOWN = object()
