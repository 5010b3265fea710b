r"""Each prediction of :mod:`theory` against ``nmrnn_np`` simulations.

Exactness checks (random linear symmetric rank-1 NM-RNNs, where the theory is
exact):

- :func:`check_latent_closed_form` -- prediction 1, discrete product form vs
  ``l^T x`` of the simulated network;
- :func:`check_inverse_signal` -- prediction 2, the signal recovered from the
  simulated kappa vs the signal the network emitted;
- :func:`check_lstm_mapping` -- prediction 4, the gated recurrence vs kappa;
- :func:`check_continuous_closed_form` -- prediction 1 in continuous time vs
  :func:`scipy.integrate.solve_ivp` on the full N-dimensional network;
- :func:`check_euler_convergence` -- the Euler-simulated kappa against the
  continuous solution as dt shrinks (first order);
- :func:`check_tanh_gate_mapping` -- how far the linear gate mapping is from
  tanh and rank-K networks along their trajectories.

Trained networks (prediction 3): :func:`train_mwg_network` and
:func:`ramp_comparison` (:mod:`theory.cli` strings them together).

Every function returns plain dicts of floats and arrays that
:mod:`theory.plots` draws and :mod:`theory.cli` writes to JSON.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

from nmrnn_np import NMRNN
from nmrnn_np import _validation as V
from nmrnn_np._rng import as_generator

from . import lstm_gate, ramp, rank1

__all__ = [
    "random_linear_symmetric_network",
    "check_latent_closed_form",
    "check_inverse_signal",
    "check_lstm_mapping",
    "check_continuous_closed_form",
    "check_euler_convergence",
    "check_tanh_gate_mapping",
    "constant_signal_network",
    "NETWORK_KINDS",
    "FIXED_D_EFF",
    "readout_fixed_params",
    "off_manifold_norm",
    "train_mwg_network",
    "ramp_comparison",
]

#: the exactness checks simulate with the readable NumPy path (the equations themselves)
SIM_BACKEND = "numpy"


# ----------------------------------------------------------------------------
# Random networks where the theory is exact
# ----------------------------------------------------------------------------
def random_linear_symmetric_network(N: int = 30, M: int = 5, U: int = 3, *, rng=0, tau_x: float = 10.0,
                                    tau_z: float = 10.0, dt: float = 1.0, phi: str = "linear",
                                    K: int = 1, tied: bool = True):
    """A random rank-1 (or rank-K), symmetric NM-RNN whose signal s(t) sweeps much of (0, 1).

    The reference initialisation (A, a ~ 0.1 N(0, 1)) keeps s near 0.5; to
    exercise the closed forms the NM weights are scaled up (A ~ 3 N(0, 1),
    W_z ~ 1.5 N(0, 1)/sqrt(M)) and tau_z defaults to tau_x so s varies on the
    timescale of kappa.

    Returns
    -------
    model : NMRNN(N, K, M, U, 1, phi=phi, tied=tied)
    params : dict of arrays
    """
    gen = as_generator(rng)
    model = NMRNN(N, K, M, U, 1, tau_x=tau_x, tau_z=tau_z, dt=dt, phi=phi, tied=tied)
    params = model.init_params(gen)
    params["A"] = 3.0 * gen.standard_normal(params["A"].shape)
    params["W_z"] = 1.5 * gen.standard_normal(params["W_z"].shape) / np.sqrt(M)
    return model, params


def _latent_setup(model, params, inputs, x0, z0):
    tr = model.simulate(params, inputs, backend=SIM_BACKEND, x0=x0, z0=z0)
    p = model.prepare(params)
    l = np.asarray(p["L"])[:, 0]
    g = inputs[:, :, :model.U_x] @ np.asarray(p["B_x"]).T @ l
    return tr, l, g


def _inputs_and_states(model, params, gen, B, T, input_scale):
    l = np.asarray(model.prepare(params)["L"])[:, 0]
    sign = gen.choice([-1.0, 1.0], size=(B, 1))
    x0 = sign * 3.0 * l[None, :] + 0.3 * gen.standard_normal((B, model.N))
    z0 = 2.0 * gen.standard_normal((B, model.M))
    inputs = input_scale * gen.standard_normal((B, T, model.U))
    return inputs, x0, z0


def check_latent_closed_form(n_networks: int = 3, *, B: int = 4, T: int = 100, rng=0) -> dict:
    r"""Prediction 1, discrete: :math:`\kappa_t = \Phi_{t,0}\kappa_0 + \alpha\sum_k \Phi_{t,k} g_k`
    (:func:`theory.rank1.latent_closed_form_discrete`) against ``l^T x_t`` of
    simulated random linear symmetric rank-1 NM-RNNs, with and without input.

    Returns
    -------
    dict
        ``max_abs_error`` (over both cases), ``max_abs_error_no_input``,
        ``max_abs_error_with_input``, ``kappa_max`` (scale of kappa), and one
        example run (``example_s``, ``example_kappa``, ``example_closed_form``).
    """
    gen = as_generator(rng)
    err0 = err1 = 0.0
    kmax = 0.0
    example = None
    for _ in range(V.positive_int(n_networks, "n_networks")):
        model, params = random_linear_symmetric_network(rng=gen)
        for scale in (0.0, 0.3):
            inputs, x0, z0 = _inputs_and_states(model, params, gen, B, T, scale)
            tr, l, g = _latent_setup(model, params, inputs, x0, z0)
            kappa = tr.x @ l
            s = tr.s[..., 0]
            closed = rank1.latent_closed_form_discrete(s, x0 @ l, model.alpha_x, g if scale else None)
            e = float(np.max(np.abs(closed - kappa)))
            kmax = max(kmax, float(np.max(np.abs(kappa))))
            if scale:
                err1 = max(err1, e)
            else:
                err0 = max(err0, e)
                if example is None:
                    example = dict(example_s=s[0], example_kappa=kappa[0], example_closed_form=closed[0])
    return dict(max_abs_error=max(err0, err1), max_abs_error_no_input=err0, max_abs_error_with_input=err1,
                kappa_max=kmax, **example)


def check_inverse_signal(n_networks: int = 3, *, B: int = 4, T: int = 100, rng=1) -> dict:
    r"""Prediction 2, discrete: :math:`s_t = 1 - (1 - (\kappa_t - \alpha g_t)/\kappa_{t-1})/\alpha`
    (:func:`theory.rank1.inverse_signal_discrete`) applied to the simulated
    kappa, against the s the network emitted.

    Runs start with kappa_0 = +-3 and small inputs so kappa stays away from 0,
    where the inverse problem is ill-posed (it divides by kappa_{t-1}).

    Returns
    -------
    dict
        ``max_abs_error`` (both cases), ``max_abs_error_no_input``,
        ``max_abs_error_with_input``, ``min_abs_kappa``.
    """
    gen = as_generator(rng)
    err0 = err1 = 0.0
    kmin = np.inf
    for _ in range(V.positive_int(n_networks, "n_networks")):
        model, params = random_linear_symmetric_network(rng=gen)
        for scale in (0.0, 0.1):
            inputs, x0, z0 = _inputs_and_states(model, params, gen, B, T, scale)
            tr, l, g = _latent_setup(model, params, inputs, x0, z0)
            kappa = tr.x @ l
            s_hat = rank1.inverse_signal_discrete(kappa, model.alpha_x, kappa0=x0 @ l, g=g if scale else None)
            e = float(np.max(np.abs(s_hat - tr.s[..., 0])))
            kmin = min(kmin, float(np.min(np.abs(kappa))))
            if scale:
                err1 = max(err1, e)
            else:
                err0 = max(err0, e)
    return dict(max_abs_error=max(err0, err1), max_abs_error_no_input=err0, max_abs_error_with_input=err1,
                min_abs_kappa=kmin)


def check_lstm_mapping(n_networks: int = 3, *, B: int = 4, T: int = 100, rng=2) -> dict:
    r"""Prediction 4, linear symmetric: the gated recurrence
    :math:`c_t = f_t c_{t-1} + i_t g_t` with :math:`f_t = 1 - \alpha(1 - s_t)`,
    :math:`i_t = \alpha`, :math:`g_t = l^\top B_x u_t` (from
    :func:`theory.lstm_gate.gates_from_run`) against kappa; and the round trip
    s -> f -> s (:func:`theory.lstm_gate.signal_from_forget_gate`).

    Returns
    -------
    dict
        ``max_abs_error`` (max of the two), ``cell_max_abs_error``,
        ``signal_roundtrip_max_abs_error``, ``forget_gate_min``,
        ``forget_gate_max``, ``alpha``, and an example (``example_f``,
        ``example_c``, ``example_kappa``, ``example_g``).
    """
    gen = as_generator(rng)
    cell_err = trip_err = 0.0
    fmin, fmax = np.inf, -np.inf
    example = None
    for _ in range(V.positive_int(n_networks, "n_networks")):
        model, params = random_linear_symmetric_network(rng=gen)
        inputs, x0, z0 = _inputs_and_states(model, params, gen, B, T, 0.3)
        tr = model.simulate(params, inputs, backend=SIM_BACKEND, x0=x0, z0=z0)
        gates = lstm_gate.gates_from_run(model, params, inputs, tr, x0=x0)
        c = lstm_gate.gated_recurrence(gates.f, gates.i, gates.g, gates.c0)
        cell_err = max(cell_err, float(np.max(np.abs(c - gates.kappa))))
        s_back = lstm_gate.signal_from_forget_gate(gates.f, model.alpha_x)
        trip_err = max(trip_err, float(np.max(np.abs(s_back - tr.s))))
        fmin, fmax = min(fmin, float(gates.f.min())), max(fmax, float(gates.f.max()))
        if example is None:
            example = dict(example_f=gates.f[0, :, 0], example_c=c[0, :, 0], example_kappa=gates.kappa[0, :, 0],
                           example_g=gates.g[0, :, 0], alpha=model.alpha_x)
    return dict(max_abs_error=max(cell_err, trip_err), cell_max_abs_error=cell_err,
                signal_roundtrip_max_abs_error=trip_err, forget_gate_min=fmin, forget_gate_max=fmax, **example)


# ----------------------------------------------------------------------------
# Continuous time
# ----------------------------------------------------------------------------
def _prescribed_signals():
    """Signals with closed-form integrals S(t) = int_0^t s, and smooth input drives."""
    w1, w2 = 2 * np.pi / 37.0, 2 * np.pi / 23.0
    return [
        ("sinusoid", lambda t: 0.5 + 0.45 * np.sin(w1 * t),
         lambda t: 0.5 * t + 0.45 * (1 - np.cos(w1 * t)) / w1),
        ("two-tone", lambda t: 0.6 + 0.2 * np.cos(w2 * t) + 0.15 * np.sin(w1 * t),
         lambda t: 0.6 * t + 0.2 * np.sin(w2 * t) / w2 + 0.15 * (1 - np.cos(w1 * t)) / w1),
        ("switch", lambda t: 0.1 + 0.85 / (1 + np.exp(-(t - 25.0) / 2.0)),
         lambda t: 0.1 * t + 0.85 * 2.0 * (np.logaddexp(0, (t - 25.0) / 2.0) - np.logaddexp(0, -25.0 / 2.0))),
    ]


def check_continuous_closed_form(N: int = 20, U: int = 2, *, horizon: float = 60.0, n_times: int = 31,
                                 tau_x: float = 10.0, rng=3, with_input: bool = True) -> dict:
    r"""Prediction 1, continuous: :math:`\kappa(t) = \kappa_0 e^{-\Lambda(t,0)} + \ldots`
    (:func:`theory.rank1.latent_closed_form_continuous`) against ``l^T x(t)``
    from :func:`scipy.integrate.solve_ivp` (DOP853, rtol 1e-12, atol 1e-13)
    on the full N-dimensional network
    :math:`\tau_x \dot x = -x + s(t)\, l l^\top x + B_x u(t)`.

    The signals are prescribed functions of time with closed-form integrals
    (a sinusoid, two tones, a logistic switch): the continuous theory takes
    any s(t), whatever emits it. With ``with_input`` a second pass adds a
    smooth input ``u(t)`` (the convolution integral is evaluated by
    quadrature).

    Returns
    -------
    dict
        ``max_abs_error`` over every signal and time, ``per_signal`` errors,
        and ``example`` arrays (t, kappa from solve_ivp, closed form, s(t)).
    """
    gen = as_generator(rng)
    tau_x = V.positive_float(tau_x, "tau_x")
    l = gen.standard_normal(N)
    l /= np.linalg.norm(l)
    B_x = gen.standard_normal((N, U)) / np.sqrt(U)
    x0 = 2.0 * l + 0.5 * gen.standard_normal(N)
    kappa0 = float(l @ x0)
    times = np.linspace(0.0, horizon, n_times)

    def u_of_t(t):
        return np.array([np.sin(0.3 * t), np.cos(0.11 * t)])[:U] * 0.5

    per_signal = {}
    example = None
    for name, s, S in _prescribed_signals():
        for forced in ((False, True) if with_input else (False,)):
            def rhs(t, x, s=s, forced=forced):
                drive = B_x @ u_of_t(t) if forced else 0.0
                return (-x + s(t) * l * (l @ x) + drive) / tau_x

            sol = solve_ivp(rhs, (0.0, horizon), x0, t_eval=times, method="DOP853", rtol=1e-12, atol=1e-13)
            if not sol.success:  # pragma: no cover - DOP853 on a smooth linear ODE
                raise RuntimeError(f"solve_ivp failed: {sol.message}")
            kappa_ode = l @ sol.y
            g = (lambda t: float(l @ B_x @ u_of_t(t))) if forced else None
            closed = rank1.latent_closed_form_continuous(times, kappa0, tau_x, s, s_integral=S, g=g)
            key = f"{name}{'+input' if forced else ''}"
            per_signal[key] = float(np.max(np.abs(closed - kappa_ode)))
            if example is None:
                example = dict(t=times, kappa_ode=kappa_ode, kappa_closed=closed, s=s(times))
    return dict(max_abs_error=max(per_signal.values()), per_signal=per_signal, example=example)


def _continuous_network_rhs(model, p, u_of_t):
    """The continuous NM-RNN (linear output network) as an ODE in (x, z)."""
    N = model.N
    L, R = np.asarray(p["L"]), np.asarray(p["R"])

    def rhs(t, v):
        x, z = v[:N], v[N:]
        u = u_of_t(t)
        s = 0.5 * (np.tanh(0.5 * (p["A"] @ z + p["a"])) + 1.0)
        dz = (-z + p["W_z"] @ np.tanh(z) + p["B_z"] @ u) / model.tau_z
        dx = (-x + model.recurrent_scale * L @ (s * (R.T @ x)) + p["B_x"] @ u[:model.U_x]) / model.tau_x
        return np.concatenate([dx, dz])

    return rhs


def check_euler_convergence(dts=(1.0, 0.5, 0.25, 0.125), *, horizon: float = 40.0, rng=4) -> dict:
    r"""Euler against the continuous solution: kappa of the simulated network
    (:meth:`nmrnn_np.NMRNN.simulate` with ``dt``) against ``l^T x(t)`` of the
    continuous network (solve_ivp, joint x and z, rtol 1e-12), for shrinking dt.

    Forward Euler is first order, so the maximum error over [0, horizon]
    should halve with dt; ``order`` is the least-squares slope of
    log(error) against log(dt).

    Returns
    -------
    dict
        ``dts``, ``errors`` (max |kappa_Euler - kappa_ODE| per dt),
        ``order``, and ``example`` (t, kappa for the coarsest dt and the ODE).
    """
    gen = as_generator(rng)
    model0, params = random_linear_symmetric_network(N=20, M=4, U=2, rng=gen, tau_z=10.0)
    x0 = 2.0 * np.asarray(model0.prepare(params)["L"])[:, 0] + 0.3 * gen.standard_normal(model0.N)
    z0 = gen.standard_normal(model0.M)

    def u_of_t(t):
        return np.array([np.sin(0.4 * t), np.cos(0.15 * t)])

    p = model0.prepare(params)
    l = np.asarray(p["L"])[:, 0]
    errors = []
    example = {}
    fine_t = np.linspace(0.0, horizon, 401)
    sol = solve_ivp(_continuous_network_rhs(model0, p, u_of_t), (0.0, horizon), np.concatenate([x0, z0]),
                    method="DOP853", rtol=1e-12, atol=1e-13, dense_output=True)
    for dt in dts:
        model = NMRNN(model0.N, 1, model0.M, model0.U, 1, tau_x=model0.tau_x, tau_z=model0.tau_z, dt=dt,
                      phi="linear", tied=True)
        steps = int(round(horizon / dt))
        t_steps = dt * np.arange(1, steps + 1)
        # step t moves from time (t-1) dt to t dt and sees the input at its end
        u = np.stack([u_of_t(t) for t in t_steps])[None]
        tr = model.simulate(params, u, backend=SIM_BACKEND, x0=x0, z0=z0)
        kappa_euler = tr.x[0] @ l
        kappa_ode = l @ sol.sol(t_steps)[:model.N]
        errors.append(float(np.max(np.abs(kappa_euler - kappa_ode))))
        if not example:
            example = dict(t=t_steps, kappa_euler=kappa_euler, t_fine=fine_t,
                           kappa_ode=l @ sol.sol(fine_t)[:model.N], dt=dt)
    order = float(np.polyfit(np.log(dts), np.log(errors), 1)[0])
    return dict(dts=[float(d) for d in dts], errors=errors, order=order, example=example)


def check_tanh_gate_mapping(*, N: int = 30, M: int = 5, B: int = 4, T: int = 100,
                            input_scales=(0.1, 0.3, 1.0, 3.0), rng=5) -> dict:
    r"""How far the linear forget-gate mapping is from tanh (and rank-K) NM-RNNs.

    For each input scale, a tanh rank-1 tied network and a tanh rank-3 tied
    network (one signal per component) are simulated and
    :func:`theory.lstm_gate.gate_mapping_mismatch` compares the gated
    recurrence with their kappa. The exact latent identity (s gating the
    candidate :math:`R^\top \tanh(x_{t-1})`) is checked at the same time.

    Returns
    -------
    dict
        ``input_scales`` and, for ``"tanh_rank1"`` and ``"tanh_rank3"``,
        lists of ``one_step_relative``, ``rollout_relative``, ``kappa_scale``;
        ``exact_identity_max_abs`` over all runs; ``linear_rank3`` (the same
        measures for a linear tied rank-3 network, exact).
    """
    gen = as_generator(rng)
    out: dict[str, Any] = {"input_scales": [float(a) for a in input_scales]}
    exact = 0.0
    for label, K in (("tanh_rank1", 1), ("tanh_rank3", 3)):
        model, params = random_linear_symmetric_network(N=N, M=M, rng=gen, phi="tanh", K=K)
        rows = {"one_step_relative": [], "rollout_relative": [], "kappa_scale": []}
        for scale in input_scales:
            inputs = scale * gen.standard_normal((B, T, model.U))
            mm = lstm_gate.gate_mapping_mismatch(model, params, inputs)
            for k in rows:
                rows[k].append(mm[k])
            exact = max(exact, mm["exact_identity_max_abs"])
        out[label] = rows
    model, params = random_linear_symmetric_network(N=N, M=M, rng=gen, phi="linear", K=3)
    mm = lstm_gate.gate_mapping_mismatch(model, params, 0.3 * gen.standard_normal((B, T, model.U)))
    out["linear_rank3"] = mm
    out["exact_identity_max_abs"] = max(exact, mm["exact_identity_max_abs"])
    return out


def constant_signal_network(s_values, *, N: int = 20, T: int = 60, tau_x: float = 10.0, rng=6) -> dict:
    """kappa(t) of a linear symmetric network whose signal is held constant (Figure 2A analogue).

    The NM readout is switched off (A = 0) and the intercept set to
    ``logit(s)``, so the network emits exactly s; with no input, the
    simulated kappa is compared with :func:`theory.rank1.latent_constant_signal`
    at the step times (the Euler product differs from the exponential by
    O(dt/tau_eff)) and with the discrete product (exact).

    Returns
    -------
    dict
        ``t``, per-s ``kappa_sim`` rows, ``kappa_continuous`` rows,
        ``max_abs_error_discrete`` (product form vs simulation),
        ``effective_timescale`` per s.
    """
    gen = as_generator(rng)
    s_values = [float(s) for s in s_values]
    if any(not 0.0 < s < 1.0 for s in s_values):
        raise ValueError(f"s_values must lie in (0, 1) (a sigmoid never reaches 0 or 1), got {s_values}")
    model = NMRNN(N, 1, 3, 1, 1, tau_x=tau_x, phi="linear", tied=True)
    params = model.init_params(gen)
    params["A"] = np.zeros_like(params["A"])
    l = np.asarray(model.prepare(params)["L"])[:, 0]
    x0 = l.copy()                            # kappa_0 = 1, x_perp = 0
    rows_sim, rows_cont, err = [], [], 0.0
    t = np.arange(1, T + 1) * model.dt
    for s in s_values:
        params["a"] = np.array([np.log(s / (1.0 - s))])
        tr = model.simulate(params, np.zeros((1, T, 1)), backend=SIM_BACKEND, x0=x0)
        kappa = tr.x[0] @ l
        rows_sim.append(kappa)
        rows_cont.append(rank1.latent_constant_signal(t, 1.0, s, tau_x))
        err = max(err, float(np.max(np.abs(rank1.latent_closed_form_discrete(tr.s[0, :, 0], 1.0,
                                                                            model.alpha_x) - kappa))))
    return dict(t=t, s_values=s_values, kappa_sim=np.array(rows_sim), kappa_continuous=np.array(rows_cont),
                max_abs_error_discrete=err,
                effective_timescale=[float(rank1.effective_timescale(s, tau_x)) for s in s_values])


# ----------------------------------------------------------------------------
# Trained networks (prediction 3)
# ----------------------------------------------------------------------------
#: the kinds of rank-1 symmetric network :func:`train_mwg_network` trains
NETWORK_KINDS = ("readout_fixed", "latent", "linear", "tanh")

#: readout offset of the ``"readout_fixed"`` network: rho = (d - y_end)/(y_end - y_go) = 2, so
#: prediction 3 is feasible for T_I > (tau_x - dt)/rho = 4.5 steps
FIXED_D_EFF = 2.5


def readout_fixed_params(model, rng=None, *, d_eff: float = FIXED_D_EFF, y_go: float = -0.5) -> dict:
    r"""Parameters of the one-unit linear network with the readout chosen from prediction 3.

    For ``N = 1`` the state is its own latent coordinate (x = kappa l, l = +-1,
    no x_perp), so ``y = c kappa + d`` exactly. The output side is set so
    that the task can be solved by s alone: ``d = d_eff`` (beyond the ramp's
    end, so the hyperbola is feasible), ``B_x = 0`` (the pulses reach only the
    NM subnetwork) and ``c = (y_go - d_eff) / kappa_0`` with
    ``kappa_0 = l^T x_0 = 0.1 l`` (the default initial state), so that
    ``y = y_go`` while s holds kappa. The NM subnetwork keeps its random
    reference initialisation; only it is trained (``trainable="nm"``).
    """
    if model.N != 1 or model.K != 1 or model.phi != "linear":
        raise ValueError("readout_fixed_params needs a one-unit (N=1), rank-1, linear NMRNN")
    params = model.init_params(as_generator(rng))
    params["L"] = np.ones((1, 1))
    l = float(np.asarray(model.prepare(params)["L"])[0, 0])
    kappa0 = model.default_initial_value * l
    c = (float(y_go) - float(d_eff)) / kappa0
    params["C"] = np.full((model.O, 1), c * l)
    params["B_x"] = np.zeros_like(params["B_x"])
    params["d"] = np.full(model.O, float(d_eff))
    return params


def off_manifold_norm(model, params) -> float:
    """Size of what the rank-1 theory ignores: max of ``|C (I - l l^T)|`` and ``|(I - l l^T) B_x|`` (Frobenius).

    Zero when the readout sees only kappa and the inputs drive only kappa
    (always for N = 1).
    """
    p = model.prepare(model.check_params(params))
    l = np.asarray(p["L"])[:, 0]
    P = np.eye(model.N) - np.outer(l, l)
    return float(max(np.linalg.norm(np.asarray(p["C"]) @ P), np.linalg.norm(P @ np.asarray(p["B_x"]))))


def train_mwg_network(kind: str, *, N: int = 100, M: int = 5, steps: int = 3000, lr: float = 1e-2,
                      rng=0, backend: str | None = None, task=None, d_eff: float = FIXED_D_EFF) -> dict:
    """Train a rank-1 symmetric NM-RNN on Measure-Wait-Go with :func:`nmrnn_np.training.train`.

    Every network has rank 1, tied factors, M NM units, 3 inputs, 1 output,
    tau_x = 10, tau_z = 100 (the paper's timing settings) and is trained full
    batch on the paper's 40 trials with the authors' loss (mask all ones)
    and clipped AdamW.

    Parameters
    ----------
    kind : {"readout_fixed", "latent", "linear", "tanh"}
        ``"readout_fixed"``: N = 1, linear, output side set by
        :func:`readout_fixed_params`, only the NM subnetwork trained -- the
        network of prediction 3, with constants that make it feasible;
        ``"latent"``: N = 1, linear, everything trained from the reference
        initialisation (the theory's network, free to choose its constants);
        ``"linear"``: N units, linear, everything trained (the readout also
        sees the input-driven x_perp); ``"tanh"``: N units, tanh, everything trained.
    N, M : int
        Units of the output network (kinds "linear" and "tanh") and of the NM subnetwork.
    steps, lr : training length and learning rate.
    rng : seed of the initial parameters (training itself is deterministic).
    backend : {"numba", "numpy"}, optional
    task : MeasureWaitGo, optional
        Default: the paper's training set (intervals 12..18, all 40 trials).
    d_eff : float
        Readout offset of the "readout_fixed" network.

    Returns
    -------
    dict
        ``model``, ``params`` (the best parameters seen), ``losses``,
        ``best_loss``, ``wall_time``, ``steps``, ``kind``.
    """
    from nmrnn_np.tasks import MeasureWaitGo
    from nmrnn_np.training import train
    V.choice(kind, "kind", NETWORK_KINDS)
    n_units = 1 if kind in ("readout_fixed", "latent") else V.positive_int(N, "N")
    model = NMRNN(n_units, 1, M, 3, 1, phi="tanh" if kind == "tanh" else "linear", tied=True)
    gen = as_generator(rng)
    task = MeasureWaitGo() if task is None else task
    if kind == "readout_fixed":
        params = readout_fixed_params(model, gen, d_eff=d_eff, y_go=task.ramp[0])
        trainable = "nm"
    else:
        params = model.init_params(gen)
        trainable = None
    data = task.all_trials()
    t0 = time.perf_counter()
    res = train(model, params, data, steps=steps, lr=lr, rng=0, backend=backend, progress=False,
                trainable=trainable)
    return dict(kind=kind, model=model, params=res.best_params, losses=np.asarray(res.losses),
                best_loss=float(res.best_loss), wall_time=time.perf_counter() - t0, steps=int(steps))


def ramp_comparison(model, params, *, task=None, trained_intervals=(12, 14, 16, 18),
                    backend: str | None = None, window=(-5, 10)) -> dict:
    r"""Prediction 3 against the s(t) a trained rank-1 NM-RNN emits.

    For every trial of ``task`` (default: the extrapolation set, intervals
    4..26, t_measure = 15) the prediction comes from the task (t_go, T_I,
    y_go, y_end) and the network's own readout constants
    (:func:`theory.ramp.readout_constants`): on the ramp steps
    ``t_go + 1 .. t_go + T_I``,
    :math:`s_t = 1 - \tau_x/(t^* - t + \mathrm{d}t)`
    (:func:`theory.ramp.ramp_signal`). For linear networks the prediction
    including the input-driven readout term ``C x_perp`` is computed too
    (:func:`theory.ramp.ramp_signal_with_transients`).

    Returns
    -------
    dict
        ``intervals``, ``trained`` (bool per trial), ``rmse`` (interval ->
        RMSE over the ramp), ``rmse_clipped`` (against the prediction clipped
        to the feasible [0, 1]), ``rmse_transients`` (against the prediction
        that includes ``C x_perp``; linear networks only),
        ``gap_emitted`` / ``gap_predicted`` (1 - s at step t_go + 1),
        ``log_decay_emitted`` (interval -> :math:`-\sum \log f_t` over steps
        t_go .. t_go + T_I, i.e. from the last step of the hold) and
        ``log_decay_predicted`` (:math:`-\log(\rho/(1+\rho))`,
        :func:`theory.ramp.ramp_forget_product`; NaN if infeasible),
        ``output_rmse`` (interval -> RMSE of y against the target over the
        ramp), the constants (``c``, ``d_eff``, ``rho``, ``min_interval``,
        ``gap_slope``), and go-aligned traces for plotting (``t_rel``,
        ``s_emitted``, ``s_predicted``, ``s_transients``, ``y``, ``target``),
        NaN outside each trial's window.
    """
    from nmrnn_np.tasks import mwg_extrapolation_set
    task = mwg_extrapolation_set() if task is None else task
    inputs, targets, mask, info = task.all_trials(return_info=True)
    tr = model.simulate(params, inputs, backend=backend)
    consts = ramp.readout_constants(model, params)
    y_go, y_end = task.ramp
    tau, dt = model.tau_x, model.dt
    s = tr.s[..., 0]
    transients = None
    if model.phi == "linear" and model.tied:
        transients = ramp.ramp_signal_with_transients(model, params, inputs, targets)
    steps = np.arange(inputs.shape[1])
    lo, hi = window
    t_rel = np.arange(lo, max(info.interval) + hi + 1)
    shape = (len(info), t_rel.size)
    traces = {k: np.full(shape, np.nan) for k in ("s_emitted", "s_predicted", "s_transients", "y", "target")}
    rmse, rmse_tr, rmse_clip, out_rmse = {}, {}, {}, {}
    gap_em, gap_pr = [], []
    log_decay = {}
    log_f = np.log(np.clip(1.0 - model.alpha_x * (1.0 - model.recurrent_scale * s), 1e-300, None))
    trained_set = {int(i) for i in trained_intervals}
    for b in range(len(info)):
        t_go, I = int(info.t_go[b]), int(info.interval[b])
        pred = ramp.ramp_signal(steps * dt, t_go * dt, I * dt, y_go=y_go, y_end=y_end, d_eff=consts.d_eff,
                                tau_x=tau, dt=dt)
        on = (steps > t_go) & (steps <= t_go + I)
        rmse[str(I)] = float(np.sqrt(np.mean((s[b, on] - pred[on]) ** 2)))
        rmse_clip[str(I)] = float(np.sqrt(np.mean((s[b, on] - np.clip(pred[on], 0.0, 1.0)) ** 2)))
        out_rmse[str(I)] = float(np.sqrt(np.mean((tr.y[b, on, 0] - targets[b, on, 0]) ** 2)))
        if transients is not None:
            rmse_tr[str(I)] = float(np.sqrt(np.mean((s[b, on] - transients[b, on]) ** 2)))
        gap_em.append(1.0 - float(s[b, t_go + 1]))
        gap_pr.append(float(1.0 - pred[t_go + 1]))
        # from the last hold step: the go pulse reaches s at step t_go itself (s comes from the new z)
        log_decay[str(I)] = float(-np.sum(log_f[b, t_go:t_go + I + 1]))
        idx = t_go + t_rel
        ok = (idx >= 0) & (idx < inputs.shape[1]) & (t_rel <= I + hi)
        traces["s_emitted"][b, ok] = s[b, idx[ok]]
        traces["s_predicted"][b, ok] = pred[idx[ok]]
        if transients is not None:
            traces["s_transients"][b, ok] = transients[b, idx[ok]]
        traces["y"][b, ok] = tr.y[b, idx[ok], 0]
        traces["target"][b, ok] = targets[b, idx[ok], 0]
    rho = ramp.ramp_rho(y_go, y_end, consts.d_eff)
    return dict(
        intervals=[int(i) for i in info.interval],
        trained=[int(i) in trained_set for i in info.interval],
        rmse=rmse, rmse_clipped=rmse_clip, rmse_transients=rmse_tr if transients is not None else None,
        output_rmse=out_rmse,
        gap_emitted=gap_em, gap_predicted=gap_pr,
        log_decay_emitted=log_decay, log_decay_predicted=float(-np.log(ramp.ramp_forget_product(
            y_go=y_go, y_end=y_end, d_eff=consts.d_eff))),
        c=consts.c, d_eff=consts.d_eff, rho=rho,
        min_interval=ramp.ramp_min_interval(y_go=y_go, y_end=y_end, d_eff=consts.d_eff, tau_x=tau, dt=dt),
        gap_slope=float(tau * (y_end - y_go) / (consts.d_eff - y_go)) if consts.d_eff != y_go else float("nan"),
        t_rel=t_rel, **traces,
    )
