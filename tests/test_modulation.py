"""NMRNN(modulation="synaptic" | "excitability" | "both"): equations, numba against NumPy, gradients, validation.

Oracles: the low-rank RNN (an excitability model whose signal is held at 0.5
has gain 1 everywhere), a hand-written step with the population matrix P,
the existing synaptic kernels (the new kernels with the whole signal on
synapses), plain autograd through the NumPy step, and central finite
differences of the numba loss.
"""
from __future__ import annotations

import numpy as np
import pytest

import nmrnn_np as nm
from nmrnn_np.io import load_model, save_model
from nmrnn_np.models import make_model
from nmrnn_np.models import modulation as mod

B, T, N, RANK, M, U, O = 3, 11, 7, 3, 4, 5, 2


def make(modulation, **kw):
    return nm.NMRNN(N=N, K=RANK, M=M, U=U, O=O, tau_x=4.0, tau_z=9.0, modulation=modulation, **kw)


def problem(model, seed):
    """Random parameters, inputs with exact zeros, targets, a 0/1 mask, random initial states."""
    rng = np.random.default_rng(seed)
    params = model.init_params(rng)
    params["L"] = params["L"] / np.linalg.norm(params["L"], axis=0)
    inputs = rng.normal(size=(B, T, model.U)) * (rng.random((B, T, model.U)) < 0.5)
    targets = rng.normal(size=(B, T, model.O))
    mask = (rng.random((B, T)) < 0.7).astype(float)
    mask[0, -1] = 1.0
    states = {f"{s}0": rng.normal(size=(B, n)) for s, n in model.state_sizes().items()}
    return params, inputs, targets, mask, states


