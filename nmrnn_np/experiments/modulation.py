"""Excitability versus synaptic modulation: robustness to an ambiguous context, task packing, dynamics.

The question of Vedovati & Ching ("Synergistic pathways of modulation enable
robust task packing within neural dynamics", arXiv 2408.01316): should a
context act on **synapses** or on **neuronal excitability**? Only the study's
abstract is available, so this experiment's design is ours (docs/modulation.md
says what is ours and what is the study's). It uses the NM-RNN's
``modulation`` option (:mod:`nmrnn_np.models.modulation`): the NM subnetwork's
signal s(t) either scales the rank-1 components of the recurrent weights
(``"synaptic"``, the NM-RNN), sets the gains of K equal populations of neurons
(``"excitability"``), or half of each (``"both"``); the three have the same
parameters, so they are compared at equal parameter counts.

Every run trains one network on ``n_tasks`` tasks of the multitask set (the
four tasks of Duncker et al., then the authors' DM1 and DM2), the context
reaching the NM subnetwork only (``U_x`` = the task inputs), for a fixed number
of steps on fresh batches, and is scored on fixed noise-free test trials:

* **packing**: a run *packs* its tasks when every task reaches the criterion
  (80 % correct); ``packing[modulation][N]`` is the largest number of tasks
  packed at size N (a number of tasks counts as packed when at least half of
  its seeds pack it; the best K at that N);
* **ambiguity** (runs at the reference size with ``reference_tasks`` tasks, the
  four-task set by default): the context
  is ``c = (1 - lambda) e_i + lambda e_j`` (j the next task) for lambda from 0 to
  0.5, and separately ``e_i + N(0, sigma^2)`` noise; percent correct on task i
  against lambda and sigma, ``ambiguity_auc`` (area under the curve over the
  lambda range, normalised to [0, 1]) and the lambda where it falls below the
  criterion;
* **dynamics** (the same runs): how far apart the task-averaged trajectories of
  x are (RMS distance), the principal angles between the tasks' subspaces, and
  the participation ratio of x.

Run it with ``nmrnn-np modulation`` or ``nmrnn-np run modulation``; figures in
:mod:`nmrnn_np.experiments.modulation_figures`.
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .. import _validation as V
from .._rng import as_generator
from ..metrics import percent_correct
from ..models import make_model
from ..models.base import RecurrentModel
from ..models.modulation import MODULATIONS
from ..optim import OPTIMIZERS
from ..tasks import Multitask, MultitaskBatch
from .analysis import participation_ratio, principal_angles, principal_subspace, trajectory_distance
from .base import CliOption, Experiment, RunContext, Stage, base_settings, check_names, name_list, positive
from .config import ConfigError
from .summary import Column

__all__ = ["EXPERIMENT", "ModulationExperiment", "TASK_ORDER", "default_settings", "parse_size", "task_names",
           "build_model", "mixed_context", "noisy_context", "auc", "threshold_crossing", "packing_table",
           "test_batch", "ambiguity_curves", "dynamics_measures"]

#: the tasks in the order they are added: the four-task set, then the authors' DM1 and DM2
TASK_ORDER = ("delay_pro", "delay_anti", "memory_pro", "memory_anti", "dm1", "dm2")

_SCHEDULES = {
    "quick": dict(steps=3500, seeds=2, sizes=["16,4", "32,4", "32,2"], n_tasks=[2, 4, 6], reference="32,4"),
    "full": dict(steps=20_000, seeds=5, sizes=["16,4", "32,4", "64,4", "100,4", "64,2", "64,8"],
                 n_tasks=[2, 3, 4, 5, 6], reference="64,4"),
}


def default_settings(mode: str = "quick") -> dict[str, Any]:
    """The settings of ``mode`` (the TOML schema).

    ``experiment``: ``modulations``, ``sizes`` (``"N,K"`` strings), ``n_tasks``
    (list), ``reference`` and ``reference_tasks`` (the size and number of
    tasks tested for ambiguity and dynamics: the four-task set), ``criterion``; ``task``: T, test trials per task and their seed, the
    lambda and sigma grids; ``training``: steps, lr, batch size, optimiser;
    ``model``: M and the time constants.
    """
    if mode not in _SCHEDULES:
        raise ConfigError(f"experiment.mode must be one of {', '.join(_SCHEDULES)}, got {mode!r}")
    s = _SCHEDULES[mode]
    return {
        "experiment": base_settings("modulation", mode, s["seeds"], modulations=list(MODULATIONS), sizes=s["sizes"],
                                    n_tasks=s["n_tasks"], reference=s["reference"], reference_tasks=4,
                                    criterion=0.8),
        "task": {"T": 50, "test_trials": 100, "test_seed": 31,
                 "lambdas": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], "sigmas": [0.0, 0.25, 0.5, 1.0, 1.5, 2.0]},
        "training": {"steps": int(s["steps"]), "lr": 5e-3, "batch_size": 64, "optimizer": "clip_adamw",
                     "checkpoint_every": 1000},
        "model": {"M": 5, "tau_x": 10.0, "tau_z": 100.0},
    }


def parse_size(size: str) -> tuple[int, int]:
    """``"N,K"`` -> ``(N, K)``, positive ints with K <= N."""
    if not isinstance(size, str):
        raise TypeError(f"size must be a string 'N,K', got {size!r} ({type(size).__name__})")
    try:
        vals = tuple(int(p) for p in size.split(","))
    except ValueError:
        vals = ()
    if len(vals) != 2 or min(vals) < 1 or vals[1] > vals[0]:
        raise ValueError(f"size must be a string 'N,K' of positive integers with K <= N, got {size!r}")
    return vals  # type: ignore[return-value]


def task_names(n_tasks: int) -> tuple[str, ...]:
    """The first ``n_tasks`` tasks of :data:`TASK_ORDER`."""
    n_tasks = V.integer(n_tasks, "n_tasks", 1, len(TASK_ORDER))
    return TASK_ORDER[:n_tasks]


def make_task(settings: Mapping[str, Any], n_tasks: int) -> Multitask:
    return Multitask(tasks=task_names(n_tasks), T=settings["task"]["T"])


def build_model(run: Mapping[str, Any], settings: Mapping[str, Any]) -> RecurrentModel:
    """The NM-RNN of a run: ``N``, ``K``, ``modulation``; the context reaches z only."""
    task = make_task(settings, run["n_tasks"])
    c = len(task.task_input_names)
    return make_model("nmrnn", N=run["N"], K=run["K"], U=c + run["n_tasks"], O=3, U_x=c,
                      modulation=run["modulation"], **settings["model"])


# ----------------------------------------------------------------------------
# Ambiguous contexts
# ----------------------------------------------------------------------------
def mixed_context(batch, lam: float, shift: int = 1) -> np.ndarray:
    """Inputs of ``batch`` with each trial's context ``(1 - lam) e_i + lam e_j``, ``j = (i + shift) mod n``.

    ``batch`` is a :class:`~nmrnn_np.tasks.MultitaskBatch`; returns (B, T, U).
    """
    _check_batch(batch)
    lam = V.real(lam, "lam", 0.0, 1.0)
    shift = V.integer(shift, "shift")
    n = batch.context.shape[-1]
    ctx = np.zeros_like(batch.context)
    idx = np.arange(len(batch.task))
    ctx[idx, :, batch.task] = 1.0 - lam
    ctx[idx, :, (batch.task + shift) % n] += lam
    return np.concatenate([batch.task_inputs, ctx], axis=-1)


def noisy_context(batch, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Inputs of ``batch`` with ``N(0, sigma^2)`` noise added to every context channel at every step."""
    _check_batch(batch)
    sigma = V.real(sigma, "sigma", 0.0)
    gen = as_generator(rng)
    ctx = batch.context + sigma * gen.standard_normal(batch.context.shape)
    return np.concatenate([batch.task_inputs, ctx], axis=-1)


