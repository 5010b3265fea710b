"""Time of one training step (forward + gradient + clip/AdamW update) for every model, against JAX.

Usage (from the repository root)::

    python bench/train_step.py            # the tables of docs/performance.md
    python bench/train_step.py --quick    # smoke test
    python bench/train_step.py --only single,load   # some tables: single, load, multitask, reference, grid

A step is ``loss, grads = model.loss_and_grad(params, inputs, targets, mask,
backend="numba")`` (masked MSE) followed by
``nmrnn_np.optim.ClipAdamW(1e-2).update`` (element-wise clip at 1, then AdamW:
the authors' optimiser): the "API" step, whose calls check every argument.
The pinned tables also time the step of the training loop
(:func:`nmrnn_np.training.train`, which the experiments run): the same
computation, with parameters and data checked once before the loop. JAX (``bench/jax_peer.py``): the same equations and
optimiser, one jitted step in float64, QR of L included. Times are median
(min, max) in ms after warm-up calls (compilation excluded).

Tables:

* ``single`` (issue 14, target 1): the timing task (Measure-Wait-Go, B=40,
  T=110) for the NM-RNN and its three parameter-matched baselines, this
  process and JAX pinned to one core (``os.sched_setaffinity``); each model
  in float64 (``backend="numba"`` against JAX in float64) and in float32
  (``backend="numba32"`` against JAX in float32).
* ``load`` (target 2): the timing-task NM-RNN step while two busy-loop
  processes compete for the cores (started and stopped here, each bounded to
  a few minutes): the package with its default threads and environment, the
  same with every thread count set to 1, JAX with its defaults, and the
  float32 pair (``numba32``, JAX float32), each in child processes run in
  turn (``--load-rounds``, best median kept).
* ``multitask`` (target 3): the multitask sizes (B=100, T=100, U=7, O=3, one
  batch of :class:`nmrnn_np.tasks.Multitask`), pinned to one core like
  ``single``.
* ``reference``: the timing-task NM-RNN on the readable NumPy/autograd path
  and with numba disabled (``NMRNN_NP_DISABLE_NUMBA=1`` in a child process:
  in this design that *is* the numpy backend).
* ``grid``: the NM-RNN at N = 100, 400, 1600 and B = 40, 400 (not run by
  default; slow).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _common import (fmt, load_line, machine, measure, multitask_data, mwg_data, parse_args, print_table, ratio,
                     step_fn)

TABLES = ("single", "load", "multitask", "reference", "grid")


def _extra(parser):
    parser.add_argument("--only", default="single,load,multitask,reference",
                        help=f"comma-separated tables among {','.join(TABLES)} (default: all but grid)")
    parser.add_argument("--load-rounds", type=int, default=3,
                        help="'load' table: child processes per path, run in turn; each row keeps the "
                             "round with the lowest median (default 3)")
    parser.add_argument("--pinned-rounds", type=int, default=2,
                        help="'single' and 'multitask' tables: child processes per side (numba, JAX), "
                             "alternating; each row keeps the round with the lowest median (default 2)")
    parser.add_argument("--busy-seconds", type=float, default=300.0,
                        help="upper bound on the lifetime of each busy-loop process of the 'load' table")
    # internal: a child process that times one step and prints JSON
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)


args = parse_args(__doc__.splitlines()[0], _extra)
PINNED = None
ALL_CORES = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
if args.child is None and hasattr(os, "sched_setaffinity"):
    # pin before numpy, numba and jax start threads (threads inherit the mask)
    PINNED = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {PINNED})


def _unpinned() -> None:
    """``preexec_fn`` of the processes of the 'load' table: every core, as a user's processes have."""
    if ALL_CORES is not None:
        os.sched_setaffinity(0, ALL_CORES)

import numpy as np  # noqa: E402  (after the BLAS thread count and the affinity are set)

import jax_peer  # noqa: E402
import nmrnn_np as nm  # noqa: E402


