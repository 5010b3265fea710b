"""A/B of the low-rank kernels: a git revision's ``nmrnn_np/_kernels/lowrank.py`` against the working tree's, call by call.

Usage (from the repository root, in a git checkout)::

    python bench/ab_kernels.py                  # HEAD against the working tree (an uncommitted edit)
    python bench/ab_kernels.py --ref 94a5dfd    # an older revision against the working tree
    python bench/ab_kernels.py --quick          # smoke test (50 pairs: its ratios move by ~10%, not a measurement)

What it measures: ``lowrank_forward`` and ``lowrank_backward`` (the NM-RNN's
two kernels, shared with the LR-RNN) at the timing-task size (N = 100, K = 3,
M = 5, B = 40, T = 110) and the multitask size (N = 100, K = 4, M = 5,
B = 100, T = 100), float64 and float32, on one core. The reference module is
the file at ``--ref`` written to a temporary folder (its relative imports
pointed at the installed ``nmrnn_np``, so ``scalar.py`` and every other module
come from the working tree); both modules receive the same arrays, built by
the working tree's model code, so the two revisions must share the kernels'
signatures.

Why pairs: on a shared virtual machine the time of a call drifts by 10-30%
between rounds of a benchmark (2026-12-04), more than a lever of a few percent
can show. Here every iteration calls both kernels back to back, in
alternating order, so both see the same drift; ``new / ref`` is the ratio of
the two medians over all pairs, and the fifths column the same ratio over each
fifth of the pairs, in order (their spread is the noise left). Every row also
has an **A/A** ratio: the reference against a second copy of itself, compiled
from another file. It is not exactly 1: where LLVM places the same code moves
a kernel's time by a few percent (0.96-1.005 in the run of
``docs/performance.md``), so a change smaller than the A/A's distance from 1
is not shown by this measurement. The last column is the largest difference
between the two revisions' outputs (forward: y, z, s, phi, kappa; backward:
every gradient), relative to each array's largest magnitude.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from _common import (interleaved_pairs, load_line, machine, multitask_data, mwg_data, parse_args,
                     pin_one_core, print_table)

ROOT = Path(__file__).resolve().parents[1]
KERNEL_FILE = "nmrnn_np/_kernels/lowrank.py"
#: the reference file's relative imports and what they become in the temporary folder
IMPORTS = {"from .._backend import": "from nmrnn_np._backend import",
           "from .scalar import": "from nmrnn_np._kernels.scalar import"}


def _extra(parser):
    parser.add_argument("--ref", default="HEAD", help="git revision of the reference kernels (default HEAD)")
    parser.add_argument("--pairs", type=int, default=2000,
                        help="(reference, new) call pairs per row at the timing-task size; the multitask rows, "
                             "~4x slower per call, take a quarter (default 2000)")


args = parse_args(__doc__.splitlines()[0], _extra, repeats=False)
if args.quick:
    args.pairs = min(args.pairs, 50)
pin_one_core()

import importlib.util  # noqa: E402

import numpy as np  # noqa: E402

import nmrnn_np as nm  # noqa: E402
from nmrnn_np._kernels import empty_arrays, lowrank as new_module, zero_arrays  # noqa: E402


def reference_source(ref: str) -> str:
    """The kernel file at git revision ``ref``, with its relative imports made absolute."""
    try:
        text = subprocess.run(["git", "show", f"{ref}:{KERNEL_FILE}"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout
    except FileNotFoundError:
        sys.exit("ab_kernels.py needs git on the PATH and a git checkout of the repository")
    except subprocess.CalledProcessError as err:
        sys.exit(f"--ref {ref!r}: git cannot show {KERNEL_FILE} at that revision: {err.stderr.strip()}")
    for old, new in IMPORTS.items():
        if old not in text:
            sys.exit(f"--ref {ref!r}: {KERNEL_FILE} has no line {old!r}; this script rewrites only "
                     f"{sorted(IMPORTS)} and cannot load that revision")
        text = text.replace(old, new)
    return text


def load_module(name: str, folder: Path, text: str):
    path = folder / f"{name}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kernel_calls(model, data, dtype, module):
    """``(forward, backward)``: closures calling ``module``'s kernels on ``model``'s arrays; each returns its outputs."""
    params = model.prepare(model.init_params(0))
    inputs, targets, _ = data
    init = model.initial_states(inputs.shape[0])
    a = model._kernel_args(params, dtype)
    u, u_tub, x0, z0 = model._kernel_states(inputs, init, dtype)
    B, T, _ = u.shape
    N, K, M, S = model.N, model.K, a["W_z"].shape[0], a["A"].shape[0]
    shapes = dict(y=(B, T, model.O), x=(1, 1, N), z=(B, T, M), s=(B, T, S), phi=(T, B, N), kappa=(T, B, K),
                  gv=(T, B, K + a["BxT"].shape[0]))
    gy = np.ascontiguousarray(np.random.default_rng(1).normal(size=targets.shape), dtype=dtype)
    names = ("Lt", "Rt", "BxT", "C", "d", "W_z", "B_z", "A", "a", "W_zx", "b_zx")

    def forward():
        out = dict(zip(shapes, empty_arrays(*shapes.values(), dtype=dtype)))
        module.lowrank_forward(u, u_tub, x0, z0, a["Lt"], a["Rt"], a["BxT"], a["C"], a["d"], a["W_z"], a["B_z"],
                               a["A"], a["a"], a["W_zx"], a["b_zx"], a["alpha_x"], a["alpha_z"], a["scale"],
                               a["nm"], a["feedback"], a["linear"], True,
                               out["y"], out["x"], out["z"], out["s"], out["phi"], out["kappa"], out["gv"])
        del out["x"]
        return out

    stored = forward()   # the backward reads this revision's forward pass, run once here

    def backward():
        g = dict(zip(names, zero_arrays(*[a[name].shape for name in names], dtype=dtype)))
        module.lowrank_backward(u, u_tub, x0, z0, a["Lt"], a["Rt"], a["BxT"], a["C"], a["W_z"], a["A"],
                                a["W_zx"], a["alpha_x"], a["alpha_z"], a["scale"], a["nm"], a["feedback"],
                                a["linear"], stored["gv"], stored["z"], stored["s"], stored["phi"],
                                stored["kappa"], gy, *[g[name] for name in names])
        return g

    return forward, backward


def paired(ref, new, pairs: int) -> tuple[float, float, float, list[float]]:
    """Median ms of ``ref`` and ``new`` over ``pairs`` interleaved call pairs, their ratio, and the ratio over
    each fifth of the pairs."""
    t_ref, t_new = interleaved_pairs(ref, new, pairs)
    fifth = max(pairs // 5, 1)
    fifths = [float(np.median(t_new[i:i + fifth]) / np.median(t_ref[i:i + fifth])) for i in range(0, pairs, fifth)]
    return 1e3 * np.median(t_ref), 1e3 * np.median(t_new), float(np.median(t_new) / np.median(t_ref)), fifths[:5]


def max_rel_diff(a: dict, b: dict) -> float:
    """Largest |a - b| over the arrays of two output dicts, each relative to the array's largest |a|."""
    worst = 0.0
    for key, value in a.items():
        scale = float(np.max(np.abs(value))) if value.size else 0.0
        if scale > 0:
            worst = max(worst, float(np.max(np.abs(value - b[key]))) / scale)
    return worst