def _check_batch(batch) -> None:
    if not isinstance(batch, MultitaskBatch):
        raise TypeError(f"batch must be a MultitaskBatch (Multitask.sample), got {type(batch).__name__}")


def _curve(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = V.float_array(x, "x", ndim=1)
    y = V.float_array(y, "y", ndim=1)
    if x.shape != y.shape or x.size < 2 or np.any(np.diff(x) <= 0):
        raise ValueError("x must be an increasing 1-D grid of at least two points, y of the same shape")
    return x, y


def auc(x: Sequence[float], y: Sequence[float]) -> float:
    """Area under ``y(x)`` (trapezoids) divided by the range of ``x``: the mean height, in [0, 1] for fractions."""
    x, y = _curve(x, y)
    return float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(x)) / (x[-1] - x[0]))


def threshold_crossing(x: Sequence[float], y: Sequence[float], level: float) -> float | None:
    """The first x where ``y`` falls below ``level`` (linear between grid points); None if it never does.

    0 (the first grid point) when ``y`` starts below ``level``.
    """
    x, y = _curve(x, y)
    level = V.real(level, "level")
    below = np.nonzero(y < level)[0]
    if below.size == 0:
        return None
    i = int(below[0])
    if i == 0:
        return float(x[0])
    return float(x[i - 1] + (y[i - 1] - level) / (y[i - 1] - y[i]) * (x[i] - x[i - 1]))


