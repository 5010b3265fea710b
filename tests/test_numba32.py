"""The opt-in float32 kernels (``backend="numba32"``) and the three-piece gradient of the numba path.

Oracles: the float64 kernels (themselves pinned to the NumPy reference to
1e-12 elsewhere), ``numpy.tanh`` in float64 for the float32 tanh, and plain
autograd through the kernel primitive for the explicit chain rule of
``loss_and_grad``.
"""
from __future__ import annotations

import numpy as np
import pytest

import nmrnn_np as nm
from nmrnn_np._backend import BACKENDS, KERNEL_DTYPES, resolve_backend

pytestmark = pytest.mark.skipif(not nm.HAVE_NUMBA, reason="the float32 path runs the numba kernels")


def _models():
    return {
        "nmrnn": nm.NMRNN(N=40, K=3, M=5, U=3, O=1),
        "nmrnn_feedback": nm.NMRNN(N=30, K=2, M=4, U=3, O=2, feedback=True),
        "nmrnn_excitability": nm.NMRNN(N=30, K=3, M=4, U=3, O=1, modulation="excitability", signal_dim=3),
        "lrrnn": nm.LowRankRNN(N=40, K=3, U=3, O=1),
        "rnn": nm.VanillaRNN(N=20, U=3, O=1),
        "lstm": nm.LSTM(N=12, U=3, O=1),
    }


def _batch(B=6, T=30, U=3, O=1, seed=0):
    rng = np.random.default_rng(seed)
    inputs = np.where(rng.random((B, T, U)) < 0.3, rng.normal(size=(B, T, U)), 0.0)
    targets = rng.normal(scale=0.5, size=(B, T, O))
    mask = (rng.random((B, T)) < 0.7).astype(float)
    mask[:, -1] = 1.0
    return inputs, targets, mask


@pytest.mark.parametrize("name", list(_models()))
def test_float32_kernels_agree_with_float64_to_float32_rounding(name):
    model = _models()[name]
    params = model.init_params(1)
    inputs, targets, mask = _batch(U=model.n_inputs, O=model.n_outputs)
    t64 = model.simulate(params, inputs, backend="numba")
    t32 = model.simulate(params, inputs, backend="numba32")
    for key, v64 in t64.as_dict().items():
        v32 = getattr(t32, key)
        assert v32.dtype == np.float64 and v32.shape == v64.shape
        scale = max(1.0, float(np.abs(v64).max()))
        assert np.abs(v32 - v64).max() <= 1e-5 * scale, key
        assert not np.array_equal(v32, v64)   # it did run in float32

    l64, g64 = model.loss_and_grad(params, inputs, targets, mask, backend="numba")
    l32, g32 = model.loss_and_grad(params, inputs, targets, mask, backend="numba32")
    assert abs(l32 - l64) <= 1e-5 * abs(l64)
    assert set(g32) == set(g64) == set(params)
    for key in g64:
        assert g32[key].dtype == np.float64 and g32[key].shape == params[key].shape
        scale = float(np.abs(g64[key]).max())
        assert np.abs(g32[key] - g64[key]).max() <= 1e-3 * scale + 1e-9, key


def test_float32_path_is_deterministic_and_stores_float32():
    model = _models()["nmrnn"]
    params = model.init_params(2)
    inputs, targets, mask = _batch()
    a = model.loss_and_grad(params, inputs, targets, mask, backend="numba32")
    b = model.loss_and_grad(params, inputs, targets, mask, backend="numba32")
    assert a[0] == b[0]
    for key in a[1]:
        np.testing.assert_array_equal(a[1][key], b[1][key])
    fwd = model._numba_forward(model.prepare(params), inputs, model.initial_states(inputs.shape[0]), dtype=np.float32)
    assert fwd["y"].dtype == np.float32 and fwd["phi"].dtype == np.float32


