"""Model construction, parameters, initial states and argument validation."""
from __future__ import annotations

import numpy as np
import pytest

import nmrnn_np as nm
from nmrnn_np.models import make_model


def small_nmrnn(**kw):
    return nm.NMRNN(N=8, K=2, M=3, U=3, O=2, **kw)


ALL_MODELS = [
    lambda: small_nmrnn(),
    lambda: nm.LowRankRNN(N=8, K=2, U=3, O=2),
    lambda: nm.VanillaRNN(N=8, U=3, O=2),
    lambda: nm.LSTM(N=8, U=3, O=2),
]


def test_study_parameter_counts():
    # the timing-task models are parameter-matched (DESIGN section 4)
    counts = {
        "nmrnn": nm.NMRNN(N=100, K=3, M=5, U=3, O=1).n_params(),
        "lrrnn": nm.LowRankRNN(N=106, K=3, U=3, O=1).n_params(),
        "rnn": nm.VanillaRNN(N=31, U=3, O=1).n_params(),
        "lstm": nm.LSTM(N=15, U=3, O=1).n_params(),
    }
    # L, R, B_x (3 x 100 each) + C, d (101) + W_z 25 + B_z 15 + A 15 + a 3
    assert counts["nmrnn"] == 900 + 101 + 25 + 15 + 15 + 3
    assert counts["lrrnn"] == 3 * 318 + 107
    assert counts["rnn"] == 31 * 31 + 93 + 32
    assert counts["lstm"] == 4 * (15 * 3 + 15 * 15 + 15) + 15
    assert max(counts.values()) / min(counts.values()) < 1.15


@pytest.mark.parametrize("make", ALL_MODELS)
def test_init_params_shapes_and_determinism(make):
    model = make()
    p1, p2, p3 = model.init_params(7), model.init_params(7), model.init_params(8)
    assert list(p1) == list(model.param_shapes())
    for k, shape in model.param_shapes().items():
        assert p1[k].shape == shape and p1[k].dtype == np.float64
        np.testing.assert_array_equal(p1[k], p2[k])
    assert any(not np.array_equal(p1[k], p3[k]) for k in p1)
    assert model.n_params() == sum(v.size for v in p1.values())


def test_reference_init_scales():
    model = nm.NMRNN(N=400, K=3, M=50, U=4, O=1)
    p = model.init_params(0)
    assert abs(p["L"].std() - 1.0) < 0.05
    assert abs(p["B_x"].std() - 0.5) < 0.05
    assert abs(p["W_z"].std() - 0.1) < 0.01
    assert abs(p["C"].std() - 0.05) < 0.01


def test_fan_in_init_scales_as_the_element_finder_code():
    # random_nmrnn_params: L, R / sqrt(K); the signal intercept / sqrt(K) (its signal dimension), not / sqrt(M)
    model = nm.NMRNN(N=300, K=100, M=4, U=2, O=1, feedback=True)
    p = model.init_params(0, scheme="fan_in")
    assert abs(p["L"].std() - 0.1) < 0.005
    assert abs(p["a"].std() - 0.1) < 0.02          # 1/sqrt(K) = 0.1; 1/sqrt(M) would be 0.5
    assert abs(p["A"].std() - 0.5) < 0.05          # 1/sqrt(M)
    assert abs(p["W_zx"].std() - 300 ** -0.5) < 0.01
    for S in (1, 3):   # exactly the unit draw / sqrt(S)
        m = nm.NMRNN(N=6, K=3, M=4, U=2, O=1, signal_dim=S)
        unit = m._draw(3, dict.fromkeys(m.param_shapes(), 1.0))
        np.testing.assert_allclose(m.init_params(3, scheme="fan_in")["a"], unit["a"] / np.sqrt(S), rtol=1e-15)


