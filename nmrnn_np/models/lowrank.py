r"""Low-rank output-generating networks: the NM-RNN and the LR-RNN.

Both share the output-network equation (one implementation,
:func:`lowrank_x_update`); the NM-RNN adds the neuromodulatory subnetwork
that sets the gain ``s`` of each rank-1 component, the LR-RNN fixes ``s = 1``.

Shapes: B trials, N output units, K rank, M NM units, S signal dimension
(K, or 1 for one global gain), U inputs (U_x of them reach x), O outputs.
Arrays are batch-first, so a state is a (B, N) array of row vectors and a
matrix-vector product ``W v`` is written ``v @ W.T``.
"""
from __future__ import annotations

from typing import Any

import autograd.numpy as anp
import numpy as np

from .. import _validation as V
from .._kernels import as_kernel_array, empty_arrays, zero_arrays
from ..linalg import qr_q
from . import modulation as _mod
from .base import NONLINEARITIES, Params, RecurrentModel, leaky_euler, sigmoid


def lowrank_x_update(x, L, R, gain, drive, alpha: float, scale: float, phi):
    r"""One Euler step of the low-rank output network, for a batch.

    .. math::

        x_t = (1 - \alpha_x)\, x_{t-1}
              + \alpha_x \big(c\, L\, \mathrm{diag}(s_t)\, R^\top \phi(x_{t-1}) + B_x u_t\big)

    evaluated right to left as ``L (s * (R^T phi(x)))`` so the N x N matrix
    ``L diag(s) R^T`` is never formed and the cost is O(N K) per trial.

    Parameters
    ----------
    x : (B, N) previous state x_{t-1}.
    L, R : (N, K) left (row) and right (column) factors.
    gain : (B, S) or scalar
        s_t; S = K scales each rank-1 component, S = 1 all of them.
    drive : (B, N) the input drive ``B_x u_t``.
    alpha : dt / tau_x.
    scale : c, 1 or 1/N.
    phi : the rate nonlinearity (tanh or identity).
    """
    kappa_in = phi(x) @ R                 # (B, K): R^T phi(x), one number per component
    recurrent = (gain * kappa_in) @ L.T   # (B, N): L (s * R^T phi(x))
    return leaky_euler(x, scale * recurrent + drive, alpha)