def main() -> None:
    ref_text = reference_source(args.ref)
    print("\n".join(machine()))
    print(f"reference: {KERNEL_FILE} at {args.ref}; new: the working tree's; one core; "
          f"{args.pairs} pairs per timing-task row\n")
    cases = [("timing NM-RNN N=100 K=3 M=5", nm.NMRNN(N=100, K=3, M=5, U=3, O=1), mwg_data(40), args.pairs)]
    if not args.quick:
        cases.append(("multitask NM-RNN N=100 K=4 M=5", nm.NMRNN(N=100, K=4, M=5, U=7, O=3), multitask_data(),
                      max(args.pairs // 4, 1)))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        ref_module = load_module("ab_reference_kernels", Path(folder), ref_text)
        ref_copy = load_module("ab_reference_kernels_copy", Path(folder), ref_text)
        for name, model, data, pairs in cases:
            for dtype in (np.float64, np.float32):
                ref_calls = kernel_calls(model, data, dtype, ref_module)
                new_calls = kernel_calls(model, data, dtype, new_module)
                copy_calls = kernel_calls(model, data, dtype, ref_copy)
                for i, kernel in enumerate(("forward", "backward")):
                    diff = max_rel_diff(ref_calls[i](), new_calls[i]())
                    ms_ref, ms_new, ratio, fifths = paired(ref_calls[i], new_calls[i], pairs)
                    _, _, aa, _ = paired(ref_calls[i], copy_calls[i], pairs)
                    rows.append([name, np.dtype(dtype).name, kernel, f"{ms_ref:.3f}", f"{ms_new:.3f}", f"{ratio:.3f}",
                                 " ".join(f"{f:.2f}" for f in fifths), f"{aa:.3f}", f"{diff:.1e}"])
                    print(f"  {name}, {np.dtype(dtype).name}, {kernel}: new / ref {ratio:.3f} (A/A {aa:.3f})",
                          file=sys.stderr)
    print_table(["case", "precision", "kernel", "ref ms", "new ms", "new / ref", "by fifths", "A/A",
                 "max rel. diff"], rows)
    print()
    print(load_line())


if __name__ == "__main__":
    main()
