"""The Measure-Wait-Go experiment: train four parameter-matched models, test extrapolation.

Costacurta et al. (NeurIPS 2024), timing task: an NM-RNN, a low-rank RNN, a
vanilla RNN and an LSTM with about 1,100 parameters each are trained on the
intervals {12, 14, 16, 18} (every measure time in [10, 20): 40 trials, full
batch) and tested on the intervals {4, 6, ..., 26} with the measure pulse at
t = 15. The study's finding is that the NM-RNN extrapolates to intervals it
never saw far better than the LR-RNN.

This module only declares the experiment (:data:`EXPERIMENT`, an
:class:`~nmrnn_np.experiments.base.Experiment`); the runner
(:mod:`nmrnn_np.experiments.runner`) runs it: ``nmrnn-np mwg`` or
``nmrnn-np run mwg``. Its figures are in
:mod:`nmrnn_np.experiments.mwg_figures`. Layout of an experiment folder::

    OUT/
      config.toml            settings actually used
      metrics.json           per run: curve summary, L2 errors, ablation, wall time; summaries over seeds
      report.md              tables and figures
      mwg_*.png              figures
      runs/<model>_seed<k>/  one folder per run:
        run.json             the run's settings
        model.npz            trained model (nmrnn_np.io.save_model)
        result.json          the run's numbers; written last, so it marks a finished run
        stage_<name>.npz     model after each finished training stage (+ stage_<name>.json)
        checkpoint_<name>.npz, train_<name>.jsonl   trainer checkpoint and log
"""
from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..metrics import masked_l2
from ..models import make_model
from ..optim import OPTIMIZERS
from ..tasks import MeasureWaitGo, mwg_extrapolation_set
from .analysis import CLAMP_MODES, ablate_components
from .base import CliOption, Experiment, RunContext, Stage, base_settings, check_names, name_list, positive
from .config import ConfigError
from .runner import ExperimentInterrupted, aggregate, resolve_settings
from .runner import run_experiment as _run_experiment
from .summary import Column, count_better, get_dotted, outlier_seeds

__all__ = ["MODEL_NAMES", "MODEL_LABELS", "MODES", "EXPERIMENT", "MeasureWaitGoExperiment", "default_config",
           "resolve_config", "validate_config", "make_tasks", "extrapolation_task", "train_T", "build_model",
           "training_stages", "evaluate_params",
           "run_experiment", "evaluate_run_dir", "comparison_sentence", "hold_metrics", "hold_sentence",
           "HOLD_TOLERANCE", "HOLD_ARRIVAL", "HOLD_T", "HOLD_SETTLE", "ExperimentInterrupted"]

#: the four models of the study, in the order of its figures
MODEL_NAMES = ("nmrnn", "lrrnn", "rnn", "lstm")
MODEL_LABELS = {"nmrnn": "NM-RNN", "lrrnn": "LR-RNN", "rnn": "RNN", "lstm": "LSTM"}

#: parameter-matched sizes of the study (about 1,100 parameters each)
MODEL_SIZES: dict[str, dict[str, Any]] = {
    "nmrnn": dict(N=100, M=5, K=3, tau_x=10.0, tau_z=100.0),
    "lrrnn": dict(N=106, K=3, tau=10.0),
    "rnn": dict(N=31, tau=10.0),
    "lstm": dict(N=15),
}

MODES = ("quick", "full")

# The quick schedule was chosen by measurement on a 2-core machine (docs/mwg.md, "Choosing the
# quick schedule"): the staged NM-RNN schedule of the full run, shortened.
_QUICK_TRAINING = dict(lr=1e-2, steps=3000, nmrnn_output_steps=500, nmrnn_nm_steps=500)
_FULL_TRAINING = dict(lr=1e-2, steps=50_000, nmrnn_output_steps=10_000, nmrnn_nm_steps=10_000)
_SEEDS = {"quick": 3, "full": 10}


