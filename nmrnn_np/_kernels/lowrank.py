r"""Numba kernels of the low-rank networks (NM-RNN and LR-RNN): forward Euler and BPTT.

One forward kernel and one backward kernel serve every option of
:class:`~nmrnn_np.models.NMRNN` and :class:`~nmrnn_np.models.LowRankRNN`;
the options arrive as flags and sizes, never as separate copies of the loops:

* ``nm``: the neuromodulatory subnetwork is present (NM-RNN); without it
  ``s == 1`` and the z arrays are empty (LR-RNN);
* ``feedback``: z also receives ``W_zx phi(x_{t-1}) + b_zx``;
* ``linear``: ``phi`` is the identity instead of tanh;
* ``S`` (the number of rows of ``A``): K gains, one per rank-1 component, or
  one global gain;
* ``U_x`` (the number of rows of ``BxT``): the first U_x inputs reach x;
* ``scale``: 1 or 1/N in front of the recurrent term;
* orthonormalising L and tying R = L happen in autograd before the kernel
  (:meth:`~nmrnn_np.models.lowrank._LowRankBase.prepare`); the kernel reads
  the prepared L and R.

Per trial, with ``p_t = phi(x_{t-1})`` (the forward equations, see
:class:`~nmrnn_np.models.NMRNN`)::

    kappa_t = R^T p_t                                        (K)
    h_t     = tanh(z_{t-1})                                  (M)
    z_t     = (1 - a_z) z_{t-1} + a_z (W_z h_t + B_z u_t [+ W_zx p_t + b_zx])
    s_t     = sigmoid(A z_t + a)                             (S)
    g_t     = c s_t * kappa_t                                (K; s_t broadcast when S = 1)
    x_t     = (1 - a_x) x_{t-1} + a_x (L g_t + B_x u^x_t)
    y_t     = C x_t + d

Precision: the kernels are written once for float64 and float32 (every
constant is made in the arrays' dtype by
:func:`~nmrnn_np._kernels.scalar.rate_constants`; numba compiles one version
per precision); ``backend="numba32"`` passes float32
arrays.

The N x N matrix ``L diag(s) R^T`` is never formed: the kernels only take the
(K, N) factors, and the recurrent term costs 2 N K multiply-adds per trial and
step. Matrices that multiply N-vectors are passed transposed, (K, N), (U_x, N),
(O, N), (M, N), so every inner loop over units runs over contiguous memory
and is vectorised by LLVM.

Loop structure: time is the outer loop. Within a step, the work that is long
in N (the x update, the readout, phi(x), kappa; in the backward the x-adjoint)
runs trial by trial, vectorised over N, with every trial's current x (or
adjoint) in a (B, N) array that stays in cache; the neuromodulatory
subnetwork (M, S ~ 5 units) runs for all trials at once on (M, B) arrays,
vectorised over the batch (per trial it would be a chain of short scalar
loops and dependent tanh calls).

Threads: none. :func:`lowrank_forward` and :func:`lowrank_backward` run
every trial on the calling thread (:func:`_forward_trials` and
:func:`_backward_trials` on ``0:B``), so the results cannot depend on a thread
count. An earlier version ran two fixed chunks of trials in a ``prange``: 30%
faster on a quiet two-core machine, but a fork/join waits for the slower
thread, and beside two busy processes a training step took 279 ms instead of
~5 (``docs/performance.md``). Parallelism belongs one level up: the
experiments run one single-threaded training run per core. The per-trial
loops run over ``range(uint64(b0), uint64(b1))``: with a signed start numba
cannot prove the index non-negative and emits negative-index wrap-around code
on every access (1.22 -> 1.49 ms forward, 1.03 -> 1.41 ms backward).

Speed levers, each measured (numbers in ``docs/performance.md``):

* tanh and sigmoid come from :mod:`~nmrnn_np._kernels.scalar` (shared with
  the dense kernels): branch-free with no libm call, so loops over them
  vectorise, ~1.3 ns per value instead of ~11 ns for libm's scalar
  ``tanh`` (numba has no SVML on these machines);
* ``error_model="numpy"`` removes the divide-by-zero checks that block
  vectorisation; ``fastmath={"reassoc", "contract"}`` lets the dot products
  over N use SIMD partial sums (this changes the summation order, i.e. the
  rounding, at the 1e-16 level); tanh is a separate, strict function that
  LLVM inlines with its own flags (see :mod:`~nmrnn_np._kernels.scalar`):
  reassociation would undo its Cody-Waite argument reduction;
* the hot loops index the 3-D arrays directly, with no helper functions taking
  array views and no ``a if c else b`` views (a first version with them was
  0.4-0.6 ms slower per forward pass at the timing-task size, inlined or not);
* the forward stores what the backward needs, ``p_t = phi(x_{t-1})``
  (T, B, N), ``kappa_t``, z, s, so the backward evaluates no tanh over N; it
  does not store x_t, only its K + U_x coordinates in span(x_0, L, B_x),
  which is all dJ/dC needs (this halves the memory the backward reads);
* passes over N are fused where the data allow: in the forward one pass
  per trial and step does the leak, three rank-1 terms, the first readout,
  tanh and the next step's three kappa dots (:func:`_forward_trials`);
* zero entries of ``u_t`` and of the output cotangent are skipped (task
  inputs are mostly zero; masked losses give zero cotangents); at steps with
  more than 3 nonzero inputs per trial ``B_x u_t`` and the ``dB_x`` term are
  one BLAS product per step instead (:func:`_dense_inputs`);
* in the backward, the ranks of the experiments, K = 3 (timing) and K = 4
  (multitask), have their rank-1 terms fused into single passes over N;
  other K fuse the first three and add one pass per further component.
"""
from __future__ import annotations

