"""Figures of example trials: inputs, targets and shaded epochs.

:func:`plot_trial` draws one trial on a pair of axes; :func:`save_task_figures`
writes the PNGs used in ``docs/tasks.md``. Figures saved to disk are built
with :class:`matplotlib.figure.Figure` directly (no pyplot, no global backend
change), so saving works headless without touching interactive use.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from . import _validation as V
from . import tasks as _tasks

__all__ = ["plot_trial", "save_task_figures", "EPOCH_COLORS"]

EPOCH_COLORS = {
    "pre": "#f0f0f0", "fixation": "#f0f0f0",
    "measure": "#d5e8f7", "stimulus": "#d5e8f7", "stimulus1": "#d5e8f7", "query": "#d5e8f7",
    "wait": "#fbe3c8", "memory": "#fbe3c8", "stimulus2": "#e4d9f2", "sequence": "#eef6e3",
    "ramp": "#d9f0d3", "response": "#d9f0d3",
    "hold": "#eef6e3", "padding": "#ffffff",
}
"""Background colour of each named epoch."""


def _shade(ax, epochs, label: bool, T: int) -> None:
    for name, start, stop in epochs:
        ax.axvspan(start - 0.5, stop - 0.5, color=EPOCH_COLORS.get(name, "#eeeeee"), zorder=0, lw=0)
        if not label:
            continue
        mid = (start + stop - 1) / 2
        if (stop - start) >= 0.09 * T:  # wide enough: horizontal label above the axis
            ax.text(mid, 1.0, name, transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=7, color="0.3", clip_on=False)
        else:  # narrow epoch: vertical label inside the axis
            ax.text(mid, 0.97, name, transform=ax.get_xaxis_transform(), rotation=90,
                    ha="center", va="top", fontsize=6.5, color="0.3")


def plot_trial(inputs, targets, epochs: Sequence[tuple[str, int, int]] | None = None, ax=None,
               channel_names: Sequence[str] | None = None, target_names: Sequence[str] | None = None,
               mask=None, title: str | None = None):
    """Plot one trial: inputs on top, targets below, epochs shaded.

    Parameters
    ----------
    inputs : array_like, shape (T, U)
    targets : array_like, shape (T, O)
    epochs : list of (name, start, stop), optional
        Half-open step ranges, e.g. ``batch.epoch_spans(i)``; shaded and
        labelled on both axes.
    ax : pair of matplotlib Axes, optional
        ``(ax_inputs, ax_targets)``; if ``None`` a new figure is made with
        :func:`matplotlib.pyplot.subplots`.
    channel_names, target_names : sequence of str, optional
        Legend labels for the input and target channels.
    mask : array_like, shape (T,) or (T, O), optional
        Steps with mask 0 (in every channel) are hatched on the target axis.
    title : str, optional

    Returns
    -------
    (ax_inputs, ax_targets)
    """
    u = V.float_array(inputs, "inputs", finite=False)
    y = V.float_array(targets, "targets", finite=False)
    if u.ndim != 2 or 0 in u.shape:
        raise ValueError(f"inputs must have shape (T, U) with T, U >= 1, got {u.shape}")
    if y.ndim != 2 or y.shape[0] != u.shape[0] or y.shape[1] < 1:
        raise ValueError(f"targets must have shape (T, O) with T={u.shape[0]} (the steps of inputs), got {y.shape}")
    T = u.shape[0]
    if epochs is not None:
        if isinstance(epochs, (str, bytes)) or not isinstance(epochs, Sequence):
            raise TypeError(f"epochs must be a list of (name, start, stop), got {epochs!r}")
        for e in epochs:
            if not isinstance(e, Sequence) or len(e) != 3 or not isinstance(e[0], str):
                raise TypeError(f"epochs must be a list of (name, start, stop), got the entry {e!r}")
            start, stop = V.integer(e[1], "epochs start", 0, T), V.integer(e[2], "epochs stop", 0, T)
            if start > stop:
                raise ValueError(f"epochs entries need start <= stop, got {e!r}")
    for names_, arg in ((channel_names, "channel_names"), (target_names, "target_names")):
        if names_ is not None and (isinstance(names_, (str, bytes)) or not isinstance(names_, Sequence)
                                   or not all(isinstance(n, str) for n in names_)):
            raise TypeError(f"{arg} must be a sequence of str, got {names_!r}")
    if mask is not None:
        mask = V.float_array(mask, "mask")
        if mask.shape not in ((T,), (T, 1), (T, y.shape[1])):
            raise ValueError(f"mask must have shape ({T},), ({T}, 1) or ({T}, {y.shape[1]}), got {mask.shape}")
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a str or None, got {title!r}")
    if ax is not None and (not isinstance(ax, (Sequence, np.ndarray)) or len(ax) != 2
                           or not all(hasattr(a, "axvspan") for a in ax)):
        raise TypeError(f"ax must be a pair of matplotlib Axes (inputs, targets) or None, got {ax!r}")
    if ax is None:
        import matplotlib.pyplot as plt
        _, ax = plt.subplots(2, 1, sharex=True, figsize=(7, 4))
    ax_in, ax_out = ax
    T = u.shape[0]
    steps = np.arange(T)
    names = list(channel_names) if channel_names is not None else [f"u{c}" for c in range(u.shape[1])]
    tnames = list(target_names) if target_names is not None else [f"y{c}" for c in range(y.shape[1])]
    if len(names) != u.shape[1]:
        raise ValueError(f"channel_names must have {u.shape[1]} entries (one per channel of inputs), got {len(names)}")
    if len(tnames) != y.shape[1]:
        raise ValueError(f"target_names must have {y.shape[1]} entries (one per channel of targets), "
                         f"got {len(tnames)}")
    for a, arr, labels in ((ax_in, u, names), (ax_out, y, tnames)):
        colours = iter(f"C{k}" for k in range(10))
        for c in range(arr.shape[1]):
            # fixation channels in black dashes, so they stay visible under a stimulus near 1
            style = dict(color="k", ls="--", lw=1.2) if labels[c] == "fixation" else dict(color=next(colours), lw=1.5)
            a.step(steps, arr[:, c], where="mid", label=labels[c], **style)
        a.tick_params(labelbottom=True)
    if mask is not None:
        m = np.asarray(mask, dtype=float).reshape(T, -1)
        off = np.all(m == 0, axis=1)
        for k, t in enumerate(np.nonzero(off)[0]):
            ax_out.axvspan(t - 0.5, t + 0.5, facecolor="none", hatch="///", edgecolor="0.75", lw=0,
                           zorder=0.5, label="mask = 0" if k == 0 else None)
    if epochs is not None:
        _shade(ax_in, epochs, label=True, T=T)
        _shade(ax_out, epochs, label=False, T=T)
    ax_in.set_ylabel("input")
    ax_out.set_ylabel("target")
    ax_out.set_xlabel("step")
    ax_out.set_xlim(-0.5, T - 0.5)
    for a in (ax_in, ax_out):
        a.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, frameon=False)
    if title:
        ax_in.set_title(title, fontsize=9, pad=14)
    return ax_in, ax_out


def _new_figure(nrows: int, ncols: int, figsize):
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, sharex="col", squeeze=False)
    return fig, axes


def save_task_figures(out_dir: str | Path, rng: None | int | np.random.Generator = 0,
                      dpi: int = 110) -> list[Path]:
    """Write one PNG per task into ``out_dir``.

    Files: ``task_mwg.png`` (two Measure-Wait-Go trials), ``task_multitask.png``
    (one trial of each of the four tasks), ``task_dm.png`` (one DM1 and one
    DM2 trial), ``task_element_finder.png``.

    Parameters
    ----------
    out_dir : str or Path
        Created if missing.
    rng : None, int or numpy.random.Generator
        Seed of the example trials (0).
    dpi : int

    Returns
    -------
    list of Path
        The files written.
    """
    from ._rng import as_generator

    gen = as_generator(rng)
    dpi = V.integer(dpi, "dpi", 10, 1000)
    out = V.any_path(out_dir, "out_dir")
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir={str(out)!r} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def save(fig, name):
        path = out / name
        fig.savefig(path, dpi=dpi)
        written.append(path)

    # Measure-Wait-Go: shortest and longest training interval
    mwg = _tasks.MeasureWaitGo()
    u, y, m, info = mwg.trials([12, 18], [12, 17], return_info=True)
    fig, axes = _new_figure(2, 2, (11, 4.2))
    for j in range(2):
        plot_trial(u[j], y[j], info.epoch_spans(j), ax=axes[:, j], mask=m[j],
                   channel_names=mwg.input_names, target_names=mwg.output_names,
                   title=f"Measure-Wait-Go: interval {info.interval[j]}, t_measure {info.t_measure[j]}, "
                         f"go at {info.t_go[j]}")
    save(fig, "task_mwg.png")

    # four-task set, one trial of each
    mt = _tasks.Multitask()
    b = mt.one_of_each(gen)
    fig, axes = _new_figure(4, 2, (12, 8.4))
    for j in range(4):
        name = b.task_names[b.task[j]]
        r, c = 2 * (j // 2), j % 2
        plot_trial(b.task_inputs[j], b.targets[j], b.epoch_spans(j), ax=axes[r:r + 2, c],
                   channel_names=mt.task_input_names, target_names=mt.output_names,
                   title=f"{name} (context channel {3 + j} = 1)\n"
                         f"theta_in {np.degrees(b.theta_in[j]):.0f} deg, "
                         f"theta_out {np.degrees(b.theta_out[j]):.0f} deg")
    save(fig, "task_multitask.png")

    # DM1 / DM2
    dm = _tasks.Multitask(("dm1", "dm2"))
    b = dm.one_of_each(gen)
    fig, axes = _new_figure(2, 2, (11, 4.6))
    for j in range(2):
        name = b.task_names[b.task[j]]
        plot_trial(b.task_inputs[j], b.targets[j], b.epoch_spans(j), ax=axes[:, j],
                   channel_names=dm.task_input_names, target_names=dm.output_names,
                   title=f"{name}: coherence {b.coherence[j]:+.2f}, theta1 "
                         f"{np.degrees(b.theta_in[j]):.0f} deg, theta2 {np.degrees(b.theta_in2[j]):.0f} deg"
                         f"\n-> theta_out {np.degrees(b.theta_out[j]):.0f} deg")
    save(fig, "task_dm.png")

    # element finder
    ef = _tasks.ElementFinder()
    b = ef.sample(gen, 1)
    fig, axes = _new_figure(2, 1, (8, 4.2))
    plot_trial(b.inputs[0], b.targets[0], b.epoch_spans(0), ax=axes[:, 0], mask=b.mask[0],
               channel_names=ef.input_names, target_names=ef.output_names,
               title=f"Element finder: query q = {b.query[0]}, answer values[q] = {b.answer[0]} "
                     f"(scored at the last step only)")
    axes[0, 0].plot([1 + b.query[0]], [b.answer[0]], "o", mfc="none", mec="C3", ms=9, label="values[q]")
    axes[0, 0].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, frameon=False)
    axes[1, 0].plot([ef.L], [b.answer[0]], "o", color="C3", ms=6, label="scored")
    axes[1, 0].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, frameon=False)
    save(fig, "task_element_finder.png")
    return written
