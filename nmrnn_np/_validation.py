"""Argument checks shared by every public function: the validation vocabulary.

Each check names the argument and the expected form in its message and raises

* :class:`TypeError` when the value has the wrong type (a string where a
  number belongs, a float or a bool where a count belongs, a list where a
  name belongs, an unknown keyword argument), and
* :class:`ValueError` when the type is right but the value is not (out of
  range, NaN or infinite, wrong shape, a name not in the set),

so that bad input never reaches a numba kernel (where it would surface as a
typing traceback or, worse, as silent out-of-bounds memory access).

Vocabulary: :func:`boolean`, :func:`integer` / :func:`positive_int` (counts),
:func:`real` / :func:`positive_float` / :func:`probability` (numbers in a
range), :func:`choice` (names from a set), :func:`float_array` (arrays),
:func:`mapping`, :func:`known_kwargs`, :func:`output_path` and
:func:`input_path` (files).
"""
from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np


def boolean(value, name: str) -> bool:
    """Return ``value`` as a bool; only ``True``/``False`` (or NumPy bools) are accepted.

    ``bool("no")`` is True and ``bool(2)`` too: silently truthy values are rejected.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def integer(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an int in ``[minimum, maximum]``.

    Counts are ints: bools and floats (even integral ones such as ``2.0``)
    raise :class:`TypeError`; NumPy integers are accepted.
    """
    if not _is_int(value):
        raise TypeError(f"{name} must be an integer{_range_text(minimum, maximum)}, "
                        f"got {value!r} ({type(value).__name__})")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be an integer{_range_text(minimum, maximum)}, got {value}")
    return value


def _range_text(minimum, maximum) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def positive_int(value, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int, requiring ``value >= minimum`` (a count; see :func:`integer`)."""
    return integer(value, name, minimum=minimum)


def real(value, name: str, minimum: float | None = None, maximum: float | None = None, *,
         open_min: bool = False, open_max: bool = False, expected: str | None = None) -> float:
    """Return ``value`` as a finite float in the given (closed or open) interval.

    Bools and non-numbers raise :class:`TypeError`; NaN, infinities and
    values outside the interval raise :class:`ValueError`.
    """
    lo = "(" if open_min else "["
    hi = ")" if open_max else "]"
    if expected is None:
        if minimum is None and maximum is None:
            expected = "a finite number"
        else:
            expected = (f"a finite number in {lo}{'-inf' if minimum is None else minimum}, "
                        f"{'inf' if maximum is None else maximum}{hi}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {expected}, got {value!r} ({type(value).__name__})")
    out = float(value)
    bad = not np.isfinite(out)
    if minimum is not None:
        bad = bad or (out <= minimum if open_min else out < minimum)
    if maximum is not None:
        bad = bad or (out >= maximum if open_max else out > maximum)
    if bad:
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return out


def positive_float(value, name: str) -> float:
    """Return ``value`` as a finite float > 0."""
    return real(value, name, 0.0, open_min=True, expected="a finite number > 0")


def nonnegative_float(value, name: str) -> float:
    """Return ``value`` as a finite float >= 0."""
    return real(value, name, 0.0, expected="a finite number >= 0")


def probability(value, name: str, *, open_interval: bool = False) -> float:
    """Return ``value`` as a float in [0, 1] (or (0, 1) with ``open_interval``), e.g. a gain s."""
    return real(value, name, 0.0, 1.0, open_min=open_interval, open_max=open_interval)


def time_constant(tau, dt, tau_name: str) -> float:
    """Validate a time constant against the Euler step and return ``alpha = dt / tau``.

    Forward Euler for ``tau dx/dt = -x + ...`` multiplies the state by
    ``1 - dt/tau`` each step; with ``dt > tau`` that factor is negative and the
    leak overshoots, so the discretisation no longer approximates the ODE.
    """
    tau = positive_float(tau, tau_name)
    dt = positive_float(dt, "dt")
    if dt > tau:
        raise ValueError(
            f"dt={dt} is larger than {tau_name}={tau}: forward Euler would be unstable "
            f"(the leak factor 1 - dt/{tau_name} = {1 - dt / tau:.3g} is negative); use dt <= {tau_name}"
        )
    return dt / tau


def float_array(value, name: str, shape: Sequence[int | None] | None = None,
                ndim: int | Sequence[int] | None = None, finite: bool = True) -> np.ndarray:
    """Return ``value`` as a C-contiguous float64 array after checking it.

    Something that is not an array of real numbers (a string, a dict,
    ``None``, complex numbers, ragged nested lists) raises :class:`TypeError`;
    a wrong shape or non-finite entries raise :class:`ValueError`.

    Parameters
    ----------
    shape : sequence of int or None, optional
        Expected shape; ``None`` entries match any length.
    ndim : int or sequence of int, optional
        Allowed numbers of dimensions (checked when ``shape`` is not given).
    finite : bool
        Reject NaN and infinite entries.
    """
    if isinstance(value, (str, bytes, Mapping)) or value is None:
        raise TypeError(f"{name} must be an array of real numbers, got {type(value).__name__}")
    try:
        arr = np.asarray(value)
        # complex numbers would lose their imaginary part and strings ("1.5") be parsed: neither is an
        # array of real numbers
        if arr.dtype.kind not in "biuf":
            if arr.dtype.kind != "O":
                raise TypeError
            arr = arr.astype(np.float64)
        arr = np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of real numbers, got {type(value).__name__}"
                        + (f" of dtype {arr.dtype}" if isinstance(value, np.ndarray) else "")) from None
    if shape is not None:
        if arr.shape != tuple(shape) and (arr.ndim != len(shape) or
                                           any(s is not None and s != a for s, a in zip(shape, arr.shape))):
            expected = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name} must have shape {expected}, got {arr.shape}")
    elif ndim is not None:
        allowed = (ndim,) if isinstance(ndim, numbers.Integral) else tuple(ndim)
        if arr.ndim not in allowed:
            raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimensions, got shape {arr.shape}")
    # the method .all(), not np.all(): np.all's dispatch costs about 1 us per call, and a
    # training step checks ~12 arrays
    if finite and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return np.ascontiguousarray(arr)


def choice(value, name: str, options: Sequence) -> object:
    """Require ``value`` to be one of ``options``; the message lists the valid ones.

    When every option is a string, a value that is not a string (a list, a
    number) raises :class:`TypeError`; an unknown string raises :class:`ValueError`.
    """
    options = tuple(options)
    valid = ", ".join(map(repr, options))
    if options and all(isinstance(o, str) for o in options) and not isinstance(value, str):
        raise TypeError(f"{name} must be one of {valid}; got {value!r} ({type(value).__name__})")
    try:
        known = any(value == o and type(value) is type(o) for o in options)
    except (TypeError, ValueError):   # e.g. an array compared with a name
        known = False
    if not known:
        raise ValueError(f"{name} must be one of {valid}; got {value!r}")
    return value


def mapping(value, name: str, expected: str = "a dict") -> Mapping:
    """Require a mapping (dict-like); :class:`TypeError` otherwise."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__}")
    return value


