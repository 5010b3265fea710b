"""Training losses, written with ``autograd.numpy`` so gradients flow through them.

All take model outputs ``y`` and ``targets`` of shape (B, T, O).
"""
from __future__ import annotations

from typing import Callable

import autograd.numpy as anp


def masked_mse(y, targets, mask=None):
    r"""Masked mean squared error, the authors' loss for the RNNs.

    .. math:: \mathcal{L} = \frac{\sum_{b,t,o} m_{bto} (y_{bto} - \hat y_{bto})^2}{\sum_{b,t,o} m_{bto}}

    ``mask`` broadcasts against (B, T, O) (e.g. (B, T, 1)); ``None`` means all
    ones, which makes this the plain mean (:func:`mse`). The denominator sums
    the broadcast mask, i.e. counts every (trial, step, channel) that enters.
    """
    sq = (y - targets) ** 2
    if mask is None:
        return anp.mean(sq)
    m = anp.broadcast_to(mask, anp.shape(sq))
    return anp.sum(m * sq) / anp.sum(m)


def mse(y, targets, mask=None):
    r"""Plain mean squared error over every entry (the authors' LSTM loss); ``mask`` is ignored."""
    return anp.mean((y - targets) ** 2)


def last_step_mse(y, targets, mask=None):
    r"""Mean squared error of the last time step only (element finder):
    :math:`\frac{1}{BO}\sum_{b,o} (y_{b,T-1,o} - \hat y_{b,T-1,o})^2`; ``mask`` is ignored."""
    return anp.mean((y[:, -1, :] - targets[:, -1, :]) ** 2)


LOSSES: dict[str, Callable] = {"masked_mse": masked_mse, "mse": mse, "last_step_mse": last_step_mse}


def get_loss(loss: str | Callable) -> Callable:
    """Return a loss function by name (``"masked_mse"``, ``"mse"``, ``"last_step_mse"``) or pass a callable through."""
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)} or a callable (y, targets, mask), got {loss!r}")
    return LOSSES[loss]
