"""The numba forward pass as an autograd primitive whose VJP is the numba BPTT.

Everything outside the time loop (the QR of L, the loss) stays in autograd;
only the loop ``(parameters, inputs, initial state) -> y`` is a primitive. A
model provides

* ``_kernel_keys``: the prepared-parameter names the kernels read;
* ``_numba_forward(p, inputs, init, dtype=...) -> dict`` with ``"y"`` (B, T, O) and
  whatever else its backward pass needs (states at every step), in the
  precision ``dtype`` (float64, or float32 for ``backend="numba32"``);
* ``_numba_backward(p, inputs, init, fwd, g_y) -> dict``: the gradient of
  ``sum(g_y * y)`` with respect to each ``p[k]``, ``k`` in ``_kernel_keys``,
  as float64 arrays.

The primitive returns y as float64 whatever the kernels' precision, so the
loss and everything autograd does outside the time loop stay float64.

autograd builds a primitive's VJP right after running its forward pass (in
``VJPNode.__init__``), so the forward's stored states are handed to the VJP
through a one-slot, thread-local cache instead of recomputing the forward.
"""
from __future__ import annotations

import threading

import numpy as np
from autograd.extend import defvjp_argnums, primitive

_last = threading.local()


@primitive
def _outputs(model, inputs, init, keys, dtype, *arrays):
    p = dict(zip(keys, arrays))
    fwd = model._numba_forward(p, inputs, init, dtype=dtype)
    y = np.asarray(fwd["y"], dtype=np.float64)
    _last.value = (y, fwd)
    return y


_N_STATIC = 5   # model, inputs, init, keys, dtype: the arguments before the parameter arrays


def _outputs_vjp(argnums, ans, args, kwargs):
    model, inputs, init, keys, dtype, *arrays = args
    cached = getattr(_last, "value", None)
    _last.value = None
    if cached is not None and cached[0] is ans:
        fwd = cached[1]
    else:  # e.g. a nested call overwrote the slot: recompute
        fwd = model._numba_forward(dict(zip(keys, arrays)), inputs, init, dtype=dtype)

    def vjp(g_y):
        grads = model._numba_backward(dict(zip(keys, arrays)), inputs, init, fwd,
                                      np.ascontiguousarray(g_y, dtype=np.float64))
        return tuple(grads[keys[i - _N_STATIC]] for i in argnums)

    return vjp


defvjp_argnums(_outputs, _outputs_vjp)


def numba_outputs(model, p, inputs: np.ndarray, init: dict, dtype=np.float64):
    """y (B, T, O) from the numba kernels in precision ``dtype``, differentiable w.r.t. the prepared parameters ``p``."""
    keys = tuple(model._kernel_keys)
    return _outputs(model, inputs, init, keys, np.dtype(dtype), *[p[k] for k in keys])