def test_batch(settings: Mapping[str, Any], n_tasks: int):
    """Fixed noise-free test trials, ``task.test_trials`` per task (seed ``task.test_seed``)."""
    t = settings["task"]
    n = t["test_trials"] * n_tasks
    return make_task(settings, n_tasks).sample(t["test_seed"], n, task=np.repeat(np.arange(n_tasks), t["test_trials"]))


def per_task_correct(model, params, inputs, batch, backend=None) -> list[float]:
    y = model.simulate(params, inputs, backend=backend).y
    return [percent_correct(inputs[batch.task == i], batch.targets[batch.task == i], y[batch.task == i])
            for i in range(batch.context.shape[-1])]


def ambiguity_curves(model, params, batch, lambdas: Sequence[float], sigmas: Sequence[float], seed: int,
                     backend: str | None = None) -> dict[str, list[float]]:
    """Mean fraction correct over tasks against lambda (mixed context) and against sigma (noisy context)."""
    mixed = [float(np.mean(per_task_correct(model, params, mixed_context(batch, lam), batch, backend)))
             for lam in lambdas]
    rng = np.random.default_rng(seed)
    noisy = [float(np.mean(per_task_correct(model, params, noisy_context(batch, s, rng), batch, backend)))
             for s in sigmas]
    return {"mixed": mixed, "noisy": noisy}


def dynamics_measures(model, params, batch, backend: str | None = None, k: int = 3) -> dict[str, float]:
    """How the network separates its tasks: RMS distance between task-averaged x trajectories (mean over
    pairs), the mean principal angle (degrees) between the tasks' k-dimensional subspaces of x, and the
    participation ratio of x over all test trials."""
    x = model.simulate(params, batch.inputs, backend=backend).x
    n = batch.context.shape[-1]
    avg = [x[batch.task == i].mean(axis=0) for i in range(n)]
    k = min(k, x.shape[-1])
    bases = [principal_subspace(x[batch.task == i], k) for i in range(n)]
    pairs = list(itertools.combinations(range(n), 2))
    return {"distance": float(np.mean([trajectory_distance(avg[i], avg[j]) for i, j in pairs])),
            "angle": float(np.degrees(np.mean([principal_angles(bases[i], bases[j]).mean() for i, j in pairs]))),
            "participation_ratio": participation_ratio(x)}


def packing_table(runs: Sequence[Mapping[str, Any]], modulations: Sequence[str]) -> tuple[dict, dict]:
    """``(by_N, by_size)``: the largest number of tasks packed per modulation and size.

    A (modulation, N, K, n_tasks) point is packed when at least half of its
    seeds pack every task. ``by_size[mod]["N,K"]`` is the largest such
    n_tasks (0 if none); ``by_N[mod][str(N)]`` the largest over the K at that N.
    """
    groups: dict[tuple, list[bool]] = {}
    for r in runs:
        groups.setdefault((r["modulation"], r["N"], r["K"], r["n_tasks"]), []).append(bool(r["packed"]))
    by_size: dict[str, dict[str, int]] = {m: {} for m in modulations}
    by_n: dict[str, dict[str, int]] = {m: {} for m in modulations}
    for (m, N, K, n), packed in sorted(groups.items()):
        ok = sum(packed) >= len(packed) / 2
        key = f"{N},{K}"
        by_size.setdefault(m, {})
        by_size[m][key] = max(by_size[m].get(key, 0), n if ok else 0)
        by_n.setdefault(m, {})
        by_n[m][str(N)] = max(by_n[m].get(str(N), 0), n if ok else 0)
    return by_n, by_size


