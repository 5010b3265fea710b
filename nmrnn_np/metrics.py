"""Task metrics: masked L2 and percent correct for the four-task set.

Pure functions of NumPy arrays shaped ``(B, T, channels)``. Each docstring
states the exact criterion. Bad shapes raise :class:`ValueError` naming the
argument.
"""
from __future__ import annotations

import numpy as np

from ._validation import choice, float_array, positive_float, real
from .losses import masked_mse

__all__ = [
    "masked_l2",
    "decode_angle",
    "circular_distance",
    "fixation_off_step",
    "trial_correct",
    "percent_correct",
    "DECODE_RULES",
]

DECODE_RULES = ("arctan2", "authors")
"""``"arctan2"``: ``arctan2(sin, cos)`` (default). ``"authors"``: ``arctan(sin / cos)``."""


def _batch3(value, name: str, finite: bool = True) -> np.ndarray:
    arr = float_array(value, name, ndim=3, finite=finite)
    if 0 in arr.shape:   # an empty batch would give a 0/0 score with a RuntimeWarning
        raise ValueError(f"{name} must be non-empty (B, T, channels), got shape {arr.shape}")
    return arr


def masked_l2(outputs, targets, mask=None) -> float:
    """Masked mean squared error.

    .. math::

        L = \\frac{\\sum_{b,t,c} m_{btc} (y_{btc} - y^*_{btc})^2}{\\sum_{b,t,c} m_{btc}}

    with the mask broadcast to the shape of ``outputs`` first.

    Parameters
    ----------
    outputs, targets : array_like, shape (B, T, O)
    mask : array_like, shape (B, T), (B, T, 1) or (B, T, O), optional
        Non-negative weights (the shapes ``model.loss`` accepts); ``None``
        means all ones (plain mean).

    Returns
    -------
    float

    Notes
    -----
    The authors' loss is ``sum(mask * (y - t)**2) / sum(mask)`` without the
    broadcast in the denominator. The two agree whenever the mask has the
    full shape (their multitask mask is ``ones_like(targets)``) or ``O = 1``
    (Measure-Wait-Go, element finder); with a ``(B, T, 1)`` mask and
    ``O > 1`` the authors' value is ``O`` times this one.
    """
    y = _batch3(outputs, "outputs", finite=False)
    t = _batch3(targets, "targets")
    if t.shape != y.shape:
        raise ValueError(f"targets must have the shape of outputs {y.shape}, got {t.shape}")
    if mask is None:
        return float(masked_mse(y, t))
    m = float_array(mask, "mask", ndim=(2, 3))
    if m.ndim == 2:   # (B, T): one weight per trial and step, as model.loss accepts
        m = m[:, :, None]
    if m.shape[:2] != y.shape[:2] or m.shape[2] not in (1, y.shape[2]):
        raise ValueError(f"mask must have shape {y.shape[:2]}, {y.shape[:2] + (1,)} or {y.shape}, got {m.shape}")
    if np.any(m < 0):
        raise ValueError("mask must be non-negative")
    m = np.broadcast_to(m, y.shape)
    if m.sum() <= 0:
        raise ValueError("mask selects no entries (its sum is 0)")
    return float(masked_mse(y, t, m))   # the training loss's formula, after the checks


def decode_angle(sin, cos, rule: str = "arctan2") -> np.ndarray:
    """Angle read out from a (sin, cos) pair, ignoring its amplitude.

    Parameters
    ----------
    sin, cos : array_like (same shape)
    rule : {"arctan2", "authors"}
        ``"arctan2"``: ``arctan2(sin, cos)`` in ``(-pi, pi]`` -- the full
        angle. ``"authors"``: ``arctan(sin / cos)`` in ``[-pi/2, pi/2]``, as in
        the official NM-RNN code: it is only defined modulo pi (opposite
        directions decode to the same angle) and ``0/0`` gives NaN.

    Returns
    -------
    ndarray
    """
    choice(rule, "rule", DECODE_RULES)
    s = float_array(sin, "sin", finite=False)
    c = float_array(cos, "cos", finite=False)
    if s.shape != c.shape:
        raise ValueError(f"sin and cos must have the same shape, got {s.shape} and {c.shape}")
    if rule == "arctan2":
        return np.arctan2(s, c)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.arctan(s / c)


def circular_distance(a, b) -> np.ndarray:
    """Distance between angles on the circle, in ``[0, pi]``.

    ``d = (a - b) mod 2 pi``; returns ``min(d, 2 pi - d)``. NaN propagates;
    infinite angles raise :class:`ValueError`.
    """
    a = float_array(a, "a", finite=False)
    b = float_array(b, "b", finite=False)
    for arr, name in ((a, "a"), (b, "b")):
        if np.isinf(arr).any():   # NaN (a diverged output) propagates; an infinite angle has no position
            raise ValueError(f"{name} contains infinite values (angles must be finite or NaN)")
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"a and b must have broadcastable shapes, got {a.shape} and {b.shape}") from None
    d = np.mod(a - b, 2 * np.pi)
    return np.minimum(d, 2 * np.pi - d)


