"""The rank-1 theory (package ``theory``): pure functions, exactness against simulation, the CLI."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from nmrnn_np import NMRNN
from theory import compare, lstm_gate, ramp, rank1

ALPHA = 0.1
Y_GO, Y_END = -0.5, 0.5


# ----------------------------------------------------------------------------
# Prediction 1: closed forms and the effective timescale
# ----------------------------------------------------------------------------
def test_effective_timescale_limits_and_values():
    tau = rank1.effective_timescale([0.0, 0.5, 0.9, 1.0], 10.0)
    np.testing.assert_allclose(tau[:3], [10.0, 20.0, 100.0])
    assert np.isinf(tau[3])
    with pytest.raises(ValueError, match="s must lie in"):
        rank1.effective_timescale(1.2, 10.0)
    with pytest.raises(ValueError, match="tau_x"):
        rank1.effective_timescale(0.5, -1.0)


def test_discrete_closed_form_equals_the_recursion_and_keeps_shapes():
    rng = np.random.default_rng(0)
    s = rng.uniform(0, 1, (3, 40))
    g = rng.standard_normal((3, 40))
    k0 = rng.standard_normal(3)
    kappa = rank1.latent_closed_form_discrete(s, k0, ALPHA, g)
    ref, k = np.empty_like(s), k0.copy()
    for t in range(40):
        k = (1 - ALPHA * (1 - s[:, t])) * k + ALPHA * g[:, t]
        ref[:, t] = k
    np.testing.assert_allclose(kappa, ref, rtol=0, atol=1e-13)
    # one trajectory, scalar kappa0: shape (T,)
    assert rank1.latent_closed_form_discrete(s[0], 1.0, ALPHA).shape == (40,)
    np.testing.assert_allclose(rank1.latent_closed_form_discrete(s[0], 1.0, ALPHA),
                               np.cumprod(rank1.forget_factor(s[0], ALPHA)), atol=1e-15)


def test_discrete_closed_form_rejects_bad_arguments():
    with pytest.raises(ValueError, match="alpha"):
        rank1.latent_closed_form_discrete([0.5], 1.0, 1.5)
    with pytest.raises(ValueError, match="g must have T"):
        rank1.latent_closed_form_discrete(np.full(5, 0.5), 1.0, ALPHA, g=np.zeros(4))
    with pytest.raises(ValueError, match="s must have a time axis"):
        rank1.latent_closed_form_discrete(0.5, 1.0, ALPHA)


def test_latent_closed_form_matches_simulated_networks_to_1e12():
    res = compare.check_latent_closed_form(2, B=3, T=80)
    assert res["max_abs_error_no_input"] < 1e-12
    assert res["max_abs_error_with_input"] < 1e-12
    assert res["kappa_max"] > 1.0          # the check is not run on vanishing trajectories


def test_continuous_closed_form_with_constant_signal_is_the_exponential():
    t = np.linspace(0, 50, 11)
    np.testing.assert_allclose(rank1.latent_closed_form_continuous(t, 2.0, 10.0, 0.7),
                               rank1.latent_constant_signal(t, 2.0, 0.7, 10.0), rtol=1e-14)
    # the quadrature path (no S given) agrees with the analytic integral
    s = lambda v: 0.5 + 0.3 * np.sin(0.2 * v)  # noqa: E731
    S = lambda v: 0.5 * v + 1.5 * (1 - np.cos(0.2 * v))  # noqa: E731
    np.testing.assert_allclose(rank1.latent_closed_form_continuous(t, 1.0, 10.0, s),
                               rank1.latent_closed_form_continuous(t, 1.0, 10.0, s, s_integral=S), atol=1e-11)


def test_continuous_closed_form_matches_solve_ivp_to_1e8():
    res = compare.check_continuous_closed_form(n_times=11)
    assert res["max_abs_error"] < 1e-8
    assert set(res["per_signal"]) >= {"sinusoid", "sinusoid+input", "switch", "switch+input"}


def test_euler_converges_to_the_continuous_latent_at_first_order():
    res = compare.check_euler_convergence(dts=(1.0, 0.5, 0.25), horizon=30.0)
    errors = np.array(res["errors"])
    ratios = errors[:-1] / errors[1:]
    assert np.all((ratios > 1.8) & (ratios < 2.2)), ratios
    assert 0.9 < res["order"] < 1.1


def test_constant_signal_network_decays_at_the_effective_timescale():
    res = compare.constant_signal_network([0.2, 0.9], T=40)
    assert res["max_abs_error_discrete"] < 1e-12
    np.testing.assert_allclose(res["effective_timescale"], [12.5, 100.0])
    # Euler product vs exponential: first-order agreement (alpha (1 - s) small)
    assert np.max(np.abs(res["kappa_sim"] - res["kappa_continuous"])) < 0.05
    with pytest.raises(ValueError, match="s_values"):
        compare.constant_signal_network([0.0])


# ----------------------------------------------------------------------------
# Prediction 2: the inverse problem
# ----------------------------------------------------------------------------
def test_inverse_signal_recovers_the_emitted_signal_to_1e12():
    res = compare.check_inverse_signal(2, B=3, T=80)
    assert res["max_abs_error"] < 1e-12


def test_inverse_continuous_recovers_an_analytic_signal_and_the_discrete_one_converges_to_it():
    tau = 10.0
    t = np.linspace(0.0, 30.0, 301)
    s = 0.6 + 0.3 * np.cos(0.3 * t)
    S = 0.6 * t + np.sin(0.3 * t)
    kappa = np.exp(-(t - S) / tau)
    s_back = rank1.inverse_signal_continuous(kappa, -(1 - s) / tau * kappa, tau)
    np.testing.assert_allclose(s_back, s, atol=1e-14)
    errors = []
    for dt in (0.5, 0.25, 0.125):
        tt = np.arange(0.0, 30.0 + dt / 2, dt)
        kk = np.exp(-(tt - (0.6 * tt + np.sin(0.3 * tt))) / tau)
        sd = rank1.inverse_signal_discrete(kk, dt / tau)
        errors.append(np.max(np.abs(sd - (0.6 + 0.3 * np.cos(0.3 * tt[1:])))))
    assert errors[0] / errors[1] > 1.8 and errors[1] / errors[2] > 1.8, errors


def test_inverse_feasibility_and_errors():
    # shrinking slower than 1/tau: feasible; growing or collapsing faster: not
    tau = 10.0
    k = np.array([1.0, 2.0, 3.0])
    assert rank1.signal_feasible(rank1.inverse_signal_continuous(k, -0.05 * k, tau)).all()
    assert not rank1.signal_feasible(rank1.inverse_signal_continuous(k, +0.05 * k, tau)).any()
    assert not rank1.signal_feasible(rank1.inverse_signal_continuous(k, -0.2 * k, tau)).any()
    assert rank1.signal_feasible(1.0, closed=True) and not rank1.signal_feasible(1.0)
    with pytest.raises(ValueError, match=r"kappa \(or kappa0\) vanishes"):
        rank1.inverse_signal_discrete([1.0, 0.0, 1.0], ALPHA)
    with pytest.raises(ValueError, match="kappa must not vanish"):
        rank1.inverse_signal_continuous([0.0], [1.0], 10.0)


# ----------------------------------------------------------------------------
# Prediction 3: the timing ramp
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("d_eff", [0.8, 2.5])
def test_the_hyperbola_produces_an_exactly_linear_ramp(d_eff):
    tau, dt, t_go, interval = 10.0, 1.0, 40, 15
    steps = np.arange(t_go + 1, t_go + interval + 1)
    s = ramp.ramp_signal(steps, t_go, interval, y_go=Y_GO, y_end=Y_END, d_eff=d_eff, tau_x=tau, dt=dt)
    c = -3.0
    kappa_go = (Y_GO - d_eff) / c
    y = c * rank1.latent_closed_form_discrete(s, kappa_go, dt / tau) + d_eff
    np.testing.assert_allclose(y, Y_GO + (Y_END - Y_GO) * (steps - t_go) / interval, atol=1e-12)
    # the forget-gate product over the ramp does not depend on the interval
    np.testing.assert_allclose(np.prod(rank1.forget_factor(s, dt / tau)),
                               ramp.ramp_forget_product(y_go=Y_GO, y_end=Y_END, d_eff=d_eff), rtol=1e-12)
    # 1 - s on the first step after go is the predicted gap, proportional to 1/T_I
    np.testing.assert_allclose(1 - s[0], ramp.go_signal_gap(interval, y_go=Y_GO, y_end=Y_END, d_eff=d_eff,
                                                            tau_x=tau), rtol=1e-12)


def test_continuous_hyperbola_produces_a_linear_ramp():
    tau, interval, d_eff = 10.0, 20.0, 2.5
    t_star = float(ramp.ramp_t_star(0.0, interval, Y_GO, Y_END, d_eff))
    s = lambda t: 1 - tau / (t_star - t)  # noqa: E731
    S = lambda t: t + tau * np.log((t_star - t) / t_star)  # noqa: E731
    t = np.linspace(0.0, interval, 9)
    np.testing.assert_allclose(s(t[1:]), ramp.ramp_signal(t[1:], 0.0, interval, y_go=Y_GO, y_end=Y_END,
                                                          d_eff=d_eff, tau_x=tau), rtol=1e-14)
    kappa = rank1.latent_closed_form_continuous(t, Y_GO - d_eff, tau, s, s_integral=S)
    np.testing.assert_allclose(kappa + d_eff, Y_GO + (Y_END - Y_GO) * t / interval, atol=1e-12)


def test_ramp_feasibility_bound():
    tau, d_eff = 10.0, 2.5                    # rho = 2
    assert ramp.ramp_rho(Y_GO, Y_END, d_eff) == pytest.approx(2.0)
    tmin = ramp.ramp_min_interval(y_go=Y_GO, y_end=Y_END, d_eff=d_eff, tau_x=tau, dt=1.0)
    assert tmin == pytest.approx(4.5)
    for interval, ok in ((4, False), (5, True), (26, True)):
        s_end = ramp.ramp_signal(interval, 0, interval, y_go=Y_GO, y_end=Y_END, d_eff=d_eff, tau_x=tau, dt=1.0)
        assert bool(s_end > 0) == ok
    # d_eff not beyond the ramp's end: infeasible for every interval
    assert ramp.ramp_min_interval(y_go=Y_GO, y_end=Y_END, d_eff=0.3, tau_x=tau) == np.inf
    assert np.isnan(ramp.ramp_forget_product(y_go=Y_GO, y_end=Y_END, d_eff=0.3))
    with pytest.raises(ValueError, match="y_go and y_end"):
        ramp.ramp_rho(0.5, 0.5, 1.0)
    assert np.isnan(ramp.ramp_signal(5, 10, 4, y_go=Y_GO, y_end=Y_END, d_eff=2.5, tau_x=tau))


def test_readout_constants_and_the_transient_corrected_inverse_are_exact():
    """With the network's own output as the target, the x_perp-corrected inverse returns its s."""
    model, params = compare.random_linear_symmetric_network(N=15, rng=7)
    consts = ramp.readout_constants(model, params)
    p = model.prepare(params)
    assert consts.c == pytest.approx(float(p["C"][0] @ p["L"][:, 0]))
    assert consts.d_eff == pytest.approx(float(params["d"][0]))
    rng = np.random.default_rng(1)
    inputs = 0.2 * rng.standard_normal((2, 50, 3))
    x0 = 3.0 * p["L"][:, 0] + 0.1 * rng.standard_normal(15)
    tr = model.simulate(params, inputs, backend="numpy", x0=x0)
    s = ramp.ramp_signal_with_transients(model, params, inputs, tr.y, x0=x0)
    assert np.isnan(s[:, 0]).all()
    np.testing.assert_allclose(s[:, 1:], tr.s[:, 1:, 0], atol=1e-9)
    with pytest.raises(ValueError, match="rank K=1"):
        ramp.readout_constants(NMRNN(5, 2, 2, 3, 1), NMRNN(5, 2, 2, 3, 1).init_params(0))
    with pytest.raises(ValueError, match="linear"):
        tanh = NMRNN(5, 1, 2, 3, 1, tied=True)
        ramp.ramp_signal_with_transients(tanh, tanh.init_params(0), inputs[:, :, :3], tr.y)


