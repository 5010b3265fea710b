"""Cost of the modulation option: one forward + gradient per modulation type, on the numba backend.

Usage (from the repository root)::

    python bench/modulation.py            # both sizes, 30 repeats
    python bench/modulation.py --quick    # smoke test

``modulation="synaptic"`` runs the low-rank kernels (``nmrnn_np/_kernels/lowrank.py``),
``"excitability"`` and ``"both"`` the kernels of ``nmrnn_np/_kernels/modulation.py``.
Sizes: the multitask NM-RNN (N=100, K=4, M=5, 7 inputs of which 3 reach x,
B=100, T=100, masked MSE) and the element-finder one (N=18, K=8, M=5, feedback,
1/N, no QR, no readout bias, B=128, T=26, last-step MSE). One row per type:
median (min, max) ms of ``model.loss_and_grad`` after warm-up (compilation
excluded), and the ratio to synaptic measured in the same run.
"""
from __future__ import annotations

from _common import fmt, load_line, machine, measure, parse_args, print_table, ratio

args = parse_args(__doc__.splitlines()[0])

import numpy as np  # noqa: E402  (after the BLAS thread count is set)

import nmrnn_np as nm  # noqa: E402

SIZES = {
    "multitask": (dict(N=100, K=4, M=5, U=7, O=3, U_x=3), 100, 100, "masked_mse"),
    "element finder": (dict(N=18, K=8, M=5, U=1, O=1, tau_x=2.0, tau_z=10.0, feedback=True, divide_by_N=True,
                            orthonormalize=False, readout_bias=False), 128, 26, "last_step_mse"),
}


def main():
    for line in machine():
        print(line)
    rows = []
    for name, (cfg, B, T, loss) in SIZES.items():
        rng = np.random.default_rng(0)
        inputs = rng.normal(size=(B, T, cfg["U"]))
        targets = rng.normal(size=(B, T, cfg["O"]))
        times = {}
        for modulation in ("synaptic", "excitability", "both"):
            model = nm.NMRNN(modulation=modulation, **cfg)
            params = model.init_params(0)
            times[modulation] = measure(lambda: model.loss_and_grad(params, inputs, targets, loss=loss,
                                                                    backend="numba"), args.repeats)
        for modulation, t in times.items():
            rows.append([name, modulation, fmt(t), ratio(t, times["synaptic"])])
    print_table(["size", "modulation", "loss_and_grad ms: median (min, max)", "/ synaptic"], rows)
    print(load_line())


main()