import numpy as np

from .._backend import njit

from .scalar import rate_constants, sigmoid, tanh

#: options of every kernel: vectorisable dot products, no ZeroDivisionError checks
_FAST = dict(error_model="numpy", fastmath={"reassoc", "contract"})


# ----------------------------------------------------------------------------
# forward
# ----------------------------------------------------------------------------
@njit(**_FAST)
def _dense_inputs(inputs_tub, t, Ux, ub0, ub1):
    """True when u^x_t has more than 3 nonzero entries per trial: then B_x u^x_t (and, in the
    backward, the dB_x term) is one BLAS matrix product for the step, else one pass over N per
    nonzero entry.

    (The Measure-Wait-Go inputs are mostly zero; the multitask inputs have 2.7 nonzero entries
    per trial and step, a fixation, a context and a stimulus channel, and there the passes are
    faster: multitask NM-RNN forward kernel 4.4 -> 4.1 ms, backward 4.0-4.3 -> 3.4-3.6 ms in
    float64 on one quiet core, against a threshold of 1 per trial before. A BLAS call costs a few
    microseconds whatever its size, a pass over N = 100 about 35 cycles.)
    """
    nnz = 0
    for j in range(Ux):
        for b in range(ub0, ub1):
            if inputs_tub[t, j, b] != 0.0:
                nnz += 1
    return nnz > 3 * (ub1 - ub0)