@pytest.mark.parametrize("make", ALL_MODELS)
def test_init_states(make):
    model = make()
    names = [f"{s}0" for s in model.state_names]
    sizes = {f"{s}0": n for s, n in model.state_sizes().items()}
    a, b, c = model.init_states(5), model.init_states(5), model.init_states(6)
    assert sorted(a) == sorted(names)
    for k in names:
        assert a[k].shape == (sizes[k],) and a[k].dtype == np.float64
        np.testing.assert_array_equal(a[k], b[k])
    assert any(not np.array_equal(a[k], c[k]) for k in names)
    # N(0, 1)/sqrt(n), drawn in state_names order from the generator
    gen = np.random.default_rng(5)
    for k in names:
        np.testing.assert_array_equal(a[k], gen.standard_normal(sizes[k]) / np.sqrt(sizes[k]))
    ref = model.init_states(scheme="reference")
    assert all(np.array_equal(ref[k], np.full(sizes[k], 0.1)) for k in names)
    # they are simulate's keyword arguments
    p = model.init_params(0)
    u = np.random.default_rng(0).normal(size=(2, 3, model.n_inputs))
    np.testing.assert_array_equal(model.simulate(p, u, backend="numpy", **ref).y,
                                  model.simulate(p, u, backend="numpy").y)
    assert not np.allclose(model.simulate(p, u, backend="numpy", **a).y, model.simulate(p, u, backend="numpy").y)
    with pytest.raises(ValueError, match="scheme"):
        model.init_states(0, scheme="zeros")


def test_init_states_scale():
    x0 = nm.VanillaRNN(N=4000, U=1, O=1).init_states(0)["x0"]
    assert abs(x0.std() - 4000 ** -0.5) < 0.001


def test_variant_parameter_sets():
    assert "R" not in small_nmrnn(tied=True).param_shapes()
    assert "d" not in small_nmrnn(readout_bias=False).param_shapes()
    fb = small_nmrnn(feedback=True).param_shapes()
    assert fb["W_zx"] == (3, 8) and fb["b_zx"] == (3,)
    ctx = nm.NMRNN(N=8, K=2, M=3, U=5, O=1, U_x=3).param_shapes()
    assert ctx["B_x"] == (8, 3) and ctx["B_z"] == (3, 5)
    assert small_nmrnn(signal_dim=1).param_shapes()["A"] == (1, 3)


def test_global_gain_equals_equal_per_component_gains():
    """signal_dim=1 scales every component by the same s: same as K gains that are all equal."""
    glob = small_nmrnn(signal_dim=1)
    per = small_nmrnn()
    p = glob.init_params(1)
    q = dict(p, A=np.repeat(p["A"], 2, axis=0), a=np.repeat(p["a"], 2))
    u = np.random.default_rng(0).normal(size=(2, 15, 3))
    np.testing.assert_allclose(glob.simulate(p, u, backend="numpy").y, per.simulate(q, u, backend="numpy").y,
                               rtol=1e-13)


def test_tied_and_orthonormal_factors():
    model = small_nmrnn(tied=True)
    p = model.prepare(model.init_params(0))
    assert p["R"] is p["L"]
    np.testing.assert_allclose(p["L"].T @ p["L"], np.eye(2), atol=1e-13)


def test_context_routing_x_ignores_context_inputs():
    model = nm.NMRNN(N=8, K=2, M=3, U=5, O=1, U_x=3)
    p = model.init_params(2)
    u = np.random.default_rng(1).normal(size=(2, 12, 5))
    u2 = u.copy()
    u2[..., 3:] += 1.0
    t1, t2 = model.simulate(p, u, backend="numpy"), model.simulate(p, u2, backend="numpy")
    # z sees the context channels, so the trajectories differ ...
    assert not np.allclose(t1.z, t2.z)
    # ... but with the NM subnetwork cut off from them, x would not: check B_x really has 3 columns
    p0 = dict(p, B_z=np.concatenate([p["B_z"][:, :3], np.zeros((3, 2))], axis=1))
    np.testing.assert_array_equal(model.simulate(p0, u, backend="numpy").y, model.simulate(p0, u2, backend="numpy").y)


def test_initial_states_defaults_and_broadcast():
    model = small_nmrnn()
    p = model.init_params(0)
    u = np.zeros((3, 4, 3))
    default = model.simulate(p, u, backend="numpy")
    explicit = model.simulate(p, u, x0=np.full(8, 0.1), z0=np.full((3, 3), 0.1), backend="numpy")
    np.testing.assert_array_equal(default.y, explicit.y)
    per_trial = model.simulate(p, u, x0=np.arange(24.0).reshape(3, 8) / 24, backend="numpy")
    assert not np.allclose(per_trial.y[0], per_trial.y[1])


