"""The element-finder experiment: NM-RNNs against LSTMs, LR-RNNs and RNNs at about 500 parameters.

Costacurta et al. (NeurIPS 2024), Figure 5. The element-finder task
(:class:`nmrnn_np.tasks.ElementFinder`): the first input is a query index
q in [0, 25), then 25 integers uniform in [-10, 10]; the target is the q-th
integer, scored at the last step (MSE). The paper finds that NM-RNNs of about
500 parameters rival LSTMs and beat low-rank and vanilla RNNs.

Models (all about 500 parameters; ``nmrnn-np eft`` prints every count):

* the authors' element-finder NM-RNN (feedback x -> z, recurrent term / N,
  no QR, no readout bias; :data:`nmrnn_np.reference_params.EFT_NMRNN_OPTIONS`),
  tau_x = 2, tau_z = 10, in the five configurations (M, N, K) of the study
  (:data:`NM_CONFIGS`: 497, 510, 483, 509 and 497 parameters);
* an LSTM, an LR-RNN (rank ``models.lrrnn.K``, 1/N, no readout bias, no QR,
  tau = 2) and a vanilla RNN (tau = 2), each with the hidden size whose
  parameter count is nearest ``experiment.budget``
  (:func:`nmrnn_np.models.nearest_size`). The authors' LR-RNN and LSTM code
  has no sizes and there is no vanilla-RNN code: the matching is ours.

Training is the authors': Adam(1e-2, 0.9, 0.999, eps 1e-7), no clipping, a
fresh batch of 128 trials every step drawn from the run's generator (the
runner's sampler, so a seed fixes every batch), the last-step MSE, 20,000
steps and 10 runs per model in ``--full``; initial states x0, z0 (h0, c0)
random once per run, N(0, 1)/sqrt(n), as theirs. Each run reports the test MSE
of its best parameters on a fixed, seeded held-out test set (the authors have
none) **and** the authors' own number, the lowest training-minibatch loss, so
the two can be compared; plus the MSE per query index and, for the NM-RNN,
the test MSE with each component of s clamped to its trial mean.

This module declares the experiment (:data:`EXPERIMENT`); run it with
``nmrnn-np eft`` or ``nmrnn-np run eft``. Figures:
:mod:`nmrnn_np.experiments.eft_figures`. Each run folder holds ``model.npz``
(:func:`nmrnn_np.load_model`) and ``initial_states.npz`` (``x0``, ``z0``;
``h0``, ``c0`` for the LSTM).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .. import _validation as V
from ..metrics import masked_l2
from ..models import make_model, nearest_size
from ..models.base import RecurrentModel
from ..optim import Optimizer
from ..reference_params import EFT_NMRNN_OPTIONS
from ..tasks import ElementFinder
from .analysis import ablate_components
from .base import CliOption, Experiment, RunContext, Stage, base_settings, check_names, name_list, positive
from .config import ConfigError
from .summary import Column, count_better

__all__ = ["EXPERIMENT", "ElementFinderExperiment", "MODEL_NAMES", "MODEL_LABELS", "NM_CONFIGS", "default_settings",
           "build_model", "baseline_sizes", "parse_config", "chance_mse", "ordering_sentence", "make_task", "sampler", "test_set", "evaluate_model"]

MODEL_NAMES = ("nmrnn", "lstm", "lrrnn", "rnn")
MODEL_LABELS = {"nmrnn": "NM-RNN", "lstm": "LSTM", "lrrnn": "LR-RNN", "rnn": "RNN"}
#: the study's NM-RNN configurations (M, N, K): 497, 510, 483, 509 and 497 parameters
NM_CONFIGS = ((5, 18, 8), (5, 13, 12), (10, 14, 5), (10, 12, 7), (15, 6, 5))

# The quick schedule was chosen by measurement (docs/eft.md, "Choosing the quick schedule").
_SCHEDULES = {
    "quick": dict(steps=10_000, seeds=3, nm_configs=["5,18,8", "10,14,5"], test_trials=2000),
    "full": dict(steps=20_000, seeds=10, nm_configs=[",".join(map(str, c)) for c in NM_CONFIGS], test_trials=5000),
}


def default_settings(mode: str = "quick") -> dict[str, Any]:
    """The settings of ``mode`` (the TOML schema).

    ``experiment``: models, seeds, ``nm_configs`` (list of ``"M,N,K"`` strings),
    ``budget`` (parameters the baselines are sized to); ``task``: L, the
    integer range, the test set's size and seed; ``training``: steps, lr,
    batch size, Adam's eps; ``models``: time constants and the LR-RNN's rank.
    """
    if mode not in _SCHEDULES:
        raise ConfigError(f"experiment.mode must be one of {', '.join(_SCHEDULES)}, got {mode!r}")
    s = _SCHEDULES[mode]
    return {
        "experiment": base_settings("eft", mode, s["seeds"], models=list(MODEL_NAMES), nm_configs=s["nm_configs"],
                                    budget=500),
        "task": {"L": 25, "low": -10, "high": 10, "test_trials": int(s["test_trials"]), "test_seed": 4242},
        "training": {"steps": int(s["steps"]), "lr": 1e-2, "batch_size": 128, "eps": 1e-7,
                     "checkpoint_every": 1000},
        "models": {"nmrnn": {"tau_x": 2.0, "tau_z": 10.0}, "lrrnn": {"K": 5, "tau": 2.0}, "rnn": {"tau": 2.0},
                   "lstm": {}},
    }


def baseline_sizes(settings: Mapping[str, Any]) -> dict[str, int]:
    """Hidden size N of each baseline, the nearest to ``experiment.budget`` parameters."""
    b, m = int(settings["experiment"]["budget"]), settings["models"]
    return {"lstm": nearest_size("lstm", b, U=1, O=1),
            "lrrnn": nearest_size("lrrnn", b, K=m["lrrnn"]["K"], U=1, O=1, readout_bias=False, orthonormalize=False),
            "rnn": nearest_size("rnn", b, U=1, O=1)}


def build_model(run: Mapping[str, Any], settings: Mapping[str, Any]) -> RecurrentModel:
    """The model of a run: ``run["model"]`` with ``run["N"]`` (and M, K for the NM-RNN)."""
    m, name = settings["models"], run["model"]
    if name == "nmrnn":
        return make_model("nmrnn", N=run["N"], K=run["K"], M=run["M"], U=1, O=1, **EFT_NMRNN_OPTIONS,
                          **m["nmrnn"])
    if name == "lrrnn":
        return make_model("lrrnn", N=run["N"], K=m["lrrnn"]["K"], U=1, O=1, readout_bias=False,
                          orthonormalize=False, tau=m["lrrnn"]["tau"])
    if name == "rnn":
        return make_model("rnn", N=run["N"], U=1, O=1, tau=m["rnn"]["tau"])
    return make_model("lstm", N=run["N"], U=1, O=1)


def parse_config(config: str) -> tuple[int, int, int]:
    """``"M,N,K"`` -> ``(M, N, K)``, positive ints (an NM-RNN configuration)."""
    if not isinstance(config, str):
        raise TypeError(f"config must be a string 'M,N,K', got {config!r} ({type(config).__name__})")
    try:
        values = tuple(int(p) for p in config.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < 1:
        raise ValueError(f"config must be a string 'M,N,K' of three positive integers, got {config!r}")
    return values  # type: ignore[return-value]


def make_task(settings: Mapping[str, Any]) -> ElementFinder:
    t = settings["task"]
    return ElementFinder(L=t["L"], low=t["low"], high=t["high"])


def sampler(task: ElementFinder, batch_size: int) -> Callable[[np.random.Generator], tuple[np.ndarray, ...]]:
    """``data(rng) -> (inputs, targets, mask)``: a fresh batch of ``batch_size`` trials from ``rng``."""
    if not isinstance(task, ElementFinder):
        raise TypeError(f"task must be an ElementFinder, got {type(task).__name__}")
    batch_size = V.positive_int(batch_size, "batch_size")

    def data(rng: np.random.Generator):
        b = task.sample(rng, batch_size)
        return b.inputs, b.targets, b.mask
    return data


def test_set(settings: Mapping[str, Any]):
    """The fixed held-out test set (``task.test_trials`` trials from ``task.test_seed``; the same for every run)."""
    return make_task(settings).sample(settings["task"]["test_seed"], settings["task"]["test_trials"])


def evaluate_model(model: RecurrentModel, params: Mapping[str, np.ndarray], batch,
                   initial_states: Mapping[str, np.ndarray], backend: str | None = None) -> dict[str, Any]:
    """Last-step test MSE, MSE per query index and (NM-RNN) the ablation of each component of s."""
    y = model.simulate(params, batch.inputs, backend=backend, **initial_states).y
    out: dict[str, Any] = {"test_mse": masked_l2(y, batch.targets, batch.mask)}
    L = batch.values.shape[1]
    out["mse_per_query"] = [masked_l2(y[batch.query == q], batch.targets[batch.query == q],
                                      batch.mask[batch.query == q]) if np.any(batch.query == q) else None
                            for q in range(L)]
    if model.kind == "nmrnn":
        ab = ablate_components(model, params, batch.inputs, batch.targets, batch.mask, mode="mean",
                               **initial_states)
        out["ablation"] = {"mode": "mean", "baseline": ab.baseline_error, "clamped": ab.errors.tolist()}
    return out


# ----------------------------------------------------------------------------
class ElementFinderExperiment(Experiment):
    """Element finder: five NM-RNN configurations against an LSTM, an LR-RNN and an RNN of ~500 parameters."""

    name = "eft"
    title = "Element finder: NM-RNNs against LSTMs at 500 parameters"
    summary = "the element-finder experiment (Fig. 5): NM-RNNs against LSTMs, LR-RNNs and RNNs at ~500 parameters"
    figures_module = "nmrnn_np.experiments.eft_figures"
    summary_metrics = {"test_mse": "test_mse", "min_train_loss": "min_train_loss", "wall_time": "wall_time"}
    group_fields = ("model", "config")
    table_style = "median"
    cli_options = (
        CliOption("--models", "experiment.models", "comma-separated subset of nmrnn,lstm,lrrnn,rnn (default: all)",
                  name_list(MODEL_NAMES), "LIST"),
        CliOption("--steps", "training.steps", "training steps per run (default: from the mode)", positive(int), "N"),
    )
    figure_captions = {
        "test_mse": "Test MSE (last step, held-out trials, best parameters) per model and configuration; one point "
                    "per run, bar = median (log axis).",
        "training": "Training-minibatch loss per step, every run (smoothed over 50 steps).",
        "per_query": "Test MSE per query index (median over runs): which positions are hard.",
        "dynamics_query": "One NM-RNN (the median run of the first configuration): s(t), and z(t) and x(t) on their "
                          "first two principal components, averaged over test trials with the same query index.",
        "dynamics_value": "The same network with the query fixed at the middle index (12 of 25): averages over "
                          "trials with the same target value.",
        "ablation": "Test MSE with each component of s clamped to its trial mean (every NM-RNN run; the dashed line "
                    "is the unclamped network's median).",
    }

    def default_settings(self, mode: str) -> dict[str, Any]:
        return default_settings(mode)

    def validate(self, settings: Mapping[str, Any]) -> None:
        ex, t, tr = settings["experiment"], settings["task"], settings["training"]
        models = ex["models"]
        check_names(models, MODEL_NAMES, "experiment.models")
        if "nmrnn" in models and not ex["nm_configs"]:
            raise ConfigError("experiment.nm_configs must list at least one 'M,N,K' when nmrnn is run")
        for c in ex["nm_configs"]:
            try:
                M, N, K = parse_config(c)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"experiment.nm_configs: {exc}") from None
            if K > N:
                raise ConfigError(f"experiment.nm_configs: rank K={K} exceeds N={N} in {c!r}")
        if ex["budget"] < 10:
            raise ConfigError(f"experiment.budget must be >= 10 parameters, got {ex['budget']}")
        try:
            make_task(settings)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"task: {exc}") from None
        for key in ("test_trials",):
            if t[key] < 1:
                raise ConfigError(f"task.{key} must be >= 1, got {t[key]}")
        if tr["steps"] < 1:
            raise ConfigError(f"training.steps must be >= 1, got {tr['steps']}")
        if tr["batch_size"] < 1:
            raise ConfigError(f"training.batch_size must be >= 1, got {tr['batch_size']}")
        for key in ("lr", "eps"):
            if not (tr[key] > 0 and math.isfinite(tr[key])):
                raise ConfigError(f"training.{key} must be a positive number, got {tr[key]}")
        if tr["checkpoint_every"] < 1:
            raise ConfigError(f"training.checkpoint_every must be >= 1, got {tr['checkpoint_every']}")
        try:
            sizes = baseline_sizes(settings)
            for run in self._configs(settings, sizes):
                build_model(run, settings)
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"models: {exc}") from None

    def _configs(self, settings: Mapping[str, Any], sizes: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
        sizes = baseline_sizes(settings) if sizes is None else sizes
        out = []
        for m in settings["experiment"]["models"]:
            if m == "nmrnn":
                out += [{"model": "nmrnn", "config": f"M{M}N{N}K{K}", "M": M, "N": N, "K": K}
                        for M, N, K in map(parse_config, settings["experiment"]["nm_configs"])]
            else:
                out.append({"model": m, "config": f"N{sizes[m]}", "N": sizes[m]})
        return out

    def grid(self, settings: Mapping[str, Any]) -> list[dict[str, Any]]:
        ex = settings["experiment"]
        return [{**c, "seed": s} for c in self._configs(settings)
                for s in range(ex["first_seed"], ex["first_seed"] + ex["seeds"])]

    def run_name(self, run: Mapping[str, Any]) -> str:
        return f"{run['model']}_{run['config']}_seed{run['seed']}"

    def describe(self, settings: Mapping[str, Any]) -> list[str]:
        lines = []
        for c in self._configs(settings):
            model = build_model(c, settings)
            lines.append(f"  {MODEL_LABELS[c['model']]:<7} {c['config']:<10} {model.n_params()} parameters")
        return lines

    def build(self, ctx: RunContext):
        model = build_model(ctx.run, ctx.settings)
        gen = np.random.default_rng([ctx.seed, 0])
        params = model.init_params(gen, scheme="fan_in") if model.kind == "nmrnn" else model.init_params(gen)
        ctx.initial_states = model.init_states(gen, scheme="fan_in")
        return model, params

    def stages(self, ctx: RunContext, model) -> list[Stage]:
        tr = ctx.settings["training"]
        opt = Optimizer(lr=tr["lr"], b1=0.9, b2=0.999, eps=tr["eps"])
        return [Stage("train", tr["steps"], sampler(make_task(ctx.settings), tr["batch_size"]), optimizer=opt,
                      lr=tr["lr"], loss="last_step_mse", train_options={"checkpoint_every": tr["checkpoint_every"]})]

    def evaluate(self, ctx: RunContext, model, params) -> dict[str, Any]:
        out = evaluate_model(model, params, test_set(ctx.settings), ctx.initial_states, ctx.backend)
        out["min_train_loss"] = float(ctx.stages[-1]["best_loss"])
        return out

    def progress_line(self, result: Mapping[str, Any]) -> str:
        return f"test MSE {result['test_mse']:.3g}, lowest training loss {result['min_train_loss']:.3g}"

    def model_metadata(self, ctx: RunContext) -> dict[str, Any]:
        return {"experiment": "eft", **{k: v for k, v in ctx.run.items()}}

    def table_columns(self, settings: Mapping[str, Any]) -> list[Column]:
        n = settings["task"]["test_trials"]
        return [Column(f"test MSE ({n} held-out trials)", "test_mse", ".3g"),
                Column("lowest training-minibatch loss (authors' number)", "min_train_loss", ".3g"),
                Column("wall time / run (s)", "wall_time", ".0f")]

    def row_labels(self, settings: Mapping[str, Any]) -> list[tuple[str, Callable]]:
        return [("model", lambda e: MODEL_LABELS.get(e["model"], e["model"])),
                ("config", lambda e: str(e["config"])),
                ("params", lambda e: str(_n_params(e, settings)))]

    def document(self, settings: Mapping[str, Any], runs) -> dict[str, Any]:
        return {"n_params": {f"{c['model']}_{c['config']}": build_model(c, settings).n_params()
                             for c in self._configs(settings)},
                "baseline_sizes": baseline_sizes(settings)}

    def report_sections(self, rc) -> dict[str, list[str]]:
        s = rc.settings
        tr, t = s["training"], s["task"]
        intro = [f"{len(self._configs(s))} models x {s['experiment']['seeds']} seeds; {tr['steps']} steps of "
                 f"Adam(lr {tr['lr']:g}, eps {tr['eps']:g}), a fresh batch of {tr['batch_size']} trials per step, "
                 f"last-step MSE. Test MSE on {t['test_trials']} held-out trials (seed {t['test_seed']}) with the "
                 "best parameters; the authors' number is the lowest training-minibatch loss. Cells: median [IQR] "
                 "over runs.", ""]
        sentence = ordering_sentence(rc.runs, chance_mse(t["low"], t["high"]))
        return {"intro": intro, "results": [sentence, ""], "console": [sentence]}


def _n_params(entry: Mapping[str, Any], settings: Mapping[str, Any]) -> int:
    c = entry["config"]
    if entry["model"] == "nmrnn":
        M, rest = c[1:].split("N")
        N, K = rest.split("K")
        run = {"model": "nmrnn", "M": int(M), "N": int(N), "K": int(K)}
    else:
        run = {"model": entry["model"], "N": int(c[1:])}
    return build_model(run, settings).n_params()


def chance_mse(low: int = -10, high: int = 10) -> float:
    """The MSE of always answering the mean: the variance of a uniform integer in [low, high] (36.67)."""
    v = np.arange(low, high + 1)
    return float(v.var())


def ordering_sentence(runs: Sequence[Mapping[str, Any]], chance: float = chance_mse()) -> str:
    """Models ordered by median test MSE (NM-RNN configurations pooled), with run counts against the LSTM
    and the number of runs per model that left chance (test MSE below ``chance / 2``)."""
    groups: dict[str, list[float]] = {}
    for r in runs:
        groups.setdefault(r["model"], []).append(r["test_mse"])
    if not groups:
        return ""
    order = sorted(groups, key=lambda m: float(np.median(groups[m])))
    text = "Median test MSE: " + " < ".join(f"{MODEL_LABELS[m]} {np.median(groups[m]):.3g}" for m in order) + "."
    if "nmrnn" in groups and "lstm" in groups:
        c = count_better(groups["nmrnn"], groups["lstm"])
        text += (f" {c['below_median']} of {c['n']} NM-RNN runs (all configurations) are below the LSTM's median "
                 f"and {c['below_best']} below its best run.")
    text += (f" Runs that left chance (test MSE below half the answer's variance, {chance / 2:.3g}): "
             + ", ".join(f"{MODEL_LABELS[m]} {sum(v < chance / 2 for v in groups[m])} of {len(groups[m])}"
                         for m in order) + ".")
    by_cfg = {}
    for r in runs:
        if r["model"] == "nmrnn":
            by_cfg.setdefault(r["config"], []).append(r["test_mse"])
    if by_cfg:
        text += " NM-RNN configurations: " + ", ".join(f"{k} {np.median(v):.3g}" for k, v in by_cfg.items()) + "."
    return text


#: the element-finder experiment, as the runner sees it
EXPERIMENT = ElementFinderExperiment()