@njit(**_FAST)
def _forward_trials(inputs, inputs_tub, x0, z0, Lt, Rt, BxT, C, d, W_z, B_z, A, a, W_zx, b_zx,
                    alpha_x, alpha_z, scale, nm, feedback, linear, for_backward,
                    Y, X, Z, Sg, P, KAP, GV, b0, b1):
    """Forward Euler over T steps for trials ``b0:b1``, writing into preallocated outputs.

    (Called by :func:`lowrank_forward`, which has the same arguments without
    ``b0, b1`` and runs it on ``0:B``.)

    Parameters
    ----------
    inputs : (B, T, U), and the same values as ``inputs_tub`` (T, U, B);
        the first U_x = ``BxT.shape[0]`` channels reach x.
    x0 : (B, N); z0 : (B, M) (M = 0 without ``nm``).
    Lt, Rt : (K, N) prepared factors, transposed.
    BxT : (U_x, N); C : (O, N); d : (O,) (zeros when there is no bias).
    W_z : (M, M); B_z : (M, U); A : (S, M); a : (S,).
    W_zx : (M, N), b_zx : (M,) feedback weights (unused without ``feedback``).
    alpha_x, alpha_z, scale : floats (``scale`` = c, 1 or 1/N).
    nm, feedback, linear, for_backward : bools.

    Outputs (written)
    -----------------
    Y : (B, T, O); Z : (B, T, M); Sg : (B, T, S); KAP : (T, B, K) ``kappa_t``.
    X : (B, T, N) x_t, unless ``for_backward`` (then unused).
    P : (T, B, N) ``p_t = phi(x_{t-1})`` when ``for_backward``, else (1, B, N) scratch.
    GV : (T, B, K + U_x) when ``for_backward`` (else unused): the coordinates
        of x_t in the span of x_0, the columns of L and those of B_x,
        ``x_t = (1 - a_x)^(t+1) x_0 + L G_t + B_x V_t`` with
        ``G_t = (1 - a_x) G_{t-1} + a_x g_t``, ``V_t = (1 - a_x) V_{t-1} + a_x u^x_t``
        (G, V = 0 before the first step). The backward pass needs x_t only
        for dJ/dC = sum_t gy_t x_t^T, which these K + U_x numbers per step
        give without storing and re-reading the (T, B, N) states.

    Time is the outer loop; each step t has two phases: (B) the NM
    subnetwork for all trials at once (vectorised over the batch, the long
    axis of its (M, B) arrays), then (C) trial by trial, one pass over N that
    does the x update, the first readout and the *next* step's
    ``p_{t+1} = phi(x_t)`` and ``kappa_{t+1}`` (an extra iteration t = -1
    computes ``p_0`` and ``kappa_0`` from x_0). The pass has three rank-1
    slots (for K < 3 the missing ones read row 0 with a zero coefficient);
    nonzero inputs and components beyond the third are added, with the leak,
    by passes before it, and their dots by passes after it. The current x of
    every trial lives in a (B, N) array that stays in cache.

    (One pass instead of three, tanh-and-dots, update, readout: float32
    timing-task forward 0.61 -> 0.50 ms; float64 and the LR-RNN unchanged;
    the multitask sizes, whose K = 4 and ~2.7 nonzero inputs per trial need
    passes around it, 3-5% slower; ``docs/performance.md``.)
    """
    B, T, U = inputs.shape
    K, N = Lt.shape
    ub0 = np.uint64(b0)
    ub1 = np.uint64(b1)
    Ux = BxT.shape[0]
    O = C.shape[0]
    M = W_z.shape[0]
    S = A.shape[0]
    zero, one, ax, az, sc = rate_constants(Lt, alpha_x, alpha_z, scale)   # in the arrays' precision
    keep_x = one - ax
    keep_z = one - az
    xs = np.empty((B, N), Lt.dtype)
    gv = np.zeros((B, K + Ux), Lt.dtype)
    z = np.empty((M, B), Lt.dtype)
    h = np.empty((M, B), Lt.dtype)
    drive = np.empty((M, B), Lt.dtype)
    sg = np.ones((max(S, 1), B), Lt.dtype)
    g = np.empty(K, Lt.dtype)
    ut = np.zeros((B, Ux), Lt.dtype)   # u^x_t of the chunk's trials (zero rows elsewhere)
    bu = np.empty((B, N), Lt.dtype)    # B_x u^x_t, when computed by one matrix product (dense inputs)
    for b in range(ub0, ub1):
        for n in range(N):
            xs[b, n] = x0[b, n]
    for m in range(M):
        for b in range(ub0, ub1):
            z[m, b] = z0[b, m]
    # the fused pass reads four rank-1 slots: components 0..3, or (K < 4) row 0 again with a zero
    # coefficient, so that one loop with four fixed terms serves every K (components 4.. get own passes)
    r1 = 1 if K > 1 else 0
    r2 = 2 if K > 2 else 0
    last = np.empty((1, B, N), Lt.dtype)   # p_T = phi(x_{T-1}), which nothing reads
    # t = -1 computes only p_0 = phi(x_0) and kappa_0; every later t ends with p_{t+1} and kappa_{t+1}
    for t in range(-1, T):
        # (B) z_t = (1 - a_z) z_{t-1} + a_z (W_z tanh(z_{t-1}) + B_z u_t [+ W_zx p_t + b_zx]),
        #     s_t = sigmoid(A z_t + a)
        if nm and t >= 0:
            tp = t if for_backward else 0
            for m in range(M):
                for b in range(ub0, ub1):
                    h[m, b] = tanh(z[m, b])
            for m in range(M):
                for b in range(ub0, ub1):
                    drive[m, b] = zero
                if feedback:
                    for b in range(ub0, ub1):
                        acc = b_zx[m]
                        for n in range(N):
                            acc += W_zx[m, n] * P[tp, b, n]
                        drive[m, b] = acc
                for j in range(M):
                    c = W_z[m, j]
                    for b in range(ub0, ub1):
                        drive[m, b] += c * h[j, b]
                for j in range(U):
                    c = B_z[m, j]
                    for b in range(ub0, ub1):
                        drive[m, b] += c * inputs_tub[t, j, b]
                for b in range(ub0, ub1):
                    z[m, b] = keep_z * z[m, b] + az * drive[m, b]
            for i in range(S):
                for b in range(ub0, ub1):
                    sg[i, b] = a[i]
                for m in range(M):
                    c = A[i, m]
                    for b in range(ub0, ub1):
                        sg[i, b] += c * z[m, b]
                for b in range(ub0, ub1):
                    sg[i, b] = sigmoid(sg[i, b])
            for b in range(ub0, ub1):
                for m in range(M):
                    Z[b, t, m] = z[m, b]
                for i in range(S):
                    Sg[b, t, i] = sg[i, b]
        # (C) x_t = (1 - a_x) x_{t-1} + sum_k (a_x c s_tk kappa_tk) L_k + sum_j (a_x u_tj) B_x[:, j],
        #     y_t = C x_t + d, then p_{t+1} = phi(x_t) and kappa_{t+1} = R^T p_{t+1}: one pass over N
        #     per trial for all of it (the rank-1 terms of components 4.. and nonzero inputs are
        #     added, with the leak, by passes before it)
        tn = t + 1 if for_backward else 0            # where p_{t+1} goes
        dest = P if (t + 1 < T or not for_backward) else last
        if t + 1 >= T and for_backward:
            tn = 0
        dense_u = t >= 0 and _dense_inputs(inputs_tub, t, Ux, ub0, ub1)
        if dense_u:   # one (B, U_x) x (U_x, N) product instead of a pass over N per nonzero input
            for b in range(ub0, ub1):
                for j in range(Ux):
                    ut[b, j] = inputs[b, t, j]
            np.dot(ut, BxT, bu)
        for b in range(ub0, ub1):
            kx = keep_x
            if t < 0:   # x_0 itself: no leak, no terms
                kx = one
                for k in range(K):
                    g[k] = zero
            else:
                for k in range(K):
                    g[k] = ax * sc * sg[k if S > 1 else 0, b] * KAP[t, b, k]
                # terms the fused pass has no slot for: applied here with the leak, which the pass then skips
                if dense_u:
                    for n in range(N):
                        xs[b, n] = kx * xs[b, n] + ax * bu[b, n]
                    kx = one
                else:
                    for j in range(Ux):
                        c = ax * inputs[b, t, j]
                        if c != zero:
                            for n in range(N):
                                xs[b, n] = kx * xs[b, n] + c * BxT[j, n]
                            kx = one
                for k in range(3, K):
                    c = g[k]
                    for n in range(N):
                        xs[b, n] = kx * xs[b, n] + c * Lt[k, n]
                    kx = one
            g0 = g[0]
            g1 = g[1] if K > 1 else zero
            g2 = g[2] if K > 2 else zero
            acc = zero
            a0 = zero
            a1 = zero
            a2 = zero
            for n in range(N):
                v = kx * xs[b, n] + g0 * Lt[0, n] + g1 * Lt[r1, n] + g2 * Lt[r2, n]
                xs[b, n] = v
                acc += C[0, n] * v
                q = tanh(v)
                if linear:
                    q = v
                dest[tn, b, n] = q
                a0 += Rt[0, n] * q
                a1 += Rt[r1, n] * q
                a2 += Rt[r2, n] * q
            if t + 1 < T:
                KAP[t + 1, b, 0] = a0
                if K > 1:
                    KAP[t + 1, b, 1] = a1
                if K > 2:
                    KAP[t + 1, b, 2] = a2
                for k in range(3, K):
                    acc_k = zero
                    for n in range(N):
                        acc_k += Rt[k, n] * dest[tn, b, n]
                    KAP[t + 1, b, k] = acc_k
            if t < 0:
                continue
            Y[b, t, 0] = acc + d[0]
            for o in range(1, O):
                acc = d[o]
                for n in range(N):
                    acc += C[o, n] * xs[b, n]
                Y[b, t, o] = acc
            if for_backward:
                for k in range(K):
                    gv[b, k] = keep_x * gv[b, k] + g[k]
                    GV[t, b, k] = gv[b, k]
                for j in range(Ux):
                    gv[b, K + j] = keep_x * gv[b, K + j] + ax * inputs[b, t, j]
                    GV[t, b, K + j] = gv[b, K + j]
            else:
                for n in range(N):
                    X[b, t, n] = xs[b, n]


