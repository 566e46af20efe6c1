"""Type checks for option dataclasses filled from Hydra, where `train.max_steps=abc` arrives as a
string: each field must hold its annotated type (ints as ints, floats finite), named by its key."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any


def _coerce(value: Any, kind: Any, key: str) -> Any:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (kind,) = [a for a in args if a is not type(None)]
        return _coerce(value, kind, key)
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ValueError(f"{key} must be a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(v, k, f"{key}[{i}]") for i, (v, k) in enumerate(zip(value, args)))
    if kind is bool:  # parsed strictly by the dataclass itself (yes/no/true/false...)
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{key} must be an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{key} must be a finite number, got {value!r}")
        return float(value)
    if kind is str and not isinstance(value, str):
        raise ValueError(f"{key} must be a string, got {value!r}")
    return value


def check_types(options: Any, prefix: str) -> None:
    """Check (and make floats of int values for float fields) every field of the dataclass `options`;
    a ValueError naming `prefix.field` and the value on the first that does not fit."""
    hints = typing.get_type_hints(type(options))
    for field in dataclasses.fields(options):
        setattr(options, field.name, _coerce(getattr(options, field.name), hints[field.name],
                                             f"{prefix}.{field.name}"))
