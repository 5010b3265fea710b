r"""Training losses: autograd primitives with hand-written VJPs, so gradients flow through them.

All take model outputs ``y`` and ``targets`` of shape (B, T, O). Each loss
is one :func:`autograd.extend.primitive` (its value computed with NumPy, its
VJP with respect to ``y``, ``targets`` and ``mask`` written out below)
rather than a chain of ``autograd.numpy`` operations: the chain was seven
graph nodes and cost ~0.13 ms per gradient at the timing-task size (B = 40,
T = 110), the primitive ~0.015 ms. The VJPs for ``y`` and ``targets``
evaluate the same expressions in the same order as autograd did through the
chain, so values and those gradients are unchanged to the bit
(``tests/test_models.py`` checks them against autograd through the plain
formulas, and the mask's against finite differences). A callable passed as
``loss=`` is traced by autograd as usual.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from autograd.extend import defvjp, primitive
from autograd.tracer import getval, isbox

from ._validation import float_array as _float_array


def _unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` over the axes along which an array of ``shape`` was broadcast to ``g.shape``."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g


@primitive
def _masked_mse(y, targets, mask=None):
    r"""Masked mean squared error, the authors' loss for the RNNs.

    .. math:: \mathcal{L} = \frac{\sum_{b,t,o} m_{bto} (y_{bto} - \hat y_{bto})^2}{\sum_{b,t,o} m_{bto}}

    ``mask`` broadcasts against (B, T, O) (e.g. (B, T, 1)); ``None`` means all
    ones, which makes this the plain mean (:func:`mse`). The denominator sums
    the broadcast mask, i.e. counts every (trial, step, channel) that enters.

    Gradient: :math:`\partial \mathcal{L} / \partial y = 2 m (y - \hat y) / \sum m`
    (``-`` that for the targets; :math:`((y - \hat y)^2 - \mathcal{L}) / \sum m`
    for the mask, summed over the broadcast axes).
    """
    sq = (y - targets) ** 2
    if mask is None:
        return np.mean(sq)
    m = _broadcast(mask, sq.shape)
    return np.sum(m * sq) / np.sum(m)


def _broadcast(mask, shape):
    """``mask`` broadcast to ``shape`` (the denominator counts every entry); a no-op when it has that shape."""
    return mask if np.shape(mask) == shape else np.broadcast_to(mask, shape)


def _masked_mse_dy(g, y, targets, mask):
    """d masked_mse / d y times g, as autograd evaluated it through the formula (same rounding)."""
    d = y - targets
    if mask is None:
        return (g / d.size * 2.0) * d
    m = _broadcast(mask, d.shape)
    return (m * (g / np.sum(m)) * 2.0) * d


def _masked_mse_dmask(ans, g, y, targets, mask):
    m = _broadcast(mask, np.shape(y))
    return _unbroadcast(g * ((y - targets) ** 2 - ans) / np.sum(m), np.shape(mask))


defvjp(_masked_mse,
       lambda ans, y, targets, mask=None: lambda g: _unbroadcast(_masked_mse_dy(g, y, targets, mask), np.shape(y)),
       lambda ans, y, targets, mask=None: lambda g: _unbroadcast(-_masked_mse_dy(g, y, targets, mask),
                                                                np.shape(targets)),
       lambda ans, y, targets, mask=None: lambda g: _masked_mse_dmask(ans, g, y, targets, mask))


@primitive
def _mean_squared_error(y, targets):
    return np.mean((y - targets) ** 2)


defvjp(_mean_squared_error,
       lambda ans, y, targets: lambda g: _unbroadcast(_masked_mse_dy(g, y, targets, None), np.shape(y)),
       lambda ans, y, targets: lambda g: _unbroadcast(-_masked_mse_dy(g, y, targets, None), np.shape(targets)))


def _mse(y, targets, mask=None):
    return _mean_squared_error(y, targets)


def mse(y, targets, mask=None):
    r"""Plain mean squared error over every entry (the authors' LSTM loss); ``mask`` is ignored.

    .. math:: \mathcal{L} = \frac{1}{BTO} \sum_{b,t,o} (y_{bto} - \hat y_{bto})^2
    """
    y, targets, _ = _check(y, targets, None)
    return _mean_squared_error(y, targets)


@primitive
def _last_step_mean_squared_error(y, targets):
    return np.mean((y[:, -1, :] - targets[:, -1, :]) ** 2)


def _last_step_dy(g, y, targets):
    d_last = _masked_mse_dy(g, y[:, -1, :], targets[:, -1, :], None)
    out = np.zeros(np.broadcast_shapes(np.shape(y), np.shape(targets)))
    out[:, -1, :] = d_last
    return out


defvjp(_last_step_mean_squared_error,
       lambda ans, y, targets: lambda g: _unbroadcast(_last_step_dy(g, y, targets), np.shape(y)),
       lambda ans, y, targets: lambda g: _unbroadcast(-_last_step_dy(g, y, targets), np.shape(targets)))


def _last_step_mse(y, targets, mask=None):
    return _last_step_mean_squared_error(y, targets)


def last_step_mse(y, targets, mask=None):
    r"""Mean squared error of the last time step only (element finder):
    :math:`\frac{1}{BO}\sum_{b,o} (y_{b,T-1,o} - \hat y_{b,T-1,o})^2`; ``mask`` is ignored."""
    y, targets, _ = _check(y, targets, None)
    return _last_step_mean_squared_error(y, targets)


def _check(y, targets, mask):
    """Check the arguments of a public loss; arrays (or autograd boxes, checked through their value) back.

    ``y`` may hold NaN (a diverged network: the loss is then NaN and the
    trainer reports it); ``targets`` and ``mask`` must be finite. A (B, T)
    mask becomes (B, T, 1), as in ``model.loss`` and :func:`nmrnn_np.metrics.masked_l2`.
    """
    yv = _float_array(getval(y), "y", ndim=3, finite=False)
    if 0 in yv.shape:
        raise ValueError(f"y must be non-empty (B, T, O), got shape {yv.shape}")
    tv = _float_array(getval(targets), "targets", ndim=3)
    if tv.shape != yv.shape:
        raise ValueError(f"targets must have the shape of y {yv.shape}, got {tv.shape}")
    y = y if isbox(y) else yv
    targets = targets if isbox(targets) else tv
    if mask is None:
        return y, targets, None
    mv = _float_array(getval(mask), "mask", ndim=(2, 3))
    B, T, O = yv.shape
    if mv.shape[:2] != (B, T) or (mv.ndim == 3 and mv.shape[2] not in (1, O)):
        raise ValueError(f"mask must have shape ({B}, {T}), ({B}, {T}, 1) or ({B}, {T}, {O}) (B, T, O of y), "
                         f"got {mv.shape}")
    if mv.min() < 0:
        raise ValueError("mask must be non-negative")
    if not mv.max() > 0:
        raise ValueError("mask is zero everywhere: the masked loss would be 0/0")
    mask = mask if isbox(mask) else mv
    if mv.ndim == 2:
        mask = mask[:, :, None]
    return y, targets, mask


def masked_mse(y, targets, mask=None):
    r"""Masked mean squared error, the authors' loss for the RNNs (see the primitive below).

    .. math:: \mathcal{L} = \frac{\sum_{b,t,o} m_{bto} (y_{bto} - \hat y_{bto})^2}{\sum_{b,t,o} m_{bto}}

    The arguments are checked first (shapes, finiteness of ``targets`` and
    ``mask``); ``model.loss`` checks them once and then calls the primitive
    directly.

    Parameters
    ----------
    y, targets : array (B, T, O)
    mask : array (B, T), (B, T, 1) or (B, T, O), optional
        Non-negative weights broadcast to (B, T, O) (the denominator counts
        every broadcast entry); ``None`` is all ones, the plain mean.
    """
    y, targets, mask = _check(y, targets, mask)
    return _masked_mse(y, targets, mask)


#: name -> loss as the models call it: the primitives without the argument checks, which the
#: model has already made (``get_loss`` returns these; the public functions above check first)
LOSSES: dict[str, Callable] = {"masked_mse": _masked_mse, "mse": _mse, "last_step_mse": _last_step_mse}


def get_loss(loss: str | Callable) -> Callable:
    """Return a loss function by name (``"masked_mse"``, ``"mse"``, ``"last_step_mse"``) or pass a callable through."""
    if callable(loss):
        return loss
    if not isinstance(loss, str):
        raise TypeError(f"loss must be one of {sorted(LOSSES)} or a callable (y, targets, mask), got {loss!r}")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)} or a callable (y, targets, mask), got {loss!r}")
    return LOSSES[loss]
