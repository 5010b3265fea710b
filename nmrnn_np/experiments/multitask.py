"""The multitask experiment: learn a held-out task by retraining only the neuromodulatory subnetwork.

Costacurta et al. (NeurIPS 2024), Figure 4 ("structured flexibility"). Every
model is first trained on three tasks of the four-task set (Delay Pro, Delay
Anti, Memory Pro); then it learns the fourth (Memory Anti by default) through a
**new** one-hot context input channel, with only part of its parameters free:

====================  ===========================================  ===============
run ``model``         retrained in stage 2                         authors' sizes
====================  ===========================================  ===============
``nmrnn``             the NM subnetwork W_z, B_z, A, a             84 of 1,487
``nmrnn_input``       the input weights B_x, B_z (our control)     335 of 1,487
``lrrnn``             the input weights B_x                        700 of 1,803
``rnn``               the input weights B_x                        700 of 11,003
``lstm``              the four input matrices W_iu, W_fu, W_gu,    2,800 of 43,500
                      W_ou (gate biases frozen)
====================  ===========================================  ===============

(counts after the new channel is added.) In the NM-RNN the context channels
reach only the NM subnetwork (``U_x = 3``: x sees fixation, sin, cos), so the
task identity can act on the output network only through the signal s(t).

Stage 2 follows the authors' code (DESIGN 4.1): the held-out trials have
seven input channels, ``[fixation, sin, cos, c_1, c_2, c_3, c_new]``, where
the three old context channels carry N(0, 0.1^2) noise and ``c_new = 1``;
the new input column starts at 0.1 (:func:`add_input_channel`). Scoring uses
fixed, seeded, noise-free test trials (old context channels 0 for the held-out
task; for the pretrained tasks their one-hot context and ``c_new = 0``), by
:func:`nmrnn_np.metrics.percent_correct` with the ``arctan2`` decoding and with
the authors' ``arctan(sin/cos)`` rule.

Where we depart from the authors' code, and why (docs/multitask.md):

* Adam's state is kept across all steps of a stage (their trainer restarted
  it every 1000 steps and replayed the same 1000 minibatches; their
  published numbers came from that; ``experiment.restart_every = 1000``
  reproduces it);
* every model pretrains on the same trials (theirs: 3,000 noise-free trials
  for the NM-RNN, 500 trials with input noise 0.1 for the others);
* the NM-RNN input-only control (``nmrnn_input``) is ours; so are
  ``sizes = "matched"``, held-out tasks other than Memory Anti, the scores
  of the pretrained tasks after retraining, and a larger test set.

This module only declares the experiment (:data:`EXPERIMENT`); run it with
``nmrnn-np multitask`` or ``nmrnn-np run multitask``. Figures:
:mod:`nmrnn_np.experiments.multitask_figures`. Each run folder holds
``pretrained.npz`` (after stage 1, six inputs) and ``retrained.npz`` (after
stage 2, seven inputs), both loadable with :func:`nmrnn_np.load_model`.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .. import _validation as V
from .._rng import as_generator
from ..metrics import masked_l2, percent_correct
from ..models import make_model, nearest_size
from ..models.base import RecurrentModel
from ..optim import OPTIMIZERS
from ..tasks import Multitask, MultitaskBatch
from .base import CliOption, Experiment, RunContext, Stage, base_settings, check_names, name_list
from .config import ConfigError
from .summary import Column, count_better, get_dotted

__all__ = ["EXPERIMENT", "MultitaskExperiment", "MODEL_NAMES", "MODEL_LABELS", "FOUR_TASKS", "AUTHORS_SIZES",
           "MATCHED_SIZES", "RULES", "add_input_channel", "pretraining_tasks", "build_model", "retrain_groups",
           "held_out_inputs", "pretrained_inputs", "test_sets", "score"]

#: the models of the experiment: the study's four, and the NM-RNN retraining only its input weights
MODEL_NAMES = ("nmrnn", "nmrnn_input", "lrrnn", "rnn", "lstm")
MODEL_LABELS = {"nmrnn": "NM-RNN (NM only)", "nmrnn_input": "NM-RNN (inputs only)", "lrrnn": "LR-RNN",
                "rnn": "RNN", "lstm": "LSTM"}
#: the four-task set, in the order of its context channels
FOUR_TASKS = ("delay_pro", "delay_anti", "memory_pro", "memory_anti")
TASK_LABELS = {"delay_pro": "Delay Pro", "delay_anti": "Delay Anti", "memory_pro": "Memory Pro",
               "memory_anti": "Memory Anti"}
#: decoding rules of the score (see :func:`nmrnn_np.metrics.decode_angle`)
RULES = ("arctan2", "authors")
#: the model class of each run model
KIND = {"nmrnn": "nmrnn", "nmrnn_input": "nmrnn", "lrrnn": "lrrnn", "rnn": "rnn", "lstm": "lstm"}

#: the authors' sizes (DESIGN 4.1; not parameter-matched): 1,482 / 1,703 / 10,903 / 43,100 parameters
AUTHORS_SIZES: dict[str, dict[str, Any]] = {
    "nmrnn": dict(N=100, K=4, M=5, tau_x=10.0, tau_z=100.0),
    "lrrnn": dict(N=100, K=4, tau=10.0),
    "rnn": dict(N=100, tau=10.0),
    "lstm": dict(N=100),
}
#: every model near the NM-RNN's 1,482 parameters (N chosen by :func:`nmrnn_np.models.nearest_size`): 1,482 / 1,482 / 1,465 / 1,520
MATCHED_SIZES: dict[str, dict[str, Any]] = {
    "nmrnn": dict(N=100, K=4, M=5, tau_x=10.0, tau_z=100.0),
    "lrrnn": dict(N=87, K=4, tau=10.0),
    "rnn": dict(N=34, tau=10.0),
    "lstm": dict(N=16),
}
SIZES = {"authors": AUTHORS_SIZES, "matched": MATCHED_SIZES}

#: the parameters each run model retrains in stage 2 (keys or groups of ``model.groups``)
RETRAIN = {"nmrnn": ("nm",), "nmrnn_input": ("input",), "lrrnn": ("input",), "rnn": ("input",),
           "lstm": ("input",)}

N_TASK_INPUTS = 3  # fixation, sin, cos

# Quick schedule, chosen by measurement on a 2-core machine (docs/multitask.md, "Choosing the quick
# schedule"): how well the NM subnetwork alone can learn the new task depends on how well the network
# was pretrained, so the quick run spends most of its steps on pretraining (lr 5e-3: >90 % on the three
# tasks in 3,500 steps; 3e-3 left Memory Pro near 70 % and NM-only retraining near 35 %).
_SCHEDULES = {
    "quick": dict(pretrain_steps=3500, pretrain_lr=5e-3, retrain_steps=2500, retrain_lr=1e-2, seeds=3,
                  sizes="matched", test_trials=100),
    "full": dict(pretrain_steps=100_000, pretrain_lr=1e-3, retrain_steps=50_000, retrain_lr=1e-2, seeds=5,
                 sizes="authors", test_trials=100),
}


def default_settings(mode: str = "quick") -> dict[str, Any]:
    """The settings of ``mode`` as a nested dict (the TOML schema).

    ``experiment``: models, seeds, ``held_out`` (a task name, or ``"all"``:
    each of the four in turn), ``sizes`` (``"authors"`` or ``"matched"``);
    ``task``: trial counts, the old context channels' noise during
    retraining, the new column's initial value, test trials per task and
    their seed; ``training``: the two stages' steps, learning rates, batch
    size and optimiser; ``models.<name>``: sizes of ``sizes = "custom"``.
    """
    if mode not in _SCHEDULES:
        raise ConfigError(f"experiment.mode must be one of {', '.join(_SCHEDULES)}, got {mode!r}")
    s = _SCHEDULES[mode]
    return {
        "experiment": base_settings("multitask", mode, s["seeds"], models=list(MODEL_NAMES),
                                    held_out="memory_anti", sizes=s["sizes"]),
        "task": {
            "T": 100,
            "pretrain_trials": 3000,
            "retrain_trials": 1000,
            "input_noise": 0.0,
            "context_noise": 0.1,
            "new_column_init": 0.1,
            "test_trials": int(s["test_trials"]),
            "test_seed": 2024,
        },
        "training": {
            "optimizer": "clip_adamw",
            "batch_size": 100,
            "pretrain_steps": int(s["pretrain_steps"]),
            "pretrain_lr": float(s["pretrain_lr"]),
            "retrain_steps": int(s["retrain_steps"]),
            "retrain_lr": float(s["retrain_lr"]),
            "checkpoint_every": 1000,
        },
        "models": copy.deepcopy(AUTHORS_SIZES),
    }


def held_out_list(settings: Mapping[str, Any]) -> list[str]:
    """The held-out tasks of the grid: the one named, or all four for ``"all"``."""
    h = settings["experiment"]["held_out"]
    return list(FOUR_TASKS) if h == "all" else [h]


def pretraining_tasks(held_out: str) -> tuple[str, ...]:
    """The three tasks pretrained when ``held_out`` is held out, in the four-task order."""
    V.choice(held_out, "held_out", FOUR_TASKS)
    return tuple(t for t in FOUR_TASKS if t != held_out)


def model_sizes(settings: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """Sizes of model class ``kind`` under ``experiment.sizes`` (``"custom"``: the ``models`` table)."""
    choice = settings["experiment"]["sizes"]
    return dict(settings["models"][kind] if choice == "custom" else SIZES[choice][kind])


def build_model(name: str, settings: Mapping[str, Any]) -> RecurrentModel:
    """The pretraining model of run model ``name``: 3 task inputs + 3 context channels, 3 outputs.

    The NM-RNN's output network sees only the 3 task inputs (``U_x = 3``);
    the context reaches its NM subnetwork only.
    """
    kind = KIND[name]
    extra = {"U_x": N_TASK_INPUTS} if kind == "nmrnn" else {}
    return make_model(kind, U=N_TASK_INPUTS + 3, O=3, **extra, **model_sizes(settings, kind))


def retrain_groups(name: str) -> tuple[str, ...]:
    """The parameter groups run model ``name`` retrains in stage 2."""
    return RETRAIN[name]


def add_input_channel(model: RecurrentModel, params: Mapping[str, np.ndarray],
                      init: float = 0.1) -> tuple[RecurrentModel, dict[str, np.ndarray]]:
    """The model with one more input channel (the last), its weights set to ``init``.

    Every input matrix whose last axis counts the inputs gains a column
    equal to ``init``: B_x for the LR-RNN and the RNN, the four W_qu for the
    LSTM, B_z for the NM-RNN (whose output network keeps its ``U_x`` inputs:
    the new channel, a context, reaches the NM subnetwork only). Everything
    else is copied unchanged.

    Returns
    -------
    model, params
        The new model (``U + 1`` inputs) and its parameters.
    """
    if not isinstance(model, RecurrentModel):
        raise TypeError(f"model must be a RecurrentModel, got {type(model).__name__}")
    params = model.check_params(params)
    init = V.real(init, "init")
    config = {**model.config(), "U": model.U + 1}
    new = make_model(model.kind, **config)
    old_shapes, new_shapes = model.param_shapes(), new.param_shapes()
    out = {}
    for key, shape in new_shapes.items():
        p = np.asarray(params[key], dtype=np.float64)
        if shape == old_shapes[key]:
            out[key] = p.copy()
        elif shape[:-1] == old_shapes[key][:-1] and shape[-1] == old_shapes[key][-1] + 1:
            out[key] = np.concatenate([p, np.full(shape[:-1] + (1,), init)], axis=-1)
        else:  # pragma: no cover - no model grows another way
            raise AssertionError(f"unexpected shape change of {key}: {old_shapes[key]} -> {shape}")
    return new, out


# ----------------------------------------------------------------------------
# Trials
# ----------------------------------------------------------------------------
def _task(settings: Mapping[str, Any], tasks: Sequence[str], noise: float = 0.0) -> Multitask:
    return Multitask(tasks=tuple(tasks), T=settings["task"]["T"], noise_sigma=noise)


def pretrained_inputs(batch, n_new: int = 0) -> np.ndarray:
    """Inputs of pretrained-task trials for a model with ``n_new`` added channels (zeros)."""
    _check_batch(batch)
    n_new = V.integer(n_new, "n_new", 0)
    if n_new == 0:
        return batch.inputs
    return np.concatenate([batch.inputs, np.zeros(batch.inputs.shape[:2] + (n_new,))], axis=-1)


def held_out_inputs(batch, n_old_contexts: int = 3, context_noise: float = 0.0,
                    rng: np.random.Generator | None = None) -> np.ndarray:
    """Seven-channel inputs of held-out trials: task inputs, noisy old contexts, the new one-hot (= 1).

    ``batch`` is a :class:`~nmrnn_np.tasks.MultitaskBatch` of the held-out
    task alone (its own context channel is dropped). The old context
    channels carry ``N(0, context_noise^2)`` noise drawn from ``rng`` (zeros
    when ``context_noise = 0``, as at test).
    """
    _check_batch(batch)
    n_old_contexts = V.integer(n_old_contexts, "n_old_contexts", 0)
    context_noise = V.real(context_noise, "context_noise", 0.0)
    x = batch.task_inputs
    n, T, _ = x.shape
    if context_noise > 0:
        if rng is None:
            raise ValueError("rng is required when context_noise > 0")
        old = context_noise * as_generator(rng).standard_normal((n, T, n_old_contexts))
    else:
        old = np.zeros((n, T, n_old_contexts))
    return np.concatenate([x, old, np.ones((n, T, 1))], axis=-1)


def _check_batch(batch) -> None:
    if not isinstance(batch, MultitaskBatch):
        raise TypeError(f"batch must be a MultitaskBatch (Multitask.sample), got {type(batch).__name__}")


def _data_rng(seed: int, purpose: int) -> np.random.Generator:
    # one independent stream per purpose, fixed by the run's seed
    return np.random.default_rng([int(seed), purpose])


def pretraining_data(settings: Mapping[str, Any], held_out: str, seed: int) -> tuple[np.ndarray, ...]:
    """The fixed pretraining trial set ``(inputs, targets)`` of a run (three tasks, mixed)."""
    t = settings["task"]
    b = _task(settings, pretraining_tasks(held_out), t["input_noise"]).sample(_data_rng(seed, 1), t["pretrain_trials"])
    return b.inputs, b.targets


def retraining_data(settings: Mapping[str, Any], held_out: str, seed: int) -> tuple[np.ndarray, ...]:
    """The fixed held-out trial set ``(inputs, targets)`` of stage 2 (seven channels, noisy old contexts)."""
    t = settings["task"]
    rng = _data_rng(seed, 2)
    b = _task(settings, (held_out,), t["input_noise"]).sample(rng, t["retrain_trials"])
    return held_out_inputs(b, 3, t["context_noise"], rng), b.targets


def test_sets(settings: Mapping[str, Any], held_out: str) -> dict[str, Any]:
    """Fixed, noise-free test trials: ``test_trials`` per task, from ``task.test_seed`` (the same for every run).

    Returns ``{"pretrained": {task: MultitaskBatch (6 channels)}, "held_out": MultitaskBatch}``;
    see :func:`pretrained_inputs` and :func:`held_out_inputs` for the
    inputs of the models with the new channel.
    """
    t = settings["task"]
    rng = np.random.default_rng(t["test_seed"])
    pre = pretraining_tasks(held_out)
    task = _task(settings, pre)
    pretrained = {name: task.sample(rng, t["test_trials"], task=name) for name in pre}
    held = _task(settings, (held_out,)).sample(rng, t["test_trials"])
    return {"pretrained": pretrained, "held_out": held}


def score(model: RecurrentModel, params: Mapping[str, np.ndarray], inputs: np.ndarray, batch,
          backend: str | None = None) -> dict[str, Any]:
    """Fraction correct under both rules and the MSE of one model on one set of test trials."""
    y = model.simulate(params, inputs, backend=backend).y
    out = {rule: percent_correct(inputs, batch.targets, y, rule=rule) for rule in RULES}
    out["mse"] = masked_l2(y, batch.targets)
    return out


# ----------------------------------------------------------------------------
# The declaration
# ----------------------------------------------------------------------------
def _held_out(text: str) -> str:
    if text != "all" and text not in FOUR_TASKS:
        raise ValueError(f"expected one of {', '.join(FOUR_TASKS)} or all, got {text!r}")
    return text


class MultitaskExperiment(Experiment):
    """Pretrain on three tasks, then learn the fourth retraining only the NM subnetwork (or the inputs)."""

    name = "multitask"
    title = "Multitask: a held-out task learned by retraining only the NM subnetwork"
    summary = "the multitask experiment (Fig. 4): learn a new task by retraining only the NM subnetwork"
    figures_module = "nmrnn_np.experiments.multitask_figures"
    summary_metrics = {
        "pre": "summary.pretrained_after_pretraining",
        "before": "percent_correct.arctan2.held_out_before",
        "after": "percent_correct.arctan2.held_out_after",
        "after_authors": "percent_correct.authors.held_out_after",
        "kept": "summary.pretrained_after_retraining",
        "mse_after": "mse.held_out_after",
        "wall_time": "wall_time",
    }
    group_fields = ("held_out", "model")
    table_style = "median"
    cli_options = (
        CliOption("--models", "experiment.models", "comma-separated subset of " + ",".join(MODEL_NAMES)
                  + " (default: all five)", name_list(MODEL_NAMES), "LIST"),
        CliOption("--held-out", "experiment.held_out", "the task learned in stage 2: one of "
                  + ", ".join(FOUR_TASKS) + ", or all (each in turn; default memory_anti, the authors')",
                  _held_out, "TASK"),
        CliOption("--sizes", "experiment.sizes", "model sizes: the authors' (1,482 to 43,100 parameters; default "
                  "of --full) or matched near the NM-RNN's 1,482 (default of --quick)", str, None,
                  ("authors", "matched")),
    )
    figure_captions = {
        "accuracy": "Fraction correct (arctan2 rule) on fixed noise-free test trials: the three pretrained tasks "
                    "after pretraining and after retraining, and the held-out task before and after retraining; "
                    "one point per seed, bar = median.",
        "retraining": "Loss during retraining on the held-out task (one line per seed).",
        "trials": "Example test trials of each task after retraining (NM-RNN, median seed): fixation output and "
                  "the response angle's sine and cosine (solid) against targets (dashed); the grey line marks "
                  "fix-off.",
        "nm_signal": "The retrained NM-RNN's signal s(t), each component averaged over the test trials of each task.",
        "nm_state": "The retrained NM-RNN's NM state z(t) averaged per task, projected on its first two principal "
                    "components (circle: start, square: end).",
    }

    # -- settings -------------------------------------------------------------
    def default_settings(self, mode: str) -> dict[str, Any]:
        return default_settings(mode)

    def validate(self, settings: Mapping[str, Any]) -> None:
        ex, t, tr = settings["experiment"], settings["task"], settings["training"]
        models = ex["models"]
        check_names(models, MODEL_NAMES, "experiment.models")
        if ex["held_out"] != "all" and ex["held_out"] not in FOUR_TASKS:
            raise ConfigError(f"experiment.held_out must be one of {', '.join(FOUR_TASKS)} or 'all', "
                              f"got {ex['held_out']!r}")
        if ex["sizes"] not in ("authors", "matched", "custom"):
            raise ConfigError(f"experiment.sizes must be 'authors', 'matched' or 'custom', got {ex['sizes']!r}")
        for key in ("pretrain_trials", "retrain_trials", "test_trials"):
            if t[key] < 1:
                raise ConfigError(f"task.{key} must be >= 1, got {t[key]}")
        for key in ("input_noise", "context_noise"):
            if not (t[key] >= 0 and math.isfinite(t[key])):
                raise ConfigError(f"task.{key} must be a finite number >= 0, got {t[key]}")
        if not math.isfinite(t["new_column_init"]):
            raise ConfigError(f"task.new_column_init must be finite, got {t['new_column_init']}")
        try:
            _task(settings, FOUR_TASKS)
        except ValueError as exc:
            raise ConfigError(f"task.T: {exc}") from None
        if tr["optimizer"] not in OPTIMIZERS:
            raise ConfigError(f"training.optimizer must be one of {', '.join(OPTIMIZERS)}, got {tr['optimizer']!r}")
        for key in ("pretrain_steps", "retrain_steps"):
            if tr[key] < 0:
                raise ConfigError(f"training.{key} must be >= 0, got {tr[key]}")
        for key in ("pretrain_lr", "retrain_lr"):
            if not (tr[key] > 0 and math.isfinite(tr[key])):
                raise ConfigError(f"training.{key} must be a positive number, got {tr[key]}")
        if tr["batch_size"] < 1:
            raise ConfigError(f"training.batch_size must be >= 1, got {tr['batch_size']}")
        for key, n in (("pretrain_trials", t["pretrain_trials"]), ("retrain_trials", t["retrain_trials"])):
            if tr["batch_size"] > n:
                raise ConfigError(f"training.batch_size ({tr['batch_size']}) must not exceed task.{key} ({n})")
        if tr["checkpoint_every"] < 1:
            raise ConfigError(f"training.checkpoint_every must be >= 1, got {tr['checkpoint_every']}")
        for name in {KIND[m] for m in models}:
            try:
                build_model(name, settings)
            except (ValueError, TypeError, KeyError) as exc:
                raise ConfigError(f"models.{name}: {exc}") from None

    # -- the runs -------------------------------------------------------------
    def grid(self, settings: Mapping[str, Any]) -> list[dict[str, Any]]:
        ex = settings["experiment"]
        return [{"held_out": h, "model": m, "seed": s} for h in held_out_list(settings) for m in ex["models"]
                for s in range(ex["first_seed"], ex["first_seed"] + ex["seeds"])]

    def run_name(self, run: Mapping[str, Any]) -> str:
        return f"{run['model']}_{run['held_out']}_seed{run['seed']}"

    def describe(self, settings: Mapping[str, Any]) -> list[str]:
        lines = [f"  sizes: {settings['experiment']['sizes']}; parameters in total / trained "
                 "(pretraining -> retraining, after the new input channel)"]
        for name in settings["experiment"]["models"]:
            c = parameter_counts(name, settings)
            lines.append(f"  {MODEL_LABELS[name]:<21} pretraining {c['pretrain']['total']:>6} / "
                         f"{c['pretrain']['trainable']:<6} retraining {c['retrain']['total']:>6} / "
                         f"{c['retrain']['trainable']}")
        return lines

    def build(self, ctx: RunContext):
        model = build_model(ctx.run["model"], ctx.settings)
        return model, model.init_params(ctx.seed)

    def stages(self, ctx: RunContext, model) -> list[Stage]:
        s, tr = ctx.settings, ctx.settings["training"]
        held, name = ctx.run["held_out"], ctx.run["model"]
        init = s["task"]["new_column_init"]

        def new_channel(ctx, model, params):
            return add_input_channel(model, params, init)

        options = {"checkpoint_every": tr["checkpoint_every"]}
        return [
            Stage("pretrain", tr["pretrain_steps"], pretraining_data(s, held, ctx.seed), trainable=None,
                  batch_size=tr["batch_size"], optimizer=tr["optimizer"], lr=tr["pretrain_lr"],
                  save_as="pretrained.npz", train_options=options),
            Stage("retrain", tr["retrain_steps"], retraining_data(s, held, ctx.seed), trainable=retrain_groups(name),
                  batch_size=tr["batch_size"], optimizer=tr["optimizer"], lr=tr["retrain_lr"], before=new_channel,
                  save_as="retrained.npz", train_options=options),
        ]

    def evaluate(self, ctx: RunContext, model, params) -> dict[str, Any]:
        from ..io import load_model

        s, held = ctx.settings, ctx.run["held_out"]
        backend = ctx.backend
        sets = test_sets(s, held)
        pre_model, pre_params, _ = load_model(ctx.run_dir / "pretrained.npz")
        before_model, before_params = add_input_channel(pre_model, pre_params, s["task"]["new_column_init"])
        held_x = held_out_inputs(sets["held_out"])
        scores = {
            "pretrained_after_pretraining": {t: score(pre_model, pre_params, b.inputs, b, backend)
                                             for t, b in sets["pretrained"].items()},
            "held_out_before": score(before_model, before_params, held_x, sets["held_out"], backend),
            "held_out_after": score(model, params, held_x, sets["held_out"], backend),
            "pretrained_after_retraining": {t: score(model, params, pretrained_inputs(b, 1), b, backend)
                                            for t, b in sets["pretrained"].items()},
        }
        pc: dict[str, Any] = {}
        for rule in RULES:
            pc[rule] = {k: ({t: v[rule] for t, v in val.items()} if k.startswith("pretrained") else val[rule])
                        for k, val in scores.items()}
        mse = {k: ({t: v["mse"] for t, v in val.items()} if k.startswith("pretrained") else val["mse"])
               for k, val in scores.items()}
        counts = {st["stage"]: {"total": st["n_params"], "trainable": st["n_trainable"]} for st in ctx.stages}
        summary = {k: float(np.mean(list(pc["arctan2"][k].values())))
                   for k in ("pretrained_after_pretraining", "pretrained_after_retraining")}
        return {"percent_correct": pc, "mse": mse, "summary": summary, "param_counts": counts,
                "pretrain_tasks": list(pretraining_tasks(held))}

    def progress_line(self, result: Mapping[str, Any]) -> str:
        pc = result["percent_correct"]["arctan2"]
        return (f"pretrained tasks {result['summary']['pretrained_after_pretraining']:.0%}; held-out "
                f"{pc['held_out_before']:.0%} -> {pc['held_out_after']:.0%}; pretrained after retraining "
                f"{result['summary']['pretrained_after_retraining']:.0%}")

    def model_metadata(self, ctx: RunContext) -> dict[str, Any]:
        return {"experiment": "multitask", "model": ctx.run["model"], "held_out": ctx.run["held_out"],
                "seed": ctx.seed}

    # -- the report -----------------------------------------------------------
    def table_columns(self, settings: Mapping[str, Any]) -> list[Column]:
        return [Column("pretrained tasks, after pretraining", "pre", ".2f"),
                Column("held-out, before", "before", ".2f"),
                Column("held-out, after", "after", ".2f"),
                Column("held-out, after (authors' rule)", "after_authors", ".2f"),
                Column("pretrained tasks, after retraining", "kept", ".2f"),
                Column("held-out MSE after", "mse_after", ".2e"),
                Column("wall time / run (s)", "wall_time", ".0f")]

    def row_labels(self, settings: Mapping[str, Any]) -> list[tuple[str, Callable]]:
        return [("held out", lambda e: TASK_LABELS.get(e["held_out"], e["held_out"])),
                ("model", lambda e: MODEL_LABELS.get(e["model"], e["model"])),
                ("params (trained in stage 2)", lambda e: "{total} ({trainable})".format(
                    **parameter_counts(e["model"], settings)["retrain"]))]

    def document(self, settings: Mapping[str, Any], runs) -> dict[str, Any]:
        models = [m for m in settings["experiment"]["models"] if any(r["model"] == m for r in runs)]
        return {"param_counts": {m: parameter_counts(m, settings) for m in models},
                "sizes": settings["experiment"]["sizes"]}

    def report_sections(self, rc) -> dict[str, list[str]]:
        s = rc.settings
        t, tr = s["task"], s["training"]
        intro = [
            f"{len(s['experiment']['models'])} models x {s['experiment']['seeds']} seeds, held-out task(s): "
            f"{', '.join(TASK_LABELS[h] for h in held_out_list(s))}; sizes: {s['experiment']['sizes']}.",
            f"Stage 1: {tr['pretrain_steps']} steps ({tr['optimizer']}, lr {tr['pretrain_lr']:g}, batch "
            f"{tr['batch_size']}) on {t['pretrain_trials']} trials of the three other tasks. Stage 2: "
            f"{tr['retrain_steps']} steps (lr {tr['retrain_lr']:g}) on {t['retrain_trials']} held-out trials "
            f"through a new context channel (old context channels: N(0, {t['context_noise']:g}^2) noise; new "
            f"input column initialised to {t['new_column_init']:g}), retraining only: NM-RNN the NM subnetwork; "
            "NM-RNN (inputs only) B_x and B_z; LR-RNN and RNN B_x; LSTM its four input matrices.", "",
            f"Scores are fractions correct on {t['test_trials']} fixed noise-free test trials per task (seed "
            f"{t['test_seed']}); fixation held above 0.5 until fix-off and the response angle at the last step "
            "within pi/10, decoded with arctan2 (the authors' arctan(sin/cos) rule in its own column). "
            "Cells: median [IQR] over seeds.", ""]
        results: list[str] = []
        for held in held_out_list(s):
            rs = [r for r in rc.runs if r["held_out"] == held]
            sentence = comparison_sentence(rs)
            if sentence:
                results += [f"{TASK_LABELS[held]}: {sentence}", ""]
        return {"intro": intro, "results": results, "console": results[::2]}


def parameter_counts(name: str, settings: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Total and trained parameter counts of run model ``name`` in each stage."""
    from ..training import trainable_keys

    model = build_model(name, settings)
    grown, _ = add_input_channel(model, model.init_params(0), 0.0)
    shapes = grown.param_shapes()
    trained = sum(int(np.prod(shapes[k])) for k in trainable_keys(grown, retrain_groups(name)))
    return {"pretrain": {"total": model.n_params(), "trainable": model.n_params()},
            "retrain": {"total": grown.n_params(), "trainable": trained}}


