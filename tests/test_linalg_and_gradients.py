"""The QR VJP and the reference (plain autograd) gradients against finite differences."""
from __future__ import annotations

import numpy as np
import pytest
from autograd import grad
from autograd.test_util import check_grads

import nmrnn_np as nm
from nmrnn_np.linalg import qr_q


@pytest.mark.parametrize("shape", [(6, 1), (7, 3), (5, 5)])
def test_qr_q_matches_numpy_and_finite_differences(shape):
    A = np.random.default_rng(shape[0]).normal(size=shape)
    np.testing.assert_array_equal(qr_q(A), np.linalg.qr(A)[0])
    check_grads(qr_q, modes=["rev"], order=1)(A)
    # a scalar function of Q that is not invariant to column signs
    W = np.random.default_rng(1).normal(size=shape)

    def f(a):
        return np.sum(np.sin(qr_q(a) * W))

    g = grad(f)(A)
    eps = 1e-6
    fd = np.zeros_like(A)
    for idx in np.ndindex(A.shape):
        e = np.zeros_like(A)
        e[idx] = eps
        fd[idx] = (f(A + e) - f(A - e)) / (2 * eps)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_qr_vjp_takes_R_from_its_forward_call(monkeypatch):
    from nmrnn_np import linalg
    rng = np.random.default_rng(2)
    A, W = rng.normal(size=(7, 3)), rng.normal(size=(7, 3))
    calls = []
    qr = np.linalg.qr
    monkeypatch.setattr(np.linalg, "qr", lambda *a, **k: calls.append(1) or qr(*a, **k))
    g = grad(lambda a: np.sum(qr_q(a) * W))(A)
    assert len(calls) == 1   # the forward's factorisation serves the VJP
    # when another qr_q ran in between, R is recomputed (the same LAPACK call: the same bits)
    Q = qr_q(A)
    qr_q(2.0 * A)
    np.testing.assert_array_equal(linalg._qr_q_vjp(Q, A)(W), g)


def test_value_and_grad_of_dict_equals_autograd_over_the_dict():
    import autograd.numpy as anp
    from autograd import value_and_grad

    from nmrnn_np.models.base import value_and_grad_of_dict
    rng = np.random.default_rng(3)
    params = {"a": rng.normal(size=(3, 2)), "b": rng.normal(size=4), "unused": rng.normal(size=2)}

    def f(p):   # "a" used three times, "b" once, "unused" never
        return anp.sum(anp.sin(p["a"]) ** 2) * anp.sum(p["b"]) + anp.sum(p["a"] @ p["a"].T)

    value, grads = value_and_grad_of_dict(f, params)
    ref_value, ref_grads = value_and_grad(f)(params)
    assert value == ref_value and set(grads) == set(params)
    for k in params:
        np.testing.assert_array_equal(grads[k], ref_grads[k])
    assert not np.any(grads["unused"])
    with pytest.raises(TypeError, match="scalar"):
        value_and_grad_of_dict(lambda p: 2.0 * p["a"], params)
    value, grads = value_and_grad_of_dict(lambda p: 3.0, params)   # independent of params
    assert value == 3.0 and all(not np.any(g) and g.shape == params[k].shape for k, g in grads.items())


@pytest.mark.parametrize("backend", ["numpy", "numba"] if nm.HAVE_NUMBA else ["numpy"])
@pytest.mark.parametrize("make", [lambda: nm.NMRNN(N=7, K=2, M=3, U=3, O=2, tied=True, feedback=True),
                                  lambda: nm.LSTM(N=4, U=3, O=2)])
def test_loss_and_grad_equals_autograd_value_and_grad_over_the_dict(make, backend):
    # loss_and_grad boxes each parameter on its own root instead of the dict: the same numbers, to the bit
    from autograd import value_and_grad
    model = make()
    rng = np.random.default_rng(4)
    p = model.init_params(rng)
    u, t = rng.normal(size=(3, 6, 3)), rng.normal(size=(3, 6, 2))
    mask = (rng.random((3, 6)) < 0.7).astype(float)
    value, grads = model.loss_and_grad(p, u, t, mask, backend=backend)
    ref_value, ref_grads = value_and_grad(model._loss_function(u, t, mask, "masked_mse", backend, {}))(p)
    assert value == ref_value
    for k in p:
        np.testing.assert_array_equal(grads[k], ref_grads[k], err_msg=k)


VARIANTS = [
    dict(),
    dict(signal_dim=1),
    dict(orthonormalize=False),
    dict(divide_by_N=True),
    dict(feedback=True),
    dict(readout_bias=False),
    dict(U_x=2),
    dict(phi="linear", tied=True),
]


def _fd_check(model, seed=0):
    rng = np.random.default_rng(seed)
    p = model.init_params(rng)
    u = rng.normal(size=(2, 7, model.U))
    t = rng.normal(size=(2, 7, model.O))
    mask = (rng.random((2, 7, 1)) < 0.7).astype(float)
    mask[0, 0] = 1
    loss, g = model.loss_and_grad(p, u, t, mask, backend="numpy")
    eps = 1e-6
    for k, v in p.items():
        for idx in list(np.ndindex(v.shape))[:6]:
            plus = {**p, k: v.copy()}
            minus = {**p, k: v.copy()}
            plus[k][idx] += eps
            minus[k][idx] -= eps
            fd = (model.loss(plus, u, t, mask, backend="numpy") - model.loss(minus, u, t, mask, backend="numpy")) / (2 * eps)
            assert abs(g[k][idx] - fd) <= 1e-6 * max(1.0, abs(fd)), (k, idx, g[k][idx], fd)
    assert np.isfinite(loss)


@pytest.mark.parametrize("options", VARIANTS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_reference_gradient_nmrnn_variants(options):
    _fd_check(nm.NMRNN(N=6, K=2, M=3, U=3, O=2, **options))


@pytest.mark.parametrize("make", [
    lambda: nm.LowRankRNN(N=6, K=2, U=3, O=2),
    lambda: nm.LowRankRNN(N=6, K=2, U=3, O=2, tied=True, phi="linear"),
    lambda: nm.VanillaRNN(N=5, U=3, O=2),
    lambda: nm.LSTM(N=4, U=3, O=2),
])
def test_reference_gradient_baselines(make):
    _fd_check(make())