def fixation_off_step(inputs, threshold: float = 0.5) -> np.ndarray:
    """First step at which the fixation input (channel 0) is below ``threshold``.

    Parameters
    ----------
    inputs : array_like, shape (B, T, U)
    threshold : float

    Returns
    -------
    ndarray of int, shape (B,)
        ``T`` for trials whose fixation input never drops (the authors'
        ``argmax`` would give 0 there, i.e. no fixation check at all).
    """
    threshold = real(threshold, "threshold")
    u = _batch3(inputs, "inputs")
    if u.shape[2] < 1:
        raise ValueError(f"inputs must have at least one channel (channel 0 is the fixation input), got {u.shape}")
    off = u[:, :, 0] < threshold
    return np.where(off.any(axis=1), off.argmax(axis=1), u.shape[1]).astype(np.int64)


def trial_correct(inputs, targets, outputs, rule: str = "arctan2", tolerance: float = np.pi / 10,
                  fixation_threshold: float = 0.5) -> np.ndarray:
    """Per-trial correctness on the four-task set.

    A trial is correct iff both

    1. the fixation output (``outputs[..., 0]``) is ``> fixation_threshold``
       at every step ``t < fix_off``, where ``fix_off`` is the first step at
       which the fixation input ``inputs[..., 0]`` is ``< 0.5``
       (:func:`fixation_off_step`); and
    2. the angle decoded from the response channels at the **last** step,
       ``decode_angle(outputs[:, -1, 1], outputs[:, -1, 2], rule)``, is
       within ``tolerance`` (strictly, circular distance) of the angle
       decoded the same way from ``targets[:, -1, 1:3]``.

    Nothing is required of the fixation output after fix-off (as in the
    authors' code). NaN outputs make a trial wrong.

    Parameters
    ----------
    inputs : array_like, shape (B, T, U)
        Channel 0 is the fixation input.
    targets, outputs : array_like, shape (B, T, 3)
        ``[fixation, sin, cos]``.
    rule : {"arctan2", "authors"}
        Angle decoding, see :func:`decode_angle`. ``"authors"`` reproduces
        the official code's ``arctan(sin / cos)``, under which a response
        pointing the opposite way is scored correct; use it only to compare
        with published numbers.
    tolerance : float
        Angular tolerance (pi / 10).
    fixation_threshold : float
        Fixation output threshold (0.5).

    Returns
    -------
    ndarray of bool, shape (B,)
    """
    choice(rule, "rule", DECODE_RULES)
    tolerance = positive_float(tolerance, "tolerance")
    fixation_threshold = real(fixation_threshold, "fixation_threshold")
    u = _batch3(inputs, "inputs")
    t = _batch3(targets, "targets")
    y = _batch3(outputs, "outputs", finite=False)
    if t.shape[2] != 3:
        raise ValueError(f"targets must have 3 channels [fixation, sin, cos], got shape {t.shape}")
    if y.shape != t.shape:
        raise ValueError(f"outputs must have the shape of targets {t.shape}, got {y.shape}")
    if u.shape[:2] != t.shape[:2]:
        raise ValueError(f"inputs must have shape {t.shape[:2] + ('U',)} (same B and T as targets), got {u.shape}")
    T = t.shape[1]
    fix_off = fixation_off_step(u)
    before = np.arange(T)[None, :] < fix_off[:, None]
    with np.errstate(invalid="ignore"):
        held = np.all(~before | (y[:, :, 0] > fixation_threshold), axis=1)
    target_angle = decode_angle(t[:, -1, 1], t[:, -1, 2], rule)
    output_angle = decode_angle(y[:, -1, 1], y[:, -1, 2], rule)
    with np.errstate(invalid="ignore"):
        close = circular_distance(target_angle, output_angle) < tolerance
    return held & close


def percent_correct(inputs, targets, outputs, rule: str = "arctan2", tolerance: float = np.pi / 10,
                    fixation_threshold: float = 0.5) -> float:
    """Fraction of correct trials, in ``[0, 1]`` (see :func:`trial_correct` for the criterion).

    Parameters
    ----------
    inputs : array_like, shape (B, T, U)
    targets, outputs : array_like, shape (B, T, 3)
    rule : {"arctan2", "authors"}
    tolerance : float
    fixation_threshold : float

    Returns
    -------
    float
        Despite the name (kept from the authors' code) a fraction, not a
        percentage.
    """
    return float(np.mean(trial_correct(inputs, targets, outputs, rule=rule, tolerance=tolerance,
                                       fixation_threshold=fixation_threshold)))