# ----------------------------------------------------------------------------
class ModulationExperiment(Experiment):
    """Synaptic, excitability and both: ambiguity, packing and dynamics at equal parameter counts."""

    name = "modulation"
    title = "Excitability versus synaptic modulation: ambiguous contexts and task packing"
    summary = "synaptic vs excitability modulation (the second study): ambiguous contexts, task packing, dynamics"
    figures_module = "nmrnn_np.experiments.modulation_figures"
    summary_metrics = {"mean_correct": "mean_correct", "min_correct": "min_correct",
                       "ambiguity_auc": "ambiguity_auc", "noise_auc": "noise_auc", "wall_time": "wall_time"}
    group_fields = ("modulation", "N", "K", "n_tasks")
    table_style = "median"
    cli_options = (
        CliOption("--modulations", "experiment.modulations", "comma-separated subset of "
                  + ",".join(MODULATIONS) + " (default: all three)", name_list(MODULATIONS, "modulation"), "LIST"),
        CliOption("--steps", "training.steps", "training steps per run (default: from the mode)", positive(int), "N"),
    )
    figure_captions = {
        "ambiguity": "Mean fraction correct over tasks at the reference size when the context is mixed with the "
                     "next task's, (1 - lambda) e_i + lambda e_j (left), or carries Gaussian noise (right); thin "
                     "lines: seeds, thick: median; dotted: the criterion.",
        "packing": "Tasks packed (every task >= criterion in at least half of the seeds) per network size and "
                   "modulation.",
        "dynamics": "How the reference networks separate their tasks: RMS distance between task-averaged "
                    "trajectories of x, mean principal angle between the tasks' 3-d subspaces, participation "
                    "ratio of x; a point per seed.",
    }

    def default_settings(self, mode: str) -> dict[str, Any]:
        return default_settings(mode)

    def validate(self, settings: Mapping[str, Any]) -> None:
        ex, t, tr = settings["experiment"], settings["task"], settings["training"]
        mods = ex["modulations"]
        check_names(mods, MODULATIONS, "experiment.modulations")
        if not ex["sizes"]:
            raise ConfigError("experiment.sizes must list at least one 'N,K'")
        for key in ("sizes",):
            for v in ex[key]:
                try:
                    parse_size(v)
                except (ValueError, TypeError) as exc:
                    raise ConfigError(f"experiment.{key}: {exc}") from None
        try:
            parse_size(ex["reference"])
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"experiment.reference: {exc}") from None
        if ex["reference"] not in ex["sizes"]:
            raise ConfigError(f"experiment.reference ({ex['reference']!r}) must be one of experiment.sizes")
        if "both" in mods and any(parse_size(v)[1] < 2 for v in ex["sizes"]):
            raise ConfigError("experiment.sizes: modulation 'both' needs K >= 2 (half of s on each pathway)")
        if not ex["n_tasks"] or any(not isinstance(n, int) or not 2 <= n <= len(TASK_ORDER) for n in ex["n_tasks"]):
            raise ConfigError(f"experiment.n_tasks must list integers in [2, {len(TASK_ORDER)}], got {ex['n_tasks']}")
        if ex["reference_tasks"] not in ex["n_tasks"]:
            raise ConfigError(f"experiment.reference_tasks ({ex['reference_tasks']}) must be one of experiment.n_tasks "
                              f"{ex['n_tasks']}")
        if not 0 < ex["criterion"] <= 1:
            raise ConfigError(f"experiment.criterion must be in (0, 1], got {ex['criterion']}")
        lam = t["lambdas"]
        if len(lam) < 2 or any(not 0 <= v <= 1 for v in lam) or any(b <= a for a, b in zip(lam, lam[1:])):
            raise ConfigError(f"task.lambdas must be an increasing list of at least two values in [0, 1], got {lam}")
        sig = t["sigmas"]
        if len(sig) < 2 or any(not v >= 0 for v in sig) or any(b <= a for a, b in zip(sig, sig[1:])):
            raise ConfigError(f"task.sigmas must be an increasing list of at least two values >= 0, got {sig}")
        if t["test_trials"] < 1:
            raise ConfigError(f"task.test_trials must be >= 1, got {t['test_trials']}")
        try:
            make_task(settings, max(ex["n_tasks"]))
        except ValueError as exc:
            raise ConfigError(f"task.T: {exc}") from None
        if tr["steps"] < 1:
            raise ConfigError(f"training.steps must be >= 1, got {tr['steps']}")
        if tr["batch_size"] < 1:
            raise ConfigError(f"training.batch_size must be >= 1, got {tr['batch_size']}")
        if not (tr["lr"] > 0 and math.isfinite(tr["lr"])):
            raise ConfigError(f"training.lr must be a positive number, got {tr['lr']}")
        if tr["optimizer"] not in OPTIMIZERS:
            raise ConfigError(f"training.optimizer must be one of {', '.join(OPTIMIZERS)}, got {tr['optimizer']!r}")
        if tr["checkpoint_every"] < 1:
            raise ConfigError(f"training.checkpoint_every must be >= 1, got {tr['checkpoint_every']}")
        try:
            for run in self.grid(settings)[:1]:
                build_model(run, settings)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"model: {exc}") from None

    def grid(self, settings: Mapping[str, Any]) -> list[dict[str, Any]]:
        ex = settings["experiment"]
        runs = []
        for mod in ex["modulations"]:
            for size in ex["sizes"]:
                N, K = parse_size(size)
                for n in ex["n_tasks"]:
                    for s in range(ex["first_seed"], ex["first_seed"] + ex["seeds"]):
                        runs.append({"modulation": mod, "N": N, "K": K, "n_tasks": n, "seed": s})
        return runs

    def run_name(self, run: Mapping[str, Any]) -> str:
        return f"{run['modulation']}_N{run['N']}K{run['K']}_tasks{run['n_tasks']}_seed{run['seed']}"

    def describe(self, settings: Mapping[str, Any]) -> list[str]:
        ex = settings["experiment"]
        lines = []
        for size in ex["sizes"]:
            N, K = parse_size(size)
            counts = {m: build_model({"modulation": m, "N": N, "K": K, "n_tasks": max(ex["n_tasks"])}, settings)
                      .n_params() for m in ex["modulations"]}
            lines.append(f"  N={N}, K={K}: " + ", ".join(f"{m} {c}" for m, c in counts.items())
                         + f" parameters ({max(ex['n_tasks'])} tasks)")
        return lines

    def _is_reference(self, run: Mapping[str, Any], settings: Mapping[str, Any]) -> bool:
        ex = settings["experiment"]
        return (f"{run['N']},{run['K']}" == ex["reference"].replace(" ", "")
                and run["n_tasks"] == ex["reference_tasks"])

    def build(self, ctx: RunContext):
        model = build_model(ctx.run, ctx.settings)
        return model, model.init_params(ctx.seed)

    def stages(self, ctx: RunContext, model) -> list[Stage]:
        tr = ctx.settings["training"]
        task = make_task(ctx.settings, ctx.run["n_tasks"])
        bs = tr["batch_size"]

        def data(rng):
            b = task.sample(rng, bs)
            return b.inputs, b.targets

        # keep="last": every run is judged after the same budget. With fresh batches the lowest minibatch
        # loss is often a lucky batch (a 4-task run whose best-minibatch parameters, from step 582 of 2000,
        # scored 0 % on every task), so "best" would measure luck, not capacity.
        return [Stage("train", tr["steps"], data, optimizer=tr["optimizer"], lr=tr["lr"], keep="last",
                      train_options={"checkpoint_every": tr["checkpoint_every"]})]

    def evaluate(self, ctx: RunContext, model, params) -> dict[str, Any]:
        s, backend = ctx.settings, ctx.backend
        n = ctx.run["n_tasks"]
        batch = test_batch(s, n)
        correct = per_task_correct(model, params, batch.inputs, batch, backend)
        crit = s["experiment"]["criterion"]
        out: dict[str, Any] = {"correct": dict(zip(task_names(n), correct)), "mean_correct": float(np.mean(correct)),
                               "min_correct": float(np.min(correct)), "packed": bool(min(correct) >= crit),
                               "n_params": model.n_params()}
        if self._is_reference(ctx.run, s):
            t = s["task"]
            curves = ambiguity_curves(model, params, batch, t["lambdas"], t["sigmas"], t["test_seed"] + 1, backend)
            out["ambiguity"] = {"lambdas": list(t["lambdas"]), "sigmas": list(t["sigmas"]), **curves}
            out["ambiguity_auc"] = auc(t["lambdas"], curves["mixed"])
            out["noise_auc"] = auc(t["sigmas"], curves["noisy"])
            # the AUC mixes how well the network does at all with how fast it degrades: also relative to lambda=0
            base = curves["mixed"][0]
            out["ambiguity_auc_relative"] = out["ambiguity_auc"] / base if base > 0 else None
            out["lambda_at_criterion"] = threshold_crossing(t["lambdas"], curves["mixed"], crit)
            out["dynamics"] = dynamics_measures(model, params, batch, backend)
        return out

    def progress_line(self, result: Mapping[str, Any]) -> str:
        text = f"mean correct {result['mean_correct']:.0%}, worst task {result['min_correct']:.0%}"
        if "ambiguity_auc" in result:
            text += f"; ambiguity AUC {result['ambiguity_auc']:.2f}"
        return text

    def model_metadata(self, ctx: RunContext) -> dict[str, Any]:
        return {"experiment": "modulation", **ctx.run}

    def table_columns(self, settings: Mapping[str, Any]) -> list[Column]:
        return [Column("mean correct", "mean_correct", ".2f"), Column("worst task", "min_correct", ".2f"),
                Column("ambiguity AUC (lambda)", "ambiguity_auc", ".2f"), Column("noise AUC (sigma)", "noise_auc", ".2f"),
                Column("wall time / run (s)", "wall_time", ".0f")]

    def row_labels(self, settings: Mapping[str, Any]) -> list[tuple[str, Callable]]:
        return [("modulation", lambda e: str(e["modulation"])), ("N", lambda e: str(e["N"])),
                ("K", lambda e: str(e["K"])), ("tasks", lambda e: str(e["n_tasks"]))]

    def document(self, settings: Mapping[str, Any], runs) -> dict[str, Any]:
        by_n, by_size = packing_table(runs, settings["experiment"]["modulations"])
        return {"packing": by_n, "packing_by_size": by_size}

    def report_sections(self, rc) -> dict[str, list[str]]:
        s = rc.settings
        ex, tr, t = s["experiment"], s["training"], s["task"]
        intro = [f"Modulations {', '.join(ex['modulations'])}; sizes (N,K) {', '.join(ex['sizes'])}; "
                 f"{', '.join(map(str, ex['n_tasks']))} tasks ({', '.join(TASK_ORDER[:max(ex['n_tasks'])])}, in "
                 f"this order); {ex['seeds']} seeds. Each run: {tr['steps']} steps ({tr['optimizer']}, lr "
                 f"{tr['lr']:g}) on fresh batches of {tr['batch_size']} trials (T = {t['T']}); the context reaches "
                 f"the NM subnetwork only. Scores: fraction correct on {t['test_trials']} noise-free test trials per "
                 f"task; a run packs its tasks when every task reaches {ex['criterion']:.0%}. Ambiguity and dynamics: "
                 f"the reference size {ex['reference']} with {ex['reference_tasks']} tasks.", ""]
        results = ["**Packing** (largest number of tasks packed, by at least half of the seeds; columns N,K):", ""]
        results += _packing_markdown(rc.doc.get("packing_by_size", {}))
        ref = [r for r in rc.runs if "ambiguity_auc" in r]
        if ref:
            results += ["", "**Ambiguity** at the reference size (median over seeds):", "",
                        "| modulation | correct at lambda = 0 | AUC over lambda | relative AUC | lambda at criterion "
                        "(per seed) | AUC over sigma | distance | angle (deg) | participation ratio |",
                        "|---|---|---|---|---|---|---|---|---|"]
            for m in ex["modulations"]:
                rs = [r for r in ref if r["modulation"] == m]
                if not rs:
                    continue
                lam = [r["lambda_at_criterion"] for r in rs]
                lam_txt = ", ".join("none" if v is None else f"{v:.2f}" for v in lam)
                med = lambda key: float(np.median([r[key] for r in rs]))  # noqa: E731
                dyn = lambda key: float(np.median([r["dynamics"][key] for r in rs]))  # noqa: E731
                rel = [r["ambiguity_auc_relative"] for r in rs if r.get("ambiguity_auc_relative") is not None]
                rel_txt = f"{np.median(rel):.2f}" if rel else "n/a"
                base = float(np.median([r["ambiguity"]["mixed"][0] for r in rs]))
                results.append(f"| {m} | {base:.2f} | {med('ambiguity_auc'):.2f} | {rel_txt} | {lam_txt} | "
                               f"{med('noise_auc'):.2f} | "
                               f"{dyn('distance'):.3f} | {dyn('angle'):.1f} | {dyn('participation_ratio'):.2f} |")
        results.append("")
        return {"intro": intro, "results": results, "console": _packing_markdown(rc.doc.get("packing_by_size", {}))}


def _packing_markdown(by_size: Mapping[str, Mapping[str, int]]) -> list[str]:
    sizes = sorted({k for d in by_size.values() for k in d}, key=lambda k: tuple(int(v) for v in k.split(",")))
    if not sizes:
        return []
    lines = ["| modulation | " + " | ".join(sizes) + " |", "|---|" + "---|" * len(sizes)]
    for m, d in by_size.items():
        lines.append(f"| {m} | " + " | ".join(str(d.get(k, "")) for k in sizes) + " |")
    return lines


#: the modulation experiment, as the runner sees it
EXPERIMENT = ModulationExperiment()
