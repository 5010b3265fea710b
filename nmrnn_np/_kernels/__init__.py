"""Private numba kernels: the fast path of every model (forward Euler and BPTT).

Kernels are ``@njit(cache=True)`` functions on float64 C-contiguous arrays
that write into preallocated outputs. They are called only through the model
methods ``_numba_forward`` / ``_numba_backward`` after every argument has been
checked, and are tested against the NumPy reference step of each model.
"""