def timing_models():
    return [("NM-RNN N=100 K=3 M=5", nm.NMRNN(N=100, K=3, M=5, U=3, O=1)),
            ("LR-RNN N=106 K=3", nm.LowRankRNN(N=106, K=3, U=3, O=1)),
            ("vanilla RNN N=31", nm.VanillaRNN(N=31, U=3, O=1)),
            ("LSTM N=15", nm.LSTM(N=15, U=3, O=1))]


def multitask_models():
    return [("NM-RNN N=100 K=4 M=5", nm.NMRNN(N=100, K=4, M=5, U=7, O=3)),
            ("LR-RNN N=100 K=4", nm.LowRankRNN(N=100, K=4, U=7, O=3)),
            ("vanilla RNN N=100", nm.VanillaRNN(N=100, U=7, O=3)),
            ("LSTM N=100", nm.LSTM(N=100, U=7, O=3))]


def jax_step(model, params, data, dtype=np.float64):
    """The jitted JAX step of the same model in ``dtype``; checks its loss against the model's first."""
    import jax
    train_step = jax_peer.build_train_step(model)
    inputs, targets, mask = data
    init = jax_peer.to_device(model.initial_states(inputs.shape[0]), dtype)
    pj = jax_peer.to_device(params, dtype)
    batch = (init,) + jax_peer.to_device((inputs, targets, mask), dtype)
    state = jax_peer.init_state(pj)
    _, _, loss = train_step(pj, state, batch)
    single = dtype == np.float32
    ours = model.loss(params, inputs, targets, mask, backend="numba32" if single else "numba")
    if abs(float(loss) - ours) > (1e-5 if single else 1e-9) * max(1.0, abs(ours)):
        raise RuntimeError(f"JAX peer loss {float(loss)} differs from the model's {ours} ({type(model).__name__})")
    if single and str(loss.dtype) != "float32":
        raise RuntimeError(f"JAX peer ran in {loss.dtype}, not float32 ({type(model).__name__})")
    return lambda: jax.block_until_ready(train_step(pj, state, batch))


