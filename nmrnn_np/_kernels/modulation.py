r"""Numba kernels of the NM-RNN whose signal acts on excitability (``modulation="excitability"`` or ``"both"``).

The synaptic NM-RNN (the default) keeps the kernels of
:mod:`nmrnn_np._kernels.lowrank`; these serve the other two options of
:class:`~nmrnn_np.models.NMRNN` (equations in :mod:`nmrnn_np.models.modulation`).
One forward and one backward kernel take the split of the signal as sizes,
``S_syn`` components on synapses and ``S_exc`` on excitability, with the
group of every rank-1 component (``comp``, (K,)) and the population of every
neuron (``pop``, (N,)); ``S_syn = S, S_exc = 0`` would be the synaptic model,
which the tests use to check these kernels against the existing ones.

Per trial, with ``q_t = phi(x_{t-1})`` (the feedback's rate)::

    h_t     = tanh(z_{t-1})                                         (M)
    z_t     = (1 - a_z) z_{t-1} + a_z (W_z h_t + B_z u_t [+ W_zx q_t + b_zx])
    s_t     = sigmoid(A z_t + a)                                    (S)
    gam_tk  = s_t[comp_k]            (1 when S_syn = 0)             (K)
    g_tn    = 2 s_t[S_syn + pop_n]   (1 when S_exc = 0)             (N)
    p_t     = phi(g_t * x_{t-1})                                    (N)
    kappa_t = R^T p_t                                               (K)
    x_t     = (1 - a_x) x_{t-1} + a_x (c L (gam_t * kappa_t) + B_x u^x_t)
    y_t     = C x_t + d

The forward stores x_0..x_T (B, T + 1, N), z, s, p_t (B, T, N) and kappa_t;
the backward recomputes only q_t (with feedback) and h_t from them. Both loop
over trials outside and time inside, serially, so gradient sums have a fixed
order and the results do not depend on the number of threads. Matrices that
multiply N-vectors come transposed, (K, N), (U_x, N), so the loops over units
run over contiguous memory.
"""
from __future__ import annotations

import numpy as np

from .._backend import njit
from .scalar import rate_constants, sigmoid, tanh

#: as the low-rank kernels: vectorisable dot products, no ZeroDivisionError checks
_FAST = dict(error_model="numpy", fastmath={"reassoc", "contract"})


@njit(**_FAST)
def modulated_forward(inputs, x0, z0, Lt, Rt, BxT, C, d, W_z, B_z, A, a, W_zx, b_zx, comp, pop,
                      S_syn, S_exc, alpha_x, alpha_z, scale, feedback, linear, X, Z, Sg, Y, PH, KAP):
    """Forward Euler over T steps for B trials, writing into preallocated outputs.

    Parameters
    ----------
    inputs : (B, T, U); the first U_x = ``BxT.shape[0]`` channels reach x.
    x0 : (B, N); z0 : (B, M).
    Lt, Rt : (K, N) prepared factors, transposed; BxT : (U_x, N); C : (O, N); d : (O,).
    W_z : (M, M); B_z : (M, U); A : (S, M); a : (S,); W_zx : (M, N); b_zx : (M,).
    comp : (K,) int64 group of each rank-1 component; pop : (N,) int64 population of each neuron.
    S_syn, S_exc : ints; alpha_x, alpha_z, scale : floats; feedback, linear : bools.

    Outputs (written)
    -----------------
    X : (B, T + 1, N) x_0, x_1, ..., x_T; Z : (B, T, M); Sg : (B, T, S); Y : (B, T, O);
    PH : (B, T, N) p_t = phi(g_t * x_{t-1}) and KAP : (B, T, K) kappa_t = R^T p_t, which the
    backward pass reads instead of recomputing them.
    """
    B, T, U = inputs.shape
    K, N = Lt.shape
    Ux = BxT.shape[0]
    O = C.shape[0]
    M = W_z.shape[0]
    S = A.shape[0]
    zero, one, ax, az, sc = rate_constants(Lt, alpha_x, alpha_z, scale)   # in the arrays' precision
    two = one + one
    keep_x = one - ax
    keep_z = one - az
    z = np.empty(M, Lt.dtype)
    zn = np.empty(M, Lt.dtype)
    h = np.empty(M, Lt.dtype)
    s = np.empty(S, Lt.dtype)
    gam = np.ones(K, Lt.dtype)
    gn = np.ones(N, Lt.dtype)
    p = np.empty(N, Lt.dtype)
    q = np.empty(N, Lt.dtype)
    kap = np.empty(K, Lt.dtype)
    for b in range(B):
        for n in range(N):
            X[b, 0, n] = x0[b, n]
        for m in range(M):
            z[m] = z0[b, m]
        for t in range(T):
            # z_t, s_t (the feedback sees phi(x_{t-1}), un-gained)
            for m in range(M):
                h[m] = tanh(z[m])
            if feedback:
                if linear:
                    for n in range(N):
                        q[n] = X[b, t, n]
                else:
                    for n in range(N):
                        q[n] = tanh(X[b, t, n])
            for m in range(M):
                acc = zero
                for j in range(M):
                    acc += W_z[m, j] * h[j]
                for j in range(U):
                    acc += B_z[m, j] * inputs[b, t, j]
                if feedback:
                    acc += b_zx[m]
                    for n in range(N):
                        acc += W_zx[m, n] * q[n]
                zn[m] = keep_z * z[m] + az * acc
            for m in range(M):
                z[m] = zn[m]
                Z[b, t, m] = z[m]
            for i in range(S):
                acc = a[i]
                for m in range(M):
                    acc += A[i, m] * z[m]
                s[i] = sigmoid(acc)
                Sg[b, t, i] = s[i]
            # gains, p_t = phi(g_t * x_{t-1}), kappa_t = R^T p_t
            if S_syn > 0:
                for k in range(K):
                    gam[k] = s[comp[k]]
            if S_exc > 0:
                for n in range(N):
                    gn[n] = two * s[S_syn + pop[n]]
            if linear:
                for n in range(N):
                    p[n] = gn[n] * X[b, t, n]
            else:
                for n in range(N):
                    p[n] = tanh(gn[n] * X[b, t, n])
            for n in range(N):
                PH[b, t, n] = p[n]
            for k in range(K):
                acc = zero
                for n in range(N):
                    acc += Rt[k, n] * p[n]
                KAP[b, t, k] = acc
                kap[k] = ax * sc * gam[k] * acc
            # x_t = (1 - a_x) x_{t-1} + a_x (c L (gam * kappa) + B_x u^x_t); y_t = C x_t + d
            for n in range(N):
                X[b, t + 1, n] = keep_x * X[b, t, n]
            for k in range(K):
                c = kap[k]
                for n in range(N):
                    X[b, t + 1, n] += c * Lt[k, n]
            for j in range(Ux):
                c = ax * inputs[b, t, j]
                if c != zero:
                    for n in range(N):
                        X[b, t + 1, n] += c * BxT[j, n]
            for o in range(O):
                acc = d[o]
                for n in range(N):
                    acc += C[o, n] * X[b, t + 1, n]
                Y[b, t, o] = acc


