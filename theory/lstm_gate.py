r"""Prediction 4: the NM-RNN's signal as an LSTM forget gate.

Linear, symmetric, |l| = 1 (rank 1, or rank K with orthonormal L and one
signal per component): the latent state kappa = L^T x is an LSTM cell state,

.. math::

    c_t = f_t \odot c_{t-1} + i_t \odot g_t, \qquad
    f_t = 1 - \alpha (1 - s_t) \in [1 - \alpha, 1], \quad i_t = \alpha, \quad
    g_t = L^\top B_x u_t,

with ``c_t = kappa_t`` exactly (no output gate, no tanh on the candidate: the
candidate is the linear input drive).

With phi = tanh (or untied R) the exact latent update for orthonormal L is

.. math::

    \kappa_t = (1 - \alpha)\,\kappa_{t-1} + \alpha\, s_t \odot \big(R^\top \tanh(x_{t-1})\big)
               + \alpha\, L^\top B_x u_t ,

i.e. the *leak* is a fixed forget gate 1 - alpha and s multiplies (gates) the
recurrent candidate :math:`R^\top\tanh(x_{t-1})` like an input gate. Only when
:math:`R^\top \tanh(x) \approx \kappa` (small activity, tied factors) does it
collapse back to the forget-gate form; :func:`gate_mapping_mismatch` measures
how far it is along real trajectories.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from nmrnn_np.models import Trajectory

from .rank1 import _alpha, _array

__all__ = [
    "GateSequences",
    "forget_gate_from_signal",
    "signal_from_forget_gate",
    "gated_recurrence",
    "gates_from_run",
    "latent_update",
    "gate_mapping_mismatch",
]


@dataclass(frozen=True)
class GateSequences:
    """LSTM-form gate sequences of an NM-RNN run (each (B, T, K); ``c0`` (B, K)).

    Attributes
    ----------
    f : forget gate ``1 - alpha (1 - scale * s_t)``.
    i : input gate (``alpha`` everywhere).
    g : candidate ``L^T B_x u_t``.
    c0 : initial cell state ``L^T x_0``.
    kappa : the run's latent state ``L^T x_t`` (what ``c`` must reproduce).
    """

    f: np.ndarray
    i: np.ndarray
    g: np.ndarray
    c0: np.ndarray
    kappa: np.ndarray


def forget_gate_from_signal(s, alpha: float) -> np.ndarray:
    r"""Forget gate of the NM-RNN's latent cell: :math:`f_t = 1 - \alpha (1 - s_t)`.

    ``s`` in [0, 1] maps onto ``f`` in ``[1 - alpha, 1]`` (a gate that can hold
    memory, f = 1, but never forget faster than the leak, f = 1 - alpha).
    """
    alpha = _alpha(alpha)
    s = _array(s, "s")
    return 1.0 - alpha * (1.0 - s)


def signal_from_forget_gate(f, alpha: float, *, check_range: bool = True) -> np.ndarray:
    r"""Inverse of :func:`forget_gate_from_signal`: :math:`s_t = 1 - (1 - f_t)/\alpha`.

    Parameters
    ----------
    f : array_like
        Forget gate values.
    alpha : float
    check_range : bool
        Require ``f`` in ``[1 - alpha, 1]`` (the gates an NM-RNN can realise,
        s in [0, 1]); raise ValueError otherwise.
    """
    alpha = _alpha(alpha)
    f = _array(f, "f")
    if check_range and np.any((f < 1.0 - alpha) | (f > 1.0)):
        raise ValueError(f"f must lie in [1 - alpha, 1] = [{1 - alpha:g}, 1] to come from an s in [0, 1]")
    return 1.0 - (1.0 - f) / alpha


def gated_recurrence(f, i, g, c0) -> np.ndarray:
    r"""Generic gated cell recurrence :math:`c_t = f_t c_{t-1} + i_t g_t`, t = 1..T.

    Parameters
    ----------
    f, i, g : array_like (B, T, K) (broadcastable to a common shape)
    c0 : array_like (B, K)

    Returns
    -------
    ndarray (B, T, K)
    """
    f = _array(f, "f")
    i = _array(i, "i")
    g = _array(g, "g")
    try:
        shape = np.broadcast_shapes(f.shape, i.shape, g.shape)
    except ValueError:
        raise ValueError(f"f, i, g must broadcast to a common (B, T, K) shape, got {f.shape}, {i.shape}, "
                         f"{g.shape}") from None
    if len(shape) != 3:
        raise ValueError(f"f, i, g must broadcast to (B, T, K), got shape {shape}")
    f, i, g = (np.broadcast_to(a, shape) for a in (f, i, g))
    c0 = _array(c0, "c0")
    try:
        c = np.broadcast_to(c0, (shape[0], shape[2])).copy()
    except ValueError:
        raise ValueError(f"c0 must broadcast to (B, K) = {(shape[0], shape[2])}, got {c0.shape}") from None
    out = np.empty(shape)
    for t in range(shape[1]):
        c = f[:, t] * c + i[:, t] * g[:, t]
        out[:, t] = c
    return out


def _check_model(model):
    from nmrnn_np.models.lowrank import NMRNN
    if not isinstance(model, NMRNN):
        raise TypeError(f"model must be an nmrnn_np NMRNN, got {type(model).__name__}")
    if not model.orthonormalize:
        raise ValueError("model must have orthonormalize=True: the latent coordinates kappa = L^T x "
                         "need orthonormal L")


def _run(model, params, inputs, traj, x0):
    params = model.check_params(params)
    inputs = model.check_inputs(inputs)
    B = inputs.shape[0]
    init = model.initial_states(B, **({} if x0 is None else {"x0": x0}))
    if traj is None:
        traj = model.simulate(params, inputs, backend="numpy", x0=init["x0"])
    elif not isinstance(traj, Trajectory) or traj.x is None or traj.s is None:
        raise TypeError(f"traj must be None or the Trajectory of model.simulate(params, inputs), got {traj!r}")
    elif traj.x.shape != (B, inputs.shape[1], model.N) or traj.s.shape[:2] != inputs.shape[:2]:
        raise ValueError(f"traj must be the Trajectory of model.simulate(params, inputs) (x of shape "
                         f"{(B, inputs.shape[1], model.N)}), got x of shape {traj.x.shape}")
    p = model.prepare(params)
    return p, inputs, init["x0"], traj


def gates_from_run(model, params: Mapping[str, np.ndarray], inputs, traj=None, *, x0=None) -> GateSequences:
    """Map an NM-RNN run to its LSTM gate sequences (prediction 4).

    Exact for phi = linear, tied, orthonormal L: then
    ``gated_recurrence(f, i, g, c0)`` equals ``kappa = x @ L``. For other
    variants the same sequences are the *linear gate mapping* whose error
    :func:`gate_mapping_mismatch` reports.

    Parameters
    ----------
    model : nmrnn_np.NMRNN with orthonormalize=True
    params : dict of arrays
    inputs : array (B, T, U)
    traj : nmrnn_np.Trajectory, optional
        The run (simulated with the NumPy path if omitted).
    x0 : array (N,) or (B, N), optional
        Initial state used for the run (default 0.1 everywhere).
    """
    _check_model(model)
    p, inputs, x0, traj = _run(model, params, inputs, traj, x0)
    L = np.asarray(p["L"])
    a = model.alpha_x
    s = np.asarray(traj.s) * model.recurrent_scale
    kappa = np.asarray(traj.x) @ L
    g = inputs[:, :, :model.U_x] @ np.asarray(p["B_x"]).T @ L
    f = np.broadcast_to(forget_gate_from_signal(s, a), kappa.shape).copy()
    return GateSequences(f=f, i=np.full_like(kappa, a), g=g, c0=x0 @ L, kappa=kappa)


def latent_update(model, params: Mapping[str, np.ndarray], inputs, traj=None, *, x0=None) -> np.ndarray:
    r"""One-step latent prediction for any NM-RNN with orthonormal L (tanh or linear, any rank):

    .. math::

        \hat\kappa_t = (1 - \alpha)\,\kappa_{t-1} + \alpha\, c\, s_t \odot \big(R^\top \phi(x_{t-1})\big)
                       + \alpha\, L^\top B_x u_t,

    computed from the run's own x_{t-1} and s_t (c = 1 or 1/N). Equal to
    ``L^T x_t`` up to round-off because :math:`L^\top L = I`.

    Returns
    -------
    ndarray (B, T, K)
        kappa_hat_1..kappa_hat_T.
    """
    _check_model(model)
    p, inputs, x0, traj = _run(model, params, inputs, traj, x0)
    from nmrnn_np.models.base import NONLINEARITIES
    phi = NONLINEARITIES[model.phi]
    L, R = np.asarray(p["L"]), np.asarray(p["R"])
    x = np.asarray(traj.x)
    x_prev = np.concatenate([x0[:, None, :], x[:, :-1]], axis=1)
    a = model.alpha_x
    cand = np.asarray(phi(x_prev)) @ R
    g = inputs[:, :, :model.U_x] @ np.asarray(p["B_x"]).T @ L
    return (1.0 - a) * (x_prev @ L) + a * model.recurrent_scale * np.asarray(traj.s) * cand + a * g


def gate_mapping_mismatch(model, params: Mapping[str, np.ndarray], inputs, traj=None, *, x0=None) -> dict:
    """How far the linear forget-gate mapping is from a (tanh, untied or rank-K) NM-RNN run.

    Two measures, both relative to the size of the latent state
    (``max |kappa|`` over the run):

    - ``one_step``: max over steps of ``|f_t kappa_{t-1} + alpha g_t - kappa_t|``,
      the error of a single gated step started from the true kappa_{t-1};
    - ``rollout``: max of ``|c_t - kappa_t|`` where ``c`` runs the gated
      recurrence on its own from ``c_0 = kappa_0`` (errors accumulate).

    Also returns the exact identity's error (:func:`latent_update`), which
    must be at round-off level for every variant, and ``kappa_scale``.
    For a linear tied network all three are at round-off level.
    """
    _check_model(model)
    p, inputs, x0, traj = _run(model, params, inputs, traj, x0)
    gates = gates_from_run(model, params, inputs, traj, x0=x0)
    kappa = gates.kappa
    prev = np.concatenate([gates.c0[:, None, :], kappa[:, :-1]], axis=1)
    one_step = gates.f * prev + gates.i * gates.g - kappa
    rollout = gated_recurrence(gates.f, gates.i, gates.g, gates.c0) - kappa
    exact = latent_update(model, params, inputs, traj, x0=x0) - kappa
    scale = float(np.max(np.abs(kappa)))
    return {
        "kappa_scale": scale,
        "one_step_max_abs": float(np.max(np.abs(one_step))),
        "rollout_max_abs": float(np.max(np.abs(rollout))),
        "one_step_relative": float(np.max(np.abs(one_step)) / scale),
        "rollout_relative": float(np.max(np.abs(rollout)) / scale),
        "exact_identity_max_abs": float(np.max(np.abs(exact))),
    }
