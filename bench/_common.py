"""Shared helpers of the benchmark scripts: BLAS threads, timing, data, the machine, tables.

Import this module before numpy (it sets the BLAS thread count from the
command line first).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

# The benchmark scripts run from a checkout without installation.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def parse_args(description: str, extra=None, repeats: bool = True) -> argparse.Namespace:
    """Common options; sets the BLAS thread count before numpy is imported.

    ``repeats=False`` leaves out ``--repeats``, ``--slow-repeats`` and ``--no-jax`` (for the scripts
    that time interleaved pairs and have no JAX rows).
    """
    parser = argparse.ArgumentParser(description=description)
    if repeats:
        parser.add_argument("--repeats", type=int, default=30,
                            help="timed calls per row for the fast paths (default 30)")
        parser.add_argument("--slow-repeats", type=int, default=5,
                            help="timed calls per row for the NumPy/autograd path (default 5)")
        parser.add_argument("--no-jax", action="store_true", help="skip the JAX rows even if jax is installed")
    parser.add_argument("--quick", action="store_true", help="few repeats and the small sizes only (smoke test)")
    parser.add_argument("--blas-threads", default="1",
                        help="OPENBLAS/OMP/MKL thread count ('default' leaves the environment alone); "
                             "default 1, see docs/performance.md")
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    if args.blas_threads != "default":
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.blas_threads)
    if args.quick and repeats:
        args.repeats, args.slow_repeats = min(args.repeats, 5), min(args.slow_repeats, 2)
    return args


def pin_one_core() -> None:
    """Pin this process to its lowest allowed core, as experiment workers train single-threaded.

    Call it before numpy, numba or jax start threads (threads inherit the mask). No-op where the
    OS has no ``sched_setaffinity``.
    """
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def interleaved_pairs(a, b, pairs: int, warmup: int = 3):
    """Wall-clock seconds of ``a()`` and ``b()``, called back to back ``pairs`` times in alternating order.

    Returns two arrays of shape (pairs,). Both calls of a pair see the same state of a noisy machine,
    so the ratio of their medians holds where the time of either alone drifts (``bench/ab_kernels.py``).
    """
    import numpy as np
    for _ in range(warmup):
        a()
        b()
    t_a, t_b = np.empty(pairs), np.empty(pairs)
    clock = time.perf_counter
    for i in range(pairs):
        first, second = (a, b) if i % 2 else (b, a)
        t0 = clock()
        first()
        t1 = clock()
        second()
        t2 = clock()
        t_a[i], t_b[i] = (t1 - t0, t2 - t1) if i % 2 else (t2 - t1, t1 - t0)
    return t_a, t_b


def measure(fn, repeats: int, warmup: int = 2) -> dict:
    """Wall-clock seconds of ``fn()``: median, min, max over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return dict(median=statistics.median(times), min=min(times), max=max(times), n=repeats)


def fmt(t: dict | None) -> str:
    """``median (min, max)`` in ms."""
    if t is None:
        return "-"
    return f"{1e3 * t['median']:.3f} ({1e3 * t['min']:.3f}, {1e3 * t['max']:.3f})"


def ratio(a: dict | None, b: dict | None) -> str:
    """median(a) / median(b)."""
    if a is None or b is None:
        return "-"
    return f"{a['median'] / b['median']:.3g}"


def mwg_data(batch: int):
    """Measure-Wait-Go training data (all 40 conditions), tiled to ``batch`` trials: inputs, targets, mask."""
    import numpy as np
    from nmrnn_np.tasks import MeasureWaitGo
    inputs, targets, mask = MeasureWaitGo().all_trials()
    reps = -(-batch // inputs.shape[0])
    tile = lambda a: np.ascontiguousarray(np.tile(a, (reps, 1, 1))[:batch], dtype=np.float64)  # noqa: E731
    return tile(inputs), tile(targets), tile(mask)


def multitask_data(batch: int = 100):
    """One batch of the multitask experiment's trials (T = 100, U = 7, O = 3): inputs, targets, mask."""
    import numpy as np
    from nmrnn_np.tasks import Multitask
    b = Multitask(T=100).sample(0, batch)
    return tuple(np.ascontiguousarray(a, dtype=np.float64) for a in (b.inputs, b.targets, b.mask))


def step_fn(model, params, data, backend="numba", api=True):
    """One training step; the parameters are not advanced, so every call does the same work.

    ``api=True``: the public calls, ``model.loss_and_grad`` and ``optimizer.update``, which check
    every argument at every call. ``api=False``: the step of the training loop
    (:func:`nmrnn_np.training.train`), which checks parameters and data once and then calls the
    same computation without the checks at every step (``_checked_loss_and_grad``, ``_apply``).
    """
    from nmrnn_np.optim import ClipAdamW
    inputs, targets, mask = data
    opt = ClipAdamW(1e-2)
    state = opt.init(params)
    if api:
        def step():
            _, grads = model.loss_and_grad(params, inputs, targets, mask, backend=backend)
            return opt.update(grads, state, params)
        return step
    checked = model.check_params(params)
    setup = model._loss_setup(inputs, targets, mask, "masked_mse", backend, {})

    def loop_step():
        _, grads = model._checked_loss_and_grad(checked, *setup)
        return opt._apply(grads, state, checked)

    return loop_step


def machine() -> list[str]:
    """Lines describing the machine, the library versions and the current load."""
    import numpy as np
    lines = []
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines.append(f"machine: {cpu}, {os.cpu_count()} logical cores, Python {platform.python_version()}")
    versions = [f"numpy {np.__version__}"]
    from importlib import metadata
    for name in ("numba", "autograd", "scipy", "jax"):
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    lines.append("versions: " + ", ".join(versions))
    lines.append("BLAS threads: " + os.environ.get("OPENBLAS_NUM_THREADS", "library default"))
    lines.append("load average (1, 5, 15 min) at start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    return lines


def load_line() -> str:
    return "load average (1, 5, 15 min) at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """A Markdown table."""
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
