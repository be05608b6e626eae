"""The part of Jinja2's expression language that compiles to closures meaning what Jinja means.

Conditions and prompts run on most turns, and Jinja builds a context for every render.
Names, constants, attribute and item access, comparisons, boolean logic, arithmetic,
plain filters and calls compile here instead, through the same sandbox functions and the
same constant folding as Jinja's generated code. Anything else returns None and runs in
Jinja; tests/unit/flow/test_templates.py holds both to the same results.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import nodes
from jinja2.compiler import has_safe_repr
from jinja2.nodes import _binop_to_func, _cmpop_to_func, _uaop_to_func  # as as_const applies them
from jinja2.runtime import new_context
from jinja2.sandbox import SandboxedEnvironment

Fn = Callable[[Mapping[str, Any]], Any]

_SCALARS = (type(None), bool, int, float, str)
_MISSING = object()


class _Unsupported(Exception):
    pass


def compile_fast(tree: nodes.Expr, env: SandboxedEnvironment) -> Fn | None:
    """A closure evaluating `tree` as Jinja would, or None when it uses more than the subset."""
    try:
        return _Compiler(env).expr(tree)
    except _Unsupported:
        return None


def _writable(value: Any) -> bool:
    """Whether the Python source Jinja writes for a constant it folded means that constant:
    inf and nan become unknown names, and repr() refuses ints past sys.get_int_max_str_digits()."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        value = [*value.items()]
    if isinstance(value, list | tuple | set | frozenset):
        return all(map(_writable, value))
    try:
        repr(value)
    except ValueError:
        return False
    return True


def _takes_nothing(fn: Any) -> bool:
    """Whether Jinja calls `fn` with its arguments alone: neither `fn` nor its __call__ asks
    for the context, eval context or environment (the test of Jinja's Context.call)."""
    call = getattr(fn, "__call__", None)  # noqa: B004 (read as Context.call reads it)
    return all(getattr(f, "jinja_pass_arg", None) is None for f in (fn, call))


