"""Figures of the modulation experiment (:mod:`nmrnn_np.experiments.modulation`).

Each function returns a :class:`matplotlib.figure.Figure` built without
pyplot; the runner saves :func:`make_figures`'s figures as ``modulation_<name>.png``.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .modulation import parse_size

__all__ = ["plot_ambiguity", "plot_packing", "plot_dynamics", "make_figures"]

COLORS = {"synaptic": "#1b7837", "excitability": "#b2182b", "both": "#2166ac"}


def plot_ambiguity(runs: Sequence[Mapping[str, Any]], modulations: Sequence[str], criterion: float) -> Figure:
    """Fraction correct against lambda (mixed context) and sigma (noisy context), per modulation."""
    fig = Figure(figsize=(8.0, 3.2), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (key, grid, label) in zip(axes, (("mixed", "lambdas", "lambda (context mixed with the next task's)"),
                                             ("noisy", "sigmas", "sigma (noise on the context)"))):
        for m in modulations:
            rs = [r for r in runs if r["modulation"] == m and "ambiguity" in r]
            if not rs:
                continue
            x = np.asarray(rs[0]["ambiguity"][grid])
            ys = np.array([r["ambiguity"][key] for r in rs])
            for y in ys:
                ax.plot(x, y, color=COLORS.get(m), lw=0.7, alpha=0.45)
            ax.plot(x, np.median(ys, axis=0), color=COLORS.get(m), lw=2.2, label=m)
        ax.axhline(criterion, color="0.5", ls=":", lw=1)
        ax.set_xlabel(label)
        ax.set_ylim(-0.02, 1.02)
    axes[0].set_ylabel("fraction correct (mean over tasks)")
    axes[0].legend(fontsize=8)
    return fig


def plot_packing(by_size: Mapping[str, Mapping[str, int]], max_tasks: int) -> Figure:
    """Largest number of tasks packed, per size (N,K) and modulation."""
    sizes = sorted({k for d in by_size.values() for k in d}, key=lambda k: parse_size(k))
    fig = Figure(figsize=(1.0 * len(sizes) + 3.0, 3.2), layout="constrained")
    ax = fig.add_subplot()
    mods = list(by_size)
    width = 0.8 / max(len(mods), 1)
    for i, m in enumerate(mods):
        vals = [by_size[m].get(k, 0) for k in sizes]
        ax.bar(np.arange(len(sizes)) + (i - (len(mods) - 1) / 2) * width, vals, width, color=COLORS.get(m), label=m)
    ax.set_xticks(range(len(sizes)), [f"N={k.split(',')[0]}\nK={k.split(',')[1]}" for k in sizes])
    ax.set_yticks(range(0, max_tasks + 1))
    ax.set_ylabel("tasks packed")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_dynamics(runs: Sequence[Mapping[str, Any]], modulations: Sequence[str]) -> Figure:
    """Task separation at the reference size: distance, principal angle, participation ratio; a point per seed."""
    keys = (("distance", "RMS distance between\ntask-averaged x"), ("angle", "mean principal angle\nbetween tasks (deg)"),
            ("participation_ratio", "participation ratio of x"))
    fig = Figure(figsize=(8.5, 3.0), layout="constrained")
    axes = fig.subplots(1, 3)
    rng = np.random.default_rng(0)  # jitter only
    for ax, (key, label) in zip(axes, keys):
        for i, m in enumerate(modulations):
            vals = np.array([r["dynamics"][key] for r in runs if r["modulation"] == m and "dynamics" in r])
            if vals.size == 0:
                continue
            ax.scatter(i + rng.uniform(-0.06, 0.06, vals.size), vals, color=COLORS.get(m), s=18, zorder=3)
            ax.hlines(np.median(vals), i - 0.2, i + 0.2, color=COLORS.get(m), lw=2.5)
        ax.set_xticks(range(len(modulations)), modulations, fontsize=8)
        ax.set_title(label, fontsize=9)
    return fig


def make_figures(rc) -> dict[str, Figure]:
    """Every figure of a modulation experiment folder, by name."""
    ex = rc.settings["experiment"]
    mods = [m for m in ex["modulations"] if any(r["modulation"] == m for r in rc.runs)]
    figs = {"packing": plot_packing(rc.doc.get("packing_by_size", {}), max(ex["n_tasks"]))}
    if any("ambiguity" in r for r in rc.runs):
        figs["ambiguity"] = plot_ambiguity(rc.runs, mods, ex["criterion"])
        figs["dynamics"] = plot_dynamics(rc.runs, mods)
    return figs
