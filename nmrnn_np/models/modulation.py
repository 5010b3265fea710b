r"""Where the neuromodulatory signal acts: on synapses, on excitability, or on both.

The option ``NMRNN(..., modulation=...)`` (our design for the question of
Vedovati & Ching, arXiv 2408.01316, of which only the abstract is available):

* ``"synaptic"`` (default, the NM-RNN of Costacurta et al.): s_t scales the
  rank-1 components of the recurrent weights,

  .. math:: x_t = (1-\alpha_x) x_{t-1} + \alpha_x\big(c\, L\, \mathrm{diag}(s_t) R^\top \phi(x_{t-1}) + B_x u_t\big);

* ``"excitability"``: s_t sets the gain of each neuron's input-output function,

  .. math:: x_t = (1-\alpha_x) x_{t-1} + \alpha_x\big(c\, L R^\top \phi(g_t \odot x_{t-1}) + B_x u_t\big),
            \qquad g_t = 2 P s_t,

  where P (N x S) assigns the N neurons to S fixed, equal populations
  (neuron n belongs to population ``floor(n S / N)``), so s = 0.5 is gain 1
  and g ranges over (0, 2);

* ``"both"``: the first ``S_syn = ceil(S / 2)`` components of s act on
  synapses and the remaining ``S_exc = S - S_syn`` on excitability,

  .. math:: x_t = (1-\alpha_x) x_{t-1} + \alpha_x\big(c\, L\, \mathrm{diag}(Q s^{syn}_t) R^\top
            \phi(g_t \odot x_{t-1}) + B_x u_t\big), \qquad g_t = 2 P s^{exc}_t,

  with Q (K x S_syn) assigning the K rank-1 components to S_syn equal groups
  (component k to group ``floor(k S_syn / K)``) and P (N x S_exc) the neurons
  to S_exc equal populations. It needs S >= 2 (``signal_dim=1`` has nothing
  to split).

All three have the same parameters (the same keys and shapes) and the same
signal dimension S, so they are compared at equal parameter counts. The
feedback of the element-finder variant sees the un-gained rate
``phi(x_{t-1})``: the gain g_t depends on s_t, which depends on z_t, which the
feedback drives.

Q and P are 0/1 matrices with one 1 per row, so ``P s`` is ``s[pop]``: the
step below indexes instead of multiplying (the same numbers, exactly).
"""
from __future__ import annotations

import math

import numpy as np

from .._kernels import as_kernel_array, empty_arrays, zero_arrays
from .base import leaky_euler

#: valid values of ``NMRNN(modulation=...)``
MODULATIONS = ("synaptic", "excitability", "both")


def signal_split(modulation: str, S: int) -> tuple[int, int]:
    """``(S_syn, S_exc)``: how many components of the S-dimensional signal act on synapses and on excitability.

    ``"synaptic"``: (S, 0); ``"excitability"``: (0, S); ``"both"``:
    (ceil(S/2), S - ceil(S/2)), which needs S >= 2.
    """
    if modulation not in MODULATIONS:
        raise ValueError(f"modulation must be one of {', '.join(map(repr, MODULATIONS))}; got {modulation!r}")
    if modulation == "synaptic":
        return S, 0
    if modulation == "excitability":
        return 0, S
    if S < 2:
        raise ValueError("modulation='both' splits the signal's components between synapses (the first "
                         "ceil(S/2)) and excitability (the rest), so it needs a signal of dimension S >= 2; "
                         f"got S={S} (use K >= 2 and signal_dim=K, or modulation='synaptic'/'excitability')")
    s_syn = math.ceil(S / 2)
    return s_syn, S - s_syn


def group_index(n_items: int, n_groups: int) -> np.ndarray:
    """Equal groups: item i belongs to group ``floor(i * n_groups / n_items)`` (int64, shape (n_items,))."""
    if n_groups == 0:
        return np.zeros(n_items, dtype=np.int64)
    return (np.arange(n_items, dtype=np.int64) * n_groups) // n_items


def population_matrix(N: int, n_populations: int) -> np.ndarray:
    """P (N, n_populations): ``P[n, j] = 1`` when neuron n belongs to population j (equal populations)."""
    P = np.zeros((N, n_populations))
    if n_populations:
        P[np.arange(N), group_index(N, n_populations)] = 1.0
    return P


def modulated_x_update(x, L, R, s, drive, alpha: float, scale: float, phi,
                       S_syn: int, S_exc: int, comp_index: np.ndarray, pop_index: np.ndarray):
    r"""One Euler step of the output network with the signal split between synapses and excitability.

    .. math::

        x_t = (1-\alpha) x_{t-1} + \alpha\big(c\, L\, \mathrm{diag}(\gamma_t) R^\top \phi(g_t \odot x_{t-1})
              + B_x u_t\big)

    with component gains ``gamma_t = Q s_t[:S_syn]`` (1 when S_syn = 0) and
    neuron gains ``g_t = 2 P s_t[S_syn:]`` (1 when S_exc = 0).

    Parameters
    ----------
    x : (B, N) x_{t-1}; L, R : (N, K); s : (B, S) the signal s_t;
    drive : (B, N) ``B_x u_t``; alpha, scale : floats; phi : the rate nonlinearity;
    S_syn, S_exc : the split (:func:`signal_split`);
    comp_index : (K,) group of each rank-1 component; pop_index : (N,) population of each neuron.
    """
    v = 2.0 * s[:, S_syn + pop_index] * x if S_exc else x    # g_t * x_{t-1}
    kappa = phi(v) @ R                                      # (B, K)
    if S_syn:
        kappa = s[:, comp_index] * kappa                    # diag(Q s^syn) R^T phi(.)
    return leaky_euler(x, scale * (kappa @ L.T) + drive, alpha)


