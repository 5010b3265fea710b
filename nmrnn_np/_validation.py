"""Argument checks shared by every public function.

Each check raises :class:`ValueError` naming the argument and the expected form,
so that bad input never reaches a numba kernel (where it would surface as a
typing traceback or, worse, as silent out-of-bounds memory access).
"""
from __future__ import annotations

import numbers
from typing import Sequence

import numpy as np


def positive_int(value, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int, requiring ``value >= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and float(value).is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def positive_float(value, name: str) -> float:
    """Return ``value`` as a finite float > 0."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if not np.isfinite(out) or out <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return out


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

    Parameters
    ----------
    shape : sequence of int or None, optional
        Expected shape; ``None`` entries match any length.
    ndim : int or sequence of int, optional
        Allowed numbers of dimensions (checked when ``shape`` is not given).
    finite : bool
        Reject NaN and infinite entries.
    """
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of real numbers, got {type(value).__name__}") from None
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
    """Require ``value`` to be one of ``options``."""
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value
