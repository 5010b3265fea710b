"""Design probe: the low-rank recurrence's core step in the kernels' trial-major layout against a batch-lane layout.

Usage (from the repository root)::

    python bench/layout_probe.py            # B = 40 (timing task) and 100 (multitask), float64 and float32
    python bench/layout_probe.py --quick    # smoke test

The question it answers: would the forward kernel be faster with the batch as
the vector axis? :mod:`nmrnn_np._kernels.lowrank` keeps every trial's x as a
row of a (B, N) array and runs one pass over N per trial and step (vectorised
over units; the three kappa dots end in horizontal sums, and one trial's step
waits for its previous step). The alternative keeps x as (N, B) and loops over
units, each iteration vectorised over the batch: no horizontal sums, all
trials in lockstep. Both functions below do the same core work per step,
nothing else (no NM subnetwork, no inputs, no stored coordinates): the leak
and three rank-1 terms, one readout, tanh, and the next step's three kappa
dots, for T = 110 steps and N = 100 units, with the kernels' tanh and compile
options. Each is timed in alternating interleaved calls on one core (as
``bench/ab_kernels.py``); ``batch-lane / trial-major`` > 1 means the kernels'
layout is faster.
"""
from __future__ import annotations

from _common import interleaved_pairs, parse_args, pin_one_core, print_table

args = parse_args(__doc__.splitlines()[0], repeats=False)
pin_one_core()

import numpy as np  # noqa: E402

from nmrnn_np._backend import HAVE_NUMBA, njit  # noqa: E402
from nmrnn_np._kernels.scalar import tanh  # noqa: E402

#: the compile options of the low-rank kernels
_FAST = dict(error_model="numpy", fastmath={"reassoc", "contract"})


@njit(**_FAST)
def trial_major(Lt, Rt, C, s, x, P, kap, y, alpha):
    """x (B, N), P (T, B, N), kap (B, 3), y (T, B); s (T, 3, B). One pass over N per trial and step."""
    T = s.shape[0]
    N = Lt.shape[1]
    B = x.shape[0]
    f = Lt.dtype.type
    ax = f(alpha)
    keep = f(1.0) - ax
    for t in range(T):
        for b in range(np.uint64(0), np.uint64(B)):
            g0 = ax * s[t, 0, b] * kap[b, 0]
            g1 = ax * s[t, 1, b] * kap[b, 1]
            g2 = ax * s[t, 2, b] * kap[b, 2]
            acc = f(0.0)
            a0 = f(0.0)
            a1 = f(0.0)
            a2 = f(0.0)
            for n in range(N):
                v = keep * x[b, n] + g0 * Lt[0, n] + g1 * Lt[1, n] + g2 * Lt[2, n]
                x[b, n] = v
                acc += C[0, n] * v
                q = tanh(v)
                P[t, b, n] = q
                a0 += Rt[0, n] * q
                a1 += Rt[1, n] * q
                a2 += Rt[2, n] * q
            kap[b, 0] = a0
            kap[b, 1] = a1
            kap[b, 2] = a2
            y[t, b] = acc


@njit(**_FAST)
def batch_lane(Lt, Rt, C, s, x, P, kap, y, alpha):
    """x (N, B), P (T, N, B), kap (3, B), y (T, B); s (T, 3, B). One pass over B per unit and step."""
    T = s.shape[0]
    N = Lt.shape[1]
    B = x.shape[1]
    f = Lt.dtype.type
    ax = f(alpha)
    keep = f(1.0) - ax
    g = np.empty((3, B), Lt.dtype)
    for t in range(T):
        for b in range(B):
            for k in range(3):
                g[k, b] = ax * s[t, k, b] * kap[k, b]
                kap[k, b] = f(0.0)
            y[t, b] = f(0.0)
        for n in range(N):
            l0, l1, l2 = Lt[0, n], Lt[1, n], Lt[2, n]
            r0, r1, r2 = Rt[0, n], Rt[1, n], Rt[2, n]
            c0 = C[0, n]
            for b in range(B):
                v = keep * x[n, b] + g[0, b] * l0 + g[1, b] * l1 + g[2, b] * l2
                x[n, b] = v
                y[t, b] += c0 * v
                q = tanh(v)
                P[t, n, b] = q
                kap[0, b] += r0 * q
                kap[1, b] += r1 * q
                kap[2, b] += r2 * q


def compare(dtype, B: int, pairs: int, N: int = 100, T: int = 110) -> list[str]:
    rng = np.random.default_rng(0)
    Lt = (rng.normal(size=(3, N)) / np.sqrt(N)).astype(dtype)
    Rt = rng.normal(size=(3, N)).astype(dtype)
    C = (rng.normal(size=(1, N)) / 10).astype(dtype)
    s = rng.uniform(size=(T, 3, B)).astype(dtype)
    x0 = rng.normal(size=(B, N)).astype(dtype)
    tm = dict(x=np.empty((B, N), dtype), P=np.empty((T, B, N), dtype), kap=np.empty((B, 3), dtype),
              y=np.empty((T, B), dtype))
    bl = dict(x=np.empty((N, B), dtype), P=np.empty((T, N, B), dtype), kap=np.empty((3, B), dtype),
              y=np.empty((T, B), dtype))

    def run_trial_major():
        tm["x"][...] = x0
        tm["kap"][...] = 1.0
        trial_major(Lt, Rt, C, s, tm["x"], tm["P"], tm["kap"], tm["y"], 0.1)

    def run_batch_lane():
        bl["x"][...] = x0.T
        bl["kap"][...] = 1.0
        batch_lane(Lt, Rt, C, s, bl["x"], bl["P"], bl["kap"], bl["y"], 0.1)

    run_trial_major()
    run_batch_lane()
    diff = float(np.max(np.abs(tm["y"] - bl["y"])) / np.max(np.abs(tm["y"])))
    a, b = interleaved_pairs(run_trial_major, run_batch_lane, pairs, warmup=0)
    return [np.dtype(dtype).name, str(B), f"{1e3 * np.median(a):.3f}", f"{1e3 * np.median(b):.3f}",
            f"{np.median(b) / np.median(a):.2f}", f"{diff:.1e}"]


def main() -> None:
    if not HAVE_NUMBA:
        raise SystemExit("layout_probe.py compares numba kernels: install numba (pip install '.[numba]')")
    pairs = 20 if args.quick else 1000
    rows = [compare(dtype, B, pairs) for dtype in (np.float64, np.float32) for B in (40, 100)]
    print(f"core step of the low-rank forward, N = 100, T = 110, {pairs} interleaved pairs per row, one core\n")
    print_table(["precision", "B", "trial-major ms", "batch-lane ms", "batch-lane / trial-major",
                 "max rel. diff of y"], rows)


if __name__ == "__main__":
    main()
