"""The numba fast path of the vanilla RNN and the LSTM (nmrnn_np._kernels.dense).

Checked against the NumPy reference step (simulate, and plain autograd for
gradients), against central finite differences, and against the authors'
reference outputs in tests/reference. The kernels' tanh is tested in
test_kernel_scalar.py.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from nmrnn_np import HAVE_NUMBA, LSTM, VanillaRNN, from_reference_params, to_reference_params

pytestmark = pytest.mark.skipif(not HAVE_NUMBA, reason="the numba fast path needs numba")

REFERENCE = Path(__file__).resolve().parent / "reference"


def _reference(name):
    d = np.load(REFERENCE / name)
    params = {k[len("param_"):]: d[k] for k in d.files if k.startswith("param_")}
    return d, params


def _vanilla(rng, N, U, O, **options):
    model = VanillaRNN(N, U, O, **options)
    params = model.init_params(rng)
    params["W"] = 1.8 * params["W"]  # gain above 1: states leave the linear range of tanh
    return model, params


def _lstm(rng, N, U, O):
    model = LSTM(N, U, O)
    params = {k: 1.5 * v for k, v in model.init_params(rng).items()}
    return model, params


def _assert_grads_close(got, want, rtol):
    assert set(got) == set(want)
    for k in want:
        assert got[k].shape == want[k].shape, k
        scale = np.abs(want[k]).max()
        np.testing.assert_allclose(got[k], want[k], rtol=rtol, atol=rtol * scale, err_msg=k)


# ---------------------------------------------------------------------------
# simulate: numba == numpy
# ---------------------------------------------------------------------------
VANILLA_OPTIONS = [dict(divide_by_N=dn, readout_bias=rb, phi=phi, tau=tau)
                   for (dn, rb, phi), tau in zip(itertools.product((True, False), (True, False), ("tanh", "linear")),
                                                 itertools.cycle((10.0, 3.0)))]


@pytest.mark.parametrize("options", VANILLA_OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_vanilla_simulate_numba_equals_numpy(options):
    rng = np.random.default_rng(1)
    B, T, N, U, O = 4, 30, 7, 2, 3
    model, params = _vanilla(rng, N, U, O, **options)
    inputs = 2.0 * rng.standard_normal((B, T, U))
    x0 = rng.standard_normal((B, N))
    for init in ({}, {"x0": x0}, {"x0": x0[0]}):
        a = model.simulate(params, inputs, backend="numpy", **init)
        b = model.simulate(params, inputs, backend="numba", **init)
        assert b.y.shape == (B, T, O) and b.x.shape == (B, T, N)
        assert np.abs(a.x).max() > 0.5  # the test is not run on a trivial trajectory
        np.testing.assert_allclose(b.x, a.x, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(b.y, a.y, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("sizes", [(4, 30, 6, 3, 2), (1, 1, 1, 1, 1), (3, 5, 20, 1, 4)])
def test_lstm_simulate_numba_equals_numpy(sizes):
    B, T, N, U, O = sizes
    rng = np.random.default_rng(2)
    model, params = _lstm(rng, N, U, O)
    inputs = 2.0 * rng.standard_normal((B, T, U))
    init = {"c0": rng.standard_normal((B, N)), "h0": 0.5 * rng.standard_normal(N)}
    for given in ({}, init):
        a = model.simulate(params, inputs, backend="numpy", **given)
        b = model.simulate(params, inputs, backend="numba", **given)
        for k in ("y", "h", "c"):
            assert getattr(b, k).shape == getattr(a, k).shape
            np.testing.assert_allclose(getattr(b, k), getattr(a, k), rtol=1e-12, atol=1e-12, err_msg=k)


def test_vanilla_simulate_single_step_and_trial():
    rng = np.random.default_rng(3)
    model, params = _vanilla(rng, 5, 2, 1)
    inputs = rng.standard_normal((1, 1, 2))
    a = model.simulate(params, inputs, backend="numpy", x0=np.arange(5.0) - 2)
    b = model.simulate(params, inputs, backend="numba", x0=np.arange(5.0) - 2)
    np.testing.assert_allclose(b.x, a.x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b.y, a.y, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# gradients: numba BPTT == plain autograd
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("options", VANILLA_OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_vanilla_loss_and_grad_numba_equals_autograd(options):
    rng = np.random.default_rng(4)
    B, T, N, U, O = 3, 25, 6, 2, 2
    model, params = _vanilla(rng, N, U, O, **options)
    inputs = 2.0 * rng.standard_normal((B, T, U))
    targets = rng.standard_normal((B, T, O))
    mask = (rng.random((B, T, O)) < 0.7).astype(float)
    x0 = rng.standard_normal((B, N))
    for loss, m in (("masked_mse", mask), ("last_step_mse", None)):
        la, ga = model.loss_and_grad(params, inputs, targets, m, loss=loss, backend="numpy", x0=x0)
        lb, gb = model.loss_and_grad(params, inputs, targets, m, loss=loss, backend="numba", x0=x0)
        assert lb == pytest.approx(la, rel=1e-12)
        _assert_grads_close(gb, ga, rtol=1e-10)


# (10, 37, 20, 3, 2): the backward's parameter products run in blocks of 16 steps (B 4N N = 16000),
# so 37 steps make two full blocks and a partial one
@pytest.mark.parametrize("sizes", [(3, 25, 5, 2, 2), (1, 1, 2, 1, 1), (10, 37, 20, 3, 2)])
def test_lstm_loss_and_grad_numba_equals_autograd(sizes):
    B, T, N, U, O = sizes
    rng = np.random.default_rng(5)
    model, params = _lstm(rng, N, U, O)
    inputs = 2.0 * rng.standard_normal((B, T, U))
    targets = rng.standard_normal((B, T, O))
    mask = (rng.random((B, T)) < 0.7).astype(float)
    mask[0, -1] = 1.0
    init = {"c0": rng.standard_normal((B, N)), "h0": 0.5 * rng.standard_normal((B, N))}
    for loss, m in (("mse", None), ("masked_mse", mask)):
        la, ga = model.loss_and_grad(params, inputs, targets, m, loss=loss, backend="numpy", **init)
        lb, gb = model.loss_and_grad(params, inputs, targets, m, loss=loss, backend="numba", **init)
        assert lb == pytest.approx(la, rel=1e-12)
        _assert_grads_close(gb, ga, rtol=1e-10)


# ---------------------------------------------------------------------------
# gradients against central finite differences
# ---------------------------------------------------------------------------
def _central_differences(model, params, loss_fn, eps=1e-6):
    out = {}
    for k, v in params.items():
        g = np.empty_like(v)
        for idx in np.ndindex(v.shape):
            plus = {**params, k: v.copy()}
            minus = {**params, k: v.copy()}
            plus[k][idx] += eps
            minus[k][idx] -= eps
            g[idx] = (loss_fn(plus) - loss_fn(minus)) / (2 * eps)
        out[k] = g
    return out


@pytest.mark.parametrize("phi", ["tanh", "linear"])
def test_vanilla_grad_matches_finite_differences(phi):
    rng = np.random.default_rng(6)
    B, T, N, U, O = 2, 12, 4, 2, 2
    model, params = _vanilla(rng, N, U, O, phi=phi, tau=4.0)
    inputs = rng.standard_normal((B, T, U))
    targets = rng.standard_normal((B, T, O))
    mask = (rng.random((B, T)) < 0.7).astype(float)
    fd = _central_differences(model, params,
                              lambda p: model.loss(p, inputs, targets, mask, backend="numba", x0=np.full(N, 0.3)))
    for backend in ("numba", "numpy"):
        _, g = model.loss_and_grad(params, inputs, targets, mask, backend=backend, x0=np.full(N, 0.3))
        _assert_grads_close(g, fd, rtol=1e-6)


def test_lstm_grad_matches_finite_differences():
    rng = np.random.default_rng(7)
    B, T, N, U, O = 2, 10, 3, 2, 2
    model, params = _lstm(rng, N, U, O)
    inputs = rng.standard_normal((B, T, U))
    targets = rng.standard_normal((B, T, O))
    init = {"c0": rng.standard_normal(N), "h0": rng.standard_normal(N)}
    fd = _central_differences(model, params,
                              lambda p: model.loss(p, inputs, targets, loss="mse", backend="numba", **init))
    for backend in ("numba", "numpy"):
        _, g = model.loss_and_grad(params, inputs, targets, loss="mse", backend=backend, **init)
        _assert_grads_close(g, fd, rtol=1e-6)


# ---------------------------------------------------------------------------
# the authors' reference outputs, on the numba path
# ---------------------------------------------------------------------------
def test_rnn_reference_numba():
    d, ref_params = _reference("rnn.npz")
    model, params = from_reference_params("rnn", ref_params, tau=float(d["tau"]))
    traj = model.simulate(params, d["inputs"], backend="numba", x0=d["x0"])
    np.testing.assert_allclose(traj.y, d["ys"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(traj.x, d["xs"], rtol=1e-10, atol=1e-12)
    loss, grads = model.loss_and_grad(params, d["inputs"], d["targets"], d["mask"], backend="numba", x0=d["x0"])
    assert loss == pytest.approx(float(d["loss"]), rel=1e-10)
    ref_grads = to_reference_params(model, grads)
    assert len(ref_grads) == 4
    for name, g in ref_grads.items():
        np.testing.assert_allclose(g, d[f"grad_{name}"], rtol=1e-8, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("loss_kind", ["mse", "masked_mse without mask"])
def test_simple_lstm_reference_numba(loss_kind):
    d, ref_params = _reference("simple_lstm.npz")
    model, params = from_reference_params("lstm", ref_params)
    init = {"c0": d["c0"], "h0": d["h0"]}
    traj = model.simulate(params, d["inputs"], backend="numba", **init)
    np.testing.assert_allclose(traj.y, d["ys"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(traj.c[:, -1], d["c_final"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(traj.h[:, -1], d["h_final"], rtol=1e-10, atol=1e-12)
    loss = "mse" if loss_kind == "mse" else "masked_mse"
    value, grads = model.loss_and_grad(params, d["inputs"], d["targets"], None, loss=loss, backend="numba", **init)
    assert value == pytest.approx(float(d["loss"]), rel=1e-10)
    ref_grads = to_reference_params(model, grads)
    assert len(ref_grads) == 13
    for name, g in ref_grads.items():
        np.testing.assert_allclose(g, d[f"grad_{name}"], rtol=1e-8, atol=1e-12, err_msg=name)


# ---------------------------------------------------------------------------
# bad input never reaches a kernel
# ---------------------------------------------------------------------------
def test_bad_input_raises_value_error_on_numba_path():
    rng = np.random.default_rng(8)
    model, params = _vanilla(rng, 4, 2, 1)
    inputs = rng.standard_normal((2, 5, 2))
    with pytest.raises(ValueError, match="x0"):
        model.simulate(params, inputs, backend="numba", x0=np.zeros(3))
    with pytest.raises(ValueError, match="inputs"):
        model.simulate(params, inputs[:, :, :1], backend="numba")
    bad = {**params, "W": np.full((4, 4), np.nan)}
    with pytest.raises(ValueError, match="W"):
        model.loss_and_grad(bad, inputs, np.zeros((2, 5, 1)), backend="numba")
    lstm, lp = _lstm(rng, 3, 2, 1)
    with pytest.raises(ValueError, match="c0"):
        lstm.simulate(lp, inputs, backend="numba", c0=np.zeros((3, 3)))