def default_config(mode: str = "quick") -> dict[str, Any]:
    """The default settings of ``mode`` ("quick" or "full") as a nested dict (the TOML schema).

    Sections: ``experiment`` (models, seeds, clamp mode, backend), ``task``
    (training and test sets), ``training`` (optimiser and schedule) and
    ``models.<name>`` (sizes and time constants).
    """
    if mode not in MODES:
        raise ConfigError(f"experiment.mode must be one of {', '.join(MODES)}, got {mode!r}")
    training = _QUICK_TRAINING if mode == "quick" else _FULL_TRAINING
    return {
        "experiment": base_settings("mwg", mode, _SEEDS[mode], models=list(MODEL_NAMES), clamp="mean"),
        "task": {
            "T": 110,
            "train_T": 0,
            "train_intervals": [12, 14, 16, 18],
            "measure_window": [10, 20],
            "delay": 15,
            "pulse": 10.0,
            "test_intervals": list(range(4, 27, 2)),
            "test_t_measure": 15,
        },
        "training": {
            "lr": float(training["lr"]),
            "optimizer": "clip_adamw",
            "steps": int(training["steps"]),
            "nmrnn_output_steps": int(training["nmrnn_output_steps"]),
            "nmrnn_nm_steps": int(training["nmrnn_nm_steps"]),
            "checkpoint_every": 1000,
        },
        "models": copy.deepcopy(MODEL_SIZES),
    }


def validate_config(cfg: Mapping[str, Any]) -> None:
    """Check values that types alone do not (ranges, names, the task fitting in T).

    Raises
    ------
    ConfigError
        Naming the offending key, e.g. ``training.steps``.
    """
    ex, tr, task = cfg["experiment"], cfg["training"], cfg["task"]
    models = ex["models"]
    check_names(models, MODEL_NAMES, "experiment.models")
    if ex["clamp"] not in CLAMP_MODES:
        raise ConfigError(f"experiment.clamp must be one of {', '.join(CLAMP_MODES)}, got {ex['clamp']!r}")
    if tr["optimizer"] not in OPTIMIZERS:
        raise ConfigError(f"training.optimizer must be one of {', '.join(OPTIMIZERS)}, got {tr['optimizer']!r}")
    if not (tr["lr"] > 0 and math.isfinite(tr["lr"])):
        raise ConfigError(f"training.lr must be a positive number, got {tr['lr']}")
    if tr["steps"] < 1:
        raise ConfigError(f"training.steps must be >= 1, got {tr['steps']}")
    for key in ("nmrnn_output_steps", "nmrnn_nm_steps"):
        if tr[key] < 0:
            raise ConfigError(f"training.{key} must be >= 0, got {tr[key]}")
    if tr["checkpoint_every"] < 1:
        raise ConfigError(f"training.checkpoint_every must be >= 1, got {tr['checkpoint_every']}")
    if task["train_T"] < 0:
        raise ConfigError(f"task.train_T must be >= 0 (0: the same as task.T), got {task['train_T']}")
    if len(task["measure_window"]) != 2:
        raise ConfigError(f"task.measure_window must be [lo, hi], got {task['measure_window']}")
    for key in ("train_intervals", "test_intervals"):
        if not task[key]:
            raise ConfigError(f"task.{key} must not be empty")
    try:
        make_tasks(cfg)
    except ValueError as exc:
        raise ConfigError(f"task: {exc}") from None
    for name in models:
        try:
            build_model(name, cfg)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"models.{name}: {exc}") from None


def resolve_config(mode: str = "quick", file: str | os.PathLike | None = None,
                   overrides: Mapping[str, Any] | None = None, sets: Sequence[str] = (),
                   grid: Sequence[str] = ()) -> dict[str, Any]:
    """Settings of a run: defaults of ``mode``, then a TOML ``file``, then ``overrides`` and ``sets``.

    A thin wrapper of :func:`nmrnn_np.experiments.runner.resolve_settings`
    for this experiment; the result is validated (:func:`validate_config`).
    """
    return resolve_settings(EXPERIMENT, mode, file, overrides, sets, grid)


# ----------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------
def train_T(cfg: Mapping[str, Any]) -> int:
    """Length of the training trials: ``task.train_T``, or ``task.T`` (the test trials' length) when it is 0.

    Longer training trials ask for longer holds after the ramp (the remedy
    measured in ``docs/mwg.md``, "Seeds that fail to hold"); the paper's
    setting is 0, training and test trials of the same length.
    """
    return int(cfg["task"].get("train_T", 0) or cfg["task"]["T"])