class _Compiler:
    def __init__(self, env: SandboxedEnvironment) -> None:
        self.env, self.eval_ctx = env, nodes.EvalContext(env)

    def expr(self, node: nodes.Expr) -> Fn:
        # Jinja's compiler folds what as_const can evaluate now and writes it as Python source:
        # the same constant here, or Jinja's way when that source does not mean the constant
        try:
            value = node.as_const(self.eval_ctx)
        except nodes.Impossible:
            value = _MISSING
        except Exception as e:  # Jinja's optimizer lets these out: its compilation fails
            raise _Unsupported(type(node).__name__) from e
        if value is not _MISSING and has_safe_repr(value):
            if not _writable(value):
                raise _Unsupported("a constant Jinja cannot write")
            if type(value) in _SCALARS:
                return lambda ctx: value
        method = getattr(self, f"c_{type(node).__name__}", None)
        if method is None:
            raise _Unsupported(type(node).__name__)
        return method(node)

    def c_Name(self, node: nodes.Name) -> Fn:
        # `self` is the template whatever the context says; a global shows when it lacks the name
        name, undefined = node.name, self.env.undefined
        if name == "self" or name in self.env.globals:
            raise _Unsupported(name)

        def load(ctx: Mapping[str, Any]) -> Any:
            value = ctx.get(name, _MISSING)
            return undefined(name=name) if value is _MISSING else value

        return load

    def _literal(self, node: nodes.List | nodes.Tuple) -> Fn:
        make = list if isinstance(node, nodes.List) else tuple
        items = [self.expr(i) for i in node.items]
        return lambda ctx: make([i(ctx) for i in items])

    c_List = c_Tuple = _literal

    def c_Getattr(self, node: nodes.Getattr) -> Fn:
        obj, attr, getattr_ = self.expr(node.node), node.attr, self.env.getattr
        undefined = self.env.undefined
        # Jinja tries attributes before items: a dict's keys/items/get/... are its methods;
        # other names are no attribute of a dict, so its item (the common case) is read
        # here without the AttributeError the sandbox's getattr costs
        item = not hasattr(dict, attr)

        def get(ctx: Mapping[str, Any]) -> Any:
            value = obj(ctx)
            if item and type(value) is dict:
                found = value.get(attr, _MISSING)
                return undefined(obj=value, name=attr) if found is _MISSING else found
            return getattr_(value, attr)

        return get

    def c_Getitem(self, node: nodes.Getitem) -> Fn:
        if isinstance(node.arg, nodes.Slice):  # Jinja slices without the sandbox
            raise _Unsupported("slice")
        obj, arg, getitem = self.expr(node.node), self.expr(node.arg), self.env.getitem
        return lambda ctx: getitem(obj(ctx), arg(ctx))

    def c_Compare(self, node: nodes.Compare) -> Fn:
        first = self.expr(node.expr)
        ops = [(_cmpop_to_func[o.op], self.expr(o.expr)) for o in node.ops]

        def compare(ctx: Mapping[str, Any]) -> Any:  # Python's chained comparison
            left = first(ctx)
            for op, right_fn in ops:
                right = right_fn(ctx)
                result = op(left, right)
                if not result:
                    return result
                left = right
            return result

        return compare

    def c_And(self, node: nodes.And) -> Fn:
        left, right = self.expr(node.left), self.expr(node.right)
        return lambda ctx: left(ctx) and right(ctx)

    def c_Or(self, node: nodes.Or) -> Fn:
        left, right = self.expr(node.left), self.expr(node.right)
        return lambda ctx: left(ctx) or right(ctx)

    def _unary(self, node: nodes.UnaryExpr) -> Fn:
        if node.operator in self.env.intercepted_unops:
            raise _Unsupported(node.operator)
        op, inner = _uaop_to_func[node.operator], self.expr(node.node)
        return lambda ctx: op(inner(ctx))

    def _binary(self, node: nodes.BinExpr) -> Fn:
        left, right, operator = self.expr(node.left), self.expr(node.right), node.operator
        if operator in self.env.intercepted_binops:  # as Jinja's code applies it (no context)
            call_binop = self.env.call_binop
            return lambda ctx: call_binop(None, operator, left(ctx), right(ctx))  # type: ignore[arg-type]
        op = _binop_to_func[operator]
        return lambda ctx: op(left(ctx), right(ctx))

    c_Neg = c_Pos = c_Not = _unary
    c_Add = c_Sub = c_Mul = c_Div = c_FloorDiv = c_Mod = c_Pow = _binary

    def c_Filter(self, node: nodes.Filter) -> Fn:
        fn = self.env.filters.get(node.name)
        # a filter that takes the environment or context needs Jinja's; a filter block has no node
        keywords = node.kwargs or node.dyn_args or node.dyn_kwargs
        if fn is None or not _takes_nothing(fn) or node.node is None or keywords:
            raise _Unsupported(node.name)
        value, args = self.expr(node.node), [self.expr(a) for a in node.args]
        return lambda ctx: fn(value(ctx), *[a(ctx) for a in args])

    def c_Call(self, node: nodes.Call) -> Fn:
        if node.kwargs or node.dyn_args or node.dyn_kwargs:
            raise _Unsupported("keyword arguments")
        callee, args, env = self.expr(node.node), [self.expr(a) for a in node.args], self.env
        # Jinja's own sandboxed call (unsafe callables refused, StopIteration made undefined);
        # a callable that asks for the context gets one like Jinja's render would make
        bare = new_context(env, None, {}, {}, True, env.globals)

        def call(ctx: Mapping[str, Any]) -> Any:
            fn, values, context = callee(ctx), [a(ctx) for a in args], bare
            if not _takes_nothing(fn):
                context = new_context(env, None, {}, {**env.globals, **ctx}, True, env.globals)
            return env.call(context, fn, *values)

        return call
