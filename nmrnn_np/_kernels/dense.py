r"""Numba kernels of the dense baselines: the vanilla RNN and the LSTM.

Forward Euler over time and hand-written backpropagation through time (BPTT).
The equations are those of :class:`nmrnn_np.models.VanillaRNN` and
:class:`nmrnn_np.models.LSTM`, whose NumPy ``step`` is the reference these
kernels are tested against.

Layout and speed
----------------
Every array is float64 and C-contiguous. The kernels work **time-major**,
(T, B, channels), with the time loop outside and the whole batch moving
together: the batch of one step is then one contiguous (B, .) block, so the
products of a step are single (B, N) x (N, N) matrix products (``np.dot``
inside numba calls BLAS, about seven times faster than a hand-written loop at
N = 31, B = 40) and the element-wise updates are flat loops over B N entries.
States are stored with the initial state in front, ``x[0] = x0`` and
``x[t + 1] = x_t``, so "the state before step t" is ``x[t]`` without copies.
The callers (``_numba_forward`` in :mod:`nmrnn_np.models.vanilla`) transpose
from and to the package's batch-first layout.

Parameter gradients are accumulated step by step from (B, .) products rather
than with one (N, B T) x (B T, N) product: OpenBLAS runs products that large on
several threads, which on a loaded two-core machine made the backward pass
ten times slower in the median.

The kernels use ``error_model="numpy"`` so that a division is a plain IEEE
division (no Python ``ZeroDivisionError`` branch), which lets LLVM vectorise
the element-wise loops, and the tanh of :mod:`~nmrnn_np._kernels.scalar`
(shared with the low-rank kernels), which is branch-free and so vectorises
too (numba has no vector tanh without Intel SVML; the C library ``tanh``
costs 10-20 ns per call here against 1.3-2 ns for this one). numba caches
a kernel keyed on this file only, so an edit of the tanh in ``scalar.py``
needs an edit here (or a cleared ``__pycache__``) to reach these kernels. The LSTM's
sigmoid gates use it as ``(1 + tanh(a/2)) / 2``, the formula of the NumPy
path.
"""
from __future__ import annotations

import numpy as np

from .._backend import njit
from .scalar import tanh


@njit(inline="always", error_model="numpy")
def _add_into(acc, tmp):
    """``acc += tmp`` for 2-D C-contiguous arrays of one shape."""
    a, b = acc.reshape(acc.size), tmp.reshape(tmp.size)
    for k in range(a.shape[0]):
        a[k] += b[k]


# ---------------------------------------------------------------------------
# Vanilla RNN
# ---------------------------------------------------------------------------
@njit(error_model="numpy")
def rnn_forward(u, x0, W_T, B_x_T, C_T, d, alpha, scale, linear, x, r, y):
    r"""Forward Euler of the vanilla RNN for a batch, time-major.

    .. math::

        x_t = (1-\alpha) x_{t-1} + \alpha \big(c\, W \phi(x_{t-1}) + B_x u_t\big), \qquad
        y_t = C x_t + d, \qquad t = 0, \dots, T-1

    Parameters
    ----------
    u : (T, B, U) inputs u_t.
    x0 : (B, N) initial state x_{-1}.
    W_T, B_x_T, C_T : (N, N), (U, N), (N, O) the transposes of W, B_x, C.
    d : (O,) readout bias (zeros for a model without one).
    alpha : float, dt / tau.  scale : float, c (1/N or 1).
    linear : bool, phi = identity instead of tanh.
    x : (T+1, B, N) output: ``x[0] = x0``, ``x[t+1] = x_t``.
    r : (T+1, B, N) output: ``r[t] = phi(x[t])``, so ``r[t]`` is the input of
        the recurrent product at step t (kept for the backward pass).
    y : (T, B, O) output, y_t.
    """
    T, B, U = u.shape
    N = x0.shape[1]
    O = C_T.shape[1]
    # constants in the arrays' precision (float64, or float32 for backend='numba32'; a Python float
    # literal is a float64 to numba and would promote every float32 expression it touches)
    one = x0.dtype.type(1.0)
    al = x0.dtype.type(alpha)
    sc = x0.dtype.type(scale)
    BN = B * N
    rec = np.empty((B, N), x0.dtype)
    drive = np.empty((B, N), x0.dtype)
    recf, drivef = rec.reshape(BN), drive.reshape(BN)
    x[0] = x0
    for t in range(T + 1):
        xt, rt = x[t].reshape(BN), r[t].reshape(BN)
        # phi over the whole batch in one flat loop, so the vectorised tanh runs on long rows
        if linear:
            for k in range(BN):
                rt[k] = xt[k]
        else:
            for k in range(BN):
                rt[k] = tanh(xt[k])
        if t == T:
            break
        np.dot(r[t], W_T, rec)
        np.dot(u[t], B_x_T, drive)
        xn = x[t + 1].reshape(BN)
        for k in range(BN):
            xn[k] = (one - al) * xt[k] + al * (sc * recf[k] + drivef[k])
        yt = y[t]
        np.dot(x[t + 1], C_T, yt)
        for b in range(B):
            for o in range(O):
                yt[b, o] += d[o]


