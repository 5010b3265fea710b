"""Forward-pass time of the NM-RNN: numba fast path, NumPy reference path, and JAX.

Usage (from the repository root)::

    python bench/simulate.py              # the table of docs/performance.md
    python bench/simulate.py --quick      # smoke test

Rows: the timing-task NM-RNN (N=100, K=3, M=5, U=3, O=1) and the same model
at N = 400 and 1600, each on the Measure-Wait-Go batch (B=40 trials, T=110
steps). A call is ``model.simulate(params, inputs, backend=...)`` (checks, QR
of L, the time loop, returning y, x, z, s). The JAX peer (bench/jax_peer.py,
when jax is installed) is the same equations under ``jit``/``vmap``/
``lax.scan`` in float64, returning y, x, z as the authors' ``batched_nm_rnn``. Times are median (min, max) in ms
over the repeats, after warm-up calls (numba and XLA compilation excluded).
"""
from __future__ import annotations

from _common import fmt, load_line, machine, measure, mwg_data, parse_args, print_table, ratio

args = parse_args(__doc__.splitlines()[0])

import numpy as np  # noqa: E402  (after the BLAS thread count is set)

import jax_peer  # noqa: E402
import nmrnn_np as nm  # noqa: E402


def main() -> None:
    use_jax = jax_peer.available() and not args.no_jax
    sizes = (100,) if args.quick else (100, 400, 1600)
    inputs, _, _ = mwg_data(40)
    B, T, U = inputs.shape
    print("\n".join(machine()))
    print(f"batch B={B}, T={T}; NM-RNN K=3, M=5, U={U}, O=1; repeats {args.repeats} (NumPy path {args.slow_repeats})\n")
    rows = []
    for N in sizes:
        model = nm.NMRNN(N=N, K=3, M=5, U=U, O=1)
        params = model.init_params(0)
        fast = measure(lambda: model.simulate(params, inputs, backend="numba"), args.repeats)
        slow = measure(lambda: model.simulate(params, inputs, backend="numpy"), args.slow_repeats, warmup=1)
        jx = None
        if use_jax:
            forward, _ = jax_peer.build(model.alpha_x, model.alpha_z)
            init = model.initial_states(B)
            pj = jax_peer.to_device(params)
            x0, z0, uj = jax_peer.to_device((init["x0"], init["z0"], inputs))
            ours = model.simulate(params, inputs, backend="numba")
            for name, value in zip("yxz", forward(pj, x0, z0, uj)):
                err = np.max(np.abs(np.asarray(value) - getattr(ours, name)))
                if err > 1e-9:
                    raise RuntimeError(f"JAX peer disagrees with the model at N={N}: max |d{name}| = {err:.3g}")
            jx = measure(lambda: jax_peer.block(forward(pj, x0, z0, uj)), args.repeats)
        label = f"N={N}" + (" (timing task)" if N == 100 else "")
        rows.append([label, fmt(fast), fmt(slow), fmt(jx), ratio(fast, jx), ratio(slow, fast)])
    print_table(["NM-RNN forward, B=40, T=110", "numba ms", "numpy ms", "JAX ms", "numba / JAX",
                 "numpy / numba"], rows)
    print("\n" + load_line())


if __name__ == "__main__":
    main()
