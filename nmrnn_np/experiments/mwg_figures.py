"""Figures of the Measure-Wait-Go experiment (:mod:`nmrnn_np.experiments.mwg`).

Each function takes already-computed numbers (or trained models to simulate)
and returns a :class:`matplotlib.figure.Figure` built without pyplot, so
saving works headless and leaves interactive matplotlib state alone.
:func:`make_figures` makes every figure of an experiment folder; the runner
saves them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from .analysis import ablate_components, align_to_events, latent_projection, simulate_nmrnn_frozen_signal
from .mwg import HOLD_SETTLE, MODEL_LABELS, _backend, interval_labels, make_tasks, extrapolation_task

__all__ = ["plot_errors", "plot_outputs", "plot_nm_signal", "plot_ablation", "plot_latents",
           "plot_training", "plot_hold", "hold_trials", "plot_procedures", "make_figures", "representative_seed"]

LABELS = MODEL_LABELS
MODEL_COLORS = {"nmrnn": "#1b7837", "lrrnn": "#762a83", "rnn": "#2166ac", "lstm": "#b35806"}
GROUP_COLORS = {"trained": "0.35", "shorter": "#d6604d", "longer": "#4393c3"}
#: window around the go cue in the aligned plots (steps before, after)
GO_WINDOW = (30, 60)


def _interval_colors(intervals: Sequence[int]):
    from matplotlib import colormaps
    cmap = colormaps["viridis"]
    iv = np.asarray(intervals, dtype=float)
    span = max(iv.max() - iv.min(), 1.0)
    return {int(i): cmap(0.05 + 0.85 * (i - iv.min()) / span) for i in intervals}


def representative_seed(runs: Sequence[Mapping[str, Any]], model: str) -> int:
    """The seed whose extrapolation error is the median of ``model``'s seeds (lower middle if even)."""
    rs = [r for r in runs if r["model"] == model]
    if not rs:
        raise ValueError(f"no runs of model {model!r}")
    key = lambda r: r["l2"]["extrapolated"] if r["l2"]["extrapolated"] is not None else r["l2"]["trained"]  # noqa: E731
    rs = sorted(rs, key=key)
    return rs[(len(rs) - 1) // 2]["seed"]


# ----------------------------------------------------------------------------
def plot_errors(runs: Sequence[Mapping[str, Any]], models: Sequence[str], interval_labels: Mapping[str, str]) -> Figure:
    """L2 error per model on trained, shorter and longer intervals; a point per seed, a bar at the median.

    The bar is the median, not the mean: on a log axis one diverged seed drags a
    mean above every other point.
    """
    fig = Figure(figsize=(7.0, 4.0), layout="constrained")
    ax = fig.add_subplot()
    groups = ("trained", "shorter", "longer")
    offsets = dict(zip(groups, (-0.25, 0.0, 0.25)))
    rng = np.random.default_rng(0)  # jitter only; fixed so figures are reproducible
    for i, m in enumerate(models):
        rs = [r for r in runs if r["model"] == m]
        for g in groups:
            vals = np.array([r["l2"][g] for r in rs if r["l2"][g] is not None])
            if vals.size == 0:
                continue
            x = i + offsets[g] + rng.uniform(-0.05, 0.05, vals.size)
            ax.scatter(x, vals, s=18, color=GROUP_COLORS[g], alpha=0.8, zorder=3,
                       label=f"{g} ({interval_labels[g]})" if i == 0 else None)
            ax.hlines(np.median(vals), i + offsets[g] - 0.1, i + offsets[g] + 0.1, color=GROUP_COLORS[g], lw=2.5)
    ax.set_yscale("log")
    ax.set_xticks(range(len(models)), [LABELS[m] for m in models])
    ax.set_ylabel("L2 error (mean squared error)")
    ax.set_title("Measure-Wait-Go: error on trained and untrained intervals")
    ax.grid(axis="y", which="major", alpha=0.3)
    ax.legend(title="intervals", fontsize=8, title_fontsize=8)
    return fig


def _go_aligned(ax, y, targets, info, trial_idx, colors, show_target=True):
    lags, yw = align_to_events(y[trial_idx], info.t_go[trial_idx], *GO_WINDOW)
    _, tw = align_to_events(targets[trial_idx], info.t_go[trial_idx], *GO_WINDOW)
    for j, b in enumerate(trial_idx):
        c = colors[int(info.interval[b])]
        if show_target:
            ax.plot(lags, tw[j, :, 0], ls="--", color=c, lw=1.0, alpha=0.8)
        ax.plot(lags, yw[j, :, 0], color=c, lw=1.5)
    ax.axvline(0, color="k", lw=0.6, alpha=0.5)


def plot_outputs(sims: Mapping[str, np.ndarray], targets: np.ndarray, info, trained: Sequence[int],
                 seeds: Mapping[str, int]) -> Figure:
    """Outputs of each model (rows) for trained and extrapolated intervals (columns), aligned to go.

    ``sims`` maps model name -> outputs (B, T, 1) on the test set.
    """
    models = list(sims)
    fig = Figure(figsize=(8.0, 1.9 * len(models) + 0.6), layout="constrained")
    axes = fig.subplots(len(models), 2, sharex=True, sharey=True, squeeze=False)
    colors = _interval_colors(info.interval)
    is_trained = np.isin(info.interval, list(trained))
    idx_tr, idx_ex = np.flatnonzero(is_trained), np.flatnonzero(~is_trained)
    for r, m in enumerate(models):
        _go_aligned(axes[r, 0], sims[m], targets, info, idx_tr, colors)
        _go_aligned(axes[r, 1], sims[m], targets, info, idx_ex, colors)
        axes[r, 0].set_ylabel(f"{LABELS[m]}\n(seed {seeds[m]})")
        for col, idx in ((0, idx_tr), (1, idx_ex)):
            if idx.size == 0:
                axes[r, col].text(0.5, 0.5, "none in the test set", transform=axes[r, col].transAxes,
                                  ha="center", va="center", color="0.4")
    axes[0, 0].set_title("trained intervals")
    axes[0, 1].set_title("untrained intervals (extrapolation)")
    for ax in axes[-1]:
        ax.set_xlabel("steps from go cue")
    _interval_legend(fig, colors)
    return fig


def _interval_legend(fig: Figure, colors: Mapping[int, Any]) -> None:
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], color=c, lw=2) for c in colors.values()]
    fig.legend(handles, [str(i) for i in colors], title="interval", loc="outside right center", fontsize=7,
               title_fontsize=8)


