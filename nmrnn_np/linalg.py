"""Linear algebra with autograd gradients that autograd itself lacks.

autograd 1.9 has no VJP for ``numpy.linalg.qr``; :func:`qr_q` supplies one
for the Q factor of the reduced QR decomposition, which is how the NM-RNN
orthonormalises its left factors L.
"""
from __future__ import annotations

import functools
import threading

import numpy as np
from autograd.extend import defvjp, primitive

_EPS = float(np.finfo(np.float64).eps)

#: (Q, R) of the last qr_q call in this thread: the VJP needs R, which the forward has just computed
_last = threading.local()


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

    Raises
    ------
    ValueError
        ``A`` is rank deficient (e.g. all zeros): its Q is not determined by
        ``A`` and the gradient does not exist.
    """
    Q, R = np.linalg.qr(A, mode="reduced")
    # rank check on the R just computed (no extra factorisation): with a (numerically)
    # zero diagonal entry Q is not determined by A, and the VJP's solve with R fails
    diag = np.abs(np.diagonal(R)).tolist()   # K numbers: Python's min/max beat NumPy's reductions
    if diag and not min(diag) > max(A.shape) * _EPS * max(diag):
        raise ValueError(f"the ({A.shape[0]}, {A.shape[1]}) matrix is rank deficient (column rank < "
                         f"{A.shape[1]}): QR cannot orthonormalise it")
    _last.value = (Q, R)
    return Q


@functools.lru_cache(maxsize=None)
def _lower_masks(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of the lower triangle of a k x k matrix, with and without the diagonal."""
    return np.tri(k, dtype=bool), np.tri(k, k=-1, dtype=bool)


def _copyltu(M: np.ndarray) -> np.ndarray:
    """Symmetric matrix with the lower triangle of ``M``: tril(M) + tril(M, -1)^T.

    ``np.tril`` with masks built once per size (``np.tril`` itself rebuilds
    its mask with ``np.tri`` on every call, ~5 us each).
    """
    lower, strict = _lower_masks(M.shape[0])
    return np.where(lower, M, 0.0) + np.where(strict, M, 0.0).T


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

    autograd calls this right after the forward :func:`qr_q` that returned
    ``Q``, so R is taken from that call (a one-slot, thread-local cache, as in
    :mod:`nmrnn_np.primitives`) instead of factorising A again; if another
    qr_q ran in between, R is recomputed (the same LAPACK call, the same bits).
    """
    cached = getattr(_last, "value", None)
    _last.value = None
    R = cached[1] if cached is not None and cached[0] is Q else np.linalg.qr(A, mode="reduced")[1]

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