class _LowRankBase(RecurrentModel):
    """Options shared by the NM-RNN and the LR-RNN (QR of L, tied factors, phi, 1/N)."""

    def _init_lowrank(self, N, K, U, O, orthonormalize, divide_by_N, readout_bias, phi, tied):
        self.N = V.positive_int(N, "N")
        self.K = V.positive_int(K, "K")
        if self.K > self.N:
            raise ValueError(f"rank K={self.K} must not exceed the number of units N={self.N}")
        self.U = V.positive_int(U, "U")
        self.O = V.positive_int(O, "O")
        self.orthonormalize = V.boolean(orthonormalize, "orthonormalize")
        self.divide_by_N = V.boolean(divide_by_N, "divide_by_N")
        self.readout_bias = V.boolean(readout_bias, "readout_bias")
        self.phi = V.choice(phi, "phi", tuple(NONLINEARITIES))
        self.tied = V.boolean(tied, "tied")

    @property
    def recurrent_scale(self) -> float:
        """c in the recurrent term: 1/N when ``divide_by_N`` else 1."""
        return 1.0 / self.N if self.divide_by_N else 1.0

    def _lowrank_shapes(self, U_x: int) -> dict[str, tuple[int, ...]]:
        shapes = {"L": (self.N, self.K)}
        if not self.tied:
            shapes["R"] = (self.N, self.K)
        shapes["B_x"] = (self.N, U_x)
        shapes["C"] = (self.O, self.N)
        if self.readout_bias:
            shapes["d"] = (self.O,)
        return shapes

    def prepare(self, params: Params) -> Params:
        """Replace L by the Q factor of its reduced QR (if ``orthonormalize``); tie R = L (if ``tied``)."""
        p = dict(params)
        if self.orthonormalize:
            try:
                p["L"] = qr_q(p["L"])
            except ValueError as err:
                raise ValueError(f"params['L'] with orthonormalize=True: {err}") from None
        if self.tied:
            p["R"] = p["L"]
        return p

    def _readout(self, p, x):
        y = x @ p["C"].T
        return y + p["d"] if self.readout_bias else y

    # -- numba fast path (kernels in nmrnn_np._kernels.lowrank) ---------------
    @property
    def _kernel_keys(self) -> tuple[str, ...]:
        """Prepared-parameter names the kernels read and differentiate (R even when tied)."""
        keys = ("L", "R", "B_x", "C") + (("d",) if self.readout_bias else ())
        return keys + self._nm_kernel_keys()

    def _nm_kernel_keys(self) -> tuple[str, ...]:
        return ()

    def _kernel_model_args(self, p: Params) -> dict:
        """Kernel arguments that differ between the models: alpha_x and the NM subnetwork.

        The LR-RNN has no NM subnetwork (s = 1): empty arrays and ``nm=False``.
        """
        empty = np.zeros((0, 0))
        return dict(alpha_x=self.alpha, W_z=empty, B_z=np.zeros((0, self.U)), A=empty, a=np.zeros(0),
                    W_zx=np.zeros((0, self.N)), b_zx=np.zeros(0), alpha_z=0.0, nm=False, feedback=False)

    def _kernel_args(self, p: Params, dtype=np.float64) -> dict:
        """Contiguous kernel arguments of ``dtype``: factors and weights that multiply N-vectors transposed."""
        def c(v):
            return as_kernel_array(v, dtype)
        args = {k: c(v) if isinstance(v, np.ndarray) else v for k, v in self._kernel_model_args(p).items()}
        args.update(Lt=c(p["L"].T), Rt=c(p["R"].T), BxT=c(p["B_x"].T), C=c(p["C"]),
                    d=c(p["d"]) if self.readout_bias else np.zeros(self.O, dtype),
                    scale=self.recurrent_scale, linear=self.phi == "linear")
        return args

    @staticmethod
    def _kernel_states(inputs: np.ndarray, init: dict, dtype=np.float64):
        """inputs (B, T, U), the same as (T, U, B) for the batch-vectorised NM phase, x0, z0."""
        inputs = as_kernel_array(inputs, dtype)
        x0 = as_kernel_array(init["x0"], dtype)
        z0 = init.get("z0")
        z0 = np.zeros((inputs.shape[0], 0), dtype) if z0 is None else as_kernel_array(z0, dtype)
        return inputs, as_kernel_array(inputs.transpose(1, 2, 0), dtype), x0, z0

    def _numba_forward(self, p: Params, inputs: np.ndarray, init: dict, for_backward: bool = True, *,
                       dtype=np.float64) -> dict:
        """Run :func:`~nmrnn_np._kernels.lowrank.lowrank_forward`.

        Returns ``y`` (B, T, O), ``z`` and ``s`` (B, T, .) (empty for the
        LR-RNN) and ``kappa`` = R^T phi(x_{t-1}) (T, B, K); with
        ``for_backward`` (the default, used by the autograd primitive) also
        what the backward pass reads, ``phi`` = phi(x_{t-1}) (T, B, N) and
        ``gv``, the coordinates of x_t in span(x_0, L, B_x) (T, B, K + U_x),
        and ``_kernel_inputs``, the contiguous kernel arguments, which the
        backward pass reuses rather than converting ``p`` and the inputs again;
        otherwise ``x`` (B, T, N). Every array is of ``dtype`` (float64, or
        float32 for ``backend="numba32"``).
        """
        from .._kernels.lowrank import lowrank_forward
        a = self._kernel_args(p, dtype)
        inputs, inputs_tub, x0, z0 = self._kernel_states(inputs, init, dtype)
        B, T, _ = inputs.shape
        N, K, M, S = self.N, self.K, a["W_z"].shape[0], a["A"].shape[0]
        shapes = dict(y=(B, T, self.O), x=(1, 1, N) if for_backward else (B, T, N), z=(B, T, M), s=(B, T, S),
                      phi=(T, B, N) if for_backward else (1, B, N), kappa=(T, B, K),
                      gv=(T, B, K + a["BxT"].shape[0]) if for_backward else (1, 1, 1))
        # one allocation for all outputs (see empty_arrays: avoids page faults on every call)
        out = dict(zip(shapes, empty_arrays(*shapes.values(), dtype=dtype)))
        lowrank_forward(inputs, inputs_tub, x0, z0, a["Lt"], a["Rt"], a["BxT"], a["C"], a["d"], a["W_z"],
                        a["B_z"], a["A"], a["a"], a["W_zx"], a["b_zx"], a["alpha_x"], a["alpha_z"], a["scale"],
                        a["nm"], a["feedback"], a["linear"], for_backward,
                        out["y"], out["x"], out["z"], out["s"], out["phi"], out["kappa"], out["gv"])
        for unused in (("x",) if for_backward else ("phi", "gv")):
            del out[unused]
        if for_backward:
            out["_kernel_inputs"] = (a, inputs, inputs_tub, x0, z0)
        return out

    def _simulate_numba(self, p: Params, inputs: np.ndarray, init: dict, dtype=np.float64) -> dict:
        # no backward pass follows: phi(x_{t-1}) is not stored and x is written (B, T, N)
        from autograd.tracer import getval
        fwd = self._numba_forward({k: getval(v) for k, v in p.items()}, inputs, init, for_backward=False,
                                  dtype=dtype)
        return {k: np.asarray(fwd[k], dtype=np.float64) for k in self.record_names}

    def _numba_backward(self, p: Params, inputs: np.ndarray, init: dict, fwd: dict,
                        g_y: np.ndarray) -> dict:
        """Run :func:`~nmrnn_np._kernels.lowrank.lowrank_backward`: d sum(g_y * y) / d p[k], k in ``_kernel_keys``."""
        from .._kernels.lowrank import lowrank_backward
        # the arrays the forward pass ran on (fwd comes from _numba_forward with the same p and inputs)
        a, inputs, inputs_tub, x0, z0 = fwd["_kernel_inputs"]
        names = ("Lt", "Rt", "BxT", "C", "d", "W_z", "B_z", "A", "a", "W_zx", "b_zx")
        dtype = a["Lt"].dtype
        g = dict(zip(names, zero_arrays(*[a[name].shape for name in names], dtype=dtype)))
        lowrank_backward(inputs, inputs_tub, x0, z0, a["Lt"], a["Rt"], a["BxT"], a["C"], a["W_z"], a["A"],
                         a["W_zx"], a["alpha_x"], a["alpha_z"], a["scale"], a["nm"], a["feedback"], a["linear"],
                         fwd["gv"], fwd["z"], fwd["s"], fwd["phi"], fwd["kappa"],
                         as_kernel_array(g_y, dtype),
                         g["Lt"], g["Rt"], g["BxT"], g["C"], g["d"], g["W_z"], g["B_z"], g["A"], g["a"],
                         g["W_zx"], g["b_zx"])
        g["L"], g["R"], g["B_x"] = g.pop("Lt").T, g.pop("Rt").T, g.pop("BxT").T
        return {k: np.asarray(g[k], dtype=np.float64) for k in self._kernel_keys}