def plot_nm_signal(s: np.ndarray, info, seed: int) -> Figure:
    """Each component of s (rows) aligned to the go cue; a line per interval, a dot at the ramp end."""
    S = s.shape[2]
    fig = Figure(figsize=(7.0, 1.7 * S + 0.8), layout="constrained")
    axes = fig.subplots(S, 1, sharex=True, squeeze=False)[:, 0]
    colors = _interval_colors(info.interval)
    lags, sw = align_to_events(s, info.t_go, *GO_WINDOW)
    for k, ax in enumerate(axes):
        for b in range(s.shape[0]):
            c = colors[int(info.interval[b])]
            ax.plot(lags, sw[b, :, k], color=c, lw=1.4)
            end = int(info.interval[b])
            if end < GO_WINDOW[1]:
                ax.plot(end, sw[b, GO_WINDOW[0] + end, k], "o", color=c, ms=3)
        ax.axvline(0, color="k", lw=0.6, alpha=0.5)
        ax.set_ylabel(f"s{k + 1}(t)")
        ax.set_ylim(-0.02, 1.02)
    axes[0].set_title(f"NM-RNN neuromodulatory signal aligned to go (seed {seed}); dot = end of ramp")
    axes[-1].set_xlabel("steps from go cue")
    _interval_legend(fig, colors)
    return fig