def comparison_sentence(runs: Sequence[Mapping[str, Any]]) -> str:
    """The held-out task before and after retraining per model, by medians and seed counts."""
    parts = []
    for m in MODEL_NAMES:
        rs = [r for r in runs if r["model"] == m]
        if not rs:
            continue
        before = [get_dotted(r, "percent_correct.arctan2.held_out_before") for r in rs]
        after = [get_dotted(r, "percent_correct.arctan2.held_out_after") for r in rs]
        improved = sum(1 for b, a in zip(before, after) if a > b)
        parts.append(f"{MODEL_LABELS[m]} {np.median(before):.0%} -> {np.median(after):.0%} "
                     f"({improved} of {len(rs)} seeds improved)")
    if not parts:
        return ""
    text = "held-out task correct before -> after retraining (medians): " + "; ".join(parts) + "."
    nm = [get_dotted(r, "percent_correct.arctan2.held_out_after") for r in runs if r["model"] == "nmrnn"]
    ctl = [get_dotted(r, "percent_correct.arctan2.held_out_after") for r in runs if r["model"] == "nmrnn_input"]
    if nm and ctl:
        c = count_better([-v for v in nm], [-v for v in ctl])
        text += (f" NM-only against inputs-only retraining of the same pretrained NM-RNNs: {c['below_median']} of "
                 f"{c['n']} NM-only seeds above the inputs-only median.")
    return text


#: the multitask experiment, as the runner sees it
EXPERIMENT = MultitaskExperiment()