@njit(**_FAST)
def modulated_backward(inputs, z0, Lt, Rt, BxT, C, W_z, A, W_zx, comp, pop, S_syn, S_exc,
                       alpha_x, alpha_z, scale, feedback, linear, X, Z, Sg, PH, KAP, gY,
                       dLt, dRt, dBxT, dC, dd, dW_z, dB_z, dA, da, dW_zx, db_zx):
    r"""Gradient of ``J = sum(gY * Y)`` w.r.t. every parameter, accumulated into the (zeroed) outputs.

    Inputs as :func:`modulated_forward` plus what it stored (``X``, ``Z``,
    ``Sg``, ``PH``, ``KAP``) and the cotangent ``gY`` (B, T, O). ``dLt`` is dJ/dL^T (K, N),
    ``dRt`` dJ/dR^T, ``dBxT`` dJ/dB_x^T (U_x, N); the others have the
    parameters' shapes.

    Adjoint recursion, per trial, for t = T-1, ..., 0, with the carries
    ``lam~ = dJ/dx_t`` and ``mu~ = dJ/dz_t`` through step t+1 (zero at t = T-1)::

        lam_t  = C^T gy_t + lam~              dC += gy_t x_t^T ; dd += gy_t
        eps_t  = a_x lam_t                    dB_x += eps_t u^x_t^T
        Le_t   = L^T eps_t                    dL += c eps_t (gam_t * kappa_t)^T
        dkap   = c gam_t * Le_t               dgam = c kappa_t * Le_t
        dR    += p_t dkap^T ;  dp = R dkap ;  dv = phi'(v_t) * dp     (v_t = g_t * x_{t-1})
        sbar   = scatter(dgam -> comp) + scatter(2 x_{t-1} * dv -> S_syn + pop)   dJ/ds_t
        om_t   = sbar * s_t (1 - s_t)         dA += om_t z_t^T ; da += om_t
        mu_t   = A^T om_t + mu~ ;  nu_t = a_z mu_t
        dW_z  += nu_t h_t^T ;  dB_z += nu_t u_t^T ;  [dW_zx += nu_t q_t^T ; db_zx += nu_t]
        lam~  <- (1 - a_x) lam_t + g_t * dv [+ phi'(x_{t-1}) * (W_zx^T nu_t)]
        mu~   <- (1 - a_z) mu_t + (1 - h_t^2) * (W_z^T nu_t)
    """
    B, T, U = inputs.shape
    K, N = Lt.shape
    Ux = BxT.shape[0]
    O = C.shape[0]
    M = W_z.shape[0]
    S = A.shape[0]
    zero, one, ax, az, sc = rate_constants(Lt, alpha_x, alpha_z, scale)   # in the arrays' precision
    two = one + one
    keep_x = one - ax
    keep_z = one - az
    lam = np.empty(N, Lt.dtype)
    mu = np.empty(M, Lt.dtype)
    nu = np.empty(M, Lt.dtype)
    h = np.empty(M, Lt.dtype)
    gam = np.ones(K, Lt.dtype)
    gn = np.ones(N, Lt.dtype)
    p = np.empty(N, Lt.dtype)
    q = np.empty(N, Lt.dtype)
    dv = np.empty(N, Lt.dtype)
    kap = np.empty(K, Lt.dtype)
    le = np.empty(K, Lt.dtype)
    dkap = np.empty(K, Lt.dtype)
    sbar = np.empty(S, Lt.dtype)
    om = np.empty(S, Lt.dtype)
    for b in range(B):
        for n in range(N):
            lam[n] = zero
        for m in range(M):
            mu[m] = zero
        for t in range(T - 1, -1, -1):
            # the step's gains (p_t and kappa_t stored by the forward)
            if S_syn > 0:
                for k in range(K):
                    gam[k] = Sg[b, t, comp[k]]
            if S_exc > 0:
                for n in range(N):
                    gn[n] = two * Sg[b, t, S_syn + pop[n]]
            for n in range(N):
                p[n] = PH[b, t, n]
            for k in range(K):
                kap[k] = KAP[b, t, k]
            # lam_t = C^T gy_t + lam~, dC, dd
            for o in range(O):
                w = gY[b, t, o]
                if w != zero:
                    dd[o] += w
                    for n in range(N):
                        lam[n] += w * C[o, n]
                        dC[o, n] += w * X[b, t + 1, n]
            # eps_t = a_x lam_t: dB_x, L^T eps, dL
            for j in range(Ux):
                c = ax * inputs[b, t, j]
                if c != zero:
                    for n in range(N):
                        dBxT[j, n] += c * lam[n]
            for k in range(K):
                acc = zero
                for n in range(N):
                    acc += Lt[k, n] * lam[n]
                le[k] = ax * acc
                c = ax * sc * gam[k] * kap[k]
                for n in range(N):
                    dLt[k, n] += c * lam[n]
                dkap[k] = sc * gam[k] * le[k]
            # dR, dp, dv
            for n in range(N):
                dv[n] = zero
            for k in range(K):
                c = dkap[k]
                for n in range(N):
                    dRt[k, n] += c * p[n]
                    dv[n] += c * Rt[k, n]
            if not linear:
                for n in range(N):
                    dv[n] *= one - p[n] * p[n]
            # dJ/ds_t, through the component gains and the neuron gains
            for i in range(S):
                sbar[i] = zero
            if S_syn > 0:
                for k in range(K):
                    sbar[comp[k]] += sc * kap[k] * le[k]
            if S_exc > 0:
                for n in range(N):
                    sbar[S_syn + pop[n]] += two * X[b, t, n] * dv[n]
            for i in range(S):
                si = Sg[b, t, i]
                om[i] = sbar[i] * si * (one - si)
                da[i] += om[i]
                for m in range(M):
                    dA[i, m] += om[i] * Z[b, t, m]
                    mu[m] += A[i, m] * om[i]
            # the z-adjoint: dW_z, dB_z, feedback
            for m in range(M):
                h[m] = tanh(Z[b, t - 1, m]) if t > 0 else tanh(z0[b, m])
            for m in range(M):
                nu[m] = az * mu[m]
                for j in range(M):
                    dW_z[m, j] += nu[m] * h[j]
                for j in range(U):
                    dB_z[m, j] += nu[m] * inputs[b, t, j]
            # lam~ = (1 - a_x) lam_t + g_t * dv [+ phi'(x_{t-1}) W_zx^T nu_t]
            for n in range(N):
                lam[n] = keep_x * lam[n] + gn[n] * dv[n]
            if feedback:
                if linear:
                    for n in range(N):
                        q[n] = X[b, t, n]
                else:
                    for n in range(N):
                        q[n] = tanh(X[b, t, n])
                for n in range(N):
                    p[n] = zero   # reused: W_zx^T nu_t
                for m in range(M):
                    c = nu[m]
                    db_zx[m] += c
                    for n in range(N):
                        dW_zx[m, n] += c * q[n]
                        p[n] += c * W_zx[m, n]
                if linear:
                    for n in range(N):
                        lam[n] += p[n]
                else:
                    for n in range(N):
                        lam[n] += (one - q[n] * q[n]) * p[n]
            # mu~ = (1 - a_z) mu_t + (1 - h_t^2) W_z^T nu_t
            for j in range(M):
                acc = zero
                for m in range(M):
                    acc += W_z[m, j] * nu[m]
                mu[j] = keep_z * mu[j] + (one - h[j] * h[j]) * acc