def make_tasks(cfg: Mapping[str, Any]) -> tuple[MeasureWaitGo, MeasureWaitGo]:
    """The training task (all intervals x measure times) and the extrapolation test task."""
    t = cfg["task"]
    train = MeasureWaitGo(T=train_T(cfg), intervals=tuple(t["train_intervals"]),
                          measure_window=tuple(t["measure_window"]), delay=t["delay"], pulse=t["pulse"])
    return train, extrapolation_task(cfg)


def extrapolation_task(cfg: Mapping[str, Any], T: int | None = None) -> MeasureWaitGo:
    """The extrapolation test task of ``cfg``, with trials of ``T`` steps (default ``task.T``).

    Longer trials are the same trials extended: the inputs are zero after the
    go pulse and the target stays at the ramp's final value.
    """
    t = cfg["task"]
    return mwg_extrapolation_set(T=t["T"] if T is None else T, intervals=tuple(t["test_intervals"]),
                                 t_measure=t["test_t_measure"], delay=t["delay"], pulse=t["pulse"])


def build_model(name: str, cfg: Mapping[str, Any]):
    """The model ``name`` with the sizes of ``cfg["models"][name]`` (3 inputs, 1 output)."""
    return make_model(name, U=3, O=1, **cfg["models"][name])


def training_stages(name: str, cfg: Mapping[str, Any]) -> list[tuple[str, int, tuple[str, ...] | None]]:
    """``(stage name, steps, trainable groups)`` in order; ``None`` trains every parameter.

    The NM-RNN may first train only its output (low-rank) network, then only
    its neuromodulatory subnetwork, before training everything (the authors'
    schedule); the other models train everything from the start.
    """
    tr = cfg["training"]
    stages: list[tuple[str, int, tuple[str, ...] | None]] = []
    if name == "nmrnn":
        if tr["nmrnn_output_steps"] > 0:
            stages.append(("output", int(tr["nmrnn_output_steps"]), ("output",)))
        if tr["nmrnn_nm_steps"] > 0:
            stages.append(("nm", int(tr["nmrnn_nm_steps"]), ("nm",)))
    stages.append(("full", int(tr["steps"]), None))
    return stages


def _backend(cfg: Mapping[str, Any]) -> str | None:
    b = cfg["experiment"]["backend"]
    return None if b == "auto" else b


# ----------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------
def evaluate_params(model, params: Mapping[str, np.ndarray], cfg: Mapping[str, Any],
                    clamp: str | None = None) -> dict[str, Any]:
    """L2 (mean squared) errors of one trained model.

    Returns
    -------
    dict
        ``train_loss`` on the whole training set; ``l2`` with the errors on
        the test trials whose interval is ``trained`` (in the training set),
        ``shorter`` / ``longer`` (outside the trained range) and
        ``extrapolated`` (shorter and longer together); ``l2_per_interval``;
        and for the NM-RNN ``ablation`` (error increase on the test set when
        each component of s is clamped; mode ``clamp`` or the config's).
    """
    backend = _backend(cfg)
    train_task, test_task = make_tasks(cfg)
    x, y, m = train_task.all_trials()
    train_loss = masked_l2(model.simulate(params, x, backend=backend).y, y, m)
    xt, yt, mt, info = test_task.all_trials(return_info=True)
    out = model.simulate(params, xt, backend=backend).y
    trained = set(cfg["task"]["train_intervals"])
    lo, hi = min(trained), max(trained)
    groups = {
        "trained": np.isin(info.interval, sorted(trained)),
        "shorter": info.interval < lo,
        "longer": info.interval > hi,
    }
    groups["extrapolated"] = groups["shorter"] | groups["longer"]
    l2 = {k: (masked_l2(out[sel], yt[sel], mt[sel]) if sel.any() else None) for k, sel in groups.items()}
    per_interval = {str(int(i)): masked_l2(out[info.interval == i], yt[info.interval == i], mt[info.interval == i])
                    for i in np.unique(info.interval)}
    result = {"train_loss": train_loss, "l2": l2, "l2_per_interval": per_interval,
              "hold": hold_metrics(model, params, cfg)}
    if model.kind == "nmrnn":
        mode = clamp or cfg["experiment"]["clamp"]
        ab = ablate_components(model, params, xt, yt, mt, mode=mode)
        result["ablation"] = {"mode": mode, "baseline": ab.baseline_error, "clamped": ab.errors.tolist(),
                              "increase": ab.error_increase.tolist()}
    return result




