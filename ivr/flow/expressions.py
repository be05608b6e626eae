"""The common subset of Jinja2 expressions as plain Python closures, with Jinja's meaning.

Conditions run on most turns, and Jinja spends ~10 µs building a context for
each; names, constants, attribute and item access (through the sandbox),
comparisons, boolean logic, arithmetic, this project's plain filters and calls
of functions from the context compile here instead. Anything else returns None
and runs in Jinja.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

Fn = Callable[[Mapping[str, Any]], Any]

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "lteq": operator.le,
    "gt": operator.gt,
    "gteq": operator.ge,
    "in": lambda a, b: a in b,
    "notin": lambda a, b: a not in b,
}
_ARITH: dict[type[nodes.Node], Callable[[Any, Any], Any]] = {
    nodes.Add: operator.add,
    nodes.Sub: operator.sub,
    nodes.Mul: operator.mul,
    nodes.Div: operator.truediv,
    nodes.FloorDiv: operator.floordiv,
    nodes.Mod: operator.mod,
}


class _Unsupported(Exception):
    pass


def compile_fast(
    tree: nodes.Node, env: SandboxedEnvironment, plain_filters: frozenset[str]
) -> Fn | None:
    """A closure evaluating `tree` like Jinja would, or None when it uses more than the subset."""
    try:
        return _Compiler(env, plain_filters).expr(tree)
    except _Unsupported:
        return None


class _Compiler:
    def __init__(self, env: SandboxedEnvironment, plain_filters: frozenset[str]) -> None:
        self.env, self.plain = env, plain_filters

    def expr(self, node: nodes.Node) -> Fn:
        method = getattr(self, f"c_{type(node).__name__}", None)
        if method is None:
            raise _Unsupported(type(node).__name__)
        fn: Fn = method(node)
        return fn

    def c_Name(self, node: nodes.Name) -> Fn:
        name, undefined = node.name, self.env.undefined

        def load(ctx: Mapping[str, Any]) -> Any:
            value = ctx.get(name, _MISSING)
            return undefined(name=name) if value is _MISSING else value

        return load

    def c_Const(self, node: nodes.Const) -> Fn:
        value = node.value
        return lambda ctx: value

    def c_List(self, node: nodes.List) -> Fn:
        items = [self.expr(i) for i in node.items]
        return lambda ctx: [i(ctx) for i in items]

    c_Tuple = c_List

    def c_Getattr(self, node: nodes.Getattr) -> Fn:
        obj, attr, getattr_ = self.expr(node.node), node.attr, self.env.getattr  # sandboxed
        return lambda ctx: getattr_(obj(ctx), attr)

    def c_Getitem(self, node: nodes.Getitem) -> Fn:
        obj, arg, getitem = self.expr(node.node), self.expr(node.arg), self.env.getitem
        return lambda ctx: getitem(obj(ctx), arg(ctx))

    def c_Compare(self, node: nodes.Compare) -> Fn:
        first = self.expr(node.expr)
        ops = [(_COMPARE[o.op], self.expr(o.expr)) for o in node.ops]

        def compare(ctx: Mapping[str, Any]) -> Any:
            left = first(ctx)
            for op, right_fn in ops:
                right = right_fn(ctx)
                if not op(left, right):
                    return False
                left = right
            return True

        return compare

    def c_And(self, node: nodes.And) -> Fn:
        left, right = self.expr(node.left), self.expr(node.right)
        return lambda ctx: left(ctx) and right(ctx)

    def c_Or(self, node: nodes.Or) -> Fn:
        left, right = self.expr(node.left), self.expr(node.right)
        return lambda ctx: left(ctx) or right(ctx)

    def c_Not(self, node: nodes.Not) -> Fn:
        inner = self.expr(node.node)
        return lambda ctx: not inner(ctx)

    def c_Neg(self, node: nodes.Neg) -> Fn:
        inner = self.expr(node.node)
        return lambda ctx: -inner(ctx)

    def _binary(self, node: nodes.BinExpr) -> Fn:
        op, left, right = _ARITH[type(node)], self.expr(node.left), self.expr(node.right)
        return lambda ctx: op(left(ctx), right(ctx))

    c_Add = c_Sub = c_Mul = c_Div = c_FloorDiv = c_Mod = _binary

    def c_Filter(self, node: nodes.Filter) -> Fn:
        if node.name not in self.plain or node.kwargs or node.dyn_args or node.dyn_kwargs:
            raise _Unsupported(node.name)
        if node.node is None:
            raise _Unsupported("filter block")
        fn, value = self.env.filters[node.name], self.expr(node.node)
        args = [self.expr(a) for a in node.args]
        return lambda ctx: fn(value(ctx), *(a(ctx) for a in args))

    def c_Call(self, node: nodes.Call) -> Fn:
        # only functions the engine puts in the context, like open('support')
        if not isinstance(node.node, nodes.Name) or node.kwargs or node.dyn_args or node.dyn_kwargs:
            raise _Unsupported("call")
        name, args = node.node.name, [self.expr(a) for a in node.args]
        if name in self.env.globals:
            raise _Unsupported("jinja global")

        def call(ctx: Mapping[str, Any]) -> Any:
            fn = ctx.get(name)
            if fn is None or not callable(fn):
                return self.env.undefined(name=name)()  # Jinja raises the same way
            return fn(*(a(ctx) for a in args))

        return call


_MISSING = object()
