"""Strict parsing of yes/no settings (`overwrite=no` means no): shared by infer, train and the model
configs, so that no entry point takes a non-empty string such as 'false' or 'maybe' for true."""

from __future__ import annotations

from typing import Any

TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def parse_bool(value: Any, key: str) -> bool:
    """`value` as a bool: True/False, 1/0, or one of true/false, yes/no, on/off, 1/0 (any case,
    surrounding spaces ignored). Anything else is a ValueError naming `key`."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise ValueError(f"{key} must be true or false (or yes/no, on/off, 1/0), got {value!r}")
