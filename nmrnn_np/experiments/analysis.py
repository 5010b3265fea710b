"""Analyses of trained NM-RNNs: clamping the neuromodulatory signal, latent projections.

The models simulate their own ``s``; to ask what each component of ``s`` does,
:func:`simulate_nmrnn_clamped` reruns the NM-RNN with chosen components of
``s`` replaced by constants. It reuses the model's own equations:
:meth:`NMRNN.step` advances the neuromodulatory state z (and gives the
unclamped s), and the shared low-rank update
:func:`nmrnn_np.models.lowrank_x_update` advances x with the clamped s, so
with nothing clamped the result equals :meth:`NMRNN.simulate` on the NumPy
path exactly (a test checks this).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .. import _validation as V
from ..metrics import masked_l2
from ..models import NMRNN

__all__ = ["CLAMP_MODES", "simulate_nmrnn_clamped", "simulate_nmrnn_frozen_signal", "clamp_values", "ablate_components",
           "Ablation", "latent_projection", "align_to_events", "participation_ratio", "principal_subspace",
           "principal_angles", "trajectory_distance"]

#: what a clamped component of s is held at: its mean over the trial, 0, or 1
CLAMP_MODES = ("mean", "zero", "one")


def simulate_nmrnn_clamped(model: NMRNN, params: Mapping[str, np.ndarray], inputs,
                           clamp: Mapping[int, float | np.ndarray] | None = None,
                           **initial_states) -> dict[str, np.ndarray]:
    """Simulate an NM-RNN with some components of s held at given values.

    Parameters
    ----------
    model : NMRNN
    params : dict of arrays
        The model's parameters.
    inputs : array (B, T, U)
    clamp : dict {component: value}, optional
        Component index k in ``[0, S)`` -> the value ``s_k`` is held at: a
        scalar, or a (B,) array (one value per trial). Components not listed
        follow the network. ``None`` or ``{}`` clamps nothing.
    **initial_states
        ``x0``, ``z0`` as in :meth:`NMRNN.simulate` (0.1 everywhere by default).

    Returns
    -------
    dict
        ``y`` (B, T, O), ``x`` (B, T, N), ``z`` (B, T, M) and ``s`` (B, T, S),
        where ``s`` is the signal the output network received (clamped
        components included).

    Notes
    -----
    z evolves as in the unclamped network (it does not see x unless the model
    has ``feedback``, in which case it sees the clamped network's x). Only
    the x update receives the clamped signal.
    """
    params, inputs, init = _checked_nmrnn_arguments(model, params, inputs, initial_states)
    B, T, _ = inputs.shape
    if clamp is not None:
        V.mapping(clamp, "clamp", "a dict {component: value} or None")
    clamp = dict(clamp or {})
    fixed = {}
    for k, value in clamp.items():
        V.integer(k, "clamp keys (components of s)", 0, model.S - 1)
        # float_array returns at least 1-d arrays, so a scalar arrives as shape (1,)
        arr = V.float_array(value, f"clamp[{k}]", ndim=(0, 1))
        if not ((arr >= 0) & (arr <= 1)).all():   # s is a sigmoid: clamped values stay in its range
            raise ValueError(f"clamp[{k}] must lie in [0, 1] (the range of the signal s), got {value!r}")
        if np.ndim(value) == 0:
            arr = arr.reshape(())
        elif arr.shape != (B,):
            raise ValueError(f"clamp[{k}] must be a scalar or have shape ({B},), got {arr.shape}")
        fixed[int(k)] = np.broadcast_to(arr, (B,))

    def clamped(t, s):
        for k, v in fixed.items():
            s[:, k] = v
        return s
    return _simulate_imposed_signal(model, params, inputs, init, clamped)


def _checked_nmrnn_arguments(model, params, inputs, initial_states: Mapping) -> tuple[dict, np.ndarray, dict]:
    """The checked ``params``, ``inputs`` (B, T, U) and initial states of an NM-RNN simulation."""
    if not isinstance(model, NMRNN):
        raise TypeError(f"model must be an NMRNN, got {type(model).__name__}")
    params = model.check_params(params)
    inputs = model.check_inputs(inputs)
    return params, inputs, model.initial_states(inputs.shape[0], **initial_states)


def _simulate_imposed_signal(model: NMRNN, params, inputs: np.ndarray, init: dict, impose) -> dict[str, np.ndarray]:
    """NumPy-path simulation where ``impose(t, s)`` may change the signal s_t (B, S) the output network gets."""
    B, T, _ = inputs.shape
    p = model.prepare(params)
    state = {"x": init["x0"], "z": init["z0"]}
    out = {k: np.empty((B, T, n)) for k, n in
           (("y", model.O), ("x", model.N), ("z", model.M), ("s", model.S))}
    for t in range(T):
        u = inputs[:, t, :]
        # the model's own NM half gives z_t and the network's s_t; the output half gets the imposed s
        z, s = model.signal_step(p, state, u)
        s = impose(t, np.array(s, dtype=np.float64))
        x, y = model.output_step(p, state["x"], s, u)
        state = {"x": x, "z": z}
        out["y"][:, t], out["x"][:, t], out["z"][:, t], out["s"][:, t] = y, x, z, s
    return out


def simulate_nmrnn_frozen_signal(model: NMRNN, params: Mapping[str, np.ndarray], inputs, freeze_step,
                                 **initial_states) -> dict[str, np.ndarray]:
    """Simulate an NM-RNN whose signal s stops changing at a given step of each trial.

    Trial b follows the network until step ``freeze_step[b]``; from then on the
    output network receives ``s_{freeze_step[b]}`` at every step (every
    component held). This asks whether a drift that appears later in a trial
    comes from the still-changing neuromodulatory signal (z has the slow time
    constant tau_z) or from the output network itself.

    Parameters
    ----------
    model : NMRNN
    params : dict of arrays
    inputs : array (B, T, U)
    freeze_step : int or array of int (B,)
        Step at which s is frozen, in ``[0, T)``.
    **initial_states
        ``x0``, ``z0`` as in :meth:`NMRNN.simulate`.

    Returns
    -------
    dict
        ``y``, ``x``, ``z``, ``s`` as :func:`simulate_nmrnn_clamped` (``s`` is
        the signal the output network received).
    """
    params, inputs, init = _checked_nmrnn_arguments(model, params, inputs, initial_states)
    B, T, _ = inputs.shape
    steps = np.asarray(freeze_step)
    if steps.ndim > 1 or not np.issubdtype(steps.dtype, np.integer):
        raise TypeError(f"freeze_step must be an int or a 1-d array of ints, got {freeze_step!r}")
    steps = np.broadcast_to(steps, (B,)) if steps.ndim == 0 else steps
    if steps.shape != (B,):
        raise ValueError(f"freeze_step must be a scalar or have shape ({B},), got {steps.shape}")
    if steps.min() < 0 or steps.max() >= T:
        raise ValueError(f"freeze_step must lie in [0, T={T}), got values in [{steps.min()}, {steps.max()}]")
    held = np.zeros((B, model.S))

    def frozen(t, s):
        at = steps == t
        held[at] = s[at]
        after = steps < t
        s[after] = held[after]
        return s
    return _simulate_imposed_signal(model, params, inputs, init, frozen)


def clamp_values(s: np.ndarray, mode: str) -> np.ndarray:
    """Value each component of s is clamped to, per trial: (B, S).

    Parameters
    ----------
    s : array (B, T, S)
        The unclamped signal.
    mode : {"mean", "zero", "one"}
        ``"mean"``: the component's mean over the trial's time steps;
        ``"zero"`` / ``"one"``: the constants 0 and 1 (the ends of the
        sigmoid's range: component switched off / fully on).
    """
    V.choice(mode, "mode", CLAMP_MODES)
    s = V.float_array(s, "s", ndim=3)
    if 0 in s.shape:
        raise ValueError(f"s must be non-empty (B, T, S), got shape {s.shape}")
    if mode == "mean":
        return s.mean(axis=1)
    return np.full((s.shape[0], s.shape[2]), 0.0 if mode == "zero" else 1.0)


@dataclass(frozen=True)
class Ablation:
    """Result of :func:`ablate_components`.

    Attributes
    ----------
    mode : str
        Clamp mode (see :data:`CLAMP_MODES`).
    baseline_error : float
        Masked L2 error of the unclamped network.
    errors : ndarray (S,)
        Masked L2 error with component k clamped.
    outputs : ndarray (S, B, T, O)
        Outputs with component k clamped.
    baseline_outputs : ndarray (B, T, O)
    values : ndarray (B, S)
        The values the components were clamped to.
    """

    mode: str
    baseline_error: float
    errors: np.ndarray
    outputs: np.ndarray
    baseline_outputs: np.ndarray
    values: np.ndarray

    @property
    def error_increase(self) -> np.ndarray:
        """``errors - baseline_error`` (S,): how much worse clamping component k makes the network."""
        return self.errors - self.baseline_error


def ablate_components(model: NMRNN, params: Mapping[str, np.ndarray], inputs, targets, mask=None,
                      mode: str = "mean", components: Sequence[int] | None = None, **initial_states) -> Ablation:
    """Clamp each component of s in turn and measure the output error.

    Parameters
    ----------
    model, params, inputs
        As in :func:`simulate_nmrnn_clamped`.
    targets : array (B, T, O)
    mask : array (B, T, 1) or (B, T, O), optional
    mode : {"mean", "zero", "one"}
        What each component is clamped to (:func:`clamp_values`).
    components : sequence of int, optional
        Components to ablate (default all S).
    **initial_states
        ``x0``, ``z0`` as in :meth:`NMRNN.simulate` (0.1 everywhere by default).
    """
    if not isinstance(model, NMRNN):
        raise TypeError(f"model must be an NMRNN, got {type(model).__name__}")
    V.choice(mode, "mode", CLAMP_MODES)
    if components is None:
        comps = list(range(model.S))
    else:
        if isinstance(components, (str, bytes)) or not isinstance(components, Sequence | np.ndarray):
            raise TypeError(f"components must be a sequence of ints in [0, {model.S - 1}], got {components!r}")
        comps = [V.integer(k, "components", 0, model.S - 1) for k in components]
    params = model.check_params(params)
    inputs = model.check_inputs(inputs)
    # check targets and mask before the simulations (as model.loss would)
    model._check_targets(inputs, targets, mask)
    base = simulate_nmrnn_clamped(model, params, inputs, **initial_states)
    values = clamp_values(base["s"], mode)
    outs, errs = [], []
    for k in comps:
        run = simulate_nmrnn_clamped(model, params, inputs, clamp={k: values[:, k]}, **initial_states)
        outs.append(run["y"])
        errs.append(masked_l2(run["y"], targets, mask))
    return Ablation(mode=mode, baseline_error=masked_l2(base["y"], targets, mask), errors=np.array(errs),
                    outputs=np.array(outs), baseline_outputs=base["y"], values=values)


def latent_projection(model, params: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    r"""Project the output-network state on the left factors: :math:`\kappa_t = L^\top x_t`.

    Uses the factors the dynamics use (``model.prepare(params)["L"]``: the
    orthonormalised L when ``orthonormalize`` is on), so with orthonormal L
    the K coordinates are the state's components in the recurrent subspace.

    Parameters
    ----------
    model : NMRNN or LowRankRNN
    params : dict of arrays
    x : array (B, T, N)

    Returns
    -------
    ndarray (B, T, K)
    """
    if not hasattr(model, "K") or "L" not in model.param_shapes():
        raise TypeError(f"model must be a low-rank model with left factors L (NMRNN or LowRankRNN), "
                        f"got {type(model).__name__}")
    p = model.prepare(model.check_params(params))
    x = V.float_array(x, "x", shape=(None, None, model.N))
    return x @ np.asarray(p["L"])


def align_to_events(values: np.ndarray, events: np.ndarray, before: int, after: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut windows of ``values`` around one event per trial, padding with NaN outside the trial.

    Parameters
    ----------
    values : array (B, T, C)
    events : int array (B,)
        Step of the event in each trial (e.g. the go cue).
    before, after : int
        Window ``[event - before, event + after)``.

    Returns
    -------
    lags : ndarray (before + after,)
        Time relative to the event.
    windows : ndarray (B, before + after, C)
    """
    values = V.float_array(values, "values", ndim=3, finite=False)
    before = V.integer(before, "before", minimum=0)
    after = V.integer(after, "after", minimum=0)
    if before + after < 1:
        raise ValueError(f"before + after must be >= 1 (the window length), got before={before}, after={after}")
    arr = None if isinstance(events, (str, bytes, Mapping)) else np.asarray(events)
    if arr is None or arr.dtype.kind not in "iu":
        raise TypeError(f"events must be an integer array of shape (B,), got {events!r}")
    events = arr.astype(np.int64)
    B, T, C = values.shape
    if events.shape != (B,):
        raise ValueError(f"events must have shape ({B},) (one per trial of values), got {events.shape}")
    lags = np.arange(-before, after)
    windows = np.full((B, lags.size, C), np.nan)
    for b in range(B):
        t = events[b] + lags
        ok = (t >= 0) & (t < T)
        windows[b, ok] = values[b, t[ok]]
    return lags, windows


# ----------------------------------------------------------------------------
# Geometry of state-space trajectories (used to compare how networks separate tasks)
# ----------------------------------------------------------------------------
def _points(x, name: str) -> np.ndarray:
    arr = V.float_array(x, name, ndim=(2, 3))
    pts = arr.reshape(-1, arr.shape[-1])
    if pts.shape[0] < 2:
        raise ValueError(f"{name} must hold at least two points (rows), got shape {arr.shape}")
    return pts


def participation_ratio(x) -> float:
    r"""Participation ratio of the states ``x``, (B, T, N) or (P, N): :math:`(\sum_i \lambda_i)^2 / \sum_i \lambda_i^2`.

    :math:`\lambda_i` are the eigenvalues of the covariance of the points
    (all trials and steps). It lies in [1, N]: about the number of dimensions
    the activity spreads over (1 for a line, N for isotropic activity).
    """
    pts = _points(x, "x")
    lam = np.linalg.eigvalsh(np.cov(pts, rowvar=False))
    lam = np.clip(lam, 0.0, None)
    total = lam.sum()
    return float(total ** 2 / np.sum(lam ** 2)) if total > 0 else 1.0


def principal_subspace(x, k: int) -> np.ndarray:
    """Orthonormal basis (N, k) of the first ``k`` principal components of the states ``x`` ((B, T, N) or (P, N))."""
    pts = _points(x, "x")
    k = V.integer(k, "k", 1, pts.shape[1])
    _, _, vt = np.linalg.svd(pts - pts.mean(axis=0), full_matrices=False)
    return vt[:k].T


def principal_angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    r"""Principal angles (radians, ascending) between the column spaces of ``a`` (N, k) and ``b`` (N, l).

    :math:`\cos\theta_i` are the singular values of :math:`Q_a^\top Q_b`
    (Q: orthonormal bases); 0 means a shared direction, pi/2 orthogonal ones.
    """
    import scipy.linalg

    a = V.float_array(a, "a", ndim=2)
    b = V.float_array(b, "b", ndim=2)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"a and b must have the same number of rows (the state dimension), got {a.shape} and {b.shape}")
    return np.sort(scipy.linalg.subspace_angles(a, b))


def trajectory_distance(a, b) -> float:
    r"""Distance between two (T, N) trajectories, root mean square over steps and units.

    :math:`\sqrt{\frac{1}{TN} \sum_{t,n} (a_{tn} - b_{tn})^2}`: comparable across network sizes.
    """
    a = V.float_array(a, "a", ndim=2)
    b = V.float_array(b, "b", ndim=2)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    return float(np.sqrt(np.mean((a - b) ** 2)))

