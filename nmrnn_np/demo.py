"""``nmrnn-np demo``: what an NM-RNN computes, in seconds and without training.

Simulates a randomly initialised NM-RNN (the timing experiment's sizes) on a
few Measure-Wait-Go trials and draws, for each trial, the input pulses with
the target, the output y(t), the neuromodulatory signal s(t), the NM state
z(t) and the output-network state projected on the left factors,
kappa(t) = L^T x(t). Untrained, y does not follow the target; the figure
shows the moving parts that training shapes.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure

__all__ = ["run_demo", "demo_figure", "add_parser"]


def run_demo(intervals: Sequence[int] = (8, 14, 20), t_measure: int = 15, seed: int = 0,
             backend: str | None = None) -> dict:
    """Simulate an untrained NM-RNN (N=100, M=5, K=3, tau_x=10, tau_z=100) on timing trials.

    Parameters
    ----------
    intervals : sequence of int
        One trial per interval, measure pulse at ``t_measure``.
    t_measure : int
    seed : int
        Seed of the random initial parameters.
    backend : {"numba", "numpy", "numba32"}, optional

    Returns
    -------
    dict
        ``model``, ``params``, ``inputs``, ``targets``, ``info``
        (:class:`nmrnn_np.tasks.MWGInfo`), ``trajectory``
        (:class:`nmrnn_np.models.Trajectory`) and ``kappa`` (B, T, K).
    """
    from .experiments.analysis import latent_projection
    from .models import NMRNN
    from .tasks import MeasureWaitGo

    intervals = np.asarray(list(intervals), dtype=np.int64)
    task = MeasureWaitGo(intervals=tuple(int(i) for i in intervals))
    inputs, targets, _, info = task.trials(intervals, np.full(intervals.shape, int(t_measure)), return_info=True)
    model = NMRNN(N=100, K=3, M=5, U=3, O=1, tau_x=10.0, tau_z=100.0)
    params = model.init_params(seed)
    traj = model.simulate(params, inputs, backend=backend)
    return {"model": model, "params": params, "inputs": inputs, "targets": targets, "info": info,
            "trajectory": traj, "kappa": latent_projection(model, params, traj.x)}


def demo_figure(result: dict) -> Figure:
    """Figure of :func:`run_demo`: a column per trial; rows input/target, y, s, z, kappa."""
    inputs, targets, info = result["inputs"], result["targets"], result["info"]
    traj, kappa = result["trajectory"], result["kappa"]
    B, T, _ = inputs.shape
    t = np.arange(T)
    fig = Figure(figsize=(3.4 * B + 0.6, 9.0), layout="constrained")
    axes = fig.subplots(5, B, sharex=True, squeeze=False)
    pulse_colors = ("#4d4d4d", "#d6604d", "#1b7837")
    for b in range(B):
        ax = axes[0, b]
        for c, name in enumerate(("measure", "wait", "go")):
            ax.plot(t, inputs[b, :, c] / max(inputs.max(), 1e-12), color=pulse_colors[c], lw=1.2, label=name)
        ax.plot(t, targets[b, :, 0], "k--", lw=1.2, label="target")
        ax.set_title(f"interval {int(info.interval[b])}")
        axes[1, b].plot(t, traj.y[b, :, 0], color="C0", lw=1.5)
        axes[1, b].plot(t, targets[b, :, 0], "k--", lw=1.0)
        for k in range(traj.s.shape[2]):
            axes[2, b].plot(t, traj.s[b, :, k], lw=1.3, label=f"s{k + 1}")
        axes[2, b].set_ylim(0, 1)
        axes[3, b].plot(t, traj.z[b], lw=1.0)
        for k in range(kappa.shape[2]):
            axes[4, b].plot(t, kappa[b, :, k], lw=1.3, label=f"kappa{k + 1}")
        for ax in axes[:, b]:
            for ev in (info.t_measure[b], info.t_wait[b], info.t_go[b]):
                ax.axvline(ev, color="0.6", lw=0.6, ls=":")
        axes[-1, b].set_xlabel("time step")
    for r, label in enumerate(("pulses (scaled)\nand target", "output y", "signal s", "NM state z",
                               "kappa = L^T x")):
        axes[r, 0].set_ylabel(label)
    for r in (0, 2, 4):  # outside the axes, clear of the traces
        axes[r, -1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle("Untrained NM-RNN (N=100, M=5, K=3) on Measure-Wait-Go trials")
    return fig


def _main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        parser.error(f"--out must name a .png file, got {args.out!r}")
    if out.parent and not out.parent.exists():
        parser.error(f"--out: folder {str(out.parent)!r} does not exist")
    if any(i < 1 for i in args.intervals):
        parser.error(f"--intervals must be positive integers, got {args.intervals}")
    try:
        result = run_demo(args.intervals, args.t_measure, args.seed,
                          backend=None if args.backend == "auto" else args.backend)
    except ValueError as exc:
        parser.error(str(exc))
    fig = demo_figure(result)
    fig.savefig(out, dpi=110)
    print(f"NM-RNN with {result['model'].n_params()} parameters simulated on intervals "
          f"{list(args.intervals)}; figure: {out}")
    return 0


def add_parser(subparsers) -> None:
    """Register the ``demo`` subcommand."""
    from .cli import HelpFormatter
    p = subparsers.add_parser(
        "demo", help="simulate an untrained NM-RNN on timing trials and save a figure (seconds)",
        description=__doc__.split("\n\n", 1)[1], formatter_class=HelpFormatter)
    p.add_argument("--out", default="nmrnn_demo.png", metavar="FILE.png", help="figure to write")
    p.add_argument("--seed", type=int, default=0, help="seed of the random parameters")
    p.add_argument("--intervals", type=int, nargs="+", default=[8, 14, 20], metavar="I",
                   help="one trial per interval (steps)")
    p.add_argument("--t-measure", type=int, default=15, help="step of the measure pulse")
    p.add_argument("--backend", choices=("auto", "numba", "numpy", "numba32"), default="auto",
                   help="simulation backend (numba32: the numba kernels in float32)")
    p.set_defaults(func=lambda args: _main(args, p))