def test_rounding_reference_is_zero_without_rounding_and_grows_with_the_jump():
    kw = dict(y_go=Y_GO, y_end=Y_END, tau_x=10.0)
    r = [ramp.ramp_rounding_rmse(I, d_eff=2.5, **kw) for I in (12, 18)]
    assert r[0] > r[1] > 0                          # the end jump tau/(rho T_I + dt) shrinks with T_I
    assert ramp.ramp_rounding_rmse(12, d_eff=5.0, **kw) < r[0]
    with pytest.raises(ValueError, match="fraction"):
        ramp.ramp_rounding_rmse(12, d_eff=2.5, fraction=0.0, **kw)


# ----------------------------------------------------------------------------
# Prediction 4: the LSTM gate
# ----------------------------------------------------------------------------
def test_lstm_mapping_reproduces_kappa_to_1e12_with_gates_in_range():
    res = compare.check_lstm_mapping(2, B=3, T=80)
    assert res["max_abs_error"] < 1e-12
    assert 1 - res["alpha"] <= res["forget_gate_min"] and res["forget_gate_max"] <= 1.0


def test_forget_gate_round_trip_and_range_check():
    s = np.linspace(0, 1, 7)
    f = lstm_gate.forget_gate_from_signal(s, ALPHA)
    assert f.min() == pytest.approx(1 - ALPHA) and f.max() == pytest.approx(1.0)
    np.testing.assert_allclose(lstm_gate.signal_from_forget_gate(f, ALPHA), s, atol=1e-14)
    with pytest.raises(ValueError, match=r"f must lie in \[1 - alpha, 1\]"):
        lstm_gate.signal_from_forget_gate([0.5], ALPHA)
    c = lstm_gate.gated_recurrence(np.full((1, 3, 1), 0.5), 1.0, np.ones((1, 3, 1)), [[0.0]])
    np.testing.assert_allclose(c[0, :, 0], [1.0, 1.5, 1.75])
    with pytest.raises(ValueError, match=r"\(B, T, K\)"):
        lstm_gate.gated_recurrence(np.ones(3), 1.0, np.ones(3), 0.0)


