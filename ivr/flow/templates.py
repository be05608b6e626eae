"""Jinja2 in a sandbox: spoken text templates and conditions, compiled once per flow."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from jinja2 import ChainableUndefined, TemplateSyntaxError, Undefined, nodes
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ivr.flow import limits
from ivr.flow.expressions import Fn, compile_fast
from ivr.flow.model import Render
from ivr.flow.spoken import DEFAULT_LANGUAGE, spoken_filters


def luhn(value: Any) -> bool:
    """Whether a digit string passes the Luhn check (card and account numbers)."""
    digits = str(value)
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def spell(value: Any) -> str:
    """ "1234" -> "1 2 3 4", so text-to-speech reads digits one by one."""
    return " ".join(str(value).replace(" ", ""))


def last(value: Any, n: int = 4) -> str:
    """The last n characters, e.g. the end of a card number."""
    return str(value)[-n:]


def written(value: Any, *_: Any) -> str:
    """`spell` and `digits` in text: "123456" reads well written as it is."""
    return str(value)


@lru_cache(maxsize=64)
def environment(
    language: str = DEFAULT_LANGUAGE, currency: str | None = None, text: bool = False
) -> ImmutableSandboxedEnvironment:
    """The sandbox a flow's templates run in: the spoken filters (`currency`, `number`,
    `date`, `time`, `digits`) bound to its language and currency, so they stay plain
    one-argument filters that compile to closures. ValueError for an unknown language.
    `text`: for text channels, where `spell` and `digits` leave a value as written."""
    # immutable: an expression like `items.append(x)` would change the previous session's
    # values and the flow's `vars`, which every call shares
    env = _Bounded(undefined=ChainableUndefined, autoescape=False, keep_trailing_newline=False)
    env.filters.update(luhn=luhn, spell=spell, last=last, **spoken_filters(language, currency))
    if text:
        env.filters.update(spell=written, digits=written)
    return env


class _Bounded(ImmutableSandboxedEnvironment):
    """The sandbox with costs bounded (`ivr.flow.limits`): no template stalls a call."""

    intercepted_binops = limits.BINOPS

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        for name in limits.GONE:
            self.globals.pop(name, None)
        self.globals.update(limits.GLOBALS)
        self.filters.update(limits.bounded_filters(self.filters))

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        return limits.binop(operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        bounded = limits.str_method(obj, attribute) if isinstance(obj, str) else None
        return bounded or super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, str) and isinstance(argument, str):
            bounded = limits.str_method(obj, argument)
            if bounded:
                return bounded
        return super().getitem(obj, argument)

    def _generate(self, source: nodes.Template, *args: Any, **kwargs: Any) -> str:
        return super()._generate(limits.bounded_tree(source), *args, **kwargs)  # type: ignore[no-any-return]


# what a URL's written text keeps as it is: its reserved characters and the %XX of values
URL_TEXT = ":/?#[]@!$&'()*+,;=%~"

ENV = environment()  # en-US's; every environment parses alike

# names every flow may read: the engine's and Jinja's globals
BUILTINS = frozenset(
    {"caller", "called", "call_id", "last_option", "open", "now", "flow_id", "language"}
    | {"closed_message", "history", "answered_by"}
    | {"reason", "http_error", *ENV.globals}
)


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


@lru_cache(maxsize=8192)
def _parse(source: str, expression: bool) -> nodes.Template | nodes.Expr | str:
    """The syntax tree of a template (or expression), or Jinja2's message for its syntax error."""
    try:
        if expression:
            parser = Parser(ENV, source, state="variable")
            tree = parser.parse_expression()
            if not parser.stream.eos:
                raise TemplateSyntaxError("unexpected text after the expression", 1)
            return tree
        return ENV.parse(source)
    except TemplateSyntaxError as e:
        return str(e.message or e)
    except RecursionError:  # Jinja parses recursively: a hundred nested brackets are enough
        return "nested too deeply"


def names_used(source: str, expression: bool = False) -> frozenset[str]:
    """The variables a template (or expression) reads."""
    tree = _parse(source, expression)
    if isinstance(tree, str):
        return frozenset()
    loads: set[str] = set()
    stores: set[str] = set()
    for name in tree.find_all(nodes.Name):
        (stores if name.ctx in ("store", "param") else loads).add(name.name)
    return frozenset(loads - stores - {"loop"})


def check_syntax(source: str, expression: bool = False) -> str | None:
    """None if `source` parses and its constants stay within the limits, else Jinja2's
    message (or the limit it is sure to pass)."""
    tree = _parse(source, expression)
    if isinstance(tree, str):
        return tree
    costs = limits.constant_costs(tree, nodes.EvalContext(ENV))
    return f"too costly: {costs[0]}" if costs else None


