"""``--set NAME=VALUE`` overrides of a frozen training config (nested as ``GROUP.NAME=VALUE``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

Config = TypeVar("Config")


def _parse_bool(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0"):
        raise ValueError(f"expected true or false, got {text!r}")
    return text.lower() in ("true", "1")


def parse_strings(text: str) -> tuple[str, ...]:
    """A comma-separated list, empty parts dropped: ``"a,,b,"`` -> ``("a", "b")``."""
    return tuple(part for part in text.split(",") if part)


def _parse_paths(text: str) -> tuple[Path, ...]:
    return tuple(Path(part) for part in parse_strings(text))


def _parse_ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(","))


PARSERS: dict[str, Callable[[str], object]] = {  # by a config field's annotation
    "Path": Path,
    "Path | None": Path,
    "tuple[Path, ...]": _parse_paths,
    "tuple[int, int]": _parse_ints,
    "tuple[int, int, int]": _parse_ints,
    "tuple[str, ...]": parse_strings,
    "str": str,
    "int": int,
    "int | None": int,
    "float": float,
    "bool": _parse_bool,
}


def _nested(config: object) -> set[str]:
    return {f.name for f in dataclasses.fields(config) if dataclasses.is_dataclass(getattr(config, f.name))}


def _set(config: Config, path: list[str], text: str, name: str) -> Config:
    fields = {f.name: f for f in dataclasses.fields(config)}
    nested = _nested(config)
    key = path[0]
    if key not in fields or (key in nested) != (len(path) > 1) or len(path) > 2:
        choices = sorted(set(fields) - nested) + [f"{group}.<name>" for group in sorted(nested)]
        raise ValueError(f"unknown setting {name!r}; choose from {choices}")
    if len(path) > 1:
        return dataclasses.replace(config, **{key: _set(getattr(config, key), path[1:], text, name)})
    kind = str(fields[key].type)
    if kind not in PARSERS:
        raise ValueError(f"setting {name!r} ({kind}) cannot be set from the command line")
    return dataclasses.replace(config, **{key: PARSERS[kind](text)})


def configure(base: Config, overrides: Sequence[str]) -> Config:
    """``base`` (a frozen dataclass) with ``NAME=VALUE`` overrides; fields of nested dataclasses
    as ``GROUP.NAME=VALUE``. Raises ValueError for an unknown name or a malformed value."""
    config = base
    for item in overrides:
        name, separator, text = item.partition("=")
        if not separator:
            raise ValueError(f"--set needs NAME=VALUE, got {item!r}")
        config = _set(config, name.split("."), text, name)
    return config
