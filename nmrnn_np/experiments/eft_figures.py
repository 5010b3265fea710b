"""Figures of the element-finder experiment (:mod:`nmrnn_np.experiments.eft`).

Every function returns a :class:`matplotlib.figure.Figure` built without
pyplot; :func:`make_figures` makes all of them for an experiment folder and the
runner saves them as ``eft_<name>.png``.
"""
from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .eft import MODEL_LABELS, make_task, test_set

__all__ = ["plot_test_mse", "plot_training", "plot_per_query", "plot_dynamics", "plot_ablation", "make_figures",
           "group_label", "fixed_query", "representative_run", "condition_averages", "pca_project"]

MODEL_COLORS = {"nmrnn": "#1b7837", "lstm": "#b35806", "lrrnn": "#762a83", "rnn": "#2166ac"}
def fixed_query(L: int) -> int:
    """The query held fixed when trials are averaged by target value: the middle index (12 of 25)."""
    return L // 2


def group_label(r: Mapping[str, Any]) -> str:
    return f"{MODEL_LABELS[r['model']]}\n{r['config']}"


def _groups(runs: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], list[Mapping[str, Any]]]:
    out: dict[tuple[str, str], list] = {}
    for r in runs:
        out.setdefault((r["model"], r["config"]), []).append(r)
    return out


