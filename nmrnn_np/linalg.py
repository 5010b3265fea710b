"""Linear algebra with autograd gradients that autograd itself lacks.

autograd 1.9 has no VJP for ``numpy.linalg.qr``; :func:`qr_q` supplies one
for the Q factor of the reduced QR decomposition, which is how the NM-RNN
orthonormalises its left factors L.
"""
from __future__ import annotations

import numpy as np
from autograd.extend import defvjp, primitive


@primitive
def qr_q(A: np.ndarray) -> np.ndarray:
    """Q of the reduced QR decomposition ``A = Q R`` (Householder, LAPACK signs).

    Parameters
    ----------
    A : array (n, k), n >= k, full column rank.

    Returns
    -------
    Q : array (n, k) with orthonormal columns, exactly ``numpy.linalg.qr(A)[0]``
        (the authors' JAX code gives the same signs: ``diag(R)`` is whatever
        LAPACK's Householder reflections produce, not forced positive).
    """
    return np.linalg.qr(A, mode="reduced")[0]


def _copyltu(M: np.ndarray) -> np.ndarray:
    """Symmetric matrix with the lower triangle of ``M``: tril(M) + tril(M, -1)^T."""
    return np.tril(M) + np.tril(M, -1).T


def _qr_q_vjp(Q: np.ndarray, A: np.ndarray):
    r"""VJP of ``A -> Q``.

    Differentiating ``A = Q R`` with ``Q^T Q = I`` and ``R`` upper triangular
    gives, for a cotangent ``Qbar`` on Q and none on R,

    .. math::

        M = -\bar Q^T Q, \qquad
        \bar A = \big(\bar Q + Q\,\mathrm{copyltu}(M)\big) R^{-T},

    where ``copyltu(M)`` copies the lower triangle of M onto the upper one
    (Walter & Lehmann 2018; the same formula PyTorch and JAX use). ``R^{-T}``
    is applied with a k x k linear solve, so A must have full column rank.
    """
    R = np.linalg.qr(A, mode="reduced")[1]

    def vjp(Qbar):
        M = -Qbar.T @ Q
        B = Qbar + Q @ _copyltu(M)
        # B R^{-T} == solve(R, B^T)^T. R is only k x k: numpy's LAPACK solve is a few
        # microseconds, while scipy's solve_triangular was seen taking ~10 ms on a busy
        # machine (BLAS threading). Non-finite cotangents pass through as NaN, so the
        # trainer can report divergence rather than a finiteness error.
        return np.linalg.solve(R, B.T).T

    return vjp


defvjp(qr_q, _qr_q_vjp)
