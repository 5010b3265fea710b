r"""The vanilla ("full-rank") RNN baseline and the LSTM baseline."""
from __future__ import annotations

from typing import Any

import autograd.numpy as anp
import numpy as np

from .. import _validation as V
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
        self.divide_by_N = bool(divide_by_N)
        self.readout_bias = bool(readout_bias)
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

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        """Named parameter groups: ``"input"`` (B_x) and ``"output"`` (all the rest)."""
        return {"input": ("B_x",), "output": tuple(k for k in self.param_shapes() if k != "B_x")}

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


GATES = ("i", "f", "g", "o")


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

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        """Named parameter groups: ``"input"`` (the four W_qu) and ``"output"`` (all the rest)."""
        inp = tuple(f"W_{q}u" for q in GATES)
        return {"input": inp, "output": tuple(k for k in self.param_shapes() if k not in inp)}

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
