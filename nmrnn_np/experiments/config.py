"""Experiment settings: nested dicts of scalars and lists, read from and written to TOML.

An experiment declares its settings as a nested ``dict`` of defaults (the
*schema*). A user's TOML file, or a dict of overrides, is merged into a copy of
the defaults by :func:`merge_config`, which rejects unknown keys and values of
the wrong type with a :class:`ConfigError` whose message names the key
(``training.steps``), so the command line can print it as a one-line error.

The standard library reads TOML (:mod:`tomllib`, Python >= 3.11; the ``tomli``
backport before) but does not write it; :func:`dumps_toml` is a small writer
for exactly the values a schema can hold: nested tables of booleans,
integers, floats, strings and flat lists of those.
"""
from __future__ import annotations

import copy
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Mapping

from ..io import atomic_write_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - depends on the Python version
    import tomli as tomllib

__all__ = ["ConfigError", "dumps_toml", "write_toml", "read_toml", "merge_config", "get_path", "set_path"]

Scalar = (bool, int, float, str)


class ConfigError(ValueError):
    """A setting is unknown or has the wrong type/value; the message names its dotted key."""


# ----------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------
def _scalar(value: Any, key: str) -> str:
    # bool before int: bool is a subclass of int
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = repr(value)
        # TOML needs a fraction or an exponent to read a float back as a float
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(value, str):
        # a JSON string literal is a valid TOML basic string (same escapes)
        return json.dumps(value, ensure_ascii=False)
    raise ConfigError(f"{key}: cannot write a value of type {type(value).__name__} to TOML")


def _value(value: Any, key: str) -> str:
    if isinstance(value, (list, tuple)):
        items = []
        for i, v in enumerate(value):
            if isinstance(v, (list, tuple, dict)):
                raise ConfigError(f"{key}[{i}]: only flat lists of scalars can be written to TOML")
            items.append(_scalar(v, f"{key}[{i}]"))
        return "[" + ", ".join(items) + "]"
    return _scalar(_numpy_to_python(value), key)


def _numpy_to_python(value: Any) -> Any:
    # numpy scalars (np.float64, np.int64, np.bool_) have .item(); plain Python values pass through
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, Scalar):
        return item()
    return value


def _bare_key(key: str) -> str:
    if key and all(c.isalnum() or c in "_-" for c in key):
        return key
    return json.dumps(key)


def dumps_toml(data: Mapping[str, Any], header: str | None = None) -> str:
    """Serialise a nested dict of scalars and flat lists as TOML text.

    Scalars of a table come first, then its sub-tables as ``[a.b]`` sections,
    in insertion order. ``None`` values are left out (TOML has no null).

    Parameters
    ----------
    data : mapping
        Nested dicts whose leaves are bool, int, float, str or lists of those.
    header : str, optional
        Comment lines written at the top (each prefixed with ``# ``).

    Returns
    -------
    str

    Examples
    --------
    >>> print(dumps_toml({"seeds": 3, "training": {"lr": 0.01, "models": ["nmrnn"]}}), end="")
    seeds = 3
    <BLANKLINE>
    [training]
    lr = 0.01
    models = ["nmrnn"]
    """
    lines: list[str] = []
    if header:
        lines += [f"# {line}".rstrip() for line in header.splitlines()]

    def table(d: Mapping[str, Any], path: list[str]) -> None:
        scalars = [(k, v) for k, v in d.items() if v is not None and not isinstance(v, Mapping)]
        subtables = [(k, v) for k, v in d.items() if isinstance(v, Mapping)]
        # a table holding only sub-tables needs no header of its own ([a.b] defines [a])
        if path and (scalars or not subtables):
            if lines:
                lines.append("")
            lines.append("[" + ".".join(_bare_key(p) for p in path) + "]")
        for k, v in scalars:
            lines.append(f"{_bare_key(str(k))} = {_value(v, '.'.join(path + [str(k)]))}")
        for k, v in subtables:
            table(v, path + [str(k)])

    table(data, [])
    return "\n".join(lines) + "\n"


def write_toml(path: str | os.PathLike, data: Mapping[str, Any], header: str | None = None) -> Path:
    """Write ``data`` as TOML to ``path`` atomically (temporary file, then rename)."""
    return atomic_write_text(path, dumps_toml(data, header=header))


def read_toml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a TOML file; a missing file or a syntax error raises :class:`ConfigError` naming the file."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {str(path)!r} is a folder, not a TOML file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {str(path)!r} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid TOML: {exc}") from None


# ----------------------------------------------------------------------------
# Merging user settings into defaults
# ----------------------------------------------------------------------------
def _check_type(value: Any, default: Any, key: str) -> Any:
    """Coerce ``value`` to the type of ``default`` where that is lossless, else raise."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key} must be a number, got {value!r}")
    if isinstance(default, str):
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key} must be a string, got {value!r}")
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        if default:
            return [_check_type(v, default[0], f"{key}[{i}]") for i, v in enumerate(value)]
        return list(value)
    return value


def merge_config(defaults: Mapping[str, Any], overrides: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Return a deep copy of ``defaults`` with ``overrides`` merged in, checking every key.

    Parameters
    ----------
    defaults : mapping
        The schema: every allowed key with a default value whose type is the
        type the key must have (bool, int, float, str, list, or a sub-table).
    overrides : mapping
        User settings (e.g. read from TOML); may leave out any key.
    prefix : str
        Dotted path of ``defaults`` inside the full configuration (for messages).

    Raises
    ------
    ConfigError
        For a key that is not in ``defaults`` (the message lists the allowed
        keys) or a value of the wrong type.
    """
    out = copy.deepcopy(dict(defaults))
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{prefix or 'config'} must be a table, got {overrides!r}")
    for k, v in overrides.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if k not in defaults:
            allowed = ", ".join(sorted(map(str, defaults)))
            raise ConfigError(f"unknown config key {key!r} (allowed here: {allowed})")
        default = defaults[k]
        if isinstance(default, Mapping):
            if not isinstance(v, Mapping):
                raise ConfigError(f"{key} must be a table ([{key}] section), got {v!r}")
            out[k] = merge_config(default, v, key)
        else:
            if isinstance(v, Mapping):
                raise ConfigError(f"{key} must be a value, not a table")
            out[k] = _check_type(v, default, key)
    return out


def get_path(config: Mapping[str, Any], dotted: str) -> Any:
    """``config["a"]["b"]`` for ``dotted = "a.b"``."""
    node: Any = config
    for part in dotted.split("."):
        node = node[part]
    return node


def set_path(config: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``config["a"]["b"] = value`` for ``dotted = "a.b"`` (the tables must exist)."""
    parts = dotted.split(".")
    node = config
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value
