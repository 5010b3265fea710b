"""Where the time of one training step goes: the pieces of the training loop's step, timed one by one.

Usage (from the repository root)::

    python bench/step_parts.py              # timing task and multitask sizes, float64 and float32
    python bench/step_parts.py --quick      # smoke test
    python bench/step_parts.py --rounds 5   # more rounds on a busy machine

The step of :func:`nmrnn_np.training.train` on the numba backends is the chain
rule in explicit pieces (:meth:`~nmrnn_np.models.base.RecurrentModel._kernel_loss_and_grad`):
``prepare`` with its VJP recorded by autograd (the QR of L), the forward kernel,
the loss and its gradient with respect to y (autograd), the BPTT kernel, the
VJP of ``prepare``, then the clip + AdamW update. Each piece is called on its
own, repeatedly, on the same arguments; the last rows time the whole step and
what it spends beyond the two kernels (the whole step's median minus theirs:
the Python pieces above, the kernels' argument conversions, and the kernels
running slower after each other than alone, since the backward reads the
(T, B, N) array the forward has just written). The process is pinned
to one core, as experiment workers run. Times are median (min, max) in ms,
of the round with the lowest median (``--rounds``).

Run it on a quiet machine: beside two busy-loop processes (2026-12-04, 2
cores) the pieces' medians rose up to 2x (the whole step up to 2.3x) and the
last row, a difference of medians taken at different moments, meant nothing
(0.5-5 ms). The step under load is measured by ``bench/train_step.py --only load``.
"""
from __future__ import annotations

from _common import (fmt, load_line, machine, measure, multitask_data, mwg_data, parse_args, pin_one_core,
                     print_table, step_fn)


def _extra(parser):
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds over all pieces; each piece keeps its round with the lowest median (default 3)")


args = parse_args(__doc__.splitlines()[0], _extra)
if args.quick:
    args.rounds = 1
pin_one_core()   # before numpy and numba start threads

import numpy as np  # noqa: E402  (after the BLAS thread count is set)

import nmrnn_np as nm  # noqa: E402
from nmrnn_np.models.base import KERNEL_DTYPES, value_and_grad_of_dict, vjp_of_dict  # noqa: E402
from nmrnn_np.optim import ClipAdamW  # noqa: E402


def parts(model, data, backend: str, repeats: int) -> dict:
    """Median (min, max) times of each piece of the training loop's step."""
    params = model.init_params(0)
    checked = model.check_params(params)
    setup = model._loss_setup(*data, "masked_mse", backend, {})
    loss_fn, inputs, targets, mask, _, init = setup
    dtype = KERNEL_DTYPES[backend]
    opt = ClipAdamW(1e-2)
    state = opt.init(params)
    p, prepare_vjp = vjp_of_dict(model.prepare, checked)
    kp = {k: p[k] for k in model._kernel_keys}
    fwd = model._numba_forward(kp, inputs, init, dtype=dtype)
    y = np.asarray(fwd["y"], dtype=np.float64)
    loss = lambda d: loss_fn(d["y"], targets, mask)  # noqa: E731
    _, g = value_and_grad_of_dict(loss, {"y": y})
    g_y = np.ascontiguousarray(g["y"], dtype=np.float64)
    g_p = model._numba_backward(kp, inputs, init, fwd, g_y)
    _, grads = model._checked_loss_and_grad(checked, *setup)
    pieces = {
        "prepare (QR of L) + its VJP recorded": lambda: vjp_of_dict(model.prepare, checked),
        "forward kernel": lambda: model._numba_forward(kp, inputs, init, dtype=dtype),
        "loss and dL/dy (autograd)": lambda: value_and_grad_of_dict(loss, {"y": y}),
        "backward kernel (BPTT)": lambda: model._numba_backward(kp, inputs, init, fwd, g_y),
        "VJP of prepare": lambda: prepare_vjp(g_p),
        "clip + AdamW update": lambda: opt._apply(grads, state, checked),
        "whole step": step_fn(model, params, data, backend, api=False),
    }
    # rounds of every piece in turn; each piece keeps its round with the lowest median (a shared
    # machine slows whole rounds down, and a table of mixed rounds would not add up)
    out: dict = {}
    for _ in range(args.rounds):
        for piece, fn in pieces.items():
            t = measure(fn, repeats)
            if piece not in out or t["median"] < out[piece]["median"]:
                out[piece] = t
    return out


def outside(times: dict) -> str:
    """The whole step's median minus the two kernels' medians, in ms."""
    rest = times["whole step"]["median"] - times["forward kernel"]["median"] - times["backward kernel (BPTT)"]["median"]
    return f"{1e3 * rest:.3f}"


def main() -> None:
    print("\n".join(machine()))
    print("one core (sched_setaffinity)\n")
    # a piece of the timing task takes ~0.03-1 ms: more calls than --repeats' default unless --quick
    cases = [("timing NM-RNN N=100 K=3 M=5", nm.NMRNN(N=100, K=3, M=5, U=3, O=1), mwg_data(40),
              args.repeats if args.quick else max(args.repeats, 200))]
    if not args.quick:
        cases.append(("multitask NM-RNN N=100 K=4 M=5", nm.NMRNN(N=100, K=4, M=5, U=7, O=3), multitask_data(),
                      max(args.repeats, 40)))
    for name, model, data, repeats in cases:
        results = {backend: parts(model, data, backend, repeats) for backend in ("numba", "numba32")}
        print(f"### {name}, B={data[0].shape[0]}, T={data[0].shape[1]}, {repeats} calls per row\n")
        rows = [[piece, fmt(results["numba"][piece]), fmt(results["numba32"][piece])]
                for piece in results["numba"]]
        rows.append(["whole step - the two kernels (medians)", outside(results["numba"]), outside(results["numba32"])])
        print_table(["piece", "float64 (numba) ms", "float32 (numba32) ms"], rows)
        print()
    print(load_line())


if __name__ == "__main__":
    main()