# ----------------------------------------------------------------------------
# backward (BPTT)
# ----------------------------------------------------------------------------
@njit(**_FAST)
def _backward_trials(inputs, inputs_tub, x0, z0, Lt, Rt, BxT, C, W_z, A, W_zx,
                     alpha_x, alpha_z, scale, nm, feedback, linear,
                     GV, Z, Sg, P, KAP, gY,
                     dLt, dRt, dBxT, dC, dd, dW_z, dB_z, dA, da, dW_zx, db_zx, b0, b1):
    r"""Gradient of ``J = sum(gY * Y)`` over trials ``b0:b1`` w.r.t. every parameter, accumulated into the outputs.

    (Called by :func:`lowrank_backward`, which has the same arguments without
    ``b0, b1``, and runs it on ``0:B`` into zeroed outputs.)

    Inputs are those of :func:`lowrank_forward` plus what it stored with
    ``for_backward`` (``GV``, ``P`` and ``KAP`` time-major, ``Z``, ``Sg``) and
    the cotangent ``gY`` (B, T, O). Gradients have the shapes of the arrays
    passed in (``dLt`` is dJ/dL^T, (K, N); ``dBxT`` is (U_x, N); the others
    as the parameters).

    Adjoint recursion, per trial, for t = T-1, ..., 0, with the carries
    ``lam~ = dJ/dx_t`` and ``mu~ = dJ/dz_t`` through step t+1 (zero at t = T-1)::

        lam_t   = C^T gy_t + lam~                  total dJ/dx_t
        dC     += gy_t x_t^T ;   dd += gy_t        (x_t from GV, see lowrank_forward)
        eps_t   = a_x lam_t                        dJ/d(drive of x)
        gam_t   = L^T eps_t                        dJ/dg_t            (K)
        dL     += eps_t g_t^T ;  dB_x += eps_t u^x_t^T
        rho_t   = c s_t * gam_t                    dJ/dkappa_t        (K)
        sbar_t  = c kappa_t * gam_t                dJ/ds_t            (S = K)
                = c sum_k kappa_tk gam_tk                             (S = 1)
        om_t    = sbar_t * s_t (1 - s_t)           dJ/d(A z_t + a)    (S)
        dA     += om_t z_t^T ;   da += om_t
        mu_t    = A^T om_t + mu~                   total dJ/dz_t
        nu_t    = a_z mu_t                         dJ/d(drive of z)
        dW_z   += nu_t h_t^T ;   dB_z += nu_t u_t^T      (h_t = tanh(z_{t-1}))
        [dW_zx += nu_t p_t^T ;   db_zx += nu_t]                       (feedback)
        dR     += p_t rho_t^T
        pbar_t  = R rho_t [+ W_zx^T nu_t]          dJ/dp_t, p_t = phi(x_{t-1})
        lam~   <- (1 - a_x) lam_t + phi'(x_{t-1}) * pbar_t       phi' = 1 - p_t^2 (tanh) or 1
        mu~    <- (1 - a_z) mu_t + (1 - h_t^2) * (W_z^T nu_t)

    As in the forward, time is the outer loop and each step has three
    phases: (A) trial by trial, lam_t to rho_t and om_t (vectorised over N);
    (B) the z-adjoint mu, nu for all trials at once (vectorised over the
    batch); (C) trial by trial, pbar_t and the carry lam~.
    """
    B, T, U = inputs.shape
    K, N = Lt.shape
    ub0 = np.uint64(b0)
    ub1 = np.uint64(b1)
    O = C.shape[0]
    Ux = BxT.shape[0]
    M = W_z.shape[0]
    S = A.shape[0]
    zero, one, ax, az, sc = rate_constants(Lt, alpha_x, alpha_z, scale)   # in the arrays' precision
    keep_x = one - ax
    keep_z = one - az
    lam = np.zeros((B, N), Lt.dtype)
    # dC = sum_t,b gy_tb x_tb^T with x_tb = c0_t x0_b + L G_tb + B_x V_tb: accumulate the
    # coefficients (O, B), (O, K), (O, U_x) and form dC once at the end
    c_x0 = np.zeros((O, B), Lt.dtype)
    c_gv = np.zeros((O, K + Ux), Lt.dtype)
    decay = np.empty(T, Lt.dtype)
    decay[0] = keep_x
    for t in range(1, T):
        decay[t] = decay[t - 1] * keep_x
    pbar = np.empty(N, Lt.dtype)
    rho = np.empty((B, K), Lt.dtype)
    om = np.zeros((S, B), Lt.dtype)
    mu = np.zeros((M, B), Lt.dtype)
    nu = np.zeros((M, B), Lt.dtype)
    h = np.empty((M, B), Lt.dtype)
    wnu = np.empty((M, B), Lt.dtype)
    sk = np.ones(K, Lt.dtype)
    dots = np.empty(K, Lt.dtype)       # L^T lam_t of one trial
    ut = np.zeros((Ux, B), Lt.dtype)   # a_x u^x_t of the chunk's trials (zero columns elsewhere)
    tmp_bx = np.empty((Ux, N), Lt.dtype)
    for t in range(T - 1, -1, -1):
        dense_u = _dense_inputs(inputs_tub, t, Ux, ub0, ub1)
        # (A) lam_t, dC, dd, gam_t, dL, dB_x, rho_t, om_t
        for b in range(ub0, ub1):
            for o in range(O):
                w = gY[b, t, o]
                if w != zero:
                    dd[o] += w
                    c_x0[o, b] += w * decay[t]
                    for i in range(K + Ux):
                        c_gv[o, i] += w * GV[t, b, i]
                    for n in range(N):
                        lam[b, n] += w * C[o, n]
            if nm:
                for k in range(K):
                    sk[k] = Sg[b, t, k if S > 1 else 0]
            if K == 4:   # one pass over lam for all four dots and dL rows
                c0 = ax * sc * sk[0] * KAP[t, b, 0]          # a_x g_tk
                c1 = ax * sc * sk[1] * KAP[t, b, 1]
                c2 = ax * sc * sk[2] * KAP[t, b, 2]
                c3 = ax * sc * sk[3] * KAP[t, b, 3]
                a0 = zero
                a1 = zero
                a2 = zero
                a3 = zero
                for n in range(N):
                    v = lam[b, n]
                    a0 += Lt[0, n] * v
                    a1 += Lt[1, n] * v
                    a2 += Lt[2, n] * v
                    a3 += Lt[3, n] * v
                    dLt[0, n] += c0 * v
                    dLt[1, n] += c1 * v
                    dLt[2, n] += c2 * v
                    dLt[3, n] += c3 * v
                dots[0] = a0
                dots[1] = a1
                dots[2] = a2
                dots[3] = a3
            elif K >= 3:   # one pass over lam for the first three dots and dL rows
                c0 = ax * sc * sk[0] * KAP[t, b, 0]          # a_x g_tk
                c1 = ax * sc * sk[1] * KAP[t, b, 1]
                c2 = ax * sc * sk[2] * KAP[t, b, 2]
                a0 = zero
                a1 = zero
                a2 = zero
                for n in range(N):
                    v = lam[b, n]
                    a0 += Lt[0, n] * v
                    a1 += Lt[1, n] * v
                    a2 += Lt[2, n] * v
                    dLt[0, n] += c0 * v
                    dLt[1, n] += c1 * v
                    dLt[2, n] += c2 * v
                dots[0] = a0
                dots[1] = a1
                dots[2] = a2
                for k in range(3, K):
                    c = ax * sc * sk[k] * KAP[t, b, k]
                    acc = zero
                    for n in range(N):
                        acc += Lt[k, n] * lam[b, n]
                        dLt[k, n] += c * lam[b, n]
                    dots[k] = acc
            else:
                for k in range(K):
                    c = ax * sc * sk[k] * KAP[t, b, k]           # a_x g_tk
                    acc = zero
                    for n in range(N):
                        acc += Lt[k, n] * lam[b, n]
                        dLt[k, n] += c * lam[b, n]
                    dots[k] = acc
            acc_s = zero
            for k in range(K):
                gam = ax * dots[k]
                rho[b, k] = sc * sk[k] * gam
                acc_s += KAP[t, b, k] * gam
                if nm and S > 1:
                    om[k, b] = sc * KAP[t, b, k] * gam * sk[k] * (one - sk[k])
            if nm and S == 1:
                om[0, b] = sc * acc_s * sk[0] * (one - sk[0])
            if not dense_u:
                for j in range(Ux):
                    c = ax * inputs[b, t, j]
                    if c != zero:
                        for n in range(N):
                            dBxT[j, n] += c * lam[b, n]
        if dense_u:   # dB_x^T += (a_x u^x_t)^T lam_t as one (U_x, B) x (B, N) product
            for j in range(Ux):
                for b in range(ub0, ub1):
                    ut[j, b] = ax * inputs_tub[t, j, b]
            np.dot(ut, lam, tmp_bx)
            for j in range(Ux):
                for n in range(N):
                    dBxT[j, n] += tmp_bx[j, n]
        # (B) da, dA, mu_t, nu_t, dW_z, dB_z, db_zx, mu~
        if nm:
            for m in range(M):
                if t > 0:
                    for b in range(ub0, ub1):
                        h[m, b] = tanh(Z[b, t - 1, m])
                else:
                    for b in range(ub0, ub1):
                        h[m, b] = tanh(z0[b, m])
            for i in range(S):
                acc = zero
                for b in range(ub0, ub1):
                    acc += om[i, b]
                da[i] += acc
                for m in range(M):
                    acc = zero
                    c = A[i, m]
                    for b in range(ub0, ub1):
                        acc += om[i, b] * Z[b, t, m]
                        mu[m, b] += c * om[i, b]
                    dA[i, m] += acc
            for m in range(M):
                for b in range(ub0, ub1):
                    nu[m, b] = az * mu[m, b]
                for j in range(M):
                    acc = zero
                    for b in range(ub0, ub1):
                        acc += nu[m, b] * h[j, b]
                    dW_z[m, j] += acc
                for j in range(U):
                    acc = zero
                    for b in range(ub0, ub1):
                        acc += nu[m, b] * inputs_tub[t, j, b]
                    dB_z[m, j] += acc
                if feedback:
                    acc = zero
                    for b in range(ub0, ub1):
                        acc += nu[m, b]
                    db_zx[m] += acc
            for j in range(M):
                for b in range(ub0, ub1):
                    wnu[j, b] = zero
                for m in range(M):
                    c = W_z[m, j]
                    for b in range(ub0, ub1):
                        wnu[j, b] += c * nu[m, b]
                for b in range(ub0, ub1):
                    mu[j, b] = keep_z * mu[j, b] + (one - h[j, b] * h[j, b]) * wnu[j, b]
        # (C) pbar_t, dR, dW_zx, lam~
        for b in range(ub0, ub1):
            if K == 3 and not feedback and not linear:   # one pass; pbar is never stored
                r0 = rho[b, 0]
                r1 = rho[b, 1]
                r2 = rho[b, 2]
                for n in range(N):
                    q = P[t, b, n]
                    dRt[0, n] += r0 * q
                    dRt[1, n] += r1 * q
                    dRt[2, n] += r2 * q
                    lam[b, n] = keep_x * lam[b, n] + (one - q * q) * (r0 * Rt[0, n] + r1 * Rt[1, n] + r2 * Rt[2, n])
                continue
            if K == 4 and not feedback and not linear:   # the same for the multitask rank
                r0 = rho[b, 0]
                r1 = rho[b, 1]
                r2 = rho[b, 2]
                r3 = rho[b, 3]
                for n in range(N):
                    q = P[t, b, n]
                    dRt[0, n] += r0 * q
                    dRt[1, n] += r1 * q
                    dRt[2, n] += r2 * q
                    dRt[3, n] += r3 * q
                    lam[b, n] = keep_x * lam[b, n] + (one - q * q) * (r0 * Rt[0, n] + r1 * Rt[1, n] + r2 * Rt[2, n]
                                                                      + r3 * Rt[3, n])
                continue
            c = rho[b, 0]
            for n in range(N):
                pbar[n] = c * Rt[0, n]
                dRt[0, n] += c * P[t, b, n]
            for k in range(1, K):
                c = rho[b, k]
                for n in range(N):
                    pbar[n] += c * Rt[k, n]
                    dRt[k, n] += c * P[t, b, n]
            if feedback:
                for m in range(M):
                    c = nu[m, b]
                    for n in range(N):
                        pbar[n] += c * W_zx[m, n]
                        dW_zx[m, n] += c * P[t, b, n]
            if linear:
                for n in range(N):
                    lam[b, n] = keep_x * lam[b, n] + pbar[n]
            else:
                for n in range(N):
                    lam[b, n] = keep_x * lam[b, n] + (one - P[t, b, n] * P[t, b, n]) * pbar[n]
    # dC = c_x0 x0 + c_G L^T + c_V B_x^T
    for o in range(O):
        for b in range(ub0, ub1):
            c = c_x0[o, b]
            for n in range(N):
                dC[o, n] += c * x0[b, n]
        for k in range(K):
            c = c_gv[o, k]
            for n in range(N):
                dC[o, n] += c * Lt[k, n]
        for j in range(Ux):
            c = c_gv[o, K + j]
            for n in range(N):
                dC[o, n] += c * BxT[j, n]


