r"""The vanilla ("full-rank") RNN baseline and the LSTM baseline."""
from __future__ import annotations

from typing import Any

import autograd.numpy as anp
import numpy as np

from .. import _validation as V
from .._kernels import as_kernel_array, empty_arrays
from .base import NONLINEARITIES, Params, RecurrentModel, leaky_euler, sigmoid


class VanillaRNN(RecurrentModel):
    r"""Full-rank rate RNN (the authors' vanilla RNN baseline).

    .. math::

        x_t &= (1-\alpha) x_{t-1} + \alpha \big(c\, W \phi(x_{t-1}) + B_x u_t\big),
               \qquad c = 1/N \text{ (default) or } 1 \\
        y_t &= C x_t + d

    Parameters: ``W`` (N, N), ``B_x`` (N, U), ``C`` (O, N), ``d`` (O,) if
    ``readout_bias``. ``alpha = dt / tau``.
    """

    kind = "rnn"
    state_names = ("x",)
    record_names = ("y", "x")

    def __init__(self, N: int, U: int, O: int, *, tau: float = 10.0, dt: float = 1.0,
                 divide_by_N: bool = True, readout_bias: bool = True, phi: str = "tanh"):
        self.N = V.positive_int(N, "N")
        self.U = V.positive_int(U, "U")
        self.O = V.positive_int(O, "O")
        self.tau = V.positive_float(tau, "tau")
        self.dt = V.positive_float(dt, "dt")
        self.alpha = V.time_constant(self.tau, self.dt, "tau")
        self.divide_by_N = V.boolean(divide_by_N, "divide_by_N")
        self.readout_bias = V.boolean(readout_bias, "readout_bias")
        self.phi = V.choice(phi, "phi", tuple(NONLINEARITIES))

    def config(self) -> dict[str, Any]:
        return dict(N=self.N, U=self.U, O=self.O, tau=self.tau, dt=self.dt,
                    divide_by_N=self.divide_by_N, readout_bias=self.readout_bias, phi=self.phi)

    @property
    def recurrent_scale(self) -> float:
        """c in the recurrent term: 1/N when ``divide_by_N`` else 1."""
        return 1.0 / self.N if self.divide_by_N else 1.0

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {"W": (self.N, self.N), "B_x": (self.N, self.U), "C": (self.O, self.N)}
        if self.readout_bias:
            shapes["d"] = (self.O,)
        return shapes

    def state_sizes(self) -> dict[str, int]:
        return {"x": self.N}

    def init_params(self, rng: None | int | np.random.Generator = None) -> Params:
        """W ~ N(0, 1) sqrt(N) when divided by N (so W/N has spectral radius about 1), else
        N(0, 1)/sqrt(N); B_x ~ N(0, 1)/sqrt(U); C, d ~ N(0, 1)/sqrt(N).

        The authors' initialiser for this baseline is not in their public code;
        this choice gives the recurrent term gain ~1 either way.
        """
        N, U = self.N, self.U
        w = N ** 0.5 if self.divide_by_N else N ** -0.5
        return self._draw(rng, dict(W=w, B_x=U ** -0.5, C=N ** -0.5, d=N ** -0.5))

    def step(self, p: Params, state: dict, u):
        """One Euler step for a batch; returns the new state and ``{"y", "x"}``."""
        phi = NONLINEARITIES[self.phi]
        x_prev = state["x"]
        x = leaky_euler(x_prev, self.recurrent_scale * (phi(x_prev) @ p["W"].T) + u @ p["B_x"].T, self.alpha)
        y = x @ p["C"].T
        if self.readout_bias:
            y = y + p["d"]
        return {"x": x}, {"y": y, "x": x}

    # -- numba fast path: nmrnn_np._kernels.dense ------------------------------
    @property
    def _kernel_keys(self) -> tuple[str, ...]:
        return tuple(self.param_shapes())

    def _numba_forward(self, p: Params, inputs: np.ndarray, init: dict, *, dtype=np.float64) -> dict:
        """``y`` and ``x`` (B, T, .), plus the kernel's time-major arrays for the backward pass (all of ``dtype``).

        The kernel works time-major (each step's batch is one contiguous block):
        ``x`` is a (B, T, N) transposed view of its (T + 1, B, N) array, not a
        copy; ``y`` is copied to C order (it is small and feeds the loss).
        """
        from .._kernels import dense
        B, T, _ = inputs.shape
        def c(a):
            return as_kernel_array(a, dtype)
        u = c(np.transpose(inputs, (1, 0, 2)))
        x, r, y = empty_arrays((T + 1, B, self.N), (T + 1, B, self.N), (T, B, self.O), dtype=dtype)
        d = p["d"] if self.readout_bias else np.zeros(self.O)
        dense.rnn_forward(u, c(init["x0"]), c(p["W"].T), c(p["B_x"].T), c(p["C"].T), c(d),
                          self.alpha, self.recurrent_scale, self.phi == "linear", x, r, y)
        return {"y": c(y.transpose(1, 0, 2)), "x": x[1:].transpose(1, 0, 2), "_u": u, "_x": x, "_r": r}

    def _numba_backward(self, p: Params, inputs: np.ndarray, init: dict, fwd: dict, g_y: np.ndarray) -> dict:
        """Gradient of ``sum(g_y * y)`` with respect to every parameter, by the BPTT kernel."""
        from .._kernels import dense
        dtype = fwd["_x"].dtype

        def c(a):
            return as_kernel_array(a, dtype)
        grads = {k: np.empty(shape, dtype) for k, shape in self.param_shapes().items()}
        dd = grads["d"] if self.readout_bias else np.empty(self.O, dtype)
        dense.rnn_backward(fwd["_u"], fwd["_x"], fwd["_r"], c(np.transpose(g_y, (1, 0, 2))), c(p["W"]),
                           c(p["C"]), self.alpha, self.recurrent_scale, self.phi == "linear",
                           grads["W"], grads["B_x"], grads["C"], dd)
        return {k: as_kernel_array(g) for k, g in grads.items()}   # float64 whatever the kernels' precision