@njit(error_model="numpy")
def rnn_backward(u, x, r, g_y, W, C, alpha, scale, linear, dW, dB_x, dC, dd):
    r"""BPTT of the vanilla RNN: gradients of :math:`\sum g_y \odot y` (see :func:`rnn_forward`).

    Parameters
    ----------
    u : (T, B, U);  x, r : (T+1, B, N) from :func:`rnn_forward`.
    g_y : (T, B, O) the adjoint of y, time-major.
    W : (N, N);  C : (O, N) (not transposed).
    alpha, scale, linear : as in :func:`rnn_forward`.
    dW, dB_x, dC, dd : outputs, shapes of W, B_x, C, d.
    """
    T, B, U = u.shape
    N = W.shape[0]
    O = C.shape[0]
    # constants in the arrays' precision (float64, or float32 for backend='numba32'; a Python float
    # literal is a float64 to numba and would promote every float32 expression it touches)
    one = W.dtype.type(1.0)
    al = W.dtype.type(alpha)
    sc = W.dtype.type(scale)
    BN = B * N
    # lambda_t = dL/dx_t in total (through y_t and through every later x), one
    # row per trial (so W^T lambda_t is the row product lambda_t @ W):
    #   lambda_{T-1} = C^T g_{y,T-1}
    #   lambda_{t-1} = C^T g_{y,t-1} + (1 - alpha) lambda_t
    #                  + alpha c phi'(x_{t-1}) * (W^T lambda_t),      phi' = 1 - tanh^2 or 1
    # and the parameter gradients, summed over trials b and steps t:
    #   dL/dW = alpha c sum lambda_t phi(x_{t-1})^T     dL/dB_x = alpha sum lambda_t u_t^T
    #   dL/dC = sum g_{y,t} x_t^T                        dL/dd = sum g_{y,t}
    # Each sum is accumulated step by step with (B, .) products: one large
    # (N, B T) x (B T, N) product would be multithreaded by OpenBLAS, which on
    # a busy machine costs far more than it saves at these sizes.
    lam = np.empty((B, N), W.dtype)
    direct = np.empty((B, N), W.dtype)
    WTlam = np.empty((B, N), W.dtype)
    lamf, directf, WTlamf = lam.reshape(BN), direct.reshape(BN), WTlam.reshape(BN)
    tmp_W = np.empty((N, N), W.dtype)
    tmp_B = np.empty((N, U), W.dtype)
    tmp_C = np.empty((O, N), W.dtype)
    dW[:] = 0.0
    dB_x[:] = 0.0
    dC[:] = 0.0
    dd[:] = 0.0
    ac = al * sc
    np.dot(g_y[T - 1], C, lam)
    for t in range(T - 1, -1, -1):
        np.dot(lam.T, r[t], tmp_W)
        _add_into(dW, tmp_W)
        np.dot(lam.T, u[t], tmp_B)
        _add_into(dB_x, tmp_B)
        np.dot(g_y[t].T, x[t + 1], tmp_C)
        _add_into(dC, tmp_C)
        for b in range(B):
            for o in range(O):
                dd[o] += g_y[t, b, o]
        if t == 0:
            break
        np.dot(lam, W, WTlam)
        np.dot(g_y[t - 1], C, direct)
        rt = r[t].reshape(BN)  # phi(x_{t-1})
        if linear:
            for k in range(BN):
                lamf[k] = directf[k] + (one - al) * lamf[k] + ac * WTlamf[k]
        else:
            for k in range(BN):
                lamf[k] = directf[k] + (one - al) * lamf[k] + ac * ((one - rt[k]) * (one + rt[k])) * WTlamf[k]
    for i in range(N):
        for j in range(N):
            dW[i, j] *= ac
        for k in range(U):
            dB_x[i, k] *= al