def test_tanh_and_rank_k_mapping():
    res = compare.check_tanh_gate_mapping(N=20, B=2, T=60, input_scales=(0.1, 1.0, 3.0))
    # the exact latent identity (s gates R^T tanh(x)) holds for every variant
    assert res["exact_identity_max_abs"] < 1e-12
    # the linear forget-gate form holds for linear tied rank-3 networks ...
    assert res["linear_rank3"]["rollout_max_abs"] < 1e-12
    # ... and only approximately for tanh: the error grows as activity leaves tanh's linear range
    for label in ("tanh_rank1", "tanh_rank3"):
        one = res[label]["one_step_relative"]
        assert one[0] < 1e-3 and one[-1] > 10 * one[0]


def test_gate_functions_reject_models_without_orthonormal_factors():
    model = NMRNN(5, 1, 2, 3, 1, phi="linear", tied=True, orthonormalize=False)
    with pytest.raises(ValueError, match="orthonormalize"):
        lstm_gate.gates_from_run(model, model.init_params(0), np.zeros((1, 4, 3)))


# ----------------------------------------------------------------------------
# The command
# ----------------------------------------------------------------------------
def test_cli_registers_theory_and_writes_json_figures_and_report(tmp_path):
    from theory.cli import add_parser, run_theory
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["theory", "--quick", "--out", str(tmp_path / "x")])
    assert args.quick and callable(args.func)

    result = run_theory(tmp_path / "out", quick=True, steps=20, log=lambda *_: None)
    data = json.loads((tmp_path / "out" / "theory.json").read_text())
    for key in ("latent_closed_form_max_abs_error", "inverse_signal_max_abs_error", "lstm_mapping_max_abs_error",
                "continuous_vs_solve_ivp_max_abs_error"):
        assert data[key] < 1e-8, key
    assert set(data["ramp_signal_rmse"]) == {str(i) for i in range(4, 27, 2)}
    assert data == json.loads(json.dumps(result))
    for name in data["figures"]:
        assert (tmp_path / "out" / name).stat().st_size > 5000, name
    report = (tmp_path / "out" / "report.md").read_text()
    assert "theory_go_gap.png" in report and "| 12* |" in report