# ----------------------------------------------------------------------------
# numba fast path (kernels in nmrnn_np._kernels.modulation)
# ----------------------------------------------------------------------------
def _kernel_args(model, p, dtype=np.float64) -> dict:
    def c(v):
        return as_kernel_array(v, dtype)
    fb = model.feedback
    return dict(Lt=c(p["L"].T), Rt=c(p["R"].T), BxT=c(p["B_x"].T), C=c(p["C"]),
                d=c(p["d"]) if model.readout_bias else np.zeros(model.O, dtype),
                W_z=c(p["W_z"]), B_z=c(p["B_z"]), A=c(p["A"]), a=c(p["a"]),
                W_zx=c(p["W_zx"]) if fb else np.zeros((model.M, model.N), dtype),
                b_zx=c(p["b_zx"]) if fb else np.zeros(model.M, dtype))


def numba_forward(model, p, inputs, init, for_backward: bool = True, *, dtype=np.float64) -> dict:
    """Run :func:`~nmrnn_np._kernels.modulation.modulated_forward` for an NMRNN with modulation != "synaptic".

    Returns ``y``, ``z``, ``s`` (B, T, .), and for the backward pass ``_X``
    (B, T + 1, N) (x_0, then x_t), ``_PH`` = phi(g_t x_{t-1}) (B, T, N),
    ``_KAP`` = R^T phi(g_t x_{t-1}) (B, T, K) and the kernel arguments; without
    ``for_backward`` also ``x`` (B, T, N), a C-contiguous copy of ``_X[:, 1:]``.
    Arrays of ``dtype`` (float64, or float32 for ``backend="numba32"``).
    """
    from .._kernels.modulation import modulated_forward
    a = _kernel_args(model, p, dtype)
    inputs = as_kernel_array(inputs, dtype)
    x0, z0 = as_kernel_array(init["x0"], dtype), as_kernel_array(init["z0"], dtype)
    B, T, _ = inputs.shape
    X, Z, Sg, Y, PH, KAP = empty_arrays((B, T + 1, model.N), (B, T, model.M), (B, T, model.S),
                                        (B, T, model.O), (B, T, model.N), (B, T, model.K), dtype=dtype)
    modulated_forward(inputs, x0, z0, a["Lt"], a["Rt"], a["BxT"], a["C"], a["d"], a["W_z"], a["B_z"], a["A"],
                      a["a"], a["W_zx"], a["b_zx"], model._comp_index, model._pop_index, model._S_syn,
                      model._S_exc, model.alpha_x, model.alpha_z, model.recurrent_scale, model.feedback,
                      model.phi == "linear", X, Z, Sg, Y, PH, KAP)
    out = {"y": Y, "z": Z, "s": Sg, "_X": X, "_PH": PH, "_KAP": KAP, "_kernel_inputs": (a, inputs, z0)}
    if not for_backward:
        out["x"] = np.ascontiguousarray(X[:, 1:])
    return out


def numba_backward(model, fwd, g_y) -> dict:
    """Run :func:`~nmrnn_np._kernels.modulation.modulated_backward`: d sum(g_y * y) / d p[k], k in ``_kernel_keys``."""
    from .._kernels.modulation import modulated_backward
    a, inputs, z0 = fwd["_kernel_inputs"]
    names = ("Lt", "Rt", "BxT", "C", "d", "W_z", "B_z", "A", "a", "W_zx", "b_zx")
    dtype = a["Lt"].dtype
    g = dict(zip(names, zero_arrays(*[a[n].shape for n in names], dtype=dtype)))
    g_y = as_kernel_array(g_y, dtype)
    X = fwd["_X"]
    modulated_backward(inputs, z0, a["Lt"], a["Rt"], a["BxT"], a["C"], a["W_z"], a["A"], a["W_zx"],
                       model._comp_index, model._pop_index, model._S_syn, model._S_exc, model.alpha_x,
                       model.alpha_z, model.recurrent_scale, model.feedback, model.phi == "linear",
                       X, fwd["z"], fwd["s"], fwd["_PH"], fwd["_KAP"], g_y,
                       g["Lt"], g["Rt"], g["BxT"], g["C"], g["d"], g["W_z"], g["B_z"], g["A"], g["a"],
                       g["W_zx"], g["b_zx"])
    g["L"], g["R"], g["B_x"] = g.pop("Lt").T, g.pop("Rt").T, g.pop("BxT").T
    return {k: np.asarray(g[k], dtype=np.float64) for k in model._kernel_keys}
