"""The experiment runner: a grid of runs, one folder per run, on local processes or a dask cluster.

An experiment (:class:`~nmrnn_np.experiments.base.Experiment`) declares *what*
to run; this module does the rest, the same way for every experiment:

* **Settings**: the experiment's defaults for the mode, then a TOML file,
  then ``--set KEY=VALUE`` overrides, validated *before* the output folder
  exists (:func:`resolve_settings`); ``--grid KEY=V1,V2`` sweeps join the
  grid of runs (their cartesian product times the experiment's own grid).
* **Run folders**: ``OUT/runs/<run>/`` holds ``run.json`` (the run's
  settings), the checkpoints, logs and parameters of each training stage,
  ``model.npz`` and, written last, ``result.json``. A run with a
  ``result.json`` is finished and is never run again; everything else
  continues from its last stage and checkpoint on ``--resume`` (failed runs
  are retried). Every file is written under a unique temporary name, flushed,
  and renamed.
* **Executors**: ``"process"`` (default) runs each run attempt in a fresh
  Python process, ``jobs`` at a time; ``"dask"`` submits the runs to a
  ``dask.distributed`` cluster through ``Client.get_executor(pure=False)`` (a
  :class:`concurrent.futures.Executor`), either an existing scheduler or a
  local cluster of ``jobs`` single-threaded worker processes; ``"inline"``
  runs them in this process (tests, single runs). Workers use one numba and
  BLAS thread. The same grid gives the same numbers on every executor.
* **Faults**: a run whose worker process dies (killed, out of memory, lost)
  is retried once in a fresh worker (on dask, the scheduler does this); if it
  dies again, or raises, it is recorded as failed with the reason in
  ``failed.json`` and the other runs go on. Ctrl-C writes ``OUT/STOP``:
  running trainings checkpoint and return, queued runs are cancelled, finished
  runs stay, and :class:`ExperimentInterrupted` says how to resume.
* **Aggregation** (:func:`aggregate`): ``metrics.json`` (every run's numbers,
  summaries over seeds by :mod:`~nmrnn_np.experiments.summary`, failed and
  missing runs), ``report.md`` and the figures, written atomically.

Run folders must be on storage every worker can read and write (a shared file
system on a cluster); a worker that cannot see its run folder records the run
as failed with that reason.
"""
from __future__ import annotations

import importlib
import itertools
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .. import _validation as V
from ..io import atomic_savez, atomic_write_text, load_model, read_npz, save_model
from .base import RUNNER_KEYS, Experiment, RunContext, Stage
from .config import ConfigError, dumps_toml, get_path, merge_config, read_toml, set_path
from .summary import Column, format_table, summarize

__all__ = ["EXPERIMENTS", "register", "get_experiment", "resolve_settings", "parse_assignment", "parse_grid",
           "expand_runs", "run_experiment", "execute_run", "aggregate", "ExperimentInterrupted", "ExperimentError",
           "ReportContext", "EXECUTORS", "curve_summary", "dumps_json"]

#: experiment name -> "module:attribute" of its :class:`Experiment` (imported when first used)
EXPERIMENTS: dict[str, str] = {
    "mwg": "nmrnn_np.experiments.mwg:EXPERIMENT",
    "multitask": "nmrnn_np.experiments.multitask:EXPERIMENT",
    "eft": "nmrnn_np.experiments.eft:EXPERIMENT",
    "modulation": "nmrnn_np.experiments.modulation:EXPERIMENT",
}

EXECUTORS = ("process", "dask", "inline")

#: thread-count variables set to 1 in workers (unless the user set them): the matrices are small, and
#: parallel workers with multithreaded BLAS or numba only fight for the cores
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")

STOP_FILE = "STOP"


class ExperimentError(ValueError):
    """An experiment cannot run as asked (bad folder, missing dask, unreachable scheduler, ...)."""


class ExperimentInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_experiment`; finished runs are saved. ``.finished``, ``.total``, ``.out``."""

    def __init__(self, finished: int, total: int, out: Path):
        super().__init__(f"interrupted: {finished} of {total} runs finished in {out}")
        self.finished, self.total, self.out = finished, total, out


# ----------------------------------------------------------------------------
# The registry
# ----------------------------------------------------------------------------
def register(name: str, target: str) -> None:
    """Make ``nmrnn-np run NAME`` run the experiment at ``target`` (``"package.module:ATTRIBUTE"``)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be an identifier, got {name!r}")
    if not isinstance(target, str) or ":" not in target:
        raise ValueError(f"target must be 'module:attribute', got {target!r}")
    EXPERIMENTS[name] = target


def get_experiment(name: str | Experiment) -> Experiment:
    """The :class:`Experiment` registered as ``name`` (or ``name`` itself, or a ``"module:attr"`` path)."""
    if isinstance(name, Experiment):
        return name
    if not isinstance(name, str):
        raise TypeError(f"experiment must be a name or an Experiment, got {type(name).__name__}")
    target = EXPERIMENTS.get(name, name if ":" in name else None)
    if target is None:
        raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(sorted(EXPERIMENTS))}")
    module, _, attr = target.partition(":")
    try:
        exp = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"experiment {name!r}: cannot import {target} ({exc})") from None
    if not isinstance(exp, Experiment):
        raise TypeError(f"experiment {name!r}: {target} is not an Experiment")
    return exp


def _target_of(exp: Experiment) -> str:
    """How a worker process finds ``exp`` again: ``module:attribute`` (a worker has only the built-in registry)."""
    target = EXPERIMENTS.get(exp.name)
    if target is not None:
        return target
    module = importlib.import_module(type(exp).__module__)
    for attr, value in vars(module).items():
        if value is exp:
            return f"{module.__name__}:{attr}"
    raise ValueError(f"experiment {exp.name!r} is neither registered nor a module attribute")


# ----------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------
def _parse_value(text: str) -> Any:
    """A TOML value (``3``, ``1e-3``, ``true``, ``"x"``, ``[1, 2]``); anything else is a bare string."""
    from .config import tomllib
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_assignment(text: str, option: str = "--set") -> tuple[str, Any]:
    """``"training.lr=3e-3"`` -> ``("training.lr", 0.003)``; the value is read as TOML, else a string."""
    key, sep, value = str(text).partition("=")
    key = key.strip()
    if not sep or not key or not value.strip():
        raise ConfigError(f"{option} {text!r}: expected KEY=VALUE with a dotted key, e.g. training.lr=3e-3")
    return key, _parse_value(value.strip())


def parse_grid(text: str) -> tuple[str, list[Any]]:
    """``"training.lr=1e-3,3e-3"`` -> ``("training.lr", [0.001, 0.003])``."""
    key, sep, values = str(text).partition("=")
    key = key.strip()
    if not sep or not key or not values.strip():
        raise ConfigError(f"grid {text!r}: expected KEY=V1,V2,... e.g. training.lr=1e-3,3e-3")
    if values.strip().startswith("["):
        parsed = _parse_value(values.strip())
        if not isinstance(parsed, list):
            raise ConfigError(f"grid {text!r}: expected a list of values")
        return key, parsed
    return key, [_parse_value(v.strip()) for v in values.split(",") if v.strip()]


def _nested(key: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def _deep_update(base: dict, extra: Mapping) -> dict:
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(base.get(k), dict):
            _deep_update(base[k], v)
        else:
            base[k] = v
    return base


def _check_settings(exp: Experiment, settings: Mapping[str, Any]) -> None:
    ex = settings.get("experiment", {})
    if ex.get("name") != exp.name:
        raise ConfigError(f"experiment.name is {ex.get('name')!r}, but these are settings of {exp.name!r}")
    exp.check_mode(ex.get("mode"))
    if ex["seeds"] < 1:
        raise ConfigError(f"experiment.seeds must be >= 1, got {ex['seeds']}")
    if ex["first_seed"] < 0:
        raise ConfigError(f"experiment.first_seed must be >= 0, got {ex['first_seed']}")
    from .._backend import BACKENDS, HAVE_NUMBA
    if ex["backend"] not in ("auto",) + tuple(BACKENDS):
        raise ConfigError(f"experiment.backend must be one of auto, {', '.join(BACKENDS)}, got {ex['backend']!r}")
    if ex["backend"] in ("numba", "numba32") and not HAVE_NUMBA:
        raise ConfigError(f"experiment.backend = {ex['backend']!r} but numba is not installed")
    if ex["restart_every"] < 0:
        raise ConfigError(f"experiment.restart_every must be >= 0 (0: never), got {ex['restart_every']}")
    if ex["best_rule"] not in ("step", "chunk_end"):
        raise ConfigError(f"experiment.best_rule must be 'step' or 'chunk_end', got {ex['best_rule']!r}")
    if ex["best_rule"] == "chunk_end" and ex["restart_every"] == 0:
        raise ConfigError("experiment.best_rule = 'chunk_end' needs experiment.restart_every > 0 (the chunk length)")
    exp.validate(settings)


def resolve_settings(experiment: str | Experiment, mode: str = "quick", file: str | os.PathLike | None = None,
                     overrides: Mapping[str, Any] | None = None, sets: Sequence[str] = (),
                     grid: Sequence[str] | Mapping[str, Sequence[Any]] = ()) -> dict[str, Any]:
    """The validated settings of an experiment: defaults of ``mode``, then ``file``, ``overrides``, ``sets``.

    Parameters
    ----------
    experiment : str or Experiment
    mode : str
        ``"quick"`` or ``"full"``, unless the file or overrides set ``experiment.mode``.
    file : path, optional
        A TOML file with the layout of the ``config.toml`` the runner writes.
    overrides : dict, optional
        Nested settings (from command-line flags).
    sets : list of str
        ``KEY=VALUE`` assignments (``--set``), applied last.
    grid : list of str or dict
        ``KEY=V1,V2`` sweeps (``--grid``) or ``{key: [values]}``; stored under
        ``settings["grid"]``, each value checked like a ``--set`` of that key.

    Raises
    ------
    ConfigError
        Naming the key of the first bad or unknown setting.
    """
    exp = get_experiment(experiment)
    if not isinstance(mode, str):
        raise TypeError(f"mode must be a string, one of {', '.join(exp.modes)}; got {mode!r}")
    if overrides is not None and not isinstance(overrides, Mapping):
        raise TypeError(f"overrides must be a dict of settings or None, got {type(overrides).__name__}")
    if isinstance(sets, str) or not isinstance(sets, (list, tuple)) or not all(isinstance(t, str) for t in sets):
        raise TypeError(f"sets must be a list of 'KEY=VALUE' strings, got {sets!r}")
    if not isinstance(grid, Mapping) and (isinstance(grid, str) or not isinstance(grid, (list, tuple))
                                          or not all(isinstance(t, str) for t in grid)):
        raise TypeError(f"grid must be a list of 'KEY=V1,V2' strings or a dict key -> list, got {grid!r}")
    user = dict(read_toml(V.any_path(file, "file"))) if file is not None else {}
    file_grid = user.pop("grid", {})
    layers = [user, dict(overrides or {})]
    layers.append({})
    for text in sets:
        key, value = parse_assignment(text, "sets")
        _deep_update(layers[-1], _nested(key, value))
    labels = [f"config file {str(file)!r}: " if file is not None else "", "overrides: ", "sets: "]
    chosen, where = mode, ""
    for label, layer in zip(labels, layers):
        m = layer.get("experiment", {}).get("mode") if isinstance(layer.get("experiment"), Mapping) else None
        if m is not None:
            chosen, where = m, label
    try:
        settings = exp.default_settings(exp.check_mode(chosen))
    except ConfigError as exc:
        raise ConfigError(f"{where}{exc}") from None
    for label, layer in zip(labels, layers):
        try:
            settings = merge_config(settings, layer)
        except ConfigError as exc:
            raise ConfigError(f"{label}{exc}") from None
    sweeps: dict[str, list[Any]] = {}
    items = list(grid.items()) if isinstance(grid, Mapping) else [parse_grid(g) for g in grid]
    if isinstance(file_grid, Mapping):
        items = list(file_grid.items()) + items
    else:
        raise ConfigError(f"grid must be a table of key = [values], got {file_grid!r}")
    for key, values in items:
        if key.split(".")[0] == "experiment" and key.split(".")[-1] in RUNNER_KEYS:
            raise ConfigError(f"grid {key}: the runner's own setting cannot be swept (use --seeds for seeds)")
        if not isinstance(values, (list, tuple)) or not values:
            raise ConfigError(f"grid: {key} needs a non-empty list of values")
        checked = []
        for v in values:
            try:
                get_path(settings, key)
            except (KeyError, TypeError):
                raise ConfigError(f"grid: unknown config key {key!r}") from None
            trial = merge_config(settings, _nested(key, v))
            checked.append(get_path(trial, key))
        if len(set(map(repr, checked))) != len(checked):
            raise ConfigError(f"grid {key}: a value is listed twice: {checked}")
        sweeps[key] = checked
    if not sweeps:
        try:
            _check_settings(exp, settings)
        except ConfigError as exc:
            raise ConfigError(f"{_source_of(str(exc), labels, layers)}{exc}") from None
    for swept, point in _sweep_settings(settings, sweeps) if sweeps else ():
        # every point of the grid is checked as a whole (the base values may be fine only in combination)
        try:
            _check_settings(exp, point)
        except ConfigError as exc:
            raise ConfigError(f"grid {', '.join(f'{k}={v}' for k, v in swept.items())}: {exc}") from None
    if sweeps:
        settings["grid"] = sweeps
    return settings


def _source_of(message: str, labels: Sequence[str], layers: Sequence[Mapping]) -> str:
    """The label of the last settings layer that set the key a validation message starts with ("" if none)."""
    key = message.split(" ", 1)[0].rstrip(":,")
    for label, layer in reversed(list(zip(labels, layers))):
        node: Any = layer
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                node = None
                break
            node = node[part]
        if node is not None:
            return label
    return ""


def _sweep_settings(settings: Mapping[str, Any], sweeps: Mapping[str, list]) -> list[tuple[dict, dict]]:
    """``(swept values, settings with them)`` for every point of the cartesian product of ``sweeps``."""
    import copy
    base = {k: v for k, v in settings.items() if k != "grid"}
    keys = list(sweeps)
    out = []
    for combo in itertools.product(*(sweeps[k] for k in keys)):
        s = copy.deepcopy(base)
        for k, v in zip(keys, combo):
            set_path(s, k, v)
        out.append((dict(zip(keys, combo)), s))
    return out


def _fmt_sweep_value(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v).replace("/", "-").replace(" ", "")


@dataclass(frozen=True)
class RunSpec:
    """One run of the grid: its fields, folder name and settings."""

    run: dict[str, Any]
    name: str
    settings: dict[str, Any]


def expand_runs(experiment: str | Experiment, settings: Mapping[str, Any]) -> list[RunSpec]:
    """Every run of the grid: the experiment's runs for each point of the ``--grid`` sweeps.

    A swept run's fields include the swept keys (dotted) and its folder name
    ends with ``__key=value`` for each.
    """
    exp = get_experiment(experiment)
    if not isinstance(settings, Mapping):
        raise TypeError(f"settings must be a dict from resolve_settings, got {type(settings).__name__}")
    specs = []
    seen = set()
    for swept, s in _sweep_settings(settings, settings.get("grid", {})):
        for run in exp.grid(s):
            fields = {**run, **swept}
            name = exp.run_name(run) + "".join(f"__{k}={_fmt_sweep_value(v)}" for k, v in swept.items())
            if name in seen:
                raise ConfigError(f"two runs would share the folder {name!r}")
            seen.add(name)
            specs.append(RunSpec(run=fields, name=name, settings=s))
    return specs


# ----------------------------------------------------------------------------
# JSON helpers
# ----------------------------------------------------------------------------
def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def dumps_json(obj: Any, indent: int = 0) -> str:
    """JSON with one key per line but every list of numbers on one line (curves stay readable)."""
    obj = _json_default(obj) if isinstance(obj, (np.generic, np.ndarray, Path)) else obj
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(obj, Mapping):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(str(k))}: {dumps_json(v, indent + 2)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, (list, tuple)):
        if all(not isinstance(v, (Mapping, list, tuple, np.ndarray)) for v in obj):
            return json.dumps([_json_default(v) if isinstance(v, (np.generic, Path)) else v for v in obj])
        return "[\n" + ",\n".join(inner + dumps_json(v, indent + 2) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj)


def _write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, dumps_json(data) + "\n")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ExperimentError(f"{path} is unreadable or not valid JSON ({exc}); delete it to run that step "
                              "again") from None


def curve_summary(losses: np.ndarray, points: int = 60) -> dict[str, Any]:
    """A compact training curve: first, last, best loss and about ``points`` log-spaced samples."""
    losses = np.asarray(losses, dtype=np.float64)
    n = losses.size
    if n == 0:
        return {"steps": 0}
    idx = np.unique(np.round(np.geomspace(1, n, num=min(points, n))).astype(int) - 1)
    best = int(np.nanargmin(losses)) if np.any(np.isfinite(losses)) else 0
    return {"steps": n, "initial": float(losses[0]), "final": float(losses[-1]),
            "best": float(losses[best]), "best_step": best + 1,
            "step": (idx + 1).tolist(), "loss": losses[idx].tolist()}


# ----------------------------------------------------------------------------
# One run, in a worker
# ----------------------------------------------------------------------------
class _Stopped(Exception):
    """The experiment's STOP file appeared: the training checkpointed and returned."""


def _stop_path(run_dir: Path) -> Path:
    return run_dir.parent.parent / STOP_FILE


def _outcome(status: str, spec: Mapping[str, Any] | None, run_dir: Path, **extra) -> dict[str, Any]:
    fields = dict(spec["run"]) if spec else {}
    return {"status": status, "run": run_dir.name, **fields, **extra}


def execute_run(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Train, evaluate and save the run whose folder is ``run_dir``; the worker's entry point.

    Returns the run's result (``status`` ``"done"``; also when it had
    finished before), or ``{"status": "interrupted" | "failed", "run": ...,
    "reason": ...}``. Never raises for a failing run: the reason is returned
    and written to ``failed.json``.
    """
    run_dir = Path(run_dir)
    spec_path = run_dir / "run.json"
    if not spec_path.exists():
        return {"status": "failed", "run": run_dir.name,
                "reason": f"the run folder {run_dir} is not visible on host {socket.gethostname()}: "
                          "run folders must be on storage that every worker shares"}
    spec = None
    try:
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
        result_path = run_dir / "result.json"
        if result_path.exists():
            return json.loads(result_path.read_text(encoding="utf-8"))
        if _stop_path(run_dir).exists():
            return _outcome("interrupted", spec, run_dir)
        probe = run_dir / f".write-test-{socket.gethostname()}-{os.getpid()}"
        try:
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise ExperimentError(f"cannot write in the run folder {run_dir} on host {socket.gethostname()}: "
                                  f"{exc.strerror}") from None
        return _train_and_evaluate(spec, run_dir)
    except (_Stopped, KeyboardInterrupt):
        return _outcome("interrupted", spec, run_dir)
    except Exception as exc:  # the run failed: record why, let the others go on
        reason = f"{type(exc).__name__}: {exc}"
        try:
            _write_json(run_dir / "failed.json", {"reason": reason, "host": socket.gethostname(),
                                                  "traceback": traceback.format_exc()})
        except OSError:
            pass
        return _outcome("failed", spec, run_dir, reason=reason)


def _stage_info(stage: Stage, res, steps_done_before: float = 0.0) -> dict[str, Any]:
    trainable = stage.trainable
    return {"stage": stage.name, "steps": int(stage.steps),
            "trainable": "all" if trainable is None else ([trainable] if isinstance(trainable, str) else list(trainable)),
            "trainable_keys": list(res.trainable), "steps_done": int(res.steps_done), "stopped": res.stopped,
            "best_loss": float(res.best_loss), "best_step": int(res.best_step),
            "wall_time": float(res.wall_time), "losses": np.asarray(res.losses, dtype=np.float64).tolist()}


def _train_and_evaluate(spec: Mapping[str, Any], run_dir: Path) -> dict[str, Any]:
    from ..training import TrainingDivergedError, train, trainable_keys

    exp = get_experiment(spec["experiment"])
    ctx = RunContext(run=dict(spec["run"]), name=spec["name"], settings=spec["settings"], run_dir=run_dir)
    model, params = exp.build(ctx)
    stages = exp.stages(ctx, model)
    names = [st.name for st in stages]
    if len(set(names)) != len(names):
        raise ValueError(f"stage names must be unique, got {names}")
    stop = _stop_path(run_dir)

    def stop_requested(step, loss, params_now) -> bool:
        return stop.exists()

    for st in stages:
        done_path, info_path = run_dir / f"stage_{st.name}.npz", run_dir / f"stage_{st.name}.json"
        if done_path.exists() and info_path.exists():
            model, params, _ = load_model(done_path)
            ctx.stages.append(_read_json(info_path))
            continue
        if st.before is not None:
            model, params = st.before(ctx, model, params)
        if st.steps > 0:
            if stop.exists():
                raise _Stopped()
            ex = ctx.settings["experiment"]
            options = {"checkpoint_every": 1000, "restart_every": ex.get("restart_every", 0),
                       "best_rule": ex.get("best_rule", "step"), **dict(st.train_options)}
            try:
                res = train(model, params, st.data, steps=st.steps, lr=st.lr, optimizer=st.optimizer,
                            trainable=st.trainable, batch_size=st.batch_size,
                            rng=ctx.seed if st.rng is None else st.rng, loss=st.loss,
                            initial_states=ctx.initial_states or None, backend=ctx.backend,
                            log_path=run_dir / f"train_{st.name}.jsonl",
                            checkpoint_path=run_dir / f"checkpoint_{st.name}.npz", resume=True,
                            progress=False, callback=stop_requested, **options)
            except TrainingDivergedError as err:
                # a diverged stage keeps the best parameters it reached and records why it ended
                res = err.result
            if res.stopped == "callback":
                raise _Stopped()
            params = {k: np.asarray(v) for k, v in (res.best_params if st.keep == "best" else res.params).items()}
            info = _stage_info(st, res)
        else:
            info = {"stage": st.name, "steps": 0, "trainable": [], "trainable_keys": [], "steps_done": 0,
                    "stopped": "completed", "best_loss": None, "best_step": 0, "wall_time": 0.0, "losses": []}
        info["n_params"] = int(model.n_params())
        info["n_trainable"] = int(sum(int(np.prod(model.param_shapes()[k])) for k in
                                      (trainable_keys(model, st.trainable) if st.steps > 0 else ())))
        metadata = {**exp.model_metadata(ctx), "stage": st.name}
        save_model(done_path, model, params, metadata=metadata)
        if st.save_as:
            save_model(run_dir / st.save_as, model, params, metadata=metadata)
        _write_json(info_path, info)
        ctx.stages.append(info)

    t0 = time.perf_counter()
    metrics = exp.evaluate(ctx, model, params)
    eval_time = time.perf_counter() - t0
    losses = np.concatenate([np.asarray(s["losses"], dtype=np.float64) for s in ctx.stages]) if ctx.stages else []
    result = {
        "status": "done", "run": ctx.name, **ctx.run,
        "n_params": int(model.n_params()),
        "curve": curve_summary(np.asarray(losses)),
        "stages": [{k: v for k, v in s.items() if k != "losses"} for s in ctx.stages],
        "wall_time": float(sum(s["wall_time"] for s in ctx.stages)),
        "eval_time": eval_time,
        **metrics,
    }
    if ctx.initial_states:
        atomic_savez(run_dir / "initial_states.npz", {k: np.asarray(v) for k, v in ctx.initial_states.items()})
    save_model(run_dir / "model.npz", model, params, metadata=exp.model_metadata(ctx))
    _write_json(run_dir / "result.json", result)
    return result


def load_initial_states(run_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """The initial states a run trained with (``initial_states.npz``), or {} if it used the defaults."""
    path = Path(run_dir) / "initial_states.npz"
    return read_npz(path, "initial states") if path.exists() else {}


# ----------------------------------------------------------------------------
# Executors
# ----------------------------------------------------------------------------
_EXIT_OK = 0
_LIVE: set = set()


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    for k in THREAD_VARS:
        env.setdefault(k, "1")
    # the child imports exactly the modules this process sees (a checkout, a test folder, ...)
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join(paths + ([old] if old else []))
    return env


def _process_attempt(run_dir: str) -> dict[str, Any]:
    """One attempt at a run in a fresh Python process (``python -m nmrnn_np.experiments.worker``).

    The child runs in its own session, so a Ctrl-C in the terminal reaches
    only this process, which stops the children through the STOP file.
    """
    path = Path(run_dir)
    outcome_path = path / "outcome.json"
    if outcome_path.exists():
        outcome_path.unlink()
    with open(path / "worker.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "nmrnn_np.experiments.worker", str(path)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=_worker_env(), start_new_session=True)
        _LIVE.add(proc)
        try:
            rc = proc.wait()
        finally:
            _LIVE.discard(proc)
    if rc == _EXIT_OK and outcome_path.exists():
        return json.loads(outcome_path.read_text(encoding="utf-8"))
    if rc < 0:
        try:
            how = f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            how = f"killed by signal {-rc}"
    else:
        how = f"exited with status {rc} (see {path / 'worker.log'})"
    return {"status": "died", "run": path.name, "reason": f"worker process {proc.pid} {how}"}


def _kill_live() -> None:
    for proc in list(_LIVE):
        try:
            proc.terminate()
        except OSError:
            pass


@dataclass
class _Backend:
    """A concurrent.futures executor and the function it runs per run."""

    executor: Any
    call: Callable[[str], dict]
    retries_dead: bool  # whether the runner itself retries a run whose worker died
    close: Callable[[], None] = lambda: None
    description: str = ""


def _process_backend(jobs: int) -> _Backend:
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="nmrnn-run")
    return _Backend(pool, _process_attempt, True, lambda: pool.shutdown(wait=True, cancel_futures=True),
                    f"{jobs} worker process{'es' if jobs > 1 else ''}")


def _check_folder_on_worker(out: str) -> str | None:
    """Run on each dask worker: None if ``out`` is writable there, else the reason."""
    probe = Path(out) / f".write-test-{socket.gethostname()}-{os.getpid()}"
    try:
        probe.write_text("ok")
        probe.unlink()
        return None
    except OSError as exc:
        return f"host {socket.gethostname()} cannot write in {out}: {exc.strerror or exc}"


def _dask_backend(jobs: int, scheduler: str | None, out: Path) -> _Backend:
    try:
        import dask
        import distributed
    except ImportError:
        raise ExperimentError("--executor dask needs dask.distributed: pip install 'nmrnn_np[dask]'") from None
    cluster = None
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout="15s")
        except (OSError, TimeoutError) as exc:
            raise ExperimentError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
    else:
        env = {k: os.environ.get(k, "1") for k in THREAD_VARS}
        paths = [p for p in sys.path if p and os.path.isdir(p)]
        env["PYTHONPATH"] = os.pathsep.join(paths + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))
        # one retry of a run whose worker died (the scheduler's count; the default is 3)
        with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
            cluster = distributed.LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                               dashboard_address=":0", env=env, silence_logs=40)
            client = distributed.Client(cluster)
    problems = {w: r for w, r in client.run(_check_folder_on_worker, str(out)).items() if r}
    if problems:
        client.close()
        if cluster is not None:
            cluster.close()
        raise ExperimentError("run folders must be on storage every worker shares; " + "; ".join(problems.values()))
    executor = client.get_executor(pure=False)

    def close():
        client.close()
        if cluster is not None:
            cluster.close()
    n = len(client.scheduler_info().get("workers", {}))
    where = f"dask scheduler {scheduler}" if scheduler else "a local dask cluster"
    return _Backend(executor, execute_run, False, close, f"{where} with {n} worker{'s' if n != 1 else ''}")


class _InlineExecutor:
    """Runs each submitted call at once in this process (an Executor for ``jobs=0`` and tests)."""

    def submit(self, fn, *args):
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
            fut.set_exception(exc)
            if isinstance(exc, KeyboardInterrupt):
                raise
        return fut


# ----------------------------------------------------------------------------
# The whole experiment
# ----------------------------------------------------------------------------
def _prepare_out(exp: Experiment, out: Path, settings: Mapping[str, Any] | None, resume: bool) -> dict[str, Any]:
    config_path = out / "config.toml"
    if resume:
        if not config_path.exists():
            raise ExperimentError(f"cannot resume: {config_path} does not exist (start a new experiment without "
                                  "--resume)")
        return resolve_settings(exp, "quick", config_path)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExperimentError(f"output folder {out} already exists and is not empty; use --resume to continue it "
                              "or choose another --out")
    if settings is None:
        raise ValueError("settings are required for a new experiment")
    parent = out.parent
    if not parent.is_dir():
        raise ExperimentError(f"cannot create {out}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ExperimentError(f"cannot create {out}: the folder {parent} is not writable")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(config_path, dumps_toml(dict(settings), header=exp.config_header()))
    return dict(settings)


def run_experiment(experiment: str | Experiment, settings: Mapping[str, Any] | None, out: str | os.PathLike, *,
                   executor: str = "process", jobs: int = 2, scheduler: str | None = None, resume: bool = False,
                   figures: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every run of the grid, then aggregate; return the ``metrics.json`` document.

    Parameters
    ----------
    experiment : str or Experiment
    settings : dict or None
        From :func:`resolve_settings`; ignored with ``resume`` (the folder's
        ``config.toml`` is used).
    out : path
        Experiment folder; must not exist (or be empty) unless ``resume``.
    executor : {"process", "dask", "inline"}
        Where the runs execute (see the module docstring).
    jobs : int
        Runs at a time (process pool size; local dask cluster size).
    scheduler : str, optional
        Address of an existing dask scheduler (``tcp://host:8786``).
    resume : bool
        Continue: finished runs are kept, unfinished and failed ones run
        again from their last checkpoint.
    figures : bool
        Write figures and ``report.md``.

    Returns
    -------
    dict
        The ``metrics.json`` document; ``doc["failed_runs"]`` lists the runs
        that failed, with their reasons.

    Raises
    ------
    ExperimentInterrupted
        On Ctrl-C, after every running training has checkpointed.
    ExperimentError
        The folder cannot be used, or the executor cannot start.
    """
    exp = get_experiment(experiment)
    V.choice(executor, "executor", EXECUTORS)
    jobs = V.positive_int(jobs, "jobs")
    if scheduler is not None and not isinstance(scheduler, str):
        raise TypeError(f"scheduler must be an address string such as 'tcp://host:8786', got {scheduler!r}")
    if scheduler is not None and executor != "dask":
        raise ValueError("scheduler is only used with executor='dask'")
    resume, figures = V.boolean(resume, "resume"), V.boolean(figures, "figures")
    if not callable(log):
        raise TypeError(f"log must be callable (e.g. print), got {type(log).__name__}")
    if settings is not None and not isinstance(settings, Mapping):
        raise TypeError(f"settings must be a dict from resolve_settings, or None with resume=True; got "
                        f"{type(settings).__name__}")
    if settings is not None and not resume:
        # checked again (a dict may have been edited by hand), and completed with the mode's defaults
        try:
            settings = resolve_settings(exp, settings.get("experiment", {}).get("mode", "quick"),
                             overrides={k: v for k, v in settings.items() if k != "grid"},
                             grid=dict(settings.get("grid", {})))
        except (ConfigError, AttributeError) as exc:
            raise ConfigError(f"settings: {exc}") from None
    out = V.any_path(out, "out").resolve()
    settings = _prepare_out(exp, out, settings, resume)
    stop = out / STOP_FILE
    if stop.exists():
        stop.unlink()
    specs = expand_runs(exp, settings)
    target = _target_of(exp)
    (out / "runs").mkdir(exist_ok=True)
    todo = []
    for sp in specs:
        d = out / "runs" / sp.name
        d.mkdir(exist_ok=True)
        if (d / "result.json").exists():
            continue
        if (d / "failed.json").exists():
            (d / "failed.json").unlink()  # resume retries failed runs
        _write_json(d / "run.json", {"experiment": target, "name": sp.name, "run": sp.run, "settings": sp.settings})
        todo.append(sp)
    finished = len(specs) - len(todo)
    log(f"{exp.title or exp.name}: {len(specs)} runs in {out}" + (f" ({finished} already finished)" if finished else ""))
    if todo:
        for line in model_summary_lines(exp, settings):
            log(line)
    t_start = time.perf_counter()
    failed: dict[str, str] = {}

    def report(res: Mapping[str, Any]) -> None:
        nonlocal finished
        status = res.get("status")
        if status == "done":
            finished += 1
            extra = exp.progress_line(res)
            log(f"  [{finished}/{len(specs)}] {res['run']}: {extra + ' ' if extra else ''}"
                f"({res.get('wall_time', 0.0):.0f} s)")
        elif status == "failed":
            failed[res["run"]] = res.get("reason", "unknown")
            log(f"  {res['run']}: FAILED: {res.get('reason')}")

    if todo:
        if executor == "inline":
            backend = _Backend(_InlineExecutor(), execute_run, False, description="this process")
        elif executor == "dask":
            backend = _dask_backend(jobs, scheduler, out)
        else:
            backend = _process_backend(min(jobs, len(todo)))
        log(f"  running {len(todo)} runs on {backend.description}")
        try:
            interrupted = _drive(backend, [str(out / "runs" / sp.name) for sp in todo], report, log, stop)
        finally:
            backend.close()
        if interrupted:
            raise ExperimentInterrupted(finished, len(specs), out)
        log(f"  training finished in {time.perf_counter() - t_start:.0f} s")
    return aggregate(out, figures=figures, log=log)


def _is_killed_worker(exc: BaseException) -> bool:
    return type(exc).__name__ == "KilledWorker"


def _drive(backend: _Backend, run_dirs: Sequence[str], report: Callable, log: Callable, stop: Path) -> bool:
    """Submit every run, retry dead workers once, report outcomes; True if interrupted by Ctrl-C."""
    deaths: dict[str, int] = {}
    fmap: dict[Future, str] = {}
    interrupted = False

    def submit(d: str) -> None:
        fmap[backend.executor.submit(backend.call, d)] = d

    def handle(fut: Future) -> None:
        nonlocal interrupted
        d = fmap.pop(fut)
        name = Path(d).name
        try:
            res = fut.result()
        except BaseException as exc:  # noqa: BLE001 - every way a run can end is recorded
            if isinstance(exc, KeyboardInterrupt):
                raise
            if _is_killed_worker(exc):
                res = {"status": "failed", "run": name,
                       "reason": f"its worker died more often than the scheduler's allowed-failures (dask: {exc})"}
            elif type(exc).__name__ == "CancelledError":
                res = {"status": "interrupted", "run": name}
            else:
                res = {"status": "failed", "run": name, "reason": f"{type(exc).__name__}: {exc}"}
        if res.get("status") == "died":
            deaths[name] = deaths.get(name, 0) + 1
            if deaths[name] < 2 and backend.retries_dead and not stop.exists():
                log(f"  {name}: {res['reason']}; retrying once in a fresh worker")
                submit(d)
                return
            res = {**res, "status": "failed", "reason": f"{res['reason']} ({deaths[name]} times)"}
        if res.get("status") == "failed":
            try:
                if not (Path(d) / "failed.json").exists():
                    _write_json(Path(d) / "failed.json", {"reason": res.get("reason"), "host": socket.gethostname()})
            except OSError:
                pass
        if res.get("status") == "interrupted":
            interrupted = True
        report(res)

    try:
        for d in run_dirs:
            submit(d)
            if interrupted:
                break
        while fmap:
            done, _ = wait(list(fmap), timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in done:
                handle(fut)
    except KeyboardInterrupt:
        interrupted = True
        stop.touch()
        log("\nStopping: running trainings save a checkpoint; queued runs are cancelled "
            "(Ctrl-C again to kill the workers)")
        for fut in list(fmap):
            fut.cancel()
        try:
            while fmap:
                done, _ = wait(list(fmap), timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in done:
                    if fut.cancelled():
                        fmap.pop(fut)
                    else:
                        handle(fut)
        except KeyboardInterrupt:
            _kill_live()
    return interrupted


def model_summary_lines(exp: Experiment, settings: Mapping[str, Any]) -> list[str]:
    """Lines printed before training: the experiment's own (``exp.describe``) or nothing."""
    describe = getattr(exp, "describe", None)
    return list(describe(settings)) if describe else []


# ----------------------------------------------------------------------------
# Aggregation: metrics.json, report.md, figures
# ----------------------------------------------------------------------------
@dataclass
class ReportContext:
    """What an experiment's figures and report see.

    Attributes
    ----------
    out : Path
        The experiment folder.
    settings : dict
    runs : list of dict
        Results of the finished runs (``result.json``), in grid order.
    summary : list of dict
        :func:`~nmrnn_np.experiments.summary.summarize` of ``runs``.
    doc : dict
        The ``metrics.json`` document being written.
    """

    out: Path
    settings: dict[str, Any]
    runs: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    doc: dict[str, Any]
    _models: dict[str, tuple] = field(default_factory=dict, repr=False)

    def run_dir(self, run: Mapping[str, Any] | str) -> Path:
        return self.out / "runs" / (run if isinstance(run, str) else run["run"])

    def load(self, run: Mapping[str, Any] | str, file: str = "model.npz"):
        """``(model, params, initial_states)`` of a finished run (cached)."""
        d = self.run_dir(run)
        key = f"{d.name}/{file}"
        if key not in self._models:
            model, params, _ = load_model(d / file)
            self._models[key] = (model, params, load_initial_states(d))
        return self._models[key]

    def settings_of(self, run: Mapping[str, Any]) -> dict[str, Any]:
        """The settings a run used (with its swept values)."""
        return _read_json(self.run_dir(run) / "run.json")["settings"]


def _save_figure(fig, path: Path) -> None:
    """Save a matplotlib figure atomically (temporary name, then rename) and close it."""
    import tempfile

    import matplotlib.pyplot as plt
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=100)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    finally:
        plt.close(fig)


def _flatten_numbers(obj: Any, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            out.update(_flatten_numbers(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(_flatten_numbers(v, f"{prefix}[{i}]"))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out[prefix] = float(obj)
    return out


def aggregate(out: str | os.PathLike, *, figures: bool = True, reevaluate: bool = False,
              overrides: Mapping[str, Any] | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Collect the finished runs of ``out``; write ``metrics.json`` and (with ``figures``) figures and ``report.md``.

    Parameters
    ----------
    out : path
        An experiment folder (with ``config.toml`` and ``runs/``).
    figures : bool
        Also write the figures and ``report.md``.
    reevaluate : bool
        Evaluate every finished run again from its saved ``model.npz``
        (simulation only) instead of reading its ``result.json``; a number
        that differs from the stored one is reported (only a change of the
        code can do that).
    overrides : dict, optional
        Settings changed for the re-evaluation (e.g. the ablation's clamp mode).
    """
    out = V.any_path(out, "out").resolve()
    figures, reevaluate = V.boolean(figures, "figures"), V.boolean(reevaluate, "reevaluate")
    if overrides is not None and not isinstance(overrides, Mapping):
        raise TypeError(f"overrides must be a dict of settings or None, got {type(overrides).__name__}")
    if not callable(log):
        raise TypeError(f"log must be callable (e.g. print), got {type(log).__name__}")
    config_path = out / "config.toml"
    if not config_path.exists():
        raise ExperimentError(f"out={str(out)!r} is not an experiment folder: it has no config.toml")
    raw = read_toml(config_path)
    name = raw.get("experiment", {}).get("name", "mwg") if isinstance(raw.get("experiment"), Mapping) else "mwg"
    exp = get_experiment(name)
    settings = resolve_settings(exp, "quick", config_path, overrides=overrides)
    specs = expand_runs(exp, settings)
    runs, failed, missing = [], [], []
    for sp in specs:
        d = out / "runs" / sp.name
        if (d / "result.json").exists() and (d / "model.npz").exists():
            res = _read_json(d / "result.json")
            if reevaluate:
                model, params, _ = load_model(d / "model.npz")
                ctx = RunContext(run=dict(sp.run), name=sp.name, settings=merge_config(sp.settings, dict(overrides or {})),
                                 run_dir=d, initial_states=load_initial_states(d))
                fresh = exp.evaluate(ctx, model, params)
                old, new = _flatten_numbers({k: res.get(k) for k in fresh}), _flatten_numbers(fresh)
                changed = [k for k in new if k in old and not math.isclose(old[k], new[k], rel_tol=1e-6, abs_tol=1e-12)
                           and not (overrides and k.split(".")[0] in ("ablation",))]
                if changed and not overrides:
                    log(f"  warning: {sp.name}: {changed[0]} re-evaluated as {new[changed[0]]:.6e}, but "
                        f"{old[changed[0]]:.6e} when the run finished; the simulation code has changed since")
                res = {**res, **fresh}
            res.pop("status", None)
            runs.append(res)
        elif (d / "failed.json").exists():
            info = json.loads((d / "failed.json").read_text(encoding="utf-8"))
            failed.append({"run": sp.name, **sp.run, "reason": info.get("reason")})
        else:
            missing.append(sp.name)
    if not runs and not failed:
        raise ExperimentError(f"{out} has no finished runs (runs/*/result.json and model.npz)")
    sweep_keys = list(settings.get("grid", {}))
    by = list(exp.group_fields) + sweep_keys
    summary = summarize(runs, exp.summary_metrics, by)
    doc: dict[str, Any] = {
        "experiment": exp.name,
        "mode": settings["experiment"]["mode"],
        "grid": settings.get("grid", {}),
        **exp.document(settings, runs),
        "summary": summary,
        "runs": runs,
        "failed_runs": failed,
        "missing_runs": missing,
    }
    columns = exp.table_columns(settings)
    labels = exp.row_labels(settings) + [(k, (lambda e, k=k: _fmt_sweep_value(e.get(k)))) for k in sweep_keys]
    table = format_table(summary, columns, labels, style=exp.table_style) if runs else "(no finished runs)"
    other = "median" if exp.table_style == "mean" else "mean"
    table_other = format_table(summary, columns, labels, style=other) if runs else ""
    rc = ReportContext(out=out, settings=settings, runs=runs, summary=summary, doc=doc)
    sections = exp.report_sections(rc) if runs else {"intro": [], "results": []}
    log("")
    log(table)
    for line in sections.get("console", []):
        log("  " + line)
    if failed:
        for f in failed:
            log(f"  FAILED {f['run']}: {f['reason']}")
    if missing:
        log(f"  {len(missing)} runs are unfinished: {', '.join(missing)} (continue with --resume)")
    fig_files: dict[str, str] = {}
    if figures and runs and exp.figures_module:
        module = importlib.import_module(exp.figures_module)
        for key, fig in module.make_figures(rc).items():
            fname = f"{exp.name}_{key}.png"
            _save_figure(fig, out / fname)
            fig_files[key] = fname
    doc["figures"] = fig_files
    if figures:
        _write_report(exp, rc, table, table_other, sections, fig_files)
    _write_json(out / "metrics.json", doc)
    return doc


_STYLE_TEXT = {"mean": "mean ± standard deviation over seeds",
               "median": "median [interquartile range] over seeds"}


def _write_report(exp: Experiment, rc: ReportContext, table: str, table_other: str,
                  sections: Mapping[str, list[str]], figs: Mapping[str, str]) -> None:
    ex = rc.settings["experiment"]
    lines = [f"# {exp.title or exp.name}", "",
             f"Mode **{ex['mode']}**; seeds {ex['first_seed']}..{ex['first_seed'] + ex['seeds'] - 1}. "
             "Settings: `config.toml`; every number: `metrics.json`.", ""]
    if rc.settings.get("grid"):
        lines += ["Swept settings (`--grid`): " + "; ".join(f"`{k}` in {v}" for k, v in rc.settings["grid"].items()),
                  ""]
    lines += list(sections.get("intro", []))
    other = "median" if exp.table_style == "mean" else "mean"
    lines += ["## Results", "",
              f"Cells: {_STYLE_TEXT[exp.table_style]} (one seed: its number).", "", table, ""]
    lines += list(sections.get("results", []))
    lines += [f"The same numbers as {_STYLE_TEXT[other]} (a diverged seed moves a mean, not a median):", "",
              table_other, ""]
    if rc.doc["failed_runs"]:
        lines += ["Failed runs (not in the table): " + "; ".join(f"{f['run']} ({f['reason']})"
                                                               for f in rc.doc["failed_runs"]) + ".", ""]
    if rc.doc["missing_runs"]:
        lines += [f"Unfinished runs (not in the table): {', '.join(rc.doc['missing_runs'])}.", ""]
    if figs:
        lines += ["## Figures", ""]
        for key, fname in figs.items():
            lines += [f"![{key}]({fname})", "", exp.figure_captions.get(key, ""), ""]
    atomic_write_text(rc.out / "report.md", "\n".join(lines))