def plot_ablation(ablation, info, targets, increases: np.ndarray, seed: int) -> Figure:
    """Outputs with each component of s clamped (top) and the error increase per component (bottom).

    ``increases`` (n_seeds, S) holds every seed's error increase; the outputs are those of ``seed``.
    """
    S = ablation.errors.size
    fig = Figure(figsize=(2.6 * (S + 1), 5.6), layout="constrained")
    gs = fig.add_gridspec(2, S + 1, height_ratios=(1.3, 1))
    colors = _interval_colors(info.interval)
    idx = np.arange(targets.shape[0])
    ax0 = fig.add_subplot(gs[0, 0])
    _go_aligned(ax0, ablation.baseline_outputs, targets, info, idx, colors)
    ax0.set_title(f"intact\nL2 {ablation.baseline_error:.1e}", fontsize=9)
    ax0.set_xlabel("steps from go")
    what = {"mean": "its trial mean", "zero": "0", "one": "1"}[ablation.mode]
    for k in range(S):
        ax = fig.add_subplot(gs[0, k + 1], sharey=ax0)
        _go_aligned(ax, ablation.outputs[k], targets, info, idx, colors)
        ax.set_title(f"s{k + 1} clamped to {what}\nL2 {ablation.errors[k]:.1e} "
                     f"({ablation.error_increase[k]:+.1e})", fontsize=9)
        ax.set_xlabel("steps from go")
    ax0.set_ylabel(f"output (seed {seed})")
    axb = fig.add_subplot(gs[1, :])
    inc = np.asarray(increases)
    for k in range(S):
        axb.scatter(np.full(inc.shape[0], k) + np.linspace(-0.08, 0.08, inc.shape[0]), inc[:, k],
                    color=MODEL_COLORS["nmrnn"], s=20, zorder=3)
        axb.hlines(inc[:, k].mean(), k - 0.2, k + 0.2, color="k", lw=2)
    axb.axhline(0, color="0.5", lw=0.8)
    axb.set_xticks(range(S), [f"s{k + 1}" for k in range(S)])
    axb.set_ylabel("increase of test L2 error")
    axb.set_title(f"error increase when each component is clamped to {what} (a point per seed)", fontsize=9)
    # symlog: increases span decades and can be negative (clamping may even help)
    axb.set_yscale("symlog", linthresh=1e-5)
    top = max(float(np.max(inc)), 1e-5) * 3.0
    axb.set_ylim(0.0 if np.min(inc) >= 0 else float(np.min(inc)) * 3.0, top)
    return fig


def plot_latents(kappa: np.ndarray, info, seed: int) -> Figure:
    r"""The state projected on the left factors, kappa = L^T x: each coordinate aligned to go, and
    the first two against each other over the whole trial."""
    K = kappa.shape[2]
    fig = Figure(figsize=(10.0, 1.7 * max(K, 2) + 0.8), layout="constrained")
    gs = fig.add_gridspec(K, 2, width_ratios=(1.6, 1))
    colors = _interval_colors(info.interval)
    lags, kw = align_to_events(kappa, info.t_go, *GO_WINDOW)
    axes = []
    for k in range(K):
        ax = fig.add_subplot(gs[k, 0], sharex=axes[0] if axes else None)
        for b in range(kappa.shape[0]):
            ax.plot(lags, kw[b, :, k], color=colors[int(info.interval[b])], lw=1.3)
        ax.axvline(0, color="k", lw=0.6, alpha=0.5)
        ax.set_ylabel(f"kappa{k + 1}")
        axes.append(ax)
    axes[0].set_title(f"NM-RNN state on its left factors, aligned to go (seed {seed})")
    axes[-1].set_xlabel("steps from go cue")
    if K >= 2:
        ax = fig.add_subplot(gs[:, 1])
        for b in range(kappa.shape[0]):
            c = colors[int(info.interval[b])]
            ax.plot(kappa[b, :, 0], kappa[b, :, 1], color=c, lw=1.2)
            ax.plot(kappa[b, info.t_go[b], 0], kappa[b, info.t_go[b], 1], "o", color=c, ms=4)
        ax.set_xlabel("kappa1")
        ax.set_ylabel("kappa2")
        ax.set_title("whole trial (dot = go cue)")
    _interval_legend(fig, colors)
    return fig