class NMRNN(_LowRankBase):
    r"""Neuromodulated low-rank RNN (Costacurta et al., NeurIPS 2024).

    Parameters
    ----------
    N, K, M, U, O : int
        Output-network units, rank, NM units, input channels, outputs.
    tau_x, tau_z : float
        Time constants of x and z, in the units of ``dt`` (default 10, 100 steps).
    dt : float
        Euler step (default 1); ``alpha_x = dt / tau_x``, ``alpha_z = dt / tau_z``.
    signal_dim : int, optional
        S, the dimension of s: K (default; one gain per rank-1 component) or
        1 (one global gain for all components).
    orthonormalize : bool
        Use the Q factor of the QR decomposition of L (default True, as the authors).
    divide_by_N : bool
        Divide the recurrent term by N (default False: the authors' timing and
        multitask NM-RNN does not; their element-finder NM-RNN does).
    feedback : bool
        z also receives ``W_zx phi(x_{t-1}) + b_zx`` (element-finder variant).
    readout_bias : bool
        Include d in ``y = C x + d`` (default True).
    U_x : int, optional
        Context variant: x receives only the first U_x input channels, z
        receives all U. Default U (both receive everything).
    phi : {"tanh", "linear"}
        Rate nonlinearity of the output network (the theory uses "linear").
    tied : bool
        Symmetric factors R = L (after orthonormalisation); then there is no
        ``R`` parameter.
    modulation : {"synaptic", "excitability", "both"}
        Where s acts (see :mod:`nmrnn_np.models.modulation`; our design).
        ``"synaptic"`` (default): s scales the rank-1 components, the equations
        below. ``"excitability"``: s sets the gains of S equal populations of
        neurons, ``x_t = (1-a_x) x_{t-1} + a_x (c L R^T phi(g_t * x_{t-1}) + B_x u_t)``,
        ``g_t = 2 P s_t``. ``"both"``: the first ceil(S/2) components of s act on
        synapses, the others on excitability (needs S >= 2). Same parameters
        for all three.

    Notes
    -----
    One Euler step (z first, s from the *new* z, x from the *old* x):

    .. math::

        z_t &= (1-\alpha_z) z_{t-1} + \alpha_z \big(W_z \tanh(z_{t-1}) + B_z u_t
               [+ W_{zx} \phi(x_{t-1}) + b_{zx}]\big) \\
        s_t &= \sigma(A z_t + a) \\
        x_t &= (1-\alpha_x) x_{t-1} + \alpha_x \big(c\, L\,\mathrm{diag}(s_t) R^\top \phi(x_{t-1})
               + B_x u^{x}_t\big) \\
        y_t &= C x_t + d

    Parameters (``init_params`` keys; paper symbol, shape):

    ======  ==========================  =========================
    key     symbol                      shape
    ======  ==========================  =========================
    L       left factors (row_factors)  (N, K)
    R       right factors               (N, K), absent if tied
    B_x     input weights of x          (N, U_x)
    C       readout                     (O, N)
    d       readout bias                (O,), if readout_bias
    W_z     NM recurrent weights        (M, M)
    B_z     NM input weights            (M, U)
    A       NM-to-signal weights        (S, M)
    a       signal intercept            (S,)
    W_zx    feedback x -> z             (M, N), if feedback
    b_zx    feedback bias               (M,), if feedback
    ======  ==========================  =========================
    """

    kind = "nmrnn"
    state_names = ("x", "z")
    record_names = ("y", "x", "z", "s")

    def __init__(self, N: int, K: int, M: int, U: int, O: int, *, tau_x: float = 10.0,
                 tau_z: float = 100.0, dt: float = 1.0, signal_dim: int | None = None,
                 orthonormalize: bool = True, divide_by_N: bool = False, feedback: bool = False,
                 readout_bias: bool = True, U_x: int | None = None, phi: str = "tanh",
                 tied: bool = False, modulation: str = "synaptic"):
        self._init_lowrank(N, K, U, O, orthonormalize, divide_by_N, readout_bias, phi, tied)
        self.M = V.positive_int(M, "M")
        self.tau_x = V.positive_float(tau_x, "tau_x")
        self.tau_z = V.positive_float(tau_z, "tau_z")
        self.dt = V.positive_float(dt, "dt")
        self.alpha_x = V.time_constant(self.tau_x, self.dt, "tau_x")
        self.alpha_z = V.time_constant(self.tau_z, self.dt, "tau_z")
        S = self.K if signal_dim is None else V.positive_int(signal_dim, "signal_dim")
        if S not in (1, self.K):
            raise ValueError(f"signal_dim must be K={self.K} (one gain per component) or 1 (one global gain), "
                             f"got {S}")
        self.S = S
        self.feedback = V.boolean(feedback, "feedback")
        self.U_x = self.U if U_x is None else V.positive_int(U_x, "U_x")
        if self.U_x > self.U:
            raise ValueError(f"U_x={self.U_x} (inputs reaching x) must not exceed U={self.U}")
        self.modulation = modulation
        # how many components of s act on synapses and on excitability, and the fixed groups
        self._S_syn, self._S_exc = _mod.signal_split(modulation, self.S)
        self._comp_index = _mod.group_index(self.K, self._S_syn)
        self._pop_index = _mod.group_index(self.N, self._S_exc)

    def config(self) -> dict[str, Any]:
        return dict(N=self.N, K=self.K, M=self.M, U=self.U, O=self.O, tau_x=self.tau_x,
                    tau_z=self.tau_z, dt=self.dt, signal_dim=self.S,
                    orthonormalize=self.orthonormalize, divide_by_N=self.divide_by_N,
                    feedback=self.feedback, readout_bias=self.readout_bias, U_x=self.U_x,
                    phi=self.phi, tied=self.tied, modulation=self.modulation)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = self._lowrank_shapes(self.U_x)
        shapes.update(W_z=(self.M, self.M), B_z=(self.M, self.U), A=(self.S, self.M), a=(self.S,))
        if self.feedback:
            shapes.update(W_zx=(self.M, self.N), b_zx=(self.M,))
        return shapes

    def state_sizes(self) -> dict[str, int]:
        return {"x": self.N, "z": self.M}

    input_keys = ("B_x", "B_z")

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        """Named parameter groups: ``"nm"`` (the NM subnetwork W_z, B_z, A, a [, W_zx, b_zx]),
        ``"output"`` (the low-rank output network L, R, B_x, C, d) and ``"input"`` (B_x, B_z)."""
        keys = tuple(self.param_shapes())
        nm = ("W_z", "B_z", "A", "a", "W_zx", "b_zx")
        return {"nm": tuple(k for k in keys if k in nm), "output": tuple(k for k in keys if k not in nm),
                "input": tuple(k for k in keys if k in self.input_keys)}

    def init_params(self, rng: None | int | np.random.Generator = None, scheme: str = "reference") -> Params:
        """Random parameters.

        ``scheme="reference"`` (timing / multitask code): L, R ~ N(0, 1);
        B_x ~ N(0, 1)/sqrt(U_x); B_z ~ N(0, 1)/sqrt(U); C, d ~ N(0, 1)/sqrt(N);
        W_z, A, a ~ 0.1 N(0, 1); W_zx, b_zx ~ N(0, 1)/sqrt(N).
        ``scheme="fan_in"`` (element-finder code, ``random_nmrnn_params``): every
        weight N(0, 1)/sqrt(fan-in), L and R N(0, 1)/sqrt(K), the signal
        intercept a N(0, 1)/sqrt(S) (S = K, or 1 for one global gain: the
        authors divide by the signal dimension), b_zx N(0, 1)/sqrt(M), d
        N(0, 1)/sqrt(N). Draws happen in :meth:`param_shapes` order from ``rng``.
        """
        V.choice(scheme, "scheme", ("reference", "fan_in"))
        N, K, M, U, Ux = self.N, self.K, self.M, self.U, self.U_x
        if scheme == "reference":
            scales = dict(L=1.0, R=1.0, B_x=Ux ** -0.5, C=N ** -0.5, d=N ** -0.5, W_z=0.1,
                          B_z=U ** -0.5, A=0.1, a=0.1, W_zx=N ** -0.5, b_zx=N ** -0.5)
        else:
            scales = dict(L=K ** -0.5, R=K ** -0.5, B_x=Ux ** -0.5, C=N ** -0.5, d=N ** -0.5,
                          W_z=M ** -0.5, B_z=U ** -0.5, A=M ** -0.5, a=self.S ** -0.5,
                          W_zx=N ** -0.5, b_zx=M ** -0.5)
        return self._draw(rng, scales)

    def _nm_kernel_keys(self) -> tuple[str, ...]:
        return ("W_z", "B_z", "A", "a") + (("W_zx", "b_zx") if self.feedback else ())

    def _kernel_model_args(self, p: Params) -> dict:
        fb = self.feedback
        return dict(alpha_x=self.alpha_x, W_z=p["W_z"], B_z=p["B_z"], A=p["A"], a=p["a"],
                    W_zx=p["W_zx"] if fb else np.zeros((0, self.N)), b_zx=p["b_zx"] if fb else np.zeros(0),
                    alpha_z=self.alpha_z, nm=True, feedback=fb)

    def step(self, p: Params, state: dict, u):
        """One Euler step for a batch (the equations in the class docstring, line by line).

        ``p`` are prepared parameters (:meth:`prepare`), ``state`` holds x (B, N)
        and z (B, M), ``u`` is (B, U). Returns the new state and the record
        ``{"y", "x", "z", "s"}``.
        """
        z, s = self.signal_step(p, state, u)
        x, y = self.output_step(p, state["x"], s, u)
        return {"x": x, "z": z}, {"y": y, "x": x, "z": z, "s": s}

    def signal_step(self, p: Params, state: dict, u):
        """The NM half of :meth:`step`: ``z_t`` (B, M) and ``s_t = sigmoid(A z_t + a)`` (B, S)."""
        z_prev = state["z"]
        drive_z = anp.tanh(z_prev) @ p["W_z"].T + u @ p["B_z"].T
        if self.feedback:
            drive_z = drive_z + NONLINEARITIES[self.phi](state["x"]) @ p["W_zx"].T + p["b_zx"]
        z = leaky_euler(z_prev, drive_z, self.alpha_z)
        return z, sigmoid(z @ p["A"].T + p["a"])

    def output_step(self, p: Params, x_prev, s, u):
        """The output-network half of :meth:`step` for a given signal ``s`` (B, S): ``x_t`` and ``y_t``.

        Called with a signal other than the network's own, it simulates the
        output network under an imposed s (e.g. components clamped).
        """
        drive = u[:, :self.U_x] @ p["B_x"].T
        if self.modulation == "synaptic":
            x = lowrank_x_update(x_prev, p["L"], p["R"], s, drive, self.alpha_x, self.recurrent_scale,
                                 NONLINEARITIES[self.phi])
        else:
            x = _mod.modulated_x_update(x_prev, p["L"], p["R"], s, drive, self.alpha_x, self.recurrent_scale,
                                        NONLINEARITIES[self.phi], self._S_syn, self._S_exc,
                                        self._comp_index, self._pop_index)
        return x, self._readout(p, x)

    # -- numba: modulation other than synaptic runs the kernels of nmrnn_np._kernels.modulation
    def _numba_forward(self, p: Params, inputs: np.ndarray, init: dict, *args, **kwargs) -> dict:
        if self.modulation == "synaptic":
            return super()._numba_forward(p, inputs, init, *args, **kwargs)
        return _mod.numba_forward(self, p, inputs, init, *args, **kwargs)

    def _numba_backward(self, p: Params, inputs: np.ndarray, init: dict, fwd: dict, g_y: np.ndarray) -> dict:
        if self.modulation == "synaptic":
            return super()._numba_backward(p, inputs, init, fwd, g_y)
        return _mod.numba_backward(self, fwd, g_y)


