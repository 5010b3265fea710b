"""Choice between the numba fast path and the NumPy reference path.

numba is optional. When it is not installed, or the environment variable
``NMRNN_NP_DISABLE_NUMBA`` is set to ``1`` (or ``true``/``yes``) before import,
every public call runs the NumPy reference path instead. Both paths give the
same numbers (tests pin the agreement to 1e-12).

``"numba32"`` is opt-in, never the default: the same numba kernels in float32
(about twice as fast; agreement with float64 to float32 rounding, ~1e-6
relative per step; ``docs/performance.md``).

:func:`use_backend` switches temporarily, which is how tests and benchmarks
compare the two paths in one process.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import numpy as np

try:  # pragma: no cover - exercised by the import itself
    import numba as _numba
    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - depends on the environment
    _numba = None
    HAVE_NUMBA = False

BACKENDS = ("numba", "numpy", "numba32")

#: precision of the numba kernels of each numba backend. ``"numba32"`` runs the same
#: kernels in float32 (the authors trained in float32): parameters, the loss, the QR of
#: L and the optimiser stay float64; the time loop and its gradient run in float32.
KERNEL_DTYPES = {"numba": np.float64, "numba32": np.float32}

_disabled_by_env = os.environ.get("NMRNN_NP_DISABLE_NUMBA", "").strip().lower() in ("1", "true", "yes", "on")
_default = "numba" if (HAVE_NUMBA and not _disabled_by_env) else "numpy"


def default_backend() -> str:
    """Return the backend used when a call does not name one: ``"numba"`` or ``"numpy"``."""
    return _default


def resolve_backend(backend: str | None) -> str:
    """Validate ``backend`` (``None``, ``"numba"``, ``"numpy"`` or ``"numba32"``) and return the one to use."""
    if backend is None:
        return _default
    if not isinstance(backend, str):
        raise TypeError(f"backend must be one of {BACKENDS} or None, got {backend!r} ({type(backend).__name__})")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS} or None, got {backend!r}")
    if backend in KERNEL_DTYPES and not HAVE_NUMBA:
        raise ValueError(f"backend={backend!r} was requested but numba is not installed "
                         "(pip install 'nmrnn_np[numba]')")
    return backend


@contextmanager
def use_backend(backend: str) -> Iterator[str]:
    """Temporarily make ``backend`` the default for calls that do not name one.

    >>> from nmrnn_np import use_backend
    >>> with use_backend("numpy"):
    ...     pass
    """
    global _default
    backend = resolve_backend(backend)
    previous, _default = _default, backend
    try:
        yield backend
    finally:
        _default = previous


def njit(func=None, **options):
    """``numba.njit(cache=True, ...)`` when numba is installed, else the identity.

    Kernels decorated with it are only called on the numba path, so without
    numba they are plain (slow, unused) Python functions.
    """
    options.setdefault("cache", True)
    options.setdefault("nogil", True)

    def wrap(f):
        return _numba.njit(**options)(f) if HAVE_NUMBA else f

    return wrap if func is None else wrap(func)