def plot_training(runs: Sequence[Mapping[str, Any]], models: Sequence[str]) -> Figure:
    """Training loss against step, a line per seed, one panel per model."""
    fig = Figure(figsize=(3.0 * len(models), 2.8), layout="constrained")
    axes = fig.subplots(1, len(models), sharey=True, squeeze=False)[0]
    for ax, m in zip(axes, models):
        for r in runs:
            if r["model"] != m or "step" not in r.get("curve", {}):
                continue
            ax.plot(r["curve"]["step"], r["curve"]["loss"], color=MODEL_COLORS[m], alpha=0.7, lw=1)
        boundaries = np.cumsum([s["steps"] for s in next((r.get("stages", []) for r in runs
                                                         if r["model"] == m), [])])[:-1]
        for b in boundaries:
            ax.axvline(b, color="0.5", ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(LABELS[m])
        ax.set_xlabel("step")
    axes[0].set_ylabel("training loss")
    return fig


def hold_trials(model, params, cfg: Mapping[str, Any], T: int) -> dict[str, Any]:
    """The test trials extended to ``T`` steps: the network's own run and, for the NM-RNN, a run with s frozen.

    Returns ``info`` (the trials' timing), ``y`` (B, T) and, for an NM-RNN,
    ``s`` (B, T, S) and ``y_frozen`` (B, T): the output when s stops changing
    :data:`~nmrnn_np.experiments.mwg.HOLD_SETTLE` steps after the ramp's end
    (:func:`~nmrnn_np.experiments.analysis.simulate_nmrnn_frozen_signal`).
    """
    task = extrapolation_task(cfg, T)
    xt, _, _, info = task.all_trials(return_info=True)
    traj = model.simulate(params, xt, backend=_backend(cfg))
    out = {"info": info, "y": traj.y[..., 0], "r1": task.ramp[1]}
    if model.kind == "nmrnn":
        out["s"] = traj.s
        freeze = np.minimum(info.t_go + info.interval + HOLD_SETTLE, T - 1)
        out["y_frozen"] = simulate_nmrnn_frozen_signal(model, params, xt, freeze)["y"][..., 0]
    return out


def plot_hold(runs: Sequence[Mapping[str, Any]], models: Sequence[str], trials: Mapping[str, Any] | None,
              seed: int | None) -> Figure:
    """Until when each network holds its output after the ramp, and what the NM-RNN that leaves first does.

    Top left: for every seed, the step (from the trial's start) at which the
    output first leaves r1 +- tolerance after reaching it, earliest over the
    test intervals, on extended trials
    (:func:`~nmrnn_np.experiments.mwg.hold_metrics`), against the lengths of
    the training and test trials. The other panels show the NM-RNN seed
    ``seed`` (``trials`` from :func:`hold_trials`) over the extended trials:
    its outputs, its outputs with s frozen shortly after the ramp, and s.
    """
    hold = next(r["hold"] for r in runs if "hold" in r)
    S = trials["s"].shape[2] if trials is not None else 0
    fig = Figure(figsize=(11.0, 6.4 if S else 3.4), layout="constrained")
    gs = fig.add_gridspec(2 if S else 1, max(S, 3))
    ax = fig.add_subplot(gs[0, 0])
    rng = np.random.default_rng(0)  # jitter only
    for i, m in enumerate(models):
        d = np.array([r["hold"]["held_until"] for r in runs if r["model"] == m and "hold" in r], dtype=float)
        ax.scatter(i + rng.uniform(-0.12, 0.12, d.size), d, s=18, color=MODEL_COLORS[m], zorder=3)
    lines = [(hold["T_test"], "#d6604d", "--", f"end of a test trial ({hold['T_test']})")]
    if hold["T_train"] != hold["T_test"]:
        lines.append((hold["T_train"], "0.4", ":", f"end of a training trial ({hold['T_train']})"))
    for v, c, st, lab in lines:
        ax.axhline(v, color=c, ls=st, lw=1, label=lab)
    ax.set_ylim(0, hold["T_extended"] * 1.05)
    ax.set_xticks(range(len(models)), [LABELS[m] for m in models])
    ax.set_ylabel(f"held until step ({hold['T_extended']} = never left)")
    ax.set_title(f"hold of the final value (+-{hold['tolerance']:g}), earliest interval", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    if trials is None:
        return fig
    info = trials["info"]
    colors = _interval_colors(info.interval)
    steps = np.arange(trials["y"].shape[1])
    panels = [("y", f"NM-RNN seed {seed}: output, extended trials"),
              ("y_frozen", f"the same, s frozen {HOLD_SETTLE} steps after the ramp")]
    first = None
    for j, (key, title) in enumerate(panels):
        a = fig.add_subplot(gs[0, j + 1], sharey=first)
        first = first or a
        for b in range(trials[key].shape[0]):
            a.plot(steps, trials[key][b], color=colors[int(info.interval[b])], lw=1.1)
        a.axhspan(trials["r1"] - hold["tolerance"], trials["r1"] + hold["tolerance"], color="0.9", zorder=0)
        for v, c, st, _ in lines:
            a.axvline(v, color=c, ls=st, lw=0.9)
        a.set_title(title, fontsize=9)
        a.set_xlabel("step")
    first.set_ylabel("output")
    for k in range(S):
        a = fig.add_subplot(gs[1, k])
        for b in range(trials["s"].shape[0]):
            a.plot(steps, trials["s"][b, :, k], color=colors[int(info.interval[b])], lw=1.1)
        for v, c, st, _ in lines:
            a.axvline(v, color=c, ls=st, lw=0.9)
        a.set_ylim(-0.02, 1.02)
        a.set_title(f"s{k + 1}(t), seed {seed}", fontsize=9)
        a.set_xlabel("step")
    _interval_legend(fig, colors)
    return fig


def plot_procedures(runs_by_label: Mapping[str, Sequence[Mapping[str, Any]]], models: Sequence[str],
                    keys: Sequence[str] = ("trained", "extrapolated")) -> Figure:
    """The same experiment run several ways (e.g. two training procedures): a panel per model and error.

    ``runs_by_label`` maps a label (``"ours"``, ``"authors'"``) to the runs of
    one experiment folder (``metrics.json``'s ``runs``). Each panel shows one
    point per seed for each label, the median as a bar (log axis), and a grey
    line joining the same seed across labels.
    """
    labels = list(runs_by_label)
    fig = Figure(figsize=(2.6 * len(models), 2.6 * len(keys) + 0.4), layout="constrained")
    axes = fig.subplots(len(keys), len(models), squeeze=False, sharey="row")
    for i, key in enumerate(keys):
        for j, m in enumerate(models):
            ax = axes[i, j]
            by_seed: dict[int, list[float]] = {}
            for x, lab in enumerate(labels):
                vals = {r["seed"]: r["l2"][key] for r in runs_by_label[lab]
                        if r["model"] == m and r["l2"].get(key) is not None}
                if not vals:
                    continue
                v = np.array(list(vals.values()))
                ax.scatter(np.full(v.size, x), v, s=16, color=MODEL_COLORS[m], alpha=0.8, zorder=3)
                ax.hlines(np.median(v), x - 0.25, x + 0.25, color="k", lw=2, zorder=4)
                for sd, val in vals.items():
                    by_seed.setdefault(sd, []).append((x, val))
            for pts in by_seed.values():
                if len(pts) > 1:
                    ax.plot(*zip(*pts), color="0.75", lw=0.7, zorder=1)
            ax.set_yscale("log")
            ax.set_xticks(range(len(labels)), labels, fontsize=8)
            ax.set_xlim(-0.5, len(labels) - 0.5)
            if i == 0:
                ax.set_title(LABELS.get(m, m))
            if j == 0:
                ax.set_ylabel(f"L2 {key}")
            ax.grid(axis="y", alpha=0.3)
    return fig


# ----------------------------------------------------------------------------
def make_figures(rc) -> dict[str, Figure]:
    """Every figure of a Measure-Wait-Go experiment folder, by name (the runner saves ``mwg_<name>.png``).

    ``rc`` is the runner's :class:`~nmrnn_np.experiments.runner.ReportContext`.
    The per-trial figures show each model's median seed (:func:`representative_seed`).
    """
    cfg, runs = rc.settings, rc.runs
    clamp = cfg["experiment"]["clamp"]
    figs: dict[str, Figure] = {}
    models = [m for m in cfg["experiment"]["models"] if any(r["model"] == m for r in runs)]
    figs["errors"] = plot_errors(runs, models, interval_labels(cfg))
    _, test_task = make_tasks(cfg)
    xt, yt, mt, info = test_task.all_trials(return_info=True)
    backend = _backend(cfg)
    seeds = {m: representative_seed(runs, m) for m in models}
    run_of = {(r["model"], r["seed"]): r for r in runs}
    sims = {}
    for m in models:
        model, params, _ = rc.load(run_of[(m, seeds[m])])
        sims[m] = model.simulate(params, xt, backend=backend).y
    figs["outputs"] = plot_outputs(sims, yt, info, cfg["task"]["train_intervals"], seeds)
    if "nmrnn" in models:
        model, params, _ = rc.load(run_of[("nmrnn", seeds["nmrnn"])])
        traj = model.simulate(params, xt, backend=backend)
        figs["nm_signal"] = plot_nm_signal(traj.s, info, seeds["nmrnn"])
        ab = ablate_components(model, params, xt, yt, mt, mode=clamp)
        increases = np.array([r["ablation"]["increase"] for r in runs
                              if r["model"] == "nmrnn" and "ablation" in r])
        figs["ablation"] = plot_ablation(ab, info, yt, increases, seeds["nmrnn"])
        kappa = latent_projection(model, params, traj.x)
        figs["latents"] = plot_latents(kappa, info, seeds["nmrnn"])
    if any("hold" in r for r in runs):
        # the NM-RNN seed whose output leaves its final value first
        nm_runs = [r for r in runs if r["model"] == "nmrnn" and "hold" in r]
        trials = seed = None
        if nm_runs:
            worst = min(nm_runs, key=lambda r: (r["hold"]["held_until"], -r["hold"]["error"]))
            model, params, _ = rc.load(worst)
            seed = worst["seed"]
            trials = hold_trials(model, params, cfg, worst["hold"]["T_extended"])
        figs["hold"] = plot_hold(runs, models, trials, seed)
    figs["training"] = plot_training(runs, models)
    return figs