#: the output holds while it stays within this distance of the ramp's final value r1 (a quarter of the
#: ramp's height, r1 - r0 = 1)
HOLD_TOLERANCE = 0.25
#: the output has arrived at the final value when it is this close to it (the hold is judged from then on)
HOLD_ARRIVAL = 0.1
#: trial length of the extended test trials that measure how long each network holds its output
HOLD_T = 400
#: steps after the end of the ramp at which the NM-RNN's signal is frozen in the hold figure
HOLD_SETTLE = 5


def hold_metrics(model, params: Mapping[str, np.ndarray], cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Whether, and until when, the output holds the ramp's final value r1 after the ramp.

    After the ramp (from ``t_end = t_go + I``) the target is the constant
    r1 = 0.5 to the end of the trial. The output *arrives* at the first step
    ``t >= t_end`` with ``|y_t - r1| <= HOLD_ARRIVAL`` (a late arrival is a
    ramp error, which the L2 error measures) and *holds* from then on until
    ``|y_t - r1| > HOLD_TOLERANCE``. The test trials are simulated extended to
    :data:`HOLD_T` steps (the inputs are zero after the go pulse, so their
    first T steps are the ordinary test trials).

    Returns
    -------
    dict
        ``error``: max over the test trials of ``max |y_t - r1|`` from the
        arrival to the end of the ordinary trial (``|y_{T-1} - r1|`` if the
        output never arrives); ``error_per_interval``; ``fails``: ``error >
        HOLD_TOLERANCE``, the output leaves the final value inside a test
        trial or never reaches it; ``held_until_per_interval``: the step,
        counted from the trial's start, at which the output first leaves the
        band after arriving, on the extended trials (``T_extended`` if it
        never leaves; ``t_end`` if it never arrives);
        ``held_until``: their minimum; ``T_test`` and ``T_train``: the
        trials' lengths; and the constants ``tolerance``, ``arrival``,
        ``T_extended``.
    """
    t = cfg["task"]
    T, T_long = int(t["T"]), int(max(HOLD_T, t["T"]))
    long_task = extrapolation_task(cfg, T_long)
    xt, _, _, info = long_task.all_trials(return_info=True)
    y = model.simulate(params, xt, backend=_backend(cfg)).y[..., 0]
    r1 = long_task.ramp[1]
    errors, until = {}, {}
    for i, interval in enumerate(info.interval):
        t_end = int(info.t_go[i] + info.interval[i])
        dist = np.abs(y[i] - r1)
        inside = dist <= HOLD_TOLERANCE   # NaN is outside
        arrived = t_end + np.flatnonzero(dist[t_end:] <= HOLD_ARRIVAL)
        arrival = int(arrived[0]) if arrived.size else T_long
        left = arrival + np.flatnonzero(~inside[arrival:])
        # an output that never arrives never held: it counts as letting go at the ramp's end
        until[str(int(interval))] = t_end if not arrived.size else (int(left[0]) if left.size else T_long)
        window = y[i, arrival:T] if arrival < T else y[i, T - 1:T]
        dev = np.abs(window - r1)
        # a non-finite output fails (NaN would compare False with the tolerance)
        errors[str(int(interval))] = float(np.where(np.isfinite(dev), dev, np.inf).max())
    error = max(errors.values())
    return {"error": error, "error_per_interval": errors, "fails": bool(error > HOLD_TOLERANCE),
            "held_until": min(until.values()), "held_until_per_interval": until,
            "T_test": T, "T_train": train_T(cfg), "tolerance": HOLD_TOLERANCE, "arrival": HOLD_ARRIVAL,
            "T_extended": T_long}


def hold_sentence(runs: Sequence[Mapping[str, Any]], models: Sequence[str]) -> str:
    """Which seeds fail to hold their output (see :func:`hold_metrics`), per model; '' without hold metrics."""
    parts = []
    for m in models:
        rs = sorted((r for r in runs if r["model"] == m and "hold" in r), key=lambda r: r["seed"])
        if not rs:
            continue
        bad = [r for r in rs if r["hold"]["fails"]]
        parts.append(f"{MODEL_LABELS.get(m, m)} {len(bad)} of {len(rs)}"
                     + (" (" + ", ".join(f"seed {r['seed']}: off by {r['hold']['error']:.2f}" for r in bad) + ")"
                        if bad else ""))
    if not parts:
        return ""
    ex = next(r["hold"] for r in runs if "hold" in r)
    return (f"Seeds whose output, once at the ramp's final value, leaves it by more than {ex['tolerance']:g} "
            f"before the end of a test trial (or never reaches it): " + "; ".join(parts) + ".")


def interval_labels(cfg: Mapping[str, Any]) -> dict[str, str]:
    """The trained, shorter and longer test intervals as text (``"12-18"``, ``"4-10"``, ``"none"``)."""
    t = cfg["task"]
    trained = sorted(t["train_intervals"])
    lo, hi = trained[0], trained[-1]
    shorter = [i for i in t["test_intervals"] if i < lo]
    longer = [i for i in t["test_intervals"] if i > hi]
    in_test = [i for i in t["test_intervals"] if i in trained]

    def span(v):
        return (f"{min(v)}-{max(v)}" if len(v) > 1 else str(v[0])) if v else "none"
    return {"trained": span(in_test), "shorter": span(shorter), "longer": span(longer)}


def comparison_sentence(runs: Sequence[Mapping[str, Any]], key: str = "l2.extrapolated") -> str:
    """The NM-RNN against the LR-RNN on ``key``, by medians and seed counts (robust to one failed seed)."""
    nm = [get_dotted(r, key) for r in runs if r["model"] == "nmrnn"]
    lr = [get_dotted(r, key) for r in runs if r["model"] == "lrrnn"]
    nm_f = [v for v in nm if v is not None]
    lr_f = [v for v in lr if v is not None]
    if not nm_f or not lr_f:
        return "No extrapolated intervals in the test set."
    nm_med, lr_med = float(np.median(nm_f)), float(np.median(lr_f))
    c = count_better(nm, lr)
    verdict = "below" if nm_med < lr_med else "NOT below"
    text = (f"NM-RNN extrapolation error (median {nm_med:.2e}) is {verdict} the LR-RNN's (median {lr_med:.2e}; "
            f"ratio {lr_med / nm_med if nm_med > 0 else float('inf'):.1f}x); {c['below_best']} of {c['n']} NM-RNN "
            f"seeds beat the best LR-RNN seed ({min(lr_f):.2e}) and {c['below_median']} of {c['n']} beat its median.")
    bad = outlier_seeds([r for r in runs if r["model"] == "nmrnn"], key)
    if bad:
        text += " Failing NM-RNN seed" + ("s" if len(bad) > 1 else "") + ": " + ", ".join(
            f"seed {s} ({v:.2e}, over 10x the median)" for s, v in bad) + "."
    return text


# ----------------------------------------------------------------------------
# The declaration
# ----------------------------------------------------------------------------
class MeasureWaitGoExperiment(Experiment):
    """Measure-Wait-Go: four parameter-matched models trained on 4 intervals, tested on 12."""

    name = "mwg"
    title = "Measure-Wait-Go: extrapolation to untrained intervals"
    summary = "the timing experiment (Fig. 3): extrapolation to untrained intervals"
    figures_module = "nmrnn_np.experiments.mwg_figures"
    summary_metrics = {"train_loss": "train_loss", "trained": "l2.trained", "shorter": "l2.shorter",
                       "longer": "l2.longer", "extrapolated": "l2.extrapolated", "hold_error": "hold.error",
                       "held_until": "hold.held_until", "wall_time": "wall_time"}
    group_fields = ("model",)
    table_style = "mean"
    cli_options = (
        CliOption("--models", "experiment.models", "comma-separated subset of nmrnn,lrrnn,rnn,lstm "
                  "(default: all four)", name_list(MODEL_NAMES), "LIST"),
        CliOption("--steps", "training.steps", "full-parameter training steps per model (default: from the mode)",
                  positive(int), "N"),
        CliOption("--lr", "training.lr", "learning rate (default: from the mode)", positive(float), "LR"),
        CliOption("--clamp", "experiment.clamp", "ablation: clamp each component of s to its trial mean, 0 or 1 "
                  "(default: mean)", str, None, CLAMP_MODES),
    )
    figure_captions = {
        "errors": "L2 error (mean squared error) of each model on the trained intervals and on the shorter and "
                  "longer intervals it never saw; one point per seed, bar = median (log axis).",
        "outputs": "Outputs (solid) against targets (dashed) of each model's median seed, for the trained "
                   "intervals (left) and the extrapolated ones (right), aligned to the go cue.",
        "nm_signal": "The NM-RNN's neuromodulatory signal s(t), each component, aligned to the go cue; one line "
                     "per test interval.",
        "ablation": "Ablation: each component of s clamped in turn (median seed's outputs, top) and the increase "
                    "of the test error per component (every seed, bottom; the numbering of the components is "
                    "arbitrary and differs between seeds).",
        "latents": "The NM-RNN's output-network state projected on its K (orthonormalised) left factors, "
                   "kappa = L^T x, one line per test interval.",
        "hold": "The hold after the ramp: the step (from the trial's start) at which each seed's output first "
                "leaves the ramp's final value (+-0.25) on test trials extended to 400 steps, earliest over the "
                "intervals, against the length of the training and test trials; and, for the NM-RNN seed that "
                "leaves first, its outputs, its outputs with s frozen after the ramp, and s over the extended "
                "trials.",
        "training": "Training loss per step (every seed).",
    }

    def default_settings(self, mode: str) -> dict[str, Any]:
        return default_config(mode)

    def validate(self, settings: Mapping[str, Any]) -> None:
        validate_config(settings)

    def grid(self, settings: Mapping[str, Any]) -> list[dict[str, Any]]:
        ex = settings["experiment"]
        return [{"model": m, "seed": s} for m in ex["models"]
                for s in range(ex["first_seed"], ex["first_seed"] + ex["seeds"])]

    def describe(self, settings: Mapping[str, Any]) -> list[str]:
        lines = []
        for name in settings["experiment"]["models"]:
            model = build_model(name, settings)
            sizes = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in settings["models"][name].items())
            lines.append(f"  {MODEL_LABELS[name]:<7} ({sizes}): {model.n_params()} parameters")
        return lines

    def build(self, ctx: RunContext):
        model = build_model(ctx.run["model"], ctx.settings)
        return model, model.init_params(ctx.seed)

    def stages(self, ctx: RunContext, model) -> list[Stage]:
        tr = ctx.settings["training"]
        train_task, _ = make_tasks(ctx.settings)
        data = train_task.all_trials()
        return [Stage(name, steps, data, trainable=trainable, optimizer=tr["optimizer"], lr=tr["lr"],
                      train_options={"checkpoint_every": tr["checkpoint_every"]})
                for name, steps, trainable in training_stages(ctx.run["model"], ctx.settings)]

    def evaluate(self, ctx: RunContext, model, params) -> dict[str, Any]:
        return evaluate_params(model, params, ctx.settings)

    def progress_line(self, result: Mapping[str, Any]) -> str:
        def fmt(v):
            return "n/a" if v is None else f"{v:.2e}"
        return (f"train {fmt(result.get('train_loss'))}, trained {fmt(get_dotted(result, 'l2.trained'))}, "
                f"extrapolated {fmt(get_dotted(result, 'l2.extrapolated'))}")

    def model_metadata(self, ctx: RunContext) -> dict[str, Any]:
        return {"experiment": "mwg", "model": ctx.run["model"], "seed": ctx.seed, "config": dict(ctx.settings)}

    def table_columns(self, settings: Mapping[str, Any]) -> list[Column]:
        iv = interval_labels(settings)
        n_train = len(make_tasks(settings)[0].all_trials()[0])
        return [Column(f"train loss ({n_train} trials)", "train_loss"),
                Column(f"L2 trained ({iv['trained']})", "trained"),
                Column(f"L2 shorter ({iv['shorter']})", "shorter"),
                Column(f"L2 longer ({iv['longer']})", "longer"),
                Column("L2 extrapolated", "extrapolated"),
                Column("wall time / run (s)", "wall_time", ".0f")]

    def row_labels(self, settings: Mapping[str, Any]) -> list[tuple[str, Callable]]:
        return [("model", lambda e: MODEL_LABELS.get(e["model"], e["model"])),
                ("params", lambda e: str(build_model(e["model"], settings).n_params()))]

    def document(self, settings: Mapping[str, Any], runs) -> dict[str, Any]:
        models = [m for m in settings["experiment"]["models"] if any(r["model"] == m for r in runs)]
        return {"intervals": interval_labels(settings),
                "n_params": {m: build_model(m, settings).n_params() for m in models}}

    def report_sections(self, rc) -> dict[str, list[str]]:
        cfg = rc.settings
        tr, task = cfg["training"], cfg["task"]
        n_train = len(make_tasks(cfg)[0].all_trials()[0])
        iv = interval_labels(cfg)
        intro = [
            f"{len(cfg['experiment']['models'])} models x {cfg['experiment']['seeds']} seeds. "
            f"Trained on intervals {task['train_intervals']} with the measure pulse at every step in "
            f"[{task['measure_window'][0]}, {task['measure_window'][1]}) ({n_train} trials of {train_T(cfg)} steps, "
            f"full batch); tested on "
            f"intervals {task['test_intervals']} with the measure pulse at t = {task['test_t_measure']}.",
            f"Optimiser {tr['optimizer']}, lr {tr['lr']:g}; {tr['steps']} steps"
            + (f"; the NM-RNN first trains its output network for {tr['nmrnn_output_steps']} steps"
               if tr["nmrnn_output_steps"] else "")
            + (f"{' and then' if tr['nmrnn_output_steps'] else '; the NM-RNN first trains'} only its "
               f"NM subnetwork for {tr['nmrnn_nm_steps']} steps" if tr["nmrnn_nm_steps"] else "")
            + ".", "",
            f"L2 error = mean squared error over all time steps; trained = test intervals {iv['trained']}, "
            f"shorter = {iv['shorter']}, longer = {iv['longer']}, extrapolated = shorter and longer together; "
            f"train loss on the {n_train} training trials (best parameters kept).", ""]
        results: list[str] = []
        console: list[str] = []
        models = {r["model"] for r in rc.runs}
        if {"nmrnn", "lrrnn"} <= models:
            sentence = comparison_sentence(rc.runs)
            results += [sentence, ""]
            console.append(sentence)
        held = hold_sentence(rc.runs, [m for m in cfg["experiment"]["models"] if m in models])
        if held:
            results += [held, ""]
            console.append(held)
        ab = [r["ablation"] for r in rc.runs if r["model"] == "nmrnn" and "ablation" in r]
        if ab:
            inc = np.array([a["increase"] for a in ab])
            cells = ", ".join(f"s{k + 1}: {np.median(inc[:, k]):+.1e}" for k in range(inc.shape[1]))
            mode = ab[0]["mode"]
            results += [f"Ablation (components clamped to their {'trial mean' if mode == 'mean' else mode + ' value'}): "
                        f"median increase of the test error over seeds: {cells}.", ""]
        return {"intro": intro, "results": results, "console": console}


#: the Measure-Wait-Go experiment, as the runner sees it
EXPERIMENT = MeasureWaitGoExperiment()


# ----------------------------------------------------------------------------
# Functions of the earlier API, kept as thin wrappers of the runner
# ----------------------------------------------------------------------------
def run_experiment(cfg: Mapping[str, Any] | None, out: str | os.PathLike, *, jobs: int = 0, resume: bool = False,
                   figures: bool = True, executor: str | None = None, scheduler: str | None = None,
                   log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the experiment (see :func:`nmrnn_np.experiments.runner.run_experiment`).

    ``jobs=0`` runs everything in this process (``executor="inline"``);
    ``jobs >= 1`` uses that many worker processes unless ``executor`` says otherwise.
    """
    if executor is None:
        executor = "inline" if jobs == 0 else "process"
    return _run_experiment(EXPERIMENT, cfg, out, executor=executor, jobs=max(jobs, 1), scheduler=scheduler, resume=resume,
               figures=figures, log=log)


def evaluate_run_dir(out: str | os.PathLike, *, clamp: str | None = None, figures: bool = True,
                     log: Callable[[str], None] = print) -> dict[str, Any]:
    """Evaluate every finished run of an experiment folder again; write metrics, report and figures.

    The trained models are loaded from their ``model.npz`` and evaluated again
    (simulation only, fast), so this works on any finished run, including one
    written by ``nmrnn-np train``. ``clamp`` changes the ablation's clamp mode.
    """
    if clamp is not None and clamp not in CLAMP_MODES:
        raise ConfigError(f"clamp must be one of {', '.join(CLAMP_MODES)}, got {clamp!r}")
    overrides = {"experiment": {"clamp": clamp}} if clamp is not None else None
    return aggregate(out, figures=figures, reevaluate=True, overrides=overrides, log=log)

