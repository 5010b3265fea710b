r"""Prediction 3: the signal a rank-1 linear symmetric NM-RNN needs to emit a timing ramp.

Measure-Wait-Go asks for an output that holds ``y_go`` until the go cue, then
ramps linearly to ``y_end`` over the measured interval ``T_I``, then holds.
With ``y = c kappa + d_eff`` (``c = C l``; ``d_eff`` the readout offset, the
bias d once the orthogonal, input-driven part ``C x_perp`` has decayed) and
no input after the go pulse, the inverse problem of :mod:`theory.rank1` gives
on the ramp

.. math::

    s(t) = 1 - \frac{\tau_x}{t^* - t}, \qquad
    t^* = t_{go} + T_I\,\frac{d_\mathrm{eff} - y_{go}}{y_{end} - y_{go}},

the time at which the extended ramp would reach ``d_eff`` (where kappa would be
0); in Euler steps of size dt, :math:`s_t = 1 - \tau_x / (t^* - t + \mathrm{d}t)`.
Just after go :math:`1 - s = \tau_x (y_{end} - y_{go}) / ((d_\mathrm{eff} - y_{go}) T_I)`,
proportional to 1/T_I, in both time pictures. While y is held, s must be 1.

Feasible (0 < s < 1 over the whole ramp) iff ``d_eff`` lies beyond ``y_end``
(:math:`\rho = (d_\mathrm{eff} - y_{end}) / (y_{end} - y_{go}) > 0`) and
:math:`T_I > \tau_x / \rho` (discrete: :math:`(\tau_x - \mathrm{d}t)/\rho`).
None of this depends on c: the hyperbola is fixed by the task and ``d_eff``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from nmrnn_np import _validation as V

from .rank1 import _array

__all__ = [
    "ReadoutConstants",
    "readout_constants",
    "ramp_t_star",
    "ramp_rho",
    "ramp_signal",
    "go_signal_gap",
    "ramp_min_interval",
    "ramp_kappa",
    "ramp_forget_product",
    "ramp_rounding_rmse",
    "ramp_signal_with_transients",
]


@dataclass(frozen=True)
class ReadoutConstants:
    """Readout of a rank-1 NM-RNN in latent coordinates: ``y = c kappa + C x_perp + d``.

    Attributes
    ----------
    c : float
        ``C l`` (for the chosen output).
    d_eff : float
        The offset the output relaxes to when kappa = 0 and x_perp has decayed:
        the readout bias d (0 without bias).
    l : ndarray (N,)
        The unit left factor (after the model's QR step).
    """

    c: float
    d_eff: float
    l: np.ndarray


def _check_rank1(model) -> None:
    from nmrnn_np.models.lowrank import NMRNN
    if not isinstance(model, NMRNN):
        raise TypeError(f"model must be an nmrnn_np NMRNN, got {type(model).__name__}")
    if model.K != 1:
        raise ValueError(f"model must have rank K=1 for the rank-1 theory, got K={model.K}")
    if not model.orthonormalize:
        raise ValueError("model must have orthonormalize=True (|l| = 1) for the rank-1 theory")


def readout_constants(model, params: Mapping[str, np.ndarray], output: int = 0) -> ReadoutConstants:
    """The constants of prediction 3 read off a rank-1 NM-RNN: ``c = C l``, ``d_eff = d``.

    Parameters
    ----------
    model : nmrnn_np.NMRNN with K = 1 and orthonormalize=True
    params : dict of arrays
    output : int
        Which output channel (default 0, the ramp).
    """
    _check_rank1(model)
    output = V.positive_int(output, "output", minimum=0)
    if output >= model.O:
        raise ValueError(f"output must be < O={model.O}, got {output}")
    p = model.prepare(model.check_params(params))
    l = np.asarray(p["L"])[:, 0]
    c = float(np.asarray(p["C"])[output] @ l)
    d = float(np.asarray(p["d"])[output]) if model.readout_bias else 0.0
    return ReadoutConstants(c=c, d_eff=d, l=l)


def _ramp_args(interval, y_go, y_end, d_eff):
    interval = _array(interval, "interval")
    if np.any(interval <= 0):
        raise ValueError("interval must be > 0")
    y_go, y_end, d_eff = V.real(y_go, "y_go"), V.real(y_end, "y_end"), V.real(d_eff, "d_eff")
    if y_go == y_end:
        raise ValueError("y_go and y_end must differ (a flat target is held with s = 1, not ramped)")
    return interval, y_go, y_end, d_eff


def ramp_t_star(t_go, interval, y_go: float, y_end: float, d_eff: float) -> np.ndarray:
    r"""Where the extended ramp meets ``d_eff`` (kappa = 0).

    .. math:: t^* = t_{go} + T_I\,\frac{d_\mathrm{eff} - y_{go}}{y_{end} - y_{go}}
    """
    interval, y_go, y_end, d_eff = _ramp_args(interval, y_go, y_end, d_eff)
    return _array(t_go, "t_go") + interval * (d_eff - y_go) / (y_end - y_go)


def ramp_rho(y_go: float, y_end: float, d_eff: float) -> float:
    r""":math:`\rho = (d_\mathrm{eff} - y_{end}) / (y_{end} - y_{go})`: how far beyond the ramp's end
    ``d_eff`` lies, in ramp heights. Prediction 3 is feasible only when rho > 0."""
    _, y_go, y_end, d_eff = _ramp_args(1.0, y_go, y_end, d_eff)
    return (d_eff - y_end) / (y_end - y_go)


def ramp_signal(t, t_go, interval, *, y_go: float, y_end: float, d_eff: float, tau_x: float,
                dt: float | None = None, outside: str = "nan") -> np.ndarray:
    r"""Prediction 3: the signal that makes ``y = c kappa + d_eff`` ramp linearly after go.

    Continuous (``dt=None``), for :math:`t_{go} < t \le t_{go} + T_I`:

    .. math:: s(t) = 1 - \frac{\tau_x}{t^* - t};

    Euler steps of size dt (s_t is applied to the step from t - dt to t):

    .. math:: s_t = 1 - \frac{\tau_x}{t^* - t + \mathrm{d}t}.

    Assumptions: rank 1, linear, symmetric, |l| = 1; no input after the go
    pulse; ``C x_perp`` negligible (``d_eff`` constant); the output follows
    the target exactly. c does not enter.

    Parameters
    ----------
    t : array_like
        Times (broadcast against ``t_go`` and ``interval``).
    t_go, interval : array_like
        Go time and ramp duration T_I.
    y_go, y_end : float
        Output before and after the ramp.
    d_eff : float
        Readout offset (:func:`readout_constants`).
    tau_x : float
    dt : float, optional
        Euler step; ``None`` for continuous time.
    outside : {"nan", "hold"}
        What to return off the ramp: NaN, or 1 (holding a constant output
        needs s = 1; at input pulses that is not what the network needs).

    Returns
    -------
    ndarray
        May be <= 0 where the ramp is infeasible (see :func:`ramp_min_interval`).
    """
    tau_x = V.positive_float(tau_x, "tau_x")
    V.choice(outside, "outside", ("nan", "hold"))
    t = _array(t, "t")
    t_go = _array(t_go, "t_go")
    t_star = ramp_t_star(t_go, interval, y_go, y_end, d_eff)
    shift = 0.0 if dt is None else V.positive_float(dt, "dt")
    interval = _array(interval, "interval")
    on_ramp = (t > t_go) & (t <= t_go + interval)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = 1.0 - tau_x / (t_star - t + shift)
    return np.where(on_ramp, s, np.nan if outside == "nan" else 1.0)


def go_signal_gap(interval, *, y_go: float, y_end: float, d_eff: float, tau_x: float) -> np.ndarray:
    r""":math:`1 - s` just after go: :math:`\tau_x (y_{end} - y_{go}) / ((d_\mathrm{eff} - y_{go})\,T_I)`.

    Continuous: :math:`1 - s(t_{go}^+)`; discrete: :math:`1 - s_{t_{go} + \mathrm{d}t}`
    (the first step free of the go pulse); the two are equal. Linear in
    1/T_I with slope :math:`\tau_x / (1 + \rho)`.
    """
    interval, y_go, y_end, d_eff = _ramp_args(interval, y_go, y_end, d_eff)
    tau_x = V.positive_float(tau_x, "tau_x")
    return tau_x * (y_end - y_go) / ((d_eff - y_go) * interval)


def ramp_min_interval(*, y_go: float, y_end: float, d_eff: float, tau_x: float, dt: float | None = None) -> float:
    r"""Shortest interval whose ramp needs only s in (0, 1): :math:`T_I > (\tau_x - \mathrm{d}t)/\rho`.

    s decreases along the ramp (the hyperbola approaches its pole at t*), so
    the binding constraint is s > 0 at the ramp's end. Continuous time: dt = 0.
    Returns ``inf`` if rho <= 0 (``d_eff`` not beyond ``y_end``: kappa would
    have to grow, s > 1, for every interval).
    """
    tau_x = V.positive_float(tau_x, "tau_x")
    rho = ramp_rho(y_go, y_end, d_eff)
    if rho <= 0:
        return float("inf")
    shift = 0.0 if dt is None else V.positive_float(dt, "dt")
    return max((tau_x - shift) / rho, 0.0)


def ramp_forget_product(*, y_go: float, y_end: float, d_eff: float) -> float:
    r"""Product of the forget gates over the ramp, :math:`\rho/(1+\rho)`.

    .. math:: \prod_t f_t = \frac{d_\mathrm{eff} - y_{end}}{d_\mathrm{eff} - y_{go}} = \frac{\rho}{1+\rho}

    Whatever the shape of s, taking ``y = c kappa + d_eff`` from ``y_go`` to
    ``y_end`` without input needs ``kappa_end / kappa_go`` equal to this
    ratio, i.e. :math:`\prod_{t} (1 - \alpha(1 - s_t))` over the ramp steps
    (continuous: :math:`\exp(-\int (1 - s)\,dt/\tau_x)`). It does not
    depend on T_I: a longer interval spreads the same total decay over more
    steps, so the mean of :math:`-\log f_t` is ``-log(rho/(1+rho)) / T_I``.
    The hyperbola is the one way of spending it that keeps the ramp linear.
    Returns NaN when the ratio is not in (0, 1) (no signal in (0, 1) can do it).
    """
    _, y_go, y_end, d_eff = _ramp_args(1.0, y_go, y_end, d_eff)
    ratio = (d_eff - y_end) / (d_eff - y_go) if d_eff != y_go else float("nan")
    return float(ratio) if 0.0 < ratio < 1.0 else float("nan")


def ramp_rounding_rmse(interval: int, *, y_go: float, y_end: float, d_eff: float, tau_x: float,
                       dt: float = 1.0, fraction: float = 0.5) -> float:
    r"""RMSE between the discrete hyperbola and a signal that rounds its return to the hold value.

    Prediction 3 asks for :math:`s_t = 1 - \tau_x/(t^* - t + \mathrm{d}t)` on the
    ramp and s = 1 right after it: a jump of :math:`\tau_x/(\rho T_I + \mathrm{d}t)`
    at the ramp's end. A signal that varies smoothly on the ramp's timescale
    (as the NM subnetwork's, tau_z = 100) cannot jump; the reference here
    follows the hyperbola but blends linearly toward 1 over the last
    ``fraction`` of the ramp steps:
    :math:`\tilde s_t = s_t + w_t (1 - s_t)` with ``w`` rising from 0 to 1.
    The result is the RMSE over the ramp steps of :math:`\tilde s - s`: the
    error a network pays for rounding that corner and nothing else. The tests
    use it (``fraction=0.5``) as the tolerance for trained networks
    (``docs/theory.md``).
    """
    interval = V.positive_int(interval, "interval")
    fraction = V.real(fraction, "fraction", 0.0, 1.0, open_min=True)
    dt = V.positive_float(dt, "dt")
    t = np.arange(1, interval + 1) * dt
    s = ramp_signal(t, 0.0, interval * dt, y_go=y_go, y_end=y_end, d_eff=d_eff, tau_x=tau_x, dt=dt)
    n = max(int(round(fraction * interval)), 1)
    w = np.zeros(interval)
    w[-n:] = np.arange(1, n + 1) / n
    return float(np.sqrt(np.mean((w * (1.0 - s)) ** 2)))


def ramp_kappa(t, t_go, interval, *, y_go: float, y_end: float, c: float, d_eff: float) -> np.ndarray:
    r"""The latent trajectory behind the target: :math:`\kappa^*(t) = (y^*(t) - d_\mathrm{eff}) / c`,
    with :math:`y^* = y_{go} + (y_{end} - y_{go})\,\mathrm{clip}((t - t_{go})/T_I, 0, 1)`."""
    interval, y_go, y_end, d_eff = _ramp_args(interval, y_go, y_end, d_eff)
    c = V.real(c, "c")
    if c == 0:
        raise ValueError("c = C l must be non-zero (the output must see kappa)")
    frac = np.clip((_array(t, "t") - _array(t_go, "t_go")) / interval, 0.0, 1.0)
    return (y_go + (y_end - y_go) * frac - d_eff) / float(c)


def ramp_signal_with_transients(model, params: Mapping[str, np.ndarray], inputs, targets, *,
                                x0=None, output: int = 0) -> np.ndarray:
    r"""Prediction 3 without the "C x_perp negligible" assumption (exact inverse for the target).

    x_perp does not depend on s (it obeys
    :math:`\tau_x \dot x_\perp = -x_\perp + (I - l l^\top) B_x u`), so its
    readout :math:`e_t = C x_{\perp,t}` is known from the inputs. The kappa
    that makes the output equal the target is
    :math:`\kappa^*_t = (y^*_t - d - e_t)/c`, and
    :func:`theory.rank1.inverse_signal_discrete` with the input drive
    :math:`g_t = l^\top B_x u_t` gives the needed s_t for t = 1..T-1 (row t of
    the result is NaN at t = 0, whose previous kappa is the initial state, not
    a target).

    Parameters
    ----------
    model : rank-1, linear, tied NMRNN
    params : dict of arrays
    inputs : array (B, T, U)
    targets : array (B, T, O)
    x0 : array (N,) or (B, N), optional
        Initial x (default 0.1 everywhere, as ``simulate``).
    output : int

    Returns
    -------
    ndarray (B, T)
    """
    _check_rank1(model)
    if model.phi != "linear" or not model.tied:
        raise ValueError("ramp_signal_with_transients needs a linear (phi='linear'), tied NMRNN")
    consts = readout_constants(model, params, output)
    p = model.prepare(model.check_params(params))
    inputs = model.check_inputs(inputs)
    B, T, _ = inputs.shape
    targets = V.float_array(targets, "targets", shape=(B, T, model.O))
    x = model.initial_states(B, **({} if x0 is None else {"x0": x0}))["x0"]
    l = consts.l
    drive = inputs[:, :, :model.U_x] @ np.asarray(p["B_x"]).T           # (B, T, N)
    g = drive @ l
    perp_drive = drive - g[..., None] * l
    a = model.alpha_x
    xp = x - (x @ l)[:, None] * l
    e = np.empty((B, T))
    C = np.asarray(p["C"])[output]
    for t in range(T):
        xp = (1.0 - a) * xp + a * perp_drive[:, t]
        e[:, t] = xp @ C
    if consts.c == 0:
        raise ValueError("c = C l is zero: the output does not see kappa")
    kappa = (targets[:, :, output] - consts.d_eff - e) / consts.c
    s = np.full((B, T), np.nan)
    scale = model.recurrent_scale
    with np.errstate(divide="ignore", invalid="ignore"):
        s[:, 1:] = (1.0 - (1.0 - (kappa[:, 1:] - a * g[:, 1:]) / kappa[:, :-1]) / a) / scale
    return s
