"""Instance specifications: frozen dataclasses whose repr rebuilds them.

Every claim instance is described by a spec registered here, so a verdict's ``reproduce`` field
(``DLNSpec(d=40, m=20, ...)``) can be pasted into ``invbounds reproduce CLAIM 'SPEC'`` or into a
Hypothesis ``@example``. Parsing accepts only literal keyword arguments of registered spec types.
"""

from __future__ import annotations

import ast
import dataclasses
from typing import Any

SPEC_TYPES: dict[str, type] = {}


def spec_type(cls: type) -> type:
    """Class decorator: register a frozen dataclass as an instance spec."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} must be a dataclass")
    SPEC_TYPES[cls.__name__] = cls
    return cls


def _literal(node: ast.AST) -> Any:
    if isinstance(node, ast.Call):
        return _build(node)
    if isinstance(node, ast.Tuple):
        return tuple(_literal(e) for e in node.elts)
    return ast.literal_eval(node)


def _build(call: ast.Call) -> Any:
    if not isinstance(call.func, ast.Name) or call.func.id not in SPEC_TYPES:
        name = getattr(call.func, "id", "?")
        raise ValueError(f"spec: unknown spec type {name!r}; known: {sorted(SPEC_TYPES)}")
    if call.args:
        raise ValueError("spec: use keyword arguments only, as in the printed repr")
    cls = SPEC_TYPES[call.func.id]
    fields = {f.name for f in dataclasses.fields(cls)}
    for kw in call.keywords:
        if kw.arg not in fields:
            raise ValueError(f"spec: {cls.__name__} has no field {kw.arg!r}; fields: {sorted(fields)}")
    try:
        kwargs = {kw.arg: _literal(kw.value) for kw in call.keywords}
    except ValueError as exc:
        raise ValueError(f"spec: values must be literals (numbers, strings, booleans), "
                         f"{exc}") from exc
    return cls(**kwargs)


def parse_spec(text: str) -> Any:
    """Rebuild a spec from its repr.

    Raises
    ------
    ValueError
        If ``text`` is not a call of a registered spec type with literal keyword arguments.
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"spec: not a valid spec expression: {exc.msg}") from exc
    if not isinstance(tree.body, ast.Call):
        raise ValueError("spec: expected something like DLNSpec(d=40, m=20, ...)")
    return _build(tree.body)