def test_float32_tanh_is_accurate_odd_and_saturates():
    from nmrnn_np._kernels import scalar
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-12, 12, 400_000), np.geomspace(1e-38, 12, 20_001),
                        np.linspace(8.9, 9.1, 2001), [0.0, 1e-45, 0.3465, 0.5, 1.0, 9.0, 30.0, 1e30]])
    x = np.concatenate([x, -x]).astype(np.float32)
    out = np.empty_like(x)
    scalar.tanh_array(x, out)
    assert out.dtype == np.float32
    want = np.tanh(x.astype(np.float64))
    ulp = np.abs(out.astype(np.float64) - want) / np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    assert ulp.max() <= 3.0 and ulp.mean() <= 0.5
    half = x.size // 2
    np.testing.assert_array_equal(out[half:], -out[:half])
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 9.5, -100.0], dtype=np.float32)
    o = np.empty_like(special)
    scalar.tanh_array(special, o)
    np.testing.assert_array_equal(o[:4], [0.0, -0.0, 1.0, -1.0])
    assert np.signbit(o[1]) and np.isnan(o[4])
    np.testing.assert_array_equal(o[5:], [1.0, -1.0])


def test_the_float32_kernels_store_the_float32_tanh_bit_for_bit():
    from nmrnn_np._kernels import scalar
    rng = np.random.default_rng(4)
    B, N = 5, 64
    x0 = rng.normal(scale=3.0, size=(B, N))
    model = nm.NMRNN(N=N, K=2, M=3, U=2, O=1)
    fwd = model._numba_forward(model.prepare(model.init_params(0)), rng.normal(size=(B, 3, 2)),
                               {"x0": x0, "z0": np.zeros((B, 3))}, dtype=np.float32)
    x32 = x0.astype(np.float32)
    want = np.empty_like(x32)
    scalar.tanh_array(x32, want)
    np.testing.assert_array_equal(fwd["phi"][0], want)


def test_numba32_is_a_backend_everywhere_a_backend_is_named():
    assert "numba32" in BACKENDS and KERNEL_DTYPES["numba32"] == np.float32
    assert resolve_backend("numba32") == "numba32"
    with pytest.raises(ValueError, match="numba32"):
        resolve_backend("float32")
    model = _models()["lrrnn"]
    inputs, targets, mask = _batch()
    res = nm.train(model, model.init_params(0), (inputs, targets, mask), steps=5, backend="numba32", rng=0)
    assert all(v.dtype == np.float64 for v in res.params.values()) and np.all(np.isfinite(res.losses))


@pytest.mark.parametrize("name", ["nmrnn", "lrrnn", "rnn", "lstm"])
@pytest.mark.parametrize("loss", ["masked_mse", "last_step_mse"])
def test_the_explicit_chain_rule_is_autograd_through_the_kernel_bit_for_bit(name, loss):
    # loss_and_grad on the numba path runs prepare's VJP, the BPTT kernel and the loss's VJP as three
    # explicit pieces; tracing the whole objective through the kernel primitive must give the same bits
    from nmrnn_np.models.base import value_and_grad_of_dict
    model = _models()[name]
    params = model.init_params(3)
    inputs, targets, mask = _batch(U=model.n_inputs, O=model.n_outputs, seed=3)
    value, grads = model.loss_and_grad(params, inputs, targets, mask, loss=loss, backend="numba")
    objective = model._loss_function(inputs, targets, mask, loss, "numba", {})
    want_value, want = value_and_grad_of_dict(objective, model.check_params(params))
    assert value == float(want_value)
    for key in params:
        np.testing.assert_array_equal(grads[key], want[key])


def test_vjp_of_dict_is_autograd_vjp_with_shared_and_passed_through_outputs():
    import autograd.numpy as anp
    from autograd import grad
    from nmrnn_np.models.base import vjp_of_dict
    rng = np.random.default_rng(0)
    params = {"a": rng.normal(size=(4, 3)), "b": rng.normal(size=3), "unused": rng.normal(size=2)}

    def fun(p):
        q = anp.tanh(p["a"]) * p["b"]
        return {"q": q, "tied": q, "b": p["b"], "unused": p["unused"]}

    out, vjp = vjp_of_dict(fun, params)
    cot = {"q": rng.normal(size=(4, 3)), "tied": rng.normal(size=(4, 3)), "b": rng.normal(size=3)}
    got = vjp(cot)

    def scalar(p):
        o = fun(p)
        return sum(anp.sum(cot[k] * o[k]) for k in cot)

    want = grad(scalar)(params)
    for key in params:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-14, atol=1e-15)
    np.testing.assert_array_equal(got["unused"], np.zeros(2))
    np.testing.assert_array_equal(out["q"], np.tanh(params["a"]) * params["b"])