@lru_cache(maxsize=8192)
def compile_template(
    source: str, language: str = DEFAULT_LANGUAGE, currency: str | None = None, text: bool = False
) -> Render:
    """A callable rendering `source` with a context (compiled on first use), its values
    spoken in `language` (amounts in `currency`, default: the language's country's);
    `text`: written for a text channel (`environment`)."""
    env = environment(language, currency, text)
    tree = _parse(source, False)
    fast = _fast_template(tree, env) if isinstance(tree, nodes.Template) else None
    return fast or _lazy(lambda: _jinja_template(source, env))


def compile_url(
    source: str, language: str = DEFAULT_LANGUAGE, currency: str | None = None
) -> Render:
    """An `http` node's URL: every value a `{{ }}` puts in is percent-encoded whole, as one
    path segment or query value (so "../../admin?all=1" said by a caller stays inside its
    segment), and the text as written is kept a URL (spaces and non-ASCII encoded)."""
    env = environment(language, currency).overlay(finalize=_url_value)
    render = _lazy(lambda: _jinja_template(source, env))
    return lambda ctx: quote(render(ctx), safe=URL_TEXT)


def _url_value(value: Any) -> str:
    text = "" if value is None or isinstance(value, Undefined) else str(value)
    if text in (".", ".."):  # a dot segment would climb the path once normalised
        return text.replace(".", "%2E")
    return quote(text, safe="")


@lru_cache(maxsize=8192)
def compile_expression(
    source: str, language: str = DEFAULT_LANGUAGE, currency: str | None = None
) -> Render:
    """A callable evaluating the expression `source` (compiled on first use), its filters
    those of `language` as in `compile_template`."""
    env = environment(language, currency)
    tree = _parse(source, True)
    fast = compile_fast(tree, env) if isinstance(tree, nodes.Expr) else None
    return _defined(fast) if fast else _lazy(lambda: _jinja_expression(source, env))


def _defined(fn: Render) -> Render:
    """Conditions and `set` values see None, not Jinja's Undefined, for a missing value."""

    def evaluate(ctx: Mapping[str, Any]) -> Any:
        value = fn(ctx)
        return None if isinstance(value, Undefined) else value

    return evaluate


def constant(value: Any) -> Render:
    """A Render that returns `value` (for non-string values of `set`)."""
    return lambda ctx: value


def _lazy(build: Callable[[], Render]) -> Render:
    """Jinja's code generation costs ~0.5 ms a template: pay it for templates that run."""
    compiled: list[Render] = []

    def render(ctx: Mapping[str, Any]) -> Any:
        if not compiled:
            compiled.append(build())
        return compiled[0](ctx)

    return render


# Jinja's render() copies its globals into a new dict for every call; templates here
# get a context over one dict (`shared=True`) made of the globals and the variables.


def _jinja_template(source: str, env: ImmutableSandboxedEnvironment) -> Render:
    template = env.from_string(source)
    base, root = dict(template.globals), template.root_render_func

    @limits.counting
    def render(ctx: Mapping[str, Any]) -> str:
        return limits.joined(root(template.new_context({**base, **ctx}, shared=True)))

    return render


def _jinja_expression(source: str, env: ImmutableSandboxedEnvironment) -> Render:
    template = env.compile_expression(source, undefined_to_none=False)._template
    base, root = dict(template.globals), template.root_render_func

    def evaluate(ctx: Mapping[str, Any]) -> Any:
        context = template.new_context({**base, **ctx}, shared=True)
        for _ in root(context):
            pass
        value = context.vars["result"]
        return None if isinstance(value, Undefined) else value

    return evaluate


def _fast_template(tree: nodes.Template, env: ImmutableSandboxedEnvironment) -> Render | None:
    """Text and `{{ expression }}`s of the fast subset render without Jinja, to the same text:
    the text as Jinja's lexer left it, each expression's value through str()."""
    outputs = [node for node in tree.body if isinstance(node, nodes.Output)]
    if len(outputs) < len(tree.body):  # a statement: {% if %}, {% for %}, ...
        return None
    parts: list[str | Fn] = []
    eval_ctx = nodes.EvalContext(env)  # the one Jinja compiles a template in
    for child in (child for output in outputs for child in output.nodes):
        try:  # Jinja renders text, and expressions of constants, while it compiles
            parts.append(str(child.as_const(eval_ctx)))
        except Exception:
            fn = compile_fast(child, env)
            if fn is None:
                return None
            parts.append(fn)

    def render(ctx: Mapping[str, Any]) -> str:
        out = "".join([part if isinstance(part, str) else str(part(ctx)) for part in parts])
        return limits.sized(out)

    return render
