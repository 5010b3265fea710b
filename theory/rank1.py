r"""Rank-1, linear, symmetric NM-RNN: closed forms, effective timescale, inverse problem.

Setting (``docs/theory.md`` derives everything here): rank ``K = 1``,
``phi = identity``, tied factors ``r = l`` with ``|l| = 1`` (the NM-RNN's QR
step normalises ``l``), global signal ``s(t)``. Writing ``x = kappa l + x_perp``
with ``kappa = l^T x``, the output network splits into

.. math::

    \tau_x \dot\kappa = -(1 - s(t))\,\kappa + g(t), \qquad
    \tau_x \dot x_\perp = -x_\perp + (I - l l^\top) B_x u(t),

with the input drive ``g(t) = l^T B_x u(t)``. With forward-Euler steps
(``alpha = dt / tau_x``, ``s_t`` from the *new* z, as the package simulates)

.. math::

    \kappa_t = \big(1 - \alpha (1 - s_t)\big)\,\kappa_{t-1} + \alpha\, g_t .

Every function here is a pure function of arrays (or, for the continuous
forms, of callables of time); none of them simulates a network.
:mod:`theory.compare` checks each against ``nmrnn_np`` simulations.

Array conventions: time is the *last* axis; any leading axes are batch axes
and broadcast. Times are in the units of ``tau_x`` (discrete step ``t`` is
time ``t * dt``).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import integrate

from nmrnn_np import _validation as V

__all__ = [
    "effective_timescale",
    "forget_factor",
    "latent_closed_form_discrete",
    "latent_closed_form_continuous",
    "latent_constant_signal",
    "inverse_signal_discrete",
    "inverse_signal_continuous",
    "signal_feasible",
]

ArrayOrCallable = "float | numpy.ndarray | Callable[[numpy.ndarray], numpy.ndarray]"


def _array(value, name: str, finite: bool = True) -> np.ndarray:
    """``value`` as a float64 array of its own shape (0-d stays 0-d), checked as
    :func:`nmrnn_np._validation.float_array` does (TypeError for non-numbers, ValueError for NaN/inf)."""
    arr = V.float_array(value, name, finite=finite)
    return arr.reshape(np.shape(value)) if arr.size == 1 else arr


def _alpha(alpha) -> float:
    a = V.positive_float(alpha, "alpha")
    if a > 1:
        raise ValueError(f"alpha = dt / tau_x must be in (0, 1] (forward Euler is unstable beyond), got {alpha!r}")
    return a


def _broadcastable(*shapes) -> bool:
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        return False
    return True


def _signal(s, name: str = "s") -> np.ndarray:
    arr = _array(s, name)
    if arr.ndim == 0:
        raise ValueError(f"{name} must have a time axis (last axis), got a scalar")
    return arr


def effective_timescale(s, tau_x: float) -> np.ndarray:
    r"""Effective time constant of kappa under the signal s: :math:`\tau_\mathrm{eff} = \tau_x / (1 - s)`.

    From :math:`\tau_x \dot\kappa = -(1 - s)\kappa` with constant s. ``s -> 1``
    gives an integrator (``inf``: memory is held), ``s = 0`` leaks at ``tau_x``.

    Parameters
    ----------
    s : array_like
        Signal values; must lie in [0, 1] (the NM-RNN emits s in (0, 1)).
    tau_x : float
        Time constant of the output network.

    Returns
    -------
    ndarray
        ``tau_x / (1 - s)``, ``inf`` where ``s == 1``.
    """
    tau_x = V.positive_float(tau_x, "tau_x")
    s = _array(s, "s")
    if np.any((s < 0) | (s > 1)):
        raise ValueError("s must lie in [0, 1]")
    with np.errstate(divide="ignore"):
        return np.where(s == 1.0, np.inf, tau_x / np.where(s == 1.0, 0.5, 1.0 - s))


def forget_factor(s, alpha: float) -> np.ndarray:
    r"""Per-step multiplier of kappa: :math:`f_t = 1 - \alpha (1 - s_t)`.

    With ``s`` in [0, 1], ``f`` lies in ``[1 - alpha, 1]``: the discrete
    counterpart of :func:`effective_timescale`
    (:math:`f = 1 - \mathrm{d}t/\tau_\mathrm{eff}`), and the LSTM forget gate
    of :mod:`theory.lstm_gate`.
    """
    alpha = _alpha(alpha)
    return 1.0 - alpha * (1.0 - _array(s, "s"))


def latent_closed_form_discrete(s, kappa0, alpha: float, g=None) -> np.ndarray:
    r"""kappa_1..kappa_T of the Euler-discretised rank-1 linear symmetric network, in closed form.

    .. math::

        \kappa_t = \Phi_{t,0}\,\kappa_0 + \alpha \sum_{k=1}^{t} \Phi_{t,k}\, g_k, \qquad
        \Phi_{t,k} = \prod_{j=k+1}^{t} \big(1 - \alpha (1 - s_j)\big),

    the solution of :math:`\kappa_t = (1 - \alpha(1 - s_t))\kappa_{t-1} + \alpha g_t`.
    Without input (``g=None``) it is the product :math:`\kappa_t = \kappa_0 \prod_{j \le t} f_j`.

    Assumptions: rank 1, phi = identity, r = l with |l| = 1, global signal,
    ``s_t`` the signal used at step t (the package's order: s from the new z,
    applied to the old x). The products are formed explicitly (a cumulative
    product of a triangular table, O(T^2)), not by running the recursion.

    Parameters
    ----------
    s : array_like (..., T)
        Signal at steps 1..T.
    kappa0 : float or array_like (...)
        ``l^T x_0``.
    alpha : float
        ``dt / tau_x`` in (0, 1].
    g : array_like (..., T), optional
        Input drive ``l^T B_x u_t``; ``None`` means no input.

    Returns
    -------
    ndarray (..., T)
    """
    alpha = _alpha(alpha)
    s = _signal(s)
    f = 1.0 - alpha * (1.0 - s)
    T = s.shape[-1]
    kappa0 = _array(kappa0, "kappa0")
    if kappa0.ndim and not _broadcastable(kappa0.shape, s.shape[:-1]):
        raise ValueError(f"kappa0 must be a scalar or broadcast against s.shape[:-1] = {s.shape[:-1]}, "
                         f"got {kappa0.shape}")
    # table[..., k, t] = f_t for t > k, 1 otherwise (k = 0..T, t = 1..T); its cumulative
    # product along t is Phi_{t,k} for t >= k.
    k_idx = np.arange(T + 1)[:, None]
    t_idx = np.arange(1, T + 1)[None, :]
    table = np.where(t_idx > k_idx, f[..., None, :], 1.0)
    phi = np.cumprod(table, axis=-1)                       # (..., T+1, T): Phi_{t,k}
    kappa = phi[..., 0, :] * kappa0[..., None] if kappa0.ndim else phi[..., 0, :] * kappa0
    if g is not None:
        g = _array(g, "g")
        if g.ndim == 0 or g.shape[-1] != T or not _broadcastable(g.shape, s.shape):
            raise ValueError(f"g must have T={T} steps on its last axis and broadcast against s {s.shape}, "
                             f"got shape {g.shape}")
        g = np.broadcast_to(g, np.broadcast_shapes(g.shape, s.shape))
        # Phi_{t,k} g_k summed over k = 1..t (zero for k > t)
        causal = t_idx >= np.arange(1, T + 1)[:, None]     # (k, t)
        kappa = kappa + alpha * np.einsum("...kt,...k->...t", np.where(causal, phi[..., 1:, :], 0.0), g)
    return kappa


def latent_constant_signal(t, kappa0, s: float, tau_x: float) -> np.ndarray:
    r"""kappa(t) for a constant signal and no input: :math:`\kappa_0 \exp(-(1 - s) t / \tau_x)`.

    The curve of the study's Figure 2A: decay at the effective time constant
    :math:`\tau_x / (1 - s)` (:func:`effective_timescale`).
    """
    tau_x = V.positive_float(tau_x, "tau_x")
    s = float(s)
    if not 0.0 <= s <= 1.0:
        raise ValueError(f"s must lie in [0, 1], got {s}")
    return _array(kappa0, "kappa0") * np.exp(-(1.0 - s) * _array(t, "t") / tau_x)


def _as_time_function(value, name: str) -> Callable[[np.ndarray], np.ndarray]:
    if callable(value):
        return value
    const = V.real(value, name, expected="a finite number or a callable of t")
    return lambda t: np.full(np.shape(t), const)


def latent_closed_form_continuous(t, kappa0: float, tau_x: float, s, *, s_integral=None, g=None,
                                  quad_tol: float = 1e-12) -> np.ndarray:
    r"""kappa(t) of the continuous-time rank-1 linear symmetric network, in closed form.

    .. math::

        \kappa(t) = \kappa_0\, e^{-\Lambda(t, 0)}
                    + \frac{1}{\tau_x}\int_0^t e^{-\Lambda(t, t')}\, g(t')\,\mathrm{d}t', \qquad
        \Lambda(t, t') = \frac{1}{\tau_x}\int_{t'}^{t} \big(1 - s(v)\big)\,\mathrm{d}v,

    the solution of :math:`\tau_x \dot\kappa = -(1 - s)\kappa + g`, ``kappa(0) = kappa0``.

    Assumptions: as :func:`latent_closed_form_discrete`; s and g integrable.

    Parameters
    ----------
    t : array_like
        Times >= 0 (units of ``tau_x``).
    kappa0 : float
    tau_x : float
    s : float or callable
        Constant signal or vectorised function ``s(t)``.
    s_integral : callable, optional
        :math:`S(t) = \int_0^t s`. When omitted it is computed by adaptive
        quadrature (:func:`scipy.integrate.quad`).
    g : float or callable, optional
        Input drive ``l^T B_x u(t)``; the convolution integral is always
        computed by quadrature.
    quad_tol : float
        Absolute and relative tolerance handed to ``quad``.

    Returns
    -------
    ndarray, shape of ``t``
    """
    tau_x = V.positive_float(tau_x, "tau_x")
    t = _array(t, "t")
    if np.any(t < 0):
        raise ValueError("t must be >= 0")
    s_fun = _as_time_function(s, "s")
    kappa0 = V.real(kappa0, "kappa0")
    quad_tol = V.positive_float(quad_tol, "quad_tol")
    if s_integral is not None and not callable(s_integral):
        raise TypeError(f"s_integral must be a callable S(t) or None, got {s_integral!r}")
    g_fun = None if g is None else _as_time_function(g, "g")
    if s_integral is None:
        if callable(s):
            def S(v):
                return np.array([integrate.quad(lambda w: float(s_fun(np.asarray(w))), 0.0, float(vi),
                                                epsabs=quad_tol, epsrel=quad_tol, limit=200)[0]
                                 for vi in np.ravel(v)]).reshape(np.shape(v))
        else:
            def S(v):
                return float(s) * np.asarray(v, dtype=np.float64)
    else:
        S = s_integral

    def lam(t1, t0):
        return ((t1 - t0) - (S(t1) - S(t0))) / tau_x

    kappa = kappa0 * np.exp(-lam(t, np.zeros_like(t)))
    if g is None:
        return kappa
    forced = np.empty_like(t)
    for idx, ti in np.ndenumerate(t):
        St = S(np.asarray(ti))
        integrand = (lambda w: float(np.exp(-(((ti - w) - (St - S(np.asarray(w)))) / tau_x))
                                     * g_fun(np.asarray(w))))
        forced[idx] = integrate.quad(integrand, 0.0, float(ti), epsabs=quad_tol, epsrel=quad_tol,
                                     limit=200)[0] / tau_x
    return kappa + forced


def inverse_signal_discrete(kappa, alpha: float, *, kappa0=None, g=None) -> np.ndarray:
    r"""The signal that makes the Euler-discretised kappa follow a given trajectory.

    Solving :math:`\kappa_t = (1 - \alpha(1 - s_t))\kappa_{t-1} + \alpha g_t` for s_t:

    .. math::

        s_t = 1 - \frac{1}{\alpha}\Big(1 - \frac{\kappa_t - \alpha g_t}{\kappa_{t-1}}\Big),

    without input :math:`s_t = 1 - (1 - \kappa_t/\kappa_{t-1})/\alpha`. It is
    feasible for an NM-RNN (s in (0, 1)) iff
    :math:`1 - \alpha < (\kappa_t - \alpha g_t)/\kappa_{t-1} < 1`: without
    input, kappa keeps its sign and shrinks toward 0, by less than a fraction
    alpha per step (:func:`signal_feasible` tests the result).

    Parameters
    ----------
    kappa : array_like (..., T)
        The wanted kappa_1..kappa_T (or kappa_0..kappa_{T-1} then s_1.. when
        ``kappa0`` is omitted, see Returns). Must not vanish where it divides.
    alpha : float
        ``dt / tau_x``.
    kappa0 : float or array_like (...), optional
        kappa_0; when given, the result has T entries (s_1..s_T).
    g : array_like, optional
        Input drive at the same steps as the returned s.

    Returns
    -------
    ndarray (..., T) if ``kappa0`` is given, else (..., T - 1)
        s at every step whose previous kappa is known.
    """
    alpha = _alpha(alpha)
    kappa = _signal(kappa, "kappa")
    if kappa0 is not None:
        k0 = _array(kappa0, "kappa0")
        if not _broadcastable(k0.shape + (1,), kappa.shape[:-1] + (1,)) or k0.ndim > kappa.ndim - 1:
            raise ValueError(f"kappa0 must be a scalar or of shape kappa.shape[:-1] = {kappa.shape[:-1]}, "
                             f"got {k0.shape}")
        kappa = np.concatenate([np.broadcast_to(k0[..., None], kappa.shape[:-1] + (1,)), kappa], axis=-1)
    prev, new = kappa[..., :-1], kappa[..., 1:]
    if np.any(prev == 0):
        raise ValueError("kappa (or kappa0) vanishes at a step where it divides: the inverse problem has no "
                         "unique s there")
    if g is not None:
        g = _array(g, "g")
        if not _broadcastable(g.shape, new.shape):
            raise ValueError(f"g must broadcast against the returned s {new.shape}, got {g.shape}")
        new = new - alpha * g
    return 1.0 - (1.0 - new / prev) / alpha


def inverse_signal_continuous(kappa, dkappa, tau_x: float, g=None) -> np.ndarray:
    r"""The signal that makes the continuous kappa follow a given trajectory.

    Solving :math:`\tau_x \dot\kappa = -(1 - s)\kappa + g` for s:

    .. math:: s(t) = 1 + \frac{\tau_x \dot\kappa(t) - g(t)}{\kappa(t)},

    without input :math:`s = 1 + \tau_x \dot\kappa/\kappa`. Feasible (s in
    (0, 1)) without input iff :math:`-1/\tau_x < \dot\kappa/\kappa < 0`:
    kappa shrinks toward 0 at a relative rate below :math:`1/\tau_x`.

    Parameters
    ----------
    kappa, dkappa : array_like
        kappa(t) and its time derivative at the same times (kappa != 0).
    tau_x : float
    g : array_like, optional
        Input drive at those times.
    """
    tau_x = V.positive_float(tau_x, "tau_x")
    kappa = _array(kappa, "kappa")
    dkappa = _array(dkappa, "dkappa")
    if np.any(kappa == 0):
        raise ValueError("kappa must not vanish: the inverse problem has no unique s where kappa = 0")
    num = tau_x * dkappa
    if g is not None:
        num = num - _array(g, "g")
    return 1.0 + num / kappa


def signal_feasible(s, *, closed: bool = False) -> np.ndarray:
    """Where a required signal can be emitted by an NM-RNN: ``0 < s < 1`` (``closed``: ``0 <= s <= 1``).

    The sigmoid output never reaches 0 or 1, so a requirement ``s = 1``
    (holding kappa exactly) is only approached; ``closed=True`` accepts it.
    """
    s = _array(s, "s", finite=False)
    if closed:
        return (s >= 0.0) & (s <= 1.0)
    return (s > 0.0) & (s < 1.0)