def test_trajectory_shapes():
    model = small_nmrnn()
    tr = model.simulate(model.init_params(0), np.zeros((4, 6, 3)), backend="numpy")
    assert tr.y.shape == (4, 6, 2) and tr.x.shape == (4, 6, 8)
    assert tr.z.shape == (4, 6, 3) and tr.s.shape == (4, 6, 2)
    assert np.all((tr.s > 0) & (tr.s < 1))
    assert set(tr.as_dict()) == {"y", "x", "z", "s"}
    lstm = nm.LSTM(N=5, U=3, O=1)
    tr = lstm.simulate(lstm.init_params(0), np.zeros((2, 6, 3)), backend="numpy")
    assert set(tr.as_dict()) == {"y", "h", "c"}


def test_config_round_trip_and_registry():
    for make in ALL_MODELS:
        model = make()
        assert make_model(model.kind, **model.config()) == model
    with pytest.raises(ValueError, match="name must be one of .*got 'gru'"):
        make_model("gru")


# ---------------------------------------------------------------------------
# bad input: ValueError naming the argument, before any kernel runs
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,match", [
    (dict(tau_x=0.0), "tau_x"),
    (dict(tau_z=-1.0), "tau_z"),
    (dict(dt=20.0), "dt=20.0 is larger than tau_x"),
    (dict(signal_dim=2 + 1), "signal_dim"),
    (dict(phi="relu"), "phi"),
    (dict(U_x=4), "U_x"),
])
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        small_nmrnn(**kwargs)


def test_dt_larger_than_tau_mentions_instability():
    with pytest.raises(ValueError, match="unstable"):
        nm.VanillaRNN(N=4, U=1, O=1, tau=2.0, dt=3.0)


def test_rank_larger_than_units():
    with pytest.raises(ValueError, match="rank K=5 must not exceed .* N=4"):
        nm.NMRNN(N=4, K=5, M=2, U=1, O=1)
    with pytest.raises(ValueError, match="N must be an integer"):
        nm.LowRankRNN(N=0, K=1, U=1, O=1)


@pytest.mark.parametrize("backend", ["numpy", "numba"] if nm.HAVE_NUMBA else ["numpy"])
def test_bad_params_and_inputs(backend):
    model = small_nmrnn()
    p = model.init_params(0)
    u = np.zeros((2, 5, 3))
    with pytest.raises(ValueError, match=r"missing keys \['A'\]"):
        model.simulate({k: v for k, v in p.items() if k != "A"}, u, backend=backend)
    with pytest.raises(ValueError, match=r"unexpected keys \['W'\]"):
        model.simulate(dict(p, W=np.zeros((8, 8))), u, backend=backend)
    with pytest.raises(ValueError, match=r"params\['L'\] must have shape \(8, 2\)"):
        model.simulate(dict(p, L=np.zeros((8, 3))), u, backend=backend)
    with pytest.raises(ValueError, match=r"params\['W_z'\] contains NaN"):
        model.simulate(dict(p, W_z=np.full((3, 3), np.nan)), u, backend=backend)
    with pytest.raises(ValueError, match=r"inputs must have shape \(any, any, 3\)"):
        model.simulate(p, np.zeros((2, 5)), backend=backend)
    with pytest.raises(ValueError, match=r"inputs must have shape"):
        model.simulate(p, np.zeros((2, 5, 4)), backend=backend)
    with pytest.raises(ValueError, match="inputs contains NaN"):
        model.simulate(p, np.full((2, 5, 3), np.inf), backend=backend)
    with pytest.raises(ValueError, match=r"x0 must have shape \(8,\) or \(2, 8\)"):
        model.simulate(p, u, x0=np.zeros(7), backend=backend)
    with pytest.raises(TypeError, match="unknown initial state"):
        model.simulate(p, u, h0=np.zeros(8), backend=backend)
    with pytest.raises(ValueError, match=r"targets must have shape \(2, 5, 2\)"):
        model.loss_and_grad(p, u, np.zeros((2, 5, 1)), backend=backend)
    with pytest.raises(ValueError, match="mask is zero everywhere"):
        model.loss_and_grad(p, u, np.zeros((2, 5, 2)), np.zeros((2, 5)), backend=backend)
    with pytest.raises(ValueError, match="mask must be non-negative"):
        model.loss_and_grad(p, u, np.zeros((2, 5, 2)), np.array([[1.0, -1.0, 0, 0, 0]] * 2), backend=backend)
    with pytest.raises(ValueError, match="mask contains NaN"):
        model.loss_and_grad(p, u, np.zeros((2, 5, 2)), np.full((2, 5, 1), np.nan), backend=backend)
    with pytest.raises(ValueError, match="backend must be one of"):
        model.simulate(p, u, backend="jax")