class LowRankRNN(_LowRankBase):
    r"""Low-rank RNN baseline (the authors' LR-RNN): the NM-RNN's x equation with s = 1.

    .. math::

        x_t &= (1-\alpha) x_{t-1} + \alpha \big(\tfrac{1}{N} L R^\top \phi(x_{t-1}) + B_x u_t\big) \\
        y_t &= C x_t + d

    Parameters are those of :class:`NMRNN` without the NM subnetwork
    (``L``, ``R``, ``B_x``, ``C``, ``d``); ``divide_by_N`` defaults to True as
    in the authors' LR-RNN. ``tau`` is the time constant, ``alpha = dt / tau``.
    """

    kind = "lrrnn"
    state_names = ("x",)
    record_names = ("y", "x")

    def __init__(self, N: int, K: int, U: int, O: int, *, tau: float = 10.0, dt: float = 1.0,
                 orthonormalize: bool = True, divide_by_N: bool = True, readout_bias: bool = True,
                 phi: str = "tanh", tied: bool = False):
        self._init_lowrank(N, K, U, O, orthonormalize, divide_by_N, readout_bias, phi, tied)
        self.tau = V.positive_float(tau, "tau")
        self.dt = V.positive_float(dt, "dt")
        self.alpha = V.time_constant(self.tau, self.dt, "tau")

    def config(self) -> dict[str, Any]:
        return dict(N=self.N, K=self.K, U=self.U, O=self.O, tau=self.tau, dt=self.dt,
                    orthonormalize=self.orthonormalize, divide_by_N=self.divide_by_N,
                    readout_bias=self.readout_bias, phi=self.phi, tied=self.tied)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return self._lowrank_shapes(self.U)

    def state_sizes(self) -> dict[str, int]:
        return {"x": self.N}

    def init_params(self, rng: None | int | np.random.Generator = None) -> Params:
        """L, R ~ N(0, 1); B_x ~ N(0, 1)/sqrt(U); C, d ~ N(0, 1)/sqrt(N) (the authors' scales)."""
        N, U = self.N, self.U
        return self._draw(rng, dict(L=1.0, R=1.0, B_x=U ** -0.5, C=N ** -0.5, d=N ** -0.5))

    def step(self, p: Params, state: dict, u):
        """One Euler step for a batch; returns the new state and ``{"y", "x"}``."""
        phi = NONLINEARITIES[self.phi]
        x = lowrank_x_update(state["x"], p["L"], p["R"], 1.0, u @ p["B_x"].T,
                             self.alpha, self.recurrent_scale, phi)
        return {"x": x}, {"y": self._readout(p, x), "x": x}
