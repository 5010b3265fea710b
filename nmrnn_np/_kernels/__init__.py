"""Private numba kernels: the fast path of every model (forward Euler and BPTT).

Kernels are ``@njit(cache=True)`` functions on C-contiguous arrays that
write into preallocated outputs: float64, or float32 for ``backend="numba32"``
(one source; numba compiles it once per precision). They are called only through the model
methods ``_numba_forward`` / ``_numba_backward`` after every argument has been
checked, and are tested against the NumPy reference step of each model.
"""

import itertools
import math

import numpy as np


def as_kernel_array(a, dtype=np.float64) -> np.ndarray:
    """A C-contiguous, writeable array of ``dtype`` (float64 by default; no copy when it already is one).

    numba compiles a kernel once per argument type, and a read-only array (a
    broadcast initial state, say) is a different type from a writeable one:
    one layout for every call keeps each kernel to a single compilation.
    """
    a = np.ascontiguousarray(a, dtype=dtype)
    return a if a.flags.writeable else a.copy()


def empty_arrays(*shapes: tuple[int, ...], dtype=np.float64) -> list[np.ndarray]:
    """Uninitialised C-contiguous arrays (float64 unless ``dtype``) of the given shapes, carved from one allocation.

    Several megabyte-sized blocks freed together make glibc's malloc hand the
    memory back to the system, and the next call then pays one page fault per
    4 kB page (about 0.5 ms per forward pass at the timing-task sizes, as much
    as the computation); a single block is kept and reused.
    """
    return _carve(np.empty, shapes, dtype)


def zero_arrays(*shapes: tuple[int, ...], dtype=np.float64) -> list[np.ndarray]:
    """Like :func:`empty_arrays`, filled with zeros (one ``np.zeros`` instead of one per array)."""
    return _carve(np.zeros, shapes, dtype)


def _carve(alloc, shapes, dtype) -> list[np.ndarray]:
    # math.prod and accumulate, not np.prod and np.cumsum: those cost ~3 us per call on
    # tuples, 30 us for the seven outputs of the low-rank forward (1% of a training step)
    sizes = [math.prod(s) for s in shapes]
    buf = alloc(sum(sizes), dtype=dtype)
    offsets = itertools.accumulate(sizes, initial=0)
    return [buf[o:o + n].reshape(s) for o, n, s in zip(offsets, sizes, shapes)]