def test_reference_params_errors():
    with pytest.raises(ValueError, match="kind must be one of .*got 'gru'"):
        nm.from_reference_params("gru", {})
    with pytest.raises(ValueError, match="missing keys"):
        nm.from_reference_params("rnn", {"recurrent_weights": np.eye(3)})
    with pytest.raises(TypeError, match="unexpected hyper-parameter"):
        nm.from_reference_params("lstm", {}, tau=3.0)
    with pytest.raises(ValueError, match="cannot map"):
        nm.to_reference_params(small_nmrnn(feedback=True), small_nmrnn(feedback=True).init_params(0))


def test_losses():
    from nmrnn_np import losses
    rng = np.random.default_rng(0)
    y, t = rng.normal(size=(3, 4, 2)), rng.normal(size=(3, 4, 2))
    mask = (rng.random((3, 4, 1)) < 0.5).astype(float)
    mask[0, 0] = 1.0
    expected = np.sum(np.broadcast_to(mask, y.shape) * (y - t) ** 2) / (np.sum(mask) * 2)
    assert np.isclose(losses.masked_mse(y, t, mask), expected)
    assert np.isclose(losses.masked_mse(y, t), np.mean((y - t) ** 2))
    assert np.isclose(losses.last_step_mse(y, t), np.mean((y[:, -1] - t[:, -1]) ** 2))
    with pytest.raises(ValueError, match="loss must be one of"):
        losses.get_loss("l1")


def _formula_losses():
    """The losses written as autograd.numpy formulas, differentiated by autograd (the oracle)."""
    import autograd.numpy as anp

    def masked(y, t, mask=None):
        sq = (y - t) ** 2
        if mask is None:
            return anp.mean(sq)
        m = anp.broadcast_to(mask, anp.shape(sq))
        return anp.sum(m * sq) / anp.sum(m)

    return {"masked_mse": masked, "mse": lambda y, t, mask=None: anp.mean((y - t) ** 2),
            "last_step_mse": lambda y, t, mask=None: anp.mean((y[:, -1, :] - t[:, -1, :]) ** 2)}


@pytest.mark.parametrize("name,mask_shape", [("masked_mse", None), ("masked_mse", (3, 4, 1)),
                                             ("masked_mse", (3, 4, 2)), ("mse", None), ("last_step_mse", None)])
def test_loss_values_and_gradients_equal_autograd_through_the_formula(name, mask_shape):
    # the losses are primitives with hand-written VJPs; value and gradients with respect to y and
    # the targets must be those autograd gives through the plain formula, to the bit
    from autograd import grad
    from nmrnn_np import losses
    rng = np.random.default_rng(1)
    y, t = rng.normal(size=(3, 4, 2)), rng.normal(size=(3, 4, 2))
    mask = None if mask_shape is None else rng.random(mask_shape) * (rng.random(mask_shape) < 0.6)
    ours, ref = losses.get_loss(name), _formula_losses()[name]
    assert ours(y, t, mask) == ref(y, t, mask)
    for argnum in (0, 1):
        np.testing.assert_array_equal(grad(ours, argnum)(y, t, mask), grad(ref, argnum)(y, t, mask))
    if mask is not None:   # a different (simpler) formula for the mask: equal to rounding, and to differences
        g = grad(ours, 2)(y, t, mask)
        assert g.shape == mask.shape
        np.testing.assert_allclose(g, grad(ref, 2)(y, t, mask), rtol=1e-12, atol=1e-15)
        v = rng.normal(size=mask.shape)
        h = 1e-6
        fd = (ours(y, t, mask + h * v) - ours(y, t, mask - h * v)) / (2 * h)
        assert np.sum(g * v) == pytest.approx(fd, rel=1e-7)
    # a target that broadcasts gets a gradient of its own shape
    t1 = t[:, :, :1]
    np.testing.assert_allclose(grad(ours, 1)(y, t1, mask), grad(ref, 1)(y, t1, mask), rtol=1e-14, atol=0)
