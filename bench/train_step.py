"""Time of one training step (forward + gradient + clip/AdamW update) for every model.

Usage (from the repository root)::

    python bench/train_step.py            # the table of docs/performance.md
    python bench/train_step.py --quick    # smoke test

A step is ``loss, grads = model.loss_and_grad(params, inputs, targets, mask,
backend=...)`` (masked MSE) followed by ``nmrnn_np.optim.ClipAdamW(1e-2).update``
(element-wise clip at 1, then AdamW: the authors' optimiser). Data: the
Measure-Wait-Go training batch (40 conditions, T=110), tiled for B=400.

Backends: ``numba`` (forward kernel as an autograd primitive whose VJP is the
BPTT kernel), ``numpy`` (plain autograd through the Python loop: the
reference), and numba disabled (``NMRNN_NP_DISABLE_NUMBA=1`` in a child
process: in this design that *is* the numpy backend, timed separately to show
it). JAX (bench/jax_peer.py, when jax is installed): the same NM-RNN equations
and optimiser, one jitted step in float64, QR of L included. Times are median
(min, max) in ms after warm-up calls (compilation excluded).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from _common import fmt, load_line, machine, measure, mwg_data, parse_args, print_table, ratio


def _extra(parser):
    # internal: the child process that times the package with numba disabled
    parser.add_argument("--child-disabled", action="store_true", help=argparse.SUPPRESS)


args = parse_args(__doc__.splitlines()[0], _extra)

import numpy as np  # noqa: E402  (after the BLAS thread count is set)

import jax_peer  # noqa: E402
import nmrnn_np as nm  # noqa: E402
from nmrnn_np.optim import ClipAdamW  # noqa: E402

TIMING = dict(N=100, K=3, M=5)


def nmrnn(N=100, K=3, M=5):
    return nm.NMRNN(N=N, K=K, M=M, U=3, O=1)


def step_fn(model, params, data, backend):
    """One training step; the parameters are not advanced, so every call does the same work."""
    inputs, targets, mask = data
    opt = ClipAdamW(1e-2)
    state = opt.init(params)

    def step():
        _, grads = model.loss_and_grad(params, inputs, targets, mask, backend=backend)
        return opt.update(grads, state, params)

    return step


def jax_step(model, params, data):
    _, train_step = jax_peer.build(model.alpha_x, model.alpha_z)
    inputs, targets, mask = data
    init = model.initial_states(inputs.shape[0])
    pj = jax_peer.to_device(params)
    batch = jax_peer.to_device((init["x0"], init["z0"], inputs, targets, mask))
    state = jax_peer.init_state(pj)
    import jax
    _, _, loss = train_step(pj, state, batch)
    ours = model.loss(params, inputs, targets, mask, backend="numba")
    if abs(float(loss) - ours) > 1e-9 * max(1.0, abs(ours)):
        raise RuntimeError(f"JAX peer loss {float(loss)} differs from the model's {ours}")
    return lambda: jax.block_until_ready(train_step(pj, state, batch))


def child_disabled() -> None:
    """Run in a child process with NMRNN_NP_DISABLE_NUMBA=1: time the default backend."""
    assert nm.default_backend() == "numpy", "numba was not disabled"
    model = nmrnn(**TIMING)
    t = measure(step_fn(model, model.init_params(0), mwg_data(40), backend=None), args.slow_repeats, warmup=1)
    print(json.dumps(t))


def disabled_row_timing() -> dict:
    env = dict(os.environ, NMRNN_NP_DISABLE_NUMBA="1")
    cmd = [sys.executable, __file__, "--child-disabled", "--slow-repeats", str(args.slow_repeats),
           "--blas-threads", str(args.blas_threads)]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    use_jax = jax_peer.available() and not args.no_jax
    print("\n".join(machine()))
    print(f"repeats {args.repeats} (NumPy/autograd path {args.slow_repeats}); optimiser ClipAdamW(1e-2) "
          "from nmrnn_np.optim\n")
    data40 = mwg_data(40)

    # 1. the timing-task NM-RNN on every path
    model = nmrnn(**TIMING)
    params = model.init_params(0)
    fast = measure(step_fn(model, params, data40, "numba"), args.repeats)
    slow = measure(step_fn(model, params, data40, "numpy"), args.slow_repeats, warmup=1)
    disabled = disabled_row_timing()
    jx = measure(jax_step(model, params, data40), args.repeats) if use_jax else None
    rows = [["NM-RNN N=100 K=3 M=5 (timing task)", "numba", fmt(fast), ratio(fast, jx), "1"],
            ["", "numpy (autograd reference)", fmt(slow), ratio(slow, jx), ratio(slow, fast)],
            ["", "numba disabled (= numpy backend)", fmt(disabled), ratio(disabled, jx), ratio(disabled, fast)],
            ["", "JAX (jit, float64)", fmt(jx), "1" if jx else "-", ratio(jx, fast)]]
    print("Timing-task NM-RNN, B=40, T=110")
    print_table(["model", "path", "step ms", "/ JAX", "/ numba"], rows)

    # 2. the parameter-matched baselines on the same data
    rows = []
    baselines = [("LR-RNN N=106 K=3", nm.LowRankRNN(N=106, K=3, U=3, O=1)),
                 ("vanilla RNN N=31", nm.VanillaRNN(N=31, U=3, O=1)),
                 ("LSTM N=15", nm.LSTM(N=15, U=3, O=1))]
    for label, m in baselines:
        p = m.init_params(0)
        f = measure(step_fn(m, p, data40, "numba"), args.repeats)
        s = measure(step_fn(m, p, data40, "numpy"), args.slow_repeats, warmup=1)
        rows.append([label, fmt(f), fmt(s), ratio(s, f)])
    print("\nBaselines, B=40, T=110")
    print_table(["model", "numba step ms", "numpy step ms", "numpy / numba"], rows)

    # 3. the NM-RNN at larger sizes and batches (fast path and JAX)
    rows = []
    grid = [(100, 40)] if args.quick else [(N, B) for B in (40, 400) for N in (100, 400, 1600)]
    for N, B in grid:
        m = nmrnn(N=N)
        p = m.init_params(0)
        data = mwg_data(B)
        f = measure(step_fn(m, p, data, "numba"), args.repeats if N * B <= 40_000 else max(5, args.repeats // 4))
        j = (measure(jax_step(m, p, data), args.repeats if N * B <= 40_000 else max(5, args.repeats // 4))
             if use_jax else None)
        rows.append([f"N={N}", B, fmt(f), fmt(j), ratio(f, j)])
    print("\nNM-RNN (K=3, M=5) by size, T=110")
    print_table(["N", "B", "numba step ms", "JAX step ms", "numba / JAX"], rows)
    print("\n" + load_line())


if __name__ == "__main__":
    child_disabled() if args.child_disabled else main()