# ---------------------------------------------------------------------------
# LSTM
# ---------------------------------------------------------------------------
@njit(error_model="numpy")
def lstm_forward(u, c0, h0, Wu_T, Wh_T, bias, C_T, gates, c, tc, h, y):
    r"""LSTM forward pass for a batch (the authors' reference form), time-major.

    The four gates are stacked in the order (i, f, o, g), so the first 3N
    pre-activations go through the sigmoid and the last N through tanh:

    .. math::

        (i, f, o) &= \sigma(a_{1:3N}), \quad g = \tanh(a_{3N:4N}), \qquad
            a = W_u u_t + W_h h_{t-1} + b \\
        c_t &= f \odot c_{t-1} + i \odot g, \qquad h_t = o \odot \tanh(c_t), \qquad y_t = C h_t

    Parameters
    ----------
    u : (T, B, U);  c0, h0 : (B, N) initial cell and hidden states.
    Wu_T, Wh_T : (U, 4N), (N, 4N) transposes of the stacked (4N, U), (4N, N)
        gate matrices;  bias : (4N,) stacked biases;  C_T : (N, O).
    gates : (T, B, 4N) output, gate values (i, f, o, g) after the nonlinearity.
    c, h : (T+1, B, N) outputs: ``c[0] = c0``, ``c[t+1] = c_t``, same for h.
    tc : (T, B, N) output, tanh(c_t).
    y : (T, B, O) output.
    """
    T, B, U = u.shape
    N = c0.shape[1]
    N3, N4 = 3 * N, 4 * N
    # sigma(a) = (1 + tanh(a/2)) / 2 and tanh(a) are both  mul * tanh(half a) + add,
    # so one loop (that vectorises) covers all four gates
    half = np.empty(N4, c0.dtype)
    mul = np.empty(N4, c0.dtype)
    add = np.empty(N4, c0.dtype)
    for k in range(N4):
        sig = k < N3
        half[k] = 0.5 if sig else 1.0
        mul[k] = 0.5 if sig else 1.0
        add[k] = 0.5 if sig else 0.0
    rec = np.empty((B, N4), c0.dtype)
    drive = np.empty((B, N4), c0.dtype)
    c[0] = c0
    h[0] = h0
    for t in range(T):
        np.dot(h[t], Wh_T, rec)
        np.dot(u[t], Wu_T, drive)
        g = gates[t]
        for b in range(B):
            for k in range(N4):
                g[b, k] = mul[k] * tanh(half[k] * (drive[b, k] + rec[b, k] + bias[k])) + add[k]
        cp, cn = c[t], c[t + 1]
        for b in range(B):
            for i in range(N):
                cn[b, i] = g[b, N + i] * cp[b, i] + g[b, i] * g[b, N3 + i]
        tcf, cnf = tc[t].reshape(B * N), cn.reshape(B * N)
        for k in range(B * N):
            tcf[k] = tanh(cnf[k])
        hn, tct = h[t + 1], tc[t]
        for b in range(B):
            for i in range(N):
                hn[b, i] = g[b, 2 * N + i] * tct[b, i]
        np.dot(hn, C_T, y[t])