def reps(model, data):
    inputs = data[0]
    big = inputs.shape[0] * inputs.shape[1] * getattr(model, "N", 1) > 2_000_000
    return max(5, args.repeats // 3) if big else args.repeats


PINNED_TABLES = {"single": ("Timing task (B=40, T=110), one core", timing_models, lambda: mwg_data(40)),
                 "multitask": ("Multitask sizes (B=100, T=100, U=7, O=3), one core", multitask_models,
                               multitask_data)}
PRECISIONS = (("float64", "numba", np.float64), ("float32", "numba32", np.float32))


def pinned_rows(table: str, side: str) -> list[dict]:
    """Every row's step time on one side (``"numba"`` or ``"jax"``), both precisions, in this process."""
    _, models, data_fn = PINNED_TABLES[table]
    data, out = data_fn(), []
    for _, backend, dtype in PRECISIONS:
        for _, m in models():
            p = m.init_params(0)
            if side == "numba":   # the training loop's step, then the public calls
                out.append([measure(step_fn(m, p, data, backend, api=False), reps(m, data)),
                            measure(step_fn(m, p, data, backend), reps(m, data))])
            else:
                out.append([measure(jax_step(m, p, data, dtype), reps(m, data))])
    return out


def pinned_table(table: str, use_jax: bool) -> None:
    """Each model's numba step and its JAX step on the pinned core, in float64 (``backend="numba"``
    against JAX float64) and float32 (``"numba32"`` against JAX float32).

    Each side runs in its own child process (inheriting the pinning): XLA's
    worker threads keep spinning for a while after a JAX call, and in one
    process pinned to one core they took the core from the numba rows measured
    after them (the multitask vanilla RNN in float32: 20.5 ms beside JAX,
    14.6 ms alone). The two sides alternate ``--pinned-rounds`` times; each row
    keeps its lowest median.
    """
    title, models, _ = PINNED_TABLES[table]
    sides = ("numba", "jax") if use_jax else ("numba",)
    runs = {side: [] for side in sides}
    for _ in range(args.pinned_rounds):
        for side in sides:
            runs[side].append(run_child("pinned", {}, str(args.blas_threads), table=table, side=side))
    # best[side][row][variant]: the lowest median over the rounds
    best = {side: [[min(times, key=lambda t: t["median"]) for times in zip(*row)] for row in zip(*rs)]
            for side, rs in runs.items()}
    labels = [label for label, _ in models()]
    rows, i = [], 0
    for precision, _, _ in PRECISIONS:
        first = None
        for label in labels:
            (f, api), j = best["numba"][i], best["jax"][i][0] if use_jax else None
            first = first or f
            rows.append([label, precision, fmt(f), fmt(j), ratio(f, j), ratio(f, first), fmt(api), ratio(api, j)])
            i += 1
    print(f"\n{title} (best of {args.pinned_rounds} child processes per side, alternating; 'step': the "
          f"training loop's step, 'API': model.loss_and_grad + optimizer.update, which check their arguments)")
    print_table(["model", "precision", "numba step ms", "JAX step ms", "numba / JAX", "/ first row",
                 "numba API ms", "API / JAX"], rows)


# ----------------------------------------------------------------------------
# child processes: one timed step configuration each
# ----------------------------------------------------------------------------
def child(spec: dict) -> None:
    if spec["what"] == "pinned":
        print(json.dumps(pinned_rows(spec["table"], spec["side"])))
        return
    model = nm.NMRNN(N=100, K=3, M=5, U=3, O=1)
    params = model.init_params(0)
    data = mwg_data(40)
    if spec["what"] == "jax":
        fn, n, warm = jax_step(model, params, data), args.repeats, 2
    elif spec["what"] == "jax32":
        fn, n, warm = jax_step(model, params, data, np.float32), args.repeats, 2
    elif spec["what"] == "numpy":
        fn, n, warm = step_fn(model, params, data, backend=None), args.slow_repeats, 1
    elif spec["what"] == "numba32":
        fn, n, warm = step_fn(model, params, data, "numba32"), args.repeats, 2
    else:
        fn, n, warm = step_fn(model, params, data), args.repeats, 2
    print(json.dumps(measure(fn, n, warmup=warm)))


def run_child(what: str, env_changes: dict, blas_threads: str, pinned: bool = True, **spec):
    env = dict(os.environ)
    for k, v in env_changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    cmd = [sys.executable, __file__, "--child", json.dumps(dict(what=what, **spec)), "--repeats", str(args.repeats),
           "--slow-repeats", str(args.slow_repeats), "--blas-threads", blas_threads]
    # a child inherits this process's pinning to one core; the 'load' table's children get every core
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True,
                         preexec_fn=None if pinned else _unpinned).stdout
    return json.loads(out.strip().splitlines()[-1])


THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def load_table(use_jax) -> None:
    """The timing-task NM-RNN step with two busy loops competing for the cores."""
    default_env = {k: None for k in THREAD_VARS}           # the user's defaults: no thread settings
    single_env = {k: "1" for k in THREAD_VARS}
    busy = ("import time\nend = time.monotonic() + %g\nwhile time.monotonic() < end:\n    pass\n"
            % args.busy_seconds)
    # the busy loops and the timed children run on every core (not on this process's pinned one): two
    # busy loops compete with the step for the machine's cores, as a user's other work would
    procs = [subprocess.Popen([sys.executable, "-c", busy], preexec_fn=_unpinned) for _ in range(2)]
    try:
        time.sleep(0.5)
        start = os.getloadavg()[0]
        rows = []
        runs = {"default": [], "single": [], "jax": [], "numba32": [], "jax32": []}
        for _ in range(args.load_rounds):   # in turn, so that a burst of other load hits every path
            runs["default"].append(run_child("numba", default_env, "default", pinned=False))
            runs["single"].append(run_child("numba", single_env, "1", pinned=False))
            runs["numba32"].append(run_child("numba32", default_env, "default", pinned=False))
            if use_jax:
                runs["jax"].append(run_child("jax", default_env, "default", pinned=False))
                runs["jax32"].append(run_child("jax32", default_env, "default", pinned=False))
        best = {k: min(v, key=lambda t: t["median"]) if v else None for k, v in runs.items()}
        default, single, jx = best["default"], best["single"], best["jax"]
        f32, jx32 = best["numba32"], best["jax32"]
        rows.append(["numba, default threads and environment", fmt(default), ratio(default, single), ratio(default, jx)])
        rows.append(["numba, every thread count 1", fmt(single), "1", ratio(single, jx)])
        rows.append(["JAX (jit, float64), default threads", fmt(jx), ratio(jx, single), "1" if jx else "-"])
        rows.append(["numba32 (float32), default threads", fmt(f32), ratio(f32, single), ratio(f32, jx32)])
        rows.append(["JAX (jit, float32), default threads", fmt(jx32), ratio(jx32, single), "1" if jx32 else "-"])
    finally:
        for pr in procs:
            pr.kill()
            pr.wait()
    print(f"\nUnder load: timing-task NM-RNN step (B=40, T=110) beside two busy loops "
          f"(load average {start:.2f} after 0.5 s of them, {os.getloadavg()[0]:.2f} at the end; "
          f"best of {args.load_rounds} child processes per row by median)")
    print_table(["path", "step ms", "/ single-threaded", "/ JAX of its precision"], rows)


def reference_table() -> None:
    model = nm.NMRNN(N=100, K=3, M=5, U=3, O=1)
    params = model.init_params(0)
    data = mwg_data(40)
    fast = measure(step_fn(model, params, data), args.repeats)
    slow = measure(step_fn(model, params, data, "numpy"), args.slow_repeats, warmup=1)
    disabled = run_child("numpy", {"NMRNN_NP_DISABLE_NUMBA": "1"}, str(args.blas_threads))
    rows = [["numba", fmt(fast), "1"],
            ["numpy (autograd reference)", fmt(slow), ratio(slow, fast)],
            ["numba disabled (= numpy backend, child process)", fmt(disabled), ratio(disabled, fast)]]
    print("\nTiming-task NM-RNN on the reference path (B=40, T=110)")
    print_table(["path", "step ms", "/ numba"], rows)


def grid_table(use_jax) -> None:
    rows = []
    for N, B in [(N, B) for B in (40, 400) for N in (100, 400, 1600)]:
        m = nm.NMRNN(N=N, K=3, M=5, U=3, O=1)
        p = m.init_params(0)
        data = mwg_data(B)
        n = args.repeats if N * B <= 40_000 else max(5, args.repeats // 4)
        f = measure(step_fn(m, p, data), n)
        j = measure(jax_step(m, p, data), n) if use_jax else None
        rows.append([f"N={N}", B, fmt(f), fmt(j), ratio(f, j)])
    print("\nNM-RNN (K=3, M=5) by size, T=110")
    print_table(["N", "B", "numba step ms", "JAX step ms", "numba / JAX"], rows)


def main() -> None:
    use_jax = jax_peer.available() and not args.no_jax
    only = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = set(only) - set(TABLES)
    if unknown:
        raise SystemExit(f"--only: unknown tables {sorted(unknown)}; choose among {list(TABLES)}")
    print("\n".join(machine()))
    print(f"repeats {args.repeats} (NumPy/autograd path {args.slow_repeats}); optimiser ClipAdamW(1e-2); "
          f"pinned to core {PINNED}")
    if "single" in only:
        pinned_table("single", use_jax)
    if "load" in only:
        load_table(use_jax)
    if "multitask" in only:
        pinned_table("multitask", use_jax)
    if "reference" in only:
        reference_table()
    if "grid" in only:
        grid_table(use_jax)
    print("\n" + load_line())


if __name__ == "__main__":
    if args.child is not None:
        child(json.loads(args.child))
    else:
        main()