# ----------------------------------------------------------------------------
# the split and the populations
# ----------------------------------------------------------------------------
def test_signal_split_and_equal_populations():
    assert mod.signal_split("synaptic", 3) == (3, 0)
    assert mod.signal_split("excitability", 3) == (0, 3)
    assert mod.signal_split("both", 2) == (1, 1)
    assert mod.signal_split("both", 3) == (2, 1)
    assert mod.signal_split("both", 8) == (4, 4)
    np.testing.assert_array_equal(mod.group_index(7, 3), [0, 0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(mod.group_index(5, 1), np.zeros(5))
    P = mod.population_matrix(10, 4)
    assert P.shape == (10, 4)
    np.testing.assert_array_equal(P.sum(axis=1), np.ones(10))
    assert P.sum(axis=0).max() - P.sum(axis=0).min() <= 1     # equal populations (to one neuron)


def test_same_parameters_for_every_modulation():
    shapes = {m: make(m, feedback=True).param_shapes() for m in mod.MODULATIONS}
    assert shapes["synaptic"] == shapes["excitability"] == shapes["both"]


# ----------------------------------------------------------------------------
# equations, against independent oracles
# ----------------------------------------------------------------------------
def _held_signal(params, values):
    """Parameters whose signal is the constant ``values``: A = 0, a = logit(values)."""
    values = np.asarray(values, dtype=float)
    return dict(params, A=np.zeros_like(params["A"]), a=np.log(values / (1 - values)))


@pytest.mark.parametrize("backend", ["numpy", "numba"] if nm.HAVE_NUMBA else ["numpy"])
def test_excitability_at_half_signal_is_the_low_rank_rnn(backend):
    # s = 0.5 gives gain g = 2 P s = 1 in every neuron: the LR-RNN with the same factors
    model = make("excitability", divide_by_N=True)
    params, inputs, _, _, states = problem(model, 0)
    held = _held_signal(params, np.full(RANK, 0.5))
    lr = nm.LowRankRNN(N=N, K=RANK, U=U, O=O, tau=4.0)
    lr_params = {k: held[k] for k in lr.param_shapes()}
    a = model.simulate(held, inputs, backend=backend, **states)
    b = lr.simulate(lr_params, inputs, backend=backend, x0=states["x0"])
    np.testing.assert_allclose(a.x, b.x, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(a.y, b.y, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("modulation", ["excitability", "both"])
def test_one_step_by_hand_with_the_population_matrix(modulation):
    model = make(modulation, feedback=True)
    params, inputs, _, _, states = problem(model, 1)
    s = np.array([0.2, 0.7, 0.9])
    held = _held_signal(params, s)
    traj = model.simulate(held, inputs[:, :1], backend="numpy", **states)
    p = model.prepare(held)
    x0 = states["x0"]
    if modulation == "excitability":
        gamma, g = np.ones(RANK), 2 * mod.population_matrix(N, 3) @ s                   # 3 populations
    else:   # first ceil(3/2) = 2 components on synapses: component groups [0, 0, 1]; 1 population
        Q = np.array([[1, 0], [1, 0], [0, 1]])
        gamma, g = Q @ s[:2], 2 * mod.population_matrix(N, 1) @ s[2:]
    rec = np.tanh(g * x0) @ p["R"] @ np.diag(gamma) @ p["L"].T
    x1 = (1 - 0.25) * x0 + 0.25 * (rec + inputs[:, 0] @ p["B_x"].T)
    np.testing.assert_allclose(traj.s[:, 0], np.broadcast_to(s, (B, 3)), rtol=1e-14)
    np.testing.assert_allclose(traj.x[:, 0], x1, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(traj.y[:, 0], x1 @ p["C"].T + p["d"], rtol=1e-13, atol=1e-14)


def test_both_at_half_signal_halves_the_recurrence():
    # synaptic half at 0.5 scales every component by 0.5, excitability half at 0.5 is gain 1
    model = make("both")
    params, inputs, _, _, states = problem(model, 2)
    held = _held_signal(params, np.full(RANK, 0.5))
    lr = nm.LowRankRNN(N=N, K=RANK, U=U, O=O, tau=4.0, divide_by_N=False, orthonormalize=False)
    lr_params = {k: held[k] for k in lr.param_shapes()}
    lr_params["L"] = 0.5 * model.prepare(held)["L"]
    a = model.simulate(held, inputs, backend="numpy", **states)
    b = lr.simulate(lr_params, inputs, backend="numpy", x0=states["x0"])
    np.testing.assert_allclose(a.x, b.x, rtol=1e-12, atol=1e-13)


def test_modulation_changes_the_dynamics():
    params, inputs, _, _, states = problem(make("synaptic"), 3)
    ys = [make(m).simulate(params, inputs, backend="numpy", **states).y for m in mod.MODULATIONS]
    assert not np.allclose(ys[0], ys[1]) and not np.allclose(ys[1], ys[2]) and not np.allclose(ys[0], ys[2])


# ----------------------------------------------------------------------------
# numba against NumPy, autograd and finite differences
# ----------------------------------------------------------------------------
OPTIONS = ("global_signal", "orthonormalize", "divide_by_N", "feedback", "readout_bias", "context", "linear",
           "tied")
BASE = dict(global_signal=False, orthonormalize=True, divide_by_N=False, feedback=False, readout_bias=True,
            context=False, linear=False, tied=False)
# the defaults, each option flipped alone, and everything flipped (global_signal only where S = 1 is allowed)
FLIPS = [dict(BASE)] + [dict(BASE, **{k: not BASE[k]}) for k in OPTIONS] + \
        [{k: not v for k, v in BASE.items()}]
CASES = [(m, v) for m in ("excitability", "both") for v in FLIPS if not (m == "both" and v["global_signal"])]


def _model(modulation, v):
    return make(modulation, signal_dim=1 if v["global_signal"] else None, orthonormalize=v["orthonormalize"],
                divide_by_N=v["divide_by_N"], feedback=v["feedback"], readout_bias=v["readout_bias"],
                U_x=3 if v["context"] else None, phi="linear" if v["linear"] else "tanh", tied=v["tied"])


def _id(case):
    m, v = case
    return m + "-" + ("-".join(k for k, on in v.items() if on != BASE[k]) or "default")


@pytest.mark.skipif(not nm.HAVE_NUMBA, reason="the numba fast path needs numba")
@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_numba_matches_numpy_autograd_and_finite_differences(case):
    modulation, v = case
    model = _model(modulation, v)
    seed = CASES.index(case)
    params, inputs, targets, mask, states = problem(model, seed)
    a = model.simulate(params, inputs, backend="numpy", **states).as_dict()
    b = model.simulate(params, inputs, backend="numba", **states).as_dict()
    assert set(a) == set(b) == {"y", "x", "z", "s"}
    for k in a:
        assert b[k].shape == a[k].shape and b[k].flags.c_contiguous
        np.testing.assert_allclose(b[k], a[k], rtol=1e-12, atol=1e-12, err_msg=k)

    loss_np, g_np = model.loss_and_grad(params, inputs, targets, mask, backend="numpy", **states)
    loss_nb, g_nb = model.loss_and_grad(params, inputs, targets, mask, backend="numba", **states)
    assert loss_nb == pytest.approx(loss_np, rel=1e-12)
    assert set(g_nb) == set(g_np) == set(params)
    for k in g_np:
        np.testing.assert_allclose(g_nb[k], g_np[k], rtol=1e-10, atol=1e-12 * np.abs(g_np[k]).max(), err_msg=k)

    rng = np.random.default_rng(seed + 100)
    for key, g in g_nb.items():
        direction = rng.normal(size=g.shape)
        h = 1e-5 * max(1.0, np.abs(params[key]).max())

        def loss(eps):
            return model.loss(dict(params, **{key: params[key] + eps * direction}), inputs, targets, mask,
                              backend="numba", **states)
        fd = (loss(h) - loss(-h)) / (2 * h)
        assert np.sum(g * direction) == pytest.approx(fd, rel=1e-6, abs=1e-9), key


@pytest.mark.skipif(not nm.HAVE_NUMBA, reason="the numba fast path needs numba")
@pytest.mark.parametrize("feedback", [False, True])
def test_new_kernels_with_the_whole_signal_on_synapses_equal_the_synaptic_kernels(feedback):
    # the modulation kernels run with S_syn = S, S_exc = 0 on a synaptic model: an independent implementation
    model = make("synaptic", feedback=feedback, divide_by_N=True)
    params, inputs, _, _, states = problem(model, 4)
    p = model.prepare(params)
    init = model.initial_states(B, **states)
    new = mod.numba_forward(model, p, inputs, init)
    old = model._numba_forward(p, inputs, init)
    for k in ("y", "z", "s"):
        np.testing.assert_allclose(new[k], old[k], rtol=1e-12, atol=1e-13, err_msg=k)
    g_y = np.random.default_rng(5).normal(size=new["y"].shape)
    g_new = mod.numba_backward(model, new, g_y)
    g_old = model._numba_backward(p, inputs, init, old, g_y)
    for k in g_old:
        np.testing.assert_allclose(g_new[k], g_old[k], rtol=1e-10, atol=1e-13, err_msg=k)


def test_last_step_loss_on_the_numba_path():
    # the element-finder loss through the excitability kernels (a cotangent at the last step only)
    model = make("excitability", feedback=True, divide_by_N=True, orthonormalize=False, readout_bias=False)
    params, inputs, targets, _, states = problem(model, 6)
    backends = ["numpy", "numba"] if nm.HAVE_NUMBA else ["numpy"]
    res = [model.loss_and_grad(params, inputs, targets, loss="last_step_mse", backend=b, **states) for b in backends]
    for loss, grads in res[1:]:
        assert loss == pytest.approx(res[0][0], rel=1e-12)
        for k in grads:
            np.testing.assert_allclose(grads[k], res[0][1][k], rtol=1e-10, atol=1e-14, err_msg=k)


# ----------------------------------------------------------------------------
# validation, configuration, files
# ----------------------------------------------------------------------------
def test_unknown_modulation_lists_the_valid_ones():
    with pytest.raises(ValueError, match="modulation must be one of 'synaptic', 'excitability', 'both'; got 'gain'"):
        make("gain")


@pytest.mark.parametrize("kw", [dict(signal_dim=1), dict(K=1)])
def test_both_needs_two_signal_components(kw):
    args = dict(N=N, K=RANK, M=M, U=U, O=O, modulation="both")
    args.update(kw)
    with pytest.raises(ValueError, match="modulation='both'.*S >= 2"):
        nm.NMRNN(**args)


def test_default_is_synaptic_and_config_round_trip(tmp_path):
    assert make("synaptic") == nm.NMRNN(N=N, K=RANK, M=M, U=U, O=O, tau_x=4.0, tau_z=9.0)
    assert nm.NMRNN(N=4, K=2, M=2, U=1, O=1).config()["modulation"] == "synaptic"
    for m in mod.MODULATIONS:
        model = make(m, feedback=True)
        assert model.config()["modulation"] == m
        assert make_model("nmrnn", **model.config()) == model
        params = model.init_params(0)
        path = save_model(tmp_path / f"{m}.npz", model, params)
        loaded, loaded_params, _ = load_model(path)
        assert loaded == model and loaded.modulation == m
        inputs = np.random.default_rng(0).normal(size=(2, 5, U))
        np.testing.assert_array_equal(loaded.simulate(loaded_params, inputs, backend="numpy").y,
                                      model.simulate(params, inputs, backend="numpy").y)
    assert make("synaptic") != make("excitability")


def test_authors_names_only_for_synaptic_modulation():
    model = nm.NMRNN(N=6, K=2, M=3, U=2, O=1, modulation="excitability")
    with pytest.raises(ValueError, match="synaptic"):
        nm.to_reference_params(model, model.init_params(0))