# ----------------------------------------------------------------------------
# drivers: all trials on the calling thread
# ----------------------------------------------------------------------------
@njit(**_FAST)
def lowrank_forward(inputs, inputs_tub, x0, z0, Lt, Rt, BxT, C, d, W_z, B_z, A, a, W_zx, b_zx,
                    alpha_x, alpha_z, scale, nm, feedback, linear, for_backward,
                    Y, X, Z, Sg, P, KAP, GV):
    """Forward Euler over T steps for all B trials (:func:`_forward_trials` on ``0:B``)."""
    _forward_trials(inputs, inputs_tub, x0, z0, Lt, Rt, BxT, C, d, W_z, B_z, A, a, W_zx, b_zx,
                    alpha_x, alpha_z, scale, nm, feedback, linear, for_backward,
                    Y, X, Z, Sg, P, KAP, GV, 0, inputs.shape[0])


@njit(**_FAST)
def lowrank_backward(inputs, inputs_tub, x0, z0, Lt, Rt, BxT, C, W_z, A, W_zx,
                     alpha_x, alpha_z, scale, nm, feedback, linear,
                     GV, Z, Sg, P, KAP, gY,
                     dLt, dRt, dBxT, dC, dd, dW_z, dB_z, dA, da, dW_zx, db_zx):
    """BPTT (see :func:`_backward_trials`) for all B trials; gradients accumulated into the (zeroed) outputs."""
    _backward_trials(inputs, inputs_tub, x0, z0, Lt, Rt, BxT, C, W_z, A, W_zx,
                     alpha_x, alpha_z, scale, nm, feedback, linear,
                     GV, Z, Sg, P, KAP, gY,
                     dLt, dRt, dBxT, dC, dd, dW_z, dB_z, dA, da, dW_zx, db_zx, 0, inputs.shape[0])