def known_kwargs(kwargs: Mapping, known: Iterable[str], where: str) -> None:
    """Reject keyword arguments not in ``known`` with a :class:`TypeError` listing the known ones.

    ``where`` names the function or class (``"make_model('nmrnn')"``).
    """
    known = list(known)
    unknown = [k for k in kwargs if k not in known]
    if unknown:
        raise TypeError(f"{where} got unexpected keyword argument(s) {unknown}; "
                        f"known keyword arguments: {', '.join(known) or '(none)'}")


def any_path(value, name: str) -> Path:
    """A str or os.PathLike, non-empty (TypeError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike), got {value!r} ({type(value).__name__})")
    path = Path(value)
    if str(value) == "":
        raise ValueError(f"{name} must be a non-empty path")
    return path


def output_path(value, name: str) -> Path:
    """A file path to write: its folder exists and is writable, and it is not a folder itself."""
    path = any_path(value, name)
    if path.is_dir():
        raise ValueError(f"{name}={str(path)!r} is a folder; expected a file path inside an existing folder")
    folder = path.parent
    if not folder.is_dir():
        raise ValueError(f"{name}={str(path)!r}: the folder {str(folder)!r} does not exist (create it first)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{name}={str(path)!r}: the folder {str(folder)!r} is not writable")
    return path


def input_path(value, name: str) -> Path:
    """A file path to read: a folder raises :class:`ValueError`, a missing file
    :class:`FileNotFoundError` (as ``open`` does)."""
    path = any_path(value, name)
    if path.is_dir():
        raise ValueError(f"{name}={str(path)!r} is a folder; expected a file")
    if not path.exists():
        raise FileNotFoundError(f"{name}={str(path)!r} does not exist")
    return path
