"""What an experiment declares: :class:`Experiment`, its :class:`Stage` list and the :class:`RunContext`.

An experiment is a grid of independent runs (model x seed x swept settings).
The runner (:mod:`nmrnn_np.experiments.runner`) owns everything that is the
same for every experiment: run folders, stages with checkpoints and resume,
stop and failure handling, executors, summaries, ``metrics.json``,
``report.md`` and figure files. An experiment module only says *what* to run,
by subclassing :class:`Experiment`:

* ``default_settings(mode)``: the TOML schema with the defaults of ``"quick"``
  and ``"full"``; ``validate(settings)``: the checks types alone do not make;
* ``grid(settings)``: the runs, e.g. ``[{"model": "nmrnn", "seed": 0}, ...]``;
* ``build(ctx)``: a model and its initial parameters (and initial states);
* ``stages(ctx, model)``: the training :class:`Stage` list;
* ``evaluate(ctx, model, params)``: the numbers of one trained run;
* ``summary_metrics``, ``table_columns``, ``report_sections``: what the report
  shows; ``figures_module``: a module with ``make_figures(report_context)``.

Everything an experiment module defines is plain Python run in the worker, so
it must be importable there (a module of this package, or on ``sys.path``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import math

import numpy as np

from .config import ConfigError
from .summary import Column

__all__ = ["Stage", "RunContext", "Experiment", "CliOption", "base_settings", "name_list", "positive",
           "check_names"]

#: the settings every experiment has, in its ``[experiment]`` table
RUNNER_KEYS = ("name", "mode", "seeds", "first_seed", "backend")


def base_settings(name: str, mode: str, seeds: int, **extra: Any) -> dict[str, Any]:
    """The ``[experiment]`` table every experiment's settings start with.

    ``name`` (the experiment, fixed), ``mode``, ``seeds`` (runs per grid
    point), ``first_seed``, ``backend`` (``"auto"``, ``"numba"``,
    ``"numpy"``, ``"numba32"``: the kernels in float32, opt-in), the training procedure — ``restart_every`` (0: one
    optimiser run, ours; 1000: Adam restarted every 1000 steps with the same
    minibatches per chunk, as the authors' trainer did for the timing and
    multitask figures) and ``best_rule`` (``"step"``: the parameters of the
    lowest loss at any step; ``"chunk_end"``: the authors' rule), see
    :func:`nmrnn_np.train` — then the experiment's own keys.
    """
    return {"name": name, "mode": mode, "seeds": int(seeds), "first_seed": 0, "backend": "auto",
            "restart_every": 0, "best_rule": "step", **extra}


def name_list(valid: Sequence[str], what: str = "model") -> Callable[[str], list[str]]:
    """A :class:`CliOption` parser: comma-separated names from ``valid`` -> list (ValueError naming a bad one)."""
    def parse(text: str) -> list[str]:
        names = [t.strip() for t in text.split(",") if t.strip()]
        bad = [n for n in names if n not in valid]
        if bad or not names:
            raise ValueError(f"unknown {what} {bad[0] if bad else text!r} (choose from {','.join(valid)})")
        return names
    return parse


def positive(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """A :class:`CliOption` parser: ``convert(text)`` (int or float), required finite and > 0."""
    def parse(text: str):
        v = convert(text)
        if not v > 0 or (isinstance(v, float) and not math.isfinite(v)):
            raise ValueError(f"expected a positive number, got {text!r}")
        return v
    parse.__name__ = convert.__name__
    return parse


def check_names(values: Sequence[Any], valid: Sequence[str], key: str) -> None:
    """Raise :class:`ConfigError` unless ``values`` (settings key ``key``) are distinct names from ``valid``."""
    if not values:
        raise ConfigError(f"{key} must name at least one of {', '.join(valid)}")
    for v in values:
        if v not in valid:
            raise ConfigError(f"{key}: unknown name {v!r} (choose from {', '.join(valid)})")
    if len(set(values)) != len(values):
        raise ConfigError(f"{key} lists a name twice: {list(values)}")


@dataclass(frozen=True)
class Stage:
    """One training stage of a run, in order.

    Attributes
    ----------
    name : str
        Unique within the run; names the stage's files (``stage_<name>.npz``).
    steps : int
        Optimiser steps of this stage (0 skips training but runs ``before``).
    data : tuple of arrays or callable
        ``(inputs, targets[, mask])`` (fixed trials), or a sampler
        ``data(rng) -> (inputs, targets[, mask])`` drawing a fresh batch at
        every step from the stage's generator (see :func:`nmrnn_np.train`).
    trainable : None, str or tuple of str
        Parameter keys or groups to train (None: all).
    batch_size : int, optional
        Minibatch size drawn from fixed ``data`` (None: full batch).
    optimizer, lr, loss :
        As in :func:`nmrnn_np.train`.
    rng : int, optional
        Seed of the stage's minibatch or sampler draws; default the run's seed.
    before : callable, optional
        ``before(ctx, model, params) -> (model, params)`` run once before
        the stage trains, e.g. to add an input channel. Must be deterministic:
        on resume it runs again before the stage's checkpoint is loaded.
    keep : {"best", "last"}
        Which parameters the next stage starts from: the best seen (the
        authors' rule) or the last.
    save_as : str, optional
        Also save the model after this stage as ``<run folder>/<save_as>``
        (:func:`nmrnn_np.save_model` format), e.g. ``"pretrained.npz"``.
    train_options : dict
        Further keyword arguments of :func:`nmrnn_np.train`.
    """

    name: str
    steps: int
    data: Any
    trainable: None | str | tuple[str, ...] = None
    batch_size: int | None = None
    optimizer: str = "clip_adamw"
    lr: float = 1e-2
    loss: str = "masked_mse"
    rng: int | None = None
    before: Callable | None = None
    keep: str = "best"
    save_as: str | None = None
    train_options: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class RunContext:
    """One run as the experiment's functions see it (in the worker).

    Attributes
    ----------
    run : dict
        The run's fields: ``seed`` and the experiment's grid fields (model, ...)
        and swept settings (dotted keys).
    name : str
        The run folder's name.
    settings : dict
        The run's settings (the experiment's, with the run's swept values).
    run_dir : Path
        Absolute path of the run folder.
    initial_states : dict
        Initial states passed to training and evaluation (``x0``, ``z0``, ...);
        ``build`` may set them (saved as ``initial_states.npz``).
    stages : list of dict
        Summaries of the finished stages (name, steps, losses, best loss, ...).
    """

    run: dict[str, Any]
    name: str
    settings: dict[str, Any]
    run_dir: Path
    initial_states: dict[str, np.ndarray] = field(default_factory=dict)
    stages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def seed(self) -> int:
        return int(self.run["seed"])

    @property
    def backend(self) -> str | None:
        b = self.settings["experiment"]["backend"]
        return None if b == "auto" else b


@dataclass(frozen=True)
class CliOption:
    """A command-line flag of an experiment that sets one settings key.

    ``flag`` (``"--models"``), ``key`` (dotted, ``"experiment.models"``),
    ``help``, and ``parse`` (text -> value, raising ValueError) and
    ``metavar``; ``choices`` restricts the text.
    """

    flag: str
    key: str
    help: str
    parse: Callable[[str], Any] = str
    metavar: str | None = None
    choices: Sequence[str] | None = None


class Experiment:
    """Base class of an experiment declaration (see the module docstring).

    Subclasses set the class attributes and override the methods marked
    "override"; the defaults cover the rest.
    """

    #: registry name (``nmrnn-np run NAME``) and title of the report
    name: str = ""
    title: str = ""
    #: one line for ``nmrnn-np --help``
    summary: str = ""
    modes: tuple[str, ...] = ("quick", "full")
    #: module with ``make_figures(rc) -> dict[name, Figure]``, or None
    figures_module: str | None = None
    #: summary name -> dotted key of a run result, summarised over seeds
    summary_metrics: Mapping[str, str] = {}
    #: the run fields that label a table row (besides swept settings)
    group_fields: tuple[str, ...] = ("model",)
    #: experiment-specific command-line flags
    cli_options: tuple[CliOption, ...] = ()
    #: cells of the report's main table: "mean" (mean ± sd) or "median" (median [IQR]); the report shows both
    table_style: str = "median"
    #: captions of the figures, by figure name
    figure_captions: Mapping[str, str] = {}

    # -- settings -------------------------------------------------------------
    def default_settings(self, mode: str) -> dict[str, Any]:  # override
        """The settings schema with the defaults of ``mode``."""
        raise NotImplementedError

    def validate(self, settings: Mapping[str, Any]) -> None:  # override
        """Raise :class:`ConfigError` naming the key of a bad value."""

    def check_mode(self, mode: Any) -> str:
        if mode not in self.modes:
            raise ConfigError(f"experiment.mode must be one of {', '.join(self.modes)}, got {mode!r}")
        return mode

    # -- the runs -------------------------------------------------------------
    def grid(self, settings: Mapping[str, Any]) -> list[dict[str, Any]]:  # override
        """The runs, each a dict with ``seed`` and the experiment's fields."""
        raise NotImplementedError

    def run_name(self, run: Mapping[str, Any]) -> str:
        """Folder name of a run: its fields then ``seed<k>``, e.g. ``nmrnn_seed0``."""
        parts = [str(v) for k, v in run.items() if k != "seed" and "." not in k]
        return "_".join(parts + [f"seed{run['seed']}"])

    def build(self, ctx: RunContext):  # override
        """``(model, params)`` at the start of training; may set ``ctx.initial_states``."""
        raise NotImplementedError

    def stages(self, ctx: RunContext, model) -> list[Stage]:  # override
        """The training stages, in order."""
        raise NotImplementedError

    def evaluate(self, ctx: RunContext, model, params: Mapping[str, np.ndarray]) -> dict[str, Any]:  # override
        """The numbers of a trained run (JSON-serialisable); stored in its ``result.json``."""
        return {}

    def progress_line(self, result: Mapping[str, Any]) -> str:
        """A few numbers of a finished run for the console line the runner prints ("" for none)."""
        return ""

    def model_metadata(self, ctx: RunContext) -> dict[str, Any]:
        """Metadata saved with ``model.npz``."""
        return {"experiment": self.name, **{k: v for k, v in ctx.run.items()}}

    # -- the report -----------------------------------------------------------
    def table_columns(self, settings: Mapping[str, Any]) -> list[Column]:  # override
        return [Column(k, k) for k in self.summary_metrics]

    def row_labels(self, settings: Mapping[str, Any]) -> list[tuple[str, Callable]]:
        """Leading table columns: ``(header, function of a summary entry)``."""
        return [(f, (lambda e, f=f: str(e.get(f)))) for f in self.group_fields]

    def document(self, settings: Mapping[str, Any], runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Experiment-specific entries added to ``metrics.json``."""
        return {}

    def report_sections(self, rc) -> dict[str, list[str]]:  # override
        """Markdown lines of the report: ``{"intro": [...], "results": [...]}``.

        ``intro`` comes before the table, ``results`` after it.
        """
        return {"intro": [], "results": []}

    def config_header(self) -> str:
        return (f"Settings of a {self.title or self.name} experiment (nmrnn_np); written by nmrnn-np.\n"
                f"Run it again with: nmrnn-np run {self.name} --config config.toml --out NEW_FOLDER")
