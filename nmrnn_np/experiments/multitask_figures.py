"""Figures of the multitask experiment (:mod:`nmrnn_np.experiments.multitask`).

Each function returns a :class:`matplotlib.figure.Figure` built without
pyplot (headless, no global state); :func:`make_figures` makes every figure
of an experiment folder and the runner saves them as ``multitask_<name>.png``.
"""
from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .multitask import (MODEL_LABELS, TASK_LABELS, held_out_inputs, held_out_list, pretrained_inputs, test_sets)

__all__ = ["plot_accuracy", "plot_retraining", "plot_trials", "plot_nm_signal", "plot_nm_state", "make_figures",
           "representative_run", "principal_components"]

CONDITIONS = (
    ("pretrained tasks,\nafter pretraining", "summary.pretrained_after_pretraining", "#4d4d4d"),
    ("held-out task,\nbefore retraining", "percent_correct.arctan2.held_out_before", "#d6604d"),
    ("held-out task,\nafter retraining", "percent_correct.arctan2.held_out_after", "#1b7837"),
    ("pretrained tasks,\nafter retraining", "summary.pretrained_after_retraining", "#4393c3"),
)
TASK_COLORS = {"delay_pro": "#1b9e77", "delay_anti": "#d95f02", "memory_pro": "#7570b3", "memory_anti": "#e7298a"}


def _get(r: Mapping[str, Any], dotted: str):
    v: Any = r
    for part in dotted.split("."):
        v = v[part]
    return v


