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