def representative_run(runs: Sequence[Mapping[str, Any]], model: str, config: str) -> Mapping[str, Any]:
    """The run of a model and configuration with the median test MSE (lower middle)."""
    rs = sorted((r for r in runs if r["model"] == model and r["config"] == config),
                key=lambda r: (r["test_mse"], r["seed"]))
    if not rs:
        raise ValueError(f"no runs of {model} {config}")
    return rs[(len(rs) - 1) // 2]


def plot_test_mse(runs: Sequence[Mapping[str, Any]]) -> Figure:
    """Test MSE per model and configuration: a point per run, a bar at the median, log axis."""
    groups = _groups(runs)
    fig = Figure(figsize=(1.2 * len(groups) + 2.0, 3.6), layout="constrained")
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)  # jitter only
    for i, ((m, c), rs) in enumerate(groups.items()):
        v = np.array([r["test_mse"] for r in rs], dtype=float)
        ax.scatter(i + rng.uniform(-0.08, 0.08, v.size), v, s=18, color=MODEL_COLORS[m], zorder=3)
        ax.hlines(np.median(v), i - 0.2, i + 0.2, color=MODEL_COLORS[m], lw=2.5)
        ax.scatter([i], [np.median([r["min_train_loss"] for r in rs])], marker="x", color="0.4", zorder=4,
                   label="lowest training-minibatch loss (median)" if i == 0 else None)
    ax.set_xticks(range(len(groups)), [f"{MODEL_LABELS[m]}\n{c}" for m, c in groups], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("test MSE (last step)")
    ax.axhline(np.var(np.arange(-10, 11)), color="0.6", ls=":", lw=1, label="variance of the answer (chance)")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    return fig


def _smooth(x: np.ndarray, w: int = 50) -> np.ndarray:
    if len(x) < w:
        return x
    return np.convolve(x, np.ones(w) / w, mode="valid")


def plot_training(curves: Mapping[tuple[str, str], Sequence[np.ndarray]]) -> Figure:
    """Training-minibatch loss (50-step moving average), one panel per model and configuration."""
    n = len(curves)
    cols = min(n, 4)
    rows = int(np.ceil(n / cols))
    fig = Figure(figsize=(2.8 * cols, 2.4 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, sharey=True, squeeze=False)).ravel()
    for ax, ((m, c), cs) in zip(axes, curves.items()):
        for curve in cs:
            ax.plot(_smooth(curve), color=MODEL_COLORS[m], lw=0.8, alpha=0.8)
        ax.set_yscale("log")
        ax.set_title(f"{MODEL_LABELS[m]} {c}", fontsize=9)
        ax.set_xlabel("step")
    for ax in axes[n:]:
        ax.set_visible(False)
    axes[0].set_ylabel("training loss")
    return fig


def plot_per_query(runs: Sequence[Mapping[str, Any]]) -> Figure:
    """Median test MSE per query index, a line per model and configuration."""
    fig = Figure(figsize=(6.0, 3.4), layout="constrained")
    ax = fig.add_subplot()
    styles = ["-", "--", ":", "-."]
    seen: dict[str, int] = {}
    for (m, c), rs in _groups(runs).items():
        per = np.array([[np.nan if v is None else v for v in r["mse_per_query"]] for r in rs], dtype=float)
        k = seen.get(m, 0)
        seen[m] = k + 1
        ax.plot(np.nanmedian(per, axis=0), color=MODEL_COLORS[m], ls=styles[k % len(styles)], lw=1.4,
                label=f"{MODEL_LABELS[m]} {c}")
    ax.set_yscale("log")
    ax.set_xlabel("query index q")
    ax.set_ylabel("test MSE (median over runs)")
    ax.legend(fontsize=7, ncol=2)
    return fig


def condition_averages(values: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average (B, T, D) ``values`` over trials with the same label: (unique labels, (n_labels, T, D))."""
    keys = np.unique(labels)
    return keys, np.stack([values[labels == k].mean(axis=0) for k in keys])


def pca_project(avg: np.ndarray, k: int = 2) -> np.ndarray:
    """Project condition averages (C, T, D) on the first ``k`` principal components of all their points."""
    flat = avg.reshape(-1, avg.shape[-1])
    mean = flat.mean(axis=0)
    _, _, vt = np.linalg.svd(flat - mean, full_matrices=False)
    return (avg - mean) @ vt[:k].T


def plot_dynamics(traj, labels: np.ndarray, label_name: str, title: str) -> Figure:
    """s(t) (up to 4 components), z(t) and x(t) on their first two PCs, averaged per condition."""
    from matplotlib import colormaps

    keys, s_avg = condition_averages(traj.s, labels)
    _, z_avg = condition_averages(traj.z, labels)
    _, x_avg = condition_averages(traj.x, labels)
    cmap = colormaps["viridis"]
    colors = [cmap(i / max(len(keys) - 1, 1)) for i in range(len(keys))]
    n_s = min(s_avg.shape[-1], 4)
    fig = Figure(figsize=(2.6 * max(n_s, 3), 5.4), layout="constrained")
    grid = fig.add_gridspec(2, max(n_s, 3))
    for j in range(n_s):
        ax = fig.add_subplot(grid[0, j])
        for c, avg in zip(colors, s_avg):
            ax.plot(avg[:, j], color=c, lw=0.9)
        ax.set_title(f"s{j + 1}(t)", fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylim(-0.02, 1.02)
    for j, (avg, name) in enumerate(((z_avg, "z"), (x_avg, "x"))):
        ax = fig.add_subplot(grid[1, j])
        pcs = pca_project(avg)
        for c, p in zip(colors, pcs):
            ax.plot(p[:, 0], p[:, 1], color=c, lw=0.9)
            ax.plot(p[-1, 0], p[-1, 1], "o", color=c, ms=3)
        ax.set_title(f"{name}(t), first two PCs (dot: last step)", fontsize=9)
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    ax = fig.add_subplot(grid[1, 2])
    ax.scatter(keys, np.zeros_like(keys), c=colors, s=30)
    ax.set_yticks([])
    ax.set_xlabel(label_name)
    ax.set_title("colour code", fontsize=9)
    fig.suptitle(title, fontsize=9)
    return fig


def plot_ablation(runs: Sequence[Mapping[str, Any]]) -> Figure:
    """Test MSE with each component of s clamped to its trial mean, one panel per NM-RNN configuration."""
    groups = {k: rs for k, rs in _groups(runs).items() if k[0] == "nmrnn" and "ablation" in rs[0]}
    fig = Figure(figsize=(3.2 * max(len(groups), 1), 3.0), layout="constrained")
    axes = fig.subplots(1, max(len(groups), 1), sharey=True, squeeze=False)[0]
    for ax, ((m, c), rs) in zip(axes, groups.items()):
        for r in rs:
            v = r["ablation"]["clamped"]
            ax.plot(np.arange(1, len(v) + 1), v, "o-", color=MODEL_COLORS[m], alpha=0.6, ms=3, lw=0.8)
        ax.axhline(np.median([r["test_mse"] for r in rs]), color="0.3", ls="--", lw=1)
        ax.set_title(f"NM-RNN {c}", fontsize=9)
        ax.set_xlabel("component of s clamped")
        ax.set_yscale("log")
    axes[0].set_ylabel("test MSE")
    return fig


def make_figures(rc) -> dict[str, Figure]:
    """Every figure of an element-finder experiment folder (saved as ``eft_<name>.png``)."""
    runs = rc.runs
    figs: dict[str, Figure] = {"test_mse": plot_test_mse(runs)}
    curves: dict[tuple[str, str], list[np.ndarray]] = {}
    for r in runs:
        path = rc.run_dir(r) / "stage_train.json"
        if path.exists():
            curves.setdefault((r["model"], r["config"]), []).append(
                np.asarray(json.loads(path.read_text())["losses"], dtype=float))
    figs["training"] = plot_training(curves)
    figs["per_query"] = plot_per_query(runs)
    nm = [r for r in runs if r["model"] == "nmrnn"]
    if nm:
        first = nm[0]["config"]
        run = representative_run(runs, "nmrnn", first)
        model, params, states = rc.load(run)
        settings = rc.settings_of(run)
        backend = None if settings["experiment"]["backend"] == "auto" else settings["experiment"]["backend"]
        batch = test_set(settings)
        traj = model.simulate(params, batch.inputs, backend=backend, **states)
        label = f"NM-RNN {first}, seed {run['seed']} (median test MSE)"
        figs["dynamics_query"] = plot_dynamics(traj, batch.query, "query index q", label + ", by query index")
        task = make_task(settings)
        values = np.arange(task.low, task.high + 1)
        q = fixed_query(task.L)
        parts = [task.sample(np.random.default_rng([7, int(v) - task.low]), 40, query=q, value=int(v))
                 for v in values]
        inputs = np.concatenate([p.inputs for p in parts])
        answers = np.concatenate([p.answer for p in parts])
        traj_v = model.simulate(params, inputs, backend=backend, **states)
        figs["dynamics_value"] = plot_dynamics(traj_v, answers, "target value",
                                               label + f", query fixed at {q}, by target value")
        figs["ablation"] = plot_ablation(runs)
    return figs