def representative_run(runs: Sequence[Mapping[str, Any]], model: str, held_out: str) -> Mapping[str, Any]:
    """The run of ``model`` whose held-out accuracy after retraining is the median of its seeds (lower middle)."""
    rs = [r for r in runs if r["model"] == model and r["held_out"] == held_out]
    if not rs:
        raise ValueError(f"no runs of model {model!r} with held-out task {held_out!r}")
    rs = sorted(rs, key=lambda r: (_get(r, "percent_correct.arctan2.held_out_after"), r["seed"]))
    return rs[(len(rs) - 1) // 2]


def plot_accuracy(runs: Sequence[Mapping[str, Any]], models: Sequence[str], held_out: Sequence[str]) -> Figure:
    """Fraction correct per model: pretrained tasks and held-out task, before and after retraining.

    One panel per held-out task; a point per seed, a bar at the median.
    """
    fig = Figure(figsize=(1.7 * len(models) + 2.5, 3.6 * len(held_out)), layout="constrained")
    axes = fig.subplots(len(held_out), 1, squeeze=False)[:, 0]
    rng = np.random.default_rng(0)  # jitter only
    offsets = np.linspace(-0.3, 0.3, len(CONDITIONS))
    for ax, held in zip(axes, held_out):
        for i, m in enumerate(models):
            rs = [r for r in runs if r["model"] == m and r["held_out"] == held]
            for (label, key, color), off in zip(CONDITIONS, offsets):
                vals = np.array([_get(r, key) for r in rs], dtype=float)
                if vals.size == 0:
                    continue
                ax.scatter(i + off + rng.uniform(-0.03, 0.03, vals.size), vals, s=16, color=color, alpha=0.85,
                           zorder=3, label=label if i == 0 else None)
                ax.hlines(np.median(vals), i + off - 0.07, i + off + 0.07, color=color, lw=2.5)
        ax.set_xticks(range(len(models)), [MODEL_LABELS[m].replace(" (", "\n(") for m in models], fontsize=8)
        ax.set_ylim(-0.03, 1.03)
        ax.set_ylabel("fraction correct")
        ax.set_title(f"held-out task: {TASK_LABELS[held]}")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig


def plot_retraining(curves: Mapping[str, Sequence[tuple[int, np.ndarray]]], models: Sequence[str]) -> Figure:
    """Loss against step during retraining, a line per seed, one panel per model (``curves[model] = [(seed, losses)]``)."""
    fig = Figure(figsize=(2.6 * len(models), 2.6), layout="constrained")
    axes = fig.subplots(1, len(models), sharey=True, squeeze=False)[0]
    for ax, m in zip(axes, models):
        for seed, c in curves.get(m, []):
            if len(c):
                ax.plot(np.arange(1, len(c) + 1), c, lw=0.8, alpha=0.8, label=f"seed {seed}")
        if curves.get(m):
            ax.legend(fontsize=6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(MODEL_LABELS[m], fontsize=9)
        ax.set_xlabel("retraining step")
    axes[0].set_ylabel("minibatch loss (MSE)")
    return fig


def plot_trials(examples: Mapping[str, tuple[np.ndarray, np.ndarray, int]], title: str) -> Figure:
    """One test trial per task: outputs (solid) against targets (dashed); ``examples[task] = (y, target, fix_off)``."""
    fig = Figure(figsize=(3.0 * len(examples), 2.8), layout="constrained")
    axes = fig.subplots(1, len(examples), sharey=True, squeeze=False)[0]
    names = ("fixation", "sin", "cos")
    colors = ("0.15", "#2166ac", "#b2182b")
    for ax, (task, (y, target, fix_off)) in zip(axes, examples.items()):
        for c in range(3):
            ax.plot(y[:, c], color=colors[c], lw=1.4, label=names[c])
            ax.plot(target[:, c], color=colors[c], lw=1.0, ls="--")
        ax.axvline(fix_off, color="0.6", lw=0.8)
        ax.set_title(TASK_LABELS.get(task, task), fontsize=9)
        ax.set_xlabel("step")
    axes[0].set_ylabel("output")
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return fig


def principal_components(trajectories: Mapping[str, np.ndarray], k: int = 2) -> dict[str, np.ndarray]:
    """Project (T, D) trajectories on the first ``k`` principal components of all of them together."""
    stacked = np.concatenate(list(trajectories.values()), axis=0)
    mean = stacked.mean(axis=0)
    _, _, vt = np.linalg.svd(stacked - mean, full_matrices=False)
    return {n: (v - mean) @ vt[:k].T for n, v in trajectories.items()}


def plot_nm_signal(s_avg: Mapping[str, np.ndarray], title: str) -> Figure:
    """Task-averaged s(t): one panel per component, a line per task."""
    K = next(iter(s_avg.values())).shape[1]
    fig = Figure(figsize=(2.6 * K, 2.6), layout="constrained")
    axes = fig.subplots(1, K, sharey=True, squeeze=False)[0]
    for k, ax in enumerate(axes):
        for task, s in s_avg.items():
            ax.plot(s[:, k], color=TASK_COLORS.get(task), lw=1.4, label=TASK_LABELS.get(task, task))
        ax.set_title(f"s{k + 1}(t)", fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylim(-0.02, 1.02)
    axes[0].set_ylabel("signal (task average)")
    axes[-1].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    return fig


def plot_nm_state(z_pc: Mapping[str, np.ndarray], title: str) -> Figure:
    """Task-averaged z(t) on its first two principal components, a line per task."""
    fig = Figure(figsize=(4.2, 3.8), layout="constrained")
    ax = fig.add_subplot()
    for task, z in z_pc.items():
        c = TASK_COLORS.get(task)
        ax.plot(z[:, 0], z[:, 1], color=c, lw=1.4, label=TASK_LABELS.get(task, task))
        ax.plot(z[0, 0], z[0, 1], "o", color=c, ms=5)
        ax.plot(z[-1, 0], z[-1, 1], "s", color=c, ms=5)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    return fig


def make_figures(rc) -> dict[str, Figure]:
    """Every figure of a multitask experiment folder, by name (saved as ``multitask_<name>.png``).

    The per-trial figures show the NM-RNN (NM-only retraining) run with the
    median held-out accuracy, for the first held-out task of the grid.
    """
    s, runs = rc.settings, rc.runs
    held = [h for h in held_out_list(s) if any(r["held_out"] == h for r in runs)]
    models = [m for m in s["experiment"]["models"] if any(r["model"] == m for r in runs)]
    figs: dict[str, Figure] = {"accuracy": plot_accuracy(runs, models, held)}
    curves: dict[str, list[tuple[int, np.ndarray]]] = {}
    for r in runs:
        if r["held_out"] != held[0]:
            continue
        path = rc.run_dir(r) / "stage_retrain.json"
        if path.exists():
            curves.setdefault(r["model"], []).append(
                (r["seed"], np.asarray(json.loads(path.read_text())["losses"], dtype=float)))
    figs["retraining"] = plot_retraining(curves, models)
    nm_model = "nmrnn" if "nmrnn" in models else ("nmrnn_input" if "nmrnn_input" in models else None)
    if nm_model is None:
        return figs
    run = representative_run(runs, nm_model, held[0])
    model, params, _ = rc.load(run, "retrained.npz")
    sets = test_sets(rc.settings_of(run), held[0])
    backend = None if s["experiment"]["backend"] == "auto" else s["experiment"]["backend"]
    batches = dict(sets["pretrained"])
    inputs = {t: pretrained_inputs(b, 1) for t, b in batches.items()}
    batches[held[0]] = sets["held_out"]
    inputs[held[0]] = held_out_inputs(sets["held_out"])
    trajs = {t: model.simulate(params, x, backend=backend) for t, x in inputs.items()}
    label = f"{MODEL_LABELS[nm_model]}, seed {run['seed']} (median), after retraining"
    figs["trials"] = plot_trials({t: (trajs[t].y[0], batches[t].targets[0], int(batches[t].fix_off[0]))
                                  for t in trajs}, label)
    figs["nm_signal"] = plot_nm_signal({t: tr.s.mean(axis=0) for t, tr in trajs.items()}, label)
    figs["nm_state"] = plot_nm_state(principal_components({t: tr.z.mean(axis=0) for t, tr in trajs.items()}),
                                     label)
    return figs