@njit(error_model="numpy")
def lstm_backward(u, g_y, Wh, C, gates, c, tc, h, dWu, dWh, dbias, dC):
    r"""BPTT of the LSTM: gradients of :math:`\sum g_y \odot y` (see :func:`lstm_forward`).

    Parameters
    ----------
    u : (T, B, U);  g_y : (T, B, O) the adjoint of y, time-major.
    Wh : (4N, N) stacked recurrent gate matrix (not transposed);  C : (O, N).
    gates, c, tc, h : from :func:`lstm_forward`.
    dWu, dWh, dbias, dC : outputs (4N, U), (4N, N), (4N,), (O, N), stacked (i, f, o, g).
    """
    T, B, U = u.shape
    N = Wh.shape[1]
    O = C.shape[0]
    N2, N3, N4 = 2 * N, 3 * N, 4 * N
    # constants in the arrays' precision (float64, or float32 for backend='numba32'; a Python float
    # literal is a float64 to numba and would promote every float32 expression it touches)
    one = Wh.dtype.type(1.0)
    # Adjoints (a-bar = dL/da, one row per trial), with z the pre-activations
    # of the gates and the carries from step t+1 zero at t = T-1:
    #   hbar_t = C^T g_{y,t} + W_h^T zbar_{t+1}
    #   cbar_t = hbar_t o_t (1 - tanh^2 c_t) + cbar_{t+1} f_{t+1}
    #   zbar_i = cbar_t g_t i_t (1 - i_t)          zbar_f = cbar_t c_{t-1} f_t (1 - f_t)
    #   zbar_o = hbar_t tanh(c_t) o_t (1 - o_t)    zbar_g = cbar_t i_t (1 - g_t^2)
    # and the parameter gradients, summed over trials and steps:
    #   dL/dW_h = sum zbar_t h_{t-1}^T   dL/dW_u = sum zbar_t u_t^T   dL/db = sum zbar_t
    #   dL/dC   = sum g_{y,t} h_t^T
    # (accumulated step by step; see rnn_backward for why).
    direct = np.empty((B, N), Wh.dtype)
    hbar_next = np.zeros((B, N), Wh.dtype)  # W_h^T zbar_{t+1}
    cbar_next = np.zeros((B, N), Wh.dtype)  # cbar_{t+1} f_{t+1}
    tmp_Wh = np.empty((N4, N), Wh.dtype)
    tmp_Wu = np.empty((N4, U), Wh.dtype)
    tmp_C = np.empty((O, N), Wh.dtype)
    dWu[:] = 0.0
    dWh[:] = 0.0
    dbias[:] = 0.0
    dC[:] = 0.0
    # dW_h, dW_u and dC: one product per block of TC steps (fewer, larger BLAS calls; at
    # small N the per-step calls cost more than their arithmetic), each block small enough,
    # m n k <= 2^18, that OpenBLAS runs it on one thread (see rnn_backward)
    TC = max(1, 262144 // (B * N4 * N))
    dzs = np.empty((TC, B, N4), Wh.dtype)
    for t in range(T - 1, -1, -1):
        t_hi = T - 1 - ((T - 1 - t) // TC) * TC     # the block of steps t_lo..t_hi holding t
        t_lo = max(0, t_hi - TC + 1)
        dz = dzs[t - t_lo]
        np.dot(g_y[t], C, direct)
        g, tct, cp = gates[t], tc[t], c[t]  # c[t] = c_{t-1}
        for b in range(B):
            for i in range(N):
                ig, fg, og, gg = g[b, i], g[b, N + i], g[b, N2 + i], g[b, N3 + i]
                tcv = tct[b, i]
                hbar = direct[b, i] + hbar_next[b, i]
                cbar = hbar * og * ((one - tcv) * (one + tcv)) + cbar_next[b, i]
                dz[b, i] = cbar * gg * (ig * (one - ig))
                dz[b, N + i] = cbar * cp[b, i] * (fg * (one - fg))
                dz[b, N2 + i] = hbar * tcv * (og * (one - og))
                dz[b, N3 + i] = cbar * ig * ((one - gg) * (one + gg))
                cbar_next[b, i] = cbar * fg
        if t == t_lo:   # the block is complete: its products
            rows = (t_hi - t_lo + 1) * B
            zb = dzs[:t_hi - t_lo + 1].reshape(rows, N4)
            np.dot(zb.T, h[t_lo:t_hi + 1].reshape(rows, N), tmp_Wh)  # h[t] = h_{t-1}
            _add_into(dWh, tmp_Wh)
            np.dot(zb.T, u[t_lo:t_hi + 1].reshape(rows, U), tmp_Wu)
            _add_into(dWu, tmp_Wu)
            np.dot(g_y[t_lo:t_hi + 1].reshape(rows, O).T, h[t_lo + 1:t_hi + 2].reshape(rows, N), tmp_C)
            _add_into(dC, tmp_C)
        for b in range(B):
            for k in range(N4):
                dbias[k] += dz[b, k]
        if t > 0:
            np.dot(dz, Wh, hbar_next)