GATES = ("i", "f", "g", "o")
#: gate order in the stacked arrays of the numba kernels: the three sigmoid gates first
_KERNEL_GATES = ("i", "f", "o", "g")


class LSTM(RecurrentModel):
    r"""LSTM baseline in the authors' reference form (no readout bias).

    .. math::

        i_t &= \sigma(W_{iu} u_t + W_{ih} h_{t-1} + b_i), \quad
        f_t  = \sigma(W_{fu} u_t + W_{fh} h_{t-1} + b_f) \\
        g_t &= \tanh(W_{gu} u_t + W_{gh} h_{t-1} + b_g), \quad
        o_t  = \sigma(W_{ou} u_t + W_{oh} h_{t-1} + b_o) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t, \qquad h_t = o_t \odot \tanh(c_t),
        \qquad y_t = C h_t

    Parameters: for each gate q in (i, f, g, o) ``W_qu`` (N, U), ``W_qh``
    (N, N), ``b_q`` (N,); readout ``C`` (O, N). N is the number of hidden units.
    """

    kind = "lstm"
    state_names = ("c", "h")
    record_names = ("y", "h", "c")

    def __init__(self, N: int, U: int, O: int):
        self.N = V.positive_int(N, "N")
        self.U = V.positive_int(U, "U")
        self.O = V.positive_int(O, "O")

    def config(self) -> dict[str, Any]:
        return dict(N=self.N, U=self.U, O=self.O)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        shapes = {}
        for q in GATES:
            shapes.update({f"W_{q}u": (self.N, self.U), f"W_{q}h": (self.N, self.N), f"b_{q}": (self.N,)})
        shapes["C"] = (self.O, self.N)
        return shapes

    def state_sizes(self) -> dict[str, int]:
        return {"c": self.N, "h": self.N}

    input_keys = tuple(f"W_{q}u" for q in GATES)

    def init_params(self, rng: None | int | np.random.Generator = None) -> Params:
        """W_qu ~ N(0, 1)/sqrt(U); W_qh, b_q, C ~ N(0, 1)/sqrt(N) (the authors' scales)."""
        N, U = self.N, self.U
        scales = {k: (U ** -0.5 if k.endswith("u") else N ** -0.5) for k in self.param_shapes()}
        return self._draw(rng, scales)

    def step(self, p: Params, state: dict, u):
        """One LSTM step for a batch; returns the new state and ``{"y", "h", "c"}``."""
        h_prev, c_prev = state["h"], state["c"]

        def pre(q):
            return u @ p[f"W_{q}u"].T + h_prev @ p[f"W_{q}h"].T + p[f"b_{q}"]

        i, f, g, o = sigmoid(pre("i")), sigmoid(pre("f")), anp.tanh(pre("g")), sigmoid(pre("o"))
        c = f * c_prev + i * g
        h = o * anp.tanh(c)
        y = h @ p["C"].T
        return {"c": c, "h": h}, {"y": y, "h": h, "c": c}

    # -- numba fast path: nmrnn_np._kernels.dense ------------------------------
    @property
    def _kernel_keys(self) -> tuple[str, ...]:
        return tuple(self.param_shapes())

    def _stacked(self, p: Params, prefix: str, suffix: str) -> np.ndarray:
        """The four gate arrays ``p[prefix + q + suffix]`` stacked along axis 0 in kernel order."""
        return np.concatenate([p[f"{prefix}{q}{suffix}"] for q in _KERNEL_GATES], axis=0)

    def _numba_forward(self, p: Params, inputs: np.ndarray, init: dict, *, dtype=np.float64) -> dict:
        """``y``, ``h``, ``c`` (B, T, .), plus the kernel's time-major arrays for the backward pass (all of ``dtype``).

        ``h`` and ``c`` are (B, T, N) transposed views of the kernel's time-major
        (T + 1, B, N) arrays, not copies; ``y`` is copied to C order.
        """
        from .._kernels import dense
        B, T, _ = inputs.shape
        N = self.N
        def k(a):
            return as_kernel_array(a, dtype)
        u = k(np.transpose(inputs, (1, 0, 2)))
        gates, tc, y, c, h = empty_arrays((T, B, 4 * N), (T, B, N), (T, B, self.O), (T + 1, B, N), (T + 1, B, N),
                                          dtype=dtype)
        dense.lstm_forward(u, k(init["c0"]), k(init["h0"]), k(self._stacked(p, "W_", "u").T),
                           k(self._stacked(p, "W_", "h").T), k(self._stacked(p, "b_", "")), k(p["C"].T),
                           gates, c, tc, h, y)
        return {"y": k(y.transpose(1, 0, 2)), "h": h[1:].transpose(1, 0, 2), "c": c[1:].transpose(1, 0, 2),
                "_u": u, "_gates": gates, "_c": c, "_tc": tc, "_h": h}

    def _numba_backward(self, p: Params, inputs: np.ndarray, init: dict, fwd: dict, g_y: np.ndarray) -> dict:
        """Gradient of ``sum(g_y * y)`` with respect to every parameter, by the BPTT kernel."""
        from .._kernels import dense
        N, U = self.N, self.U
        dtype = fwd["_h"].dtype

        def k(a):
            return as_kernel_array(a, dtype)
        dWu, dWh, db = np.empty((4 * N, U), dtype), np.empty((4 * N, N), dtype), np.empty(4 * N, dtype)
        dC = np.empty((self.O, N), dtype)
        dense.lstm_backward(fwd["_u"], k(np.transpose(g_y, (1, 0, 2))), k(self._stacked(p, "W_", "h")),
                            k(p["C"]), fwd["_gates"], fwd["_c"], fwd["_tc"], fwd["_h"], dWu, dWh, db, dC)
        grads = {"C": as_kernel_array(dC)}
        for n, q in enumerate(_KERNEL_GATES):
            rows = slice(n * N, (n + 1) * N)
            grads.update({f"W_{q}u": as_kernel_array(dWu[rows]), f"W_{q}h": as_kernel_array(dWh[rows]),
                          f"b_{q}": as_kernel_array(db[rows])})
        return grads
