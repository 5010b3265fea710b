"""The Measure-Wait-Go experiment: train four parameter-matched models, test extrapolation.

Costacurta et al. (NeurIPS 2024), timing task: an NM-RNN, a low-rank RNN, a
vanilla RNN and an LSTM with about 1,100 parameters each are trained on the
intervals {12, 14, 16, 18} (every measure time in [10, 20): 40 trials, full
batch) and tested on the intervals {4, 6, ..., 26} with the measure pulse at
t = 15. The study's finding is that the NM-RNN extrapolates to intervals it
never saw far better than the LR-RNN.

Layout of an experiment folder (``run_experiment`` writes it,
``evaluate_run_dir`` reads it)::

    OUT/
      config.toml            settings actually used
      metrics.json           per model and seed: curve summary, L2 errors, wall time
      report.md              table (mean and spread over seeds) and figures
      mwg_*.png              figures
      runs/<model>_seed<k>/  one folder per run:
        model.npz            trained model (nmrnn_np.io.save_model)
        result.json          training summary; written last, so it marks a finished run
        stage_<name>.npz     parameters after each finished training stage
        checkpoint_<name>.npz, train_<name>.jsonl   trainer checkpoint and log

Every file is written to a temporary name and renamed, so an interrupted
experiment never leaves a half-written result: a run either has its
``result.json`` or is unfinished, and ``resume=True`` continues unfinished runs
from their last stage and checkpoint.
"""
from __future__ import annotations

import copy
import json
import math
import os
import signal
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor, wait, FIRST_COMPLETED
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .._backend import BACKENDS, HAVE_NUMBA
from ..io import atomic_write_text
from ..metrics import masked_l2
from ..models import make_model
from ..tasks import MeasureWaitGo, mwg_extrapolation_set
from .analysis import CLAMP_MODES, ablate_components
from .config import ConfigError, merge_config, read_toml, write_toml

__all__ = ["MODEL_NAMES", "MODEL_LABELS", "MODES", "default_config", "resolve_config", "validate_config",
           "make_tasks", "build_model", "training_stages", "RunSpec", "run_one", "evaluate_params",
           "run_experiment", "make_executor", "evaluate_run_dir", "summarize", "format_table", "ExperimentInterrupted"]

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
        "experiment": {
            "mode": mode,
            "models": list(MODEL_NAMES),
            "seeds": _SEEDS[mode],
            "first_seed": 0,
            "clamp": "mean",
            "backend": "auto",
        },
        "task": {
            "T": 110,
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
    if ex["mode"] not in MODES:
        raise ConfigError(f"experiment.mode must be one of {', '.join(MODES)}, got {ex['mode']!r}")
    models = ex["models"]
    if not models:
        raise ConfigError("experiment.models must name at least one model")
    for m in models:
        if m not in MODEL_NAMES:
            raise ConfigError(f"experiment.models: unknown model {m!r} (choose from {', '.join(MODEL_NAMES)})")
    if len(set(models)) != len(models):
        raise ConfigError(f"experiment.models lists a model twice: {models}")
    if ex["seeds"] < 1:
        raise ConfigError(f"experiment.seeds must be >= 1, got {ex['seeds']}")
    if ex["first_seed"] < 0:
        raise ConfigError(f"experiment.first_seed must be >= 0, got {ex['first_seed']}")
    if ex["clamp"] not in CLAMP_MODES:
        raise ConfigError(f"experiment.clamp must be one of {', '.join(CLAMP_MODES)}, got {ex['clamp']!r}")
    if ex["backend"] not in ("auto",) + BACKENDS:
        raise ConfigError(f"experiment.backend must be one of auto, {', '.join(BACKENDS)}, got {ex['backend']!r}")
    if ex["backend"] == "numba" and not HAVE_NUMBA:
        raise ConfigError("experiment.backend = 'numba' but numba is not installed")
    if not (tr["lr"] > 0 and math.isfinite(tr["lr"])):
        raise ConfigError(f"training.lr must be a positive number, got {tr['lr']}")
    if tr["steps"] < 1:
        raise ConfigError(f"training.steps must be >= 1, got {tr['steps']}")
    for key in ("nmrnn_output_steps", "nmrnn_nm_steps"):
        if tr[key] < 0:
            raise ConfigError(f"training.{key} must be >= 0, got {tr[key]}")
    if tr["checkpoint_every"] < 1:
        raise ConfigError(f"training.checkpoint_every must be >= 1, got {tr['checkpoint_every']}")
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


def _mode_of(settings: Mapping[str, Any]) -> str | None:
    ex = settings.get("experiment")
    mode = ex.get("mode") if isinstance(ex, Mapping) else None
    if mode is not None and mode not in MODES:
        raise ConfigError(f"experiment.mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def resolve_config(mode: str = "quick", file: str | os.PathLike | None = None,
                   overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Settings of a run: defaults of ``mode``, then a TOML ``file``, then ``overrides``.

    A file may set ``experiment.mode`` itself; ``mode`` is used when it does
    not. ``overrides`` is a nested dict (e.g. built from command-line
    options). The result is validated (:func:`validate_config`).
    """
    user = read_toml(file) if file is not None else {}
    overrides = dict(overrides or {})
    chosen = _mode_of(overrides) or _mode_of(user) or mode
    cfg = default_config(chosen)
    cfg = merge_config(cfg, user)
    cfg = merge_config(cfg, overrides)
    validate_config(cfg)
    return cfg


# ----------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------
def make_tasks(cfg: Mapping[str, Any]) -> tuple[MeasureWaitGo, MeasureWaitGo]:
    """The training task (all intervals x measure times) and the extrapolation test task."""
    t = cfg["task"]
    train = MeasureWaitGo(T=t["T"], intervals=tuple(t["train_intervals"]),
                          measure_window=tuple(t["measure_window"]), delay=t["delay"], pulse=t["pulse"])
    test = mwg_extrapolation_set(T=t["T"], intervals=tuple(t["test_intervals"]), t_measure=t["test_t_measure"],
                                 delay=t["delay"], pulse=t["pulse"])
    return train, test


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


def run_name(model: str, seed: int) -> str:
    """Folder name of one run: ``<model>_seed<seed>``."""
    return f"{model}_seed{seed}"


def _dumps(obj: Any, indent: int = 0) -> str:
    """JSON with one key per line but every list of numbers on one line (curves stay readable)."""
    obj = _json_default(obj) if isinstance(obj, (np.generic, np.ndarray)) else obj
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(obj, Mapping):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(str(k))}: {_dumps(v, indent + 2)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, (list, tuple)):
        if all(not isinstance(v, (Mapping, list, tuple)) for v in obj):
            return json.dumps([_json_default(v) if isinstance(v, np.generic) else v for v in obj])
        return "[\n" + ",\n".join(inner + _dumps(v, indent + 2) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj)


def _atomic_json(path: Path, data: Any) -> None:
    atomic_write_text(path, _dumps(data) + "\n")


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def _save_params(path: Path, params: Mapping[str, np.ndarray]) -> None:
    from ..io import atomic_savez
    atomic_savez(path, {k: np.asarray(v) for k, v in params.items()})


def _load_params(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as d:
        return {k: d[k].copy() for k in d.files}


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
    result = {"train_loss": train_loss, "l2": l2, "l2_per_interval": per_interval}
    if model.kind == "nmrnn":
        mode = clamp or cfg["experiment"]["clamp"]
        ab = ablate_components(model, params, xt, yt, mt, mode=mode)
        result["ablation"] = {"mode": mode, "baseline": ab.baseline_error, "clamped": ab.errors.tolist(),
                              "increase": ab.error_increase.tolist()}
    return result


# ----------------------------------------------------------------------------
# One run (executed in a worker process)
# ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs for one (model, seed) run; picklable."""

    model: str
    seed: int
    run_dir: str
    config: dict
    resume: bool = False


#: set in worker processes (and by the parent in-process) to ask running trainings to stop
_STOP: Any = None


def _worker_init(stop_event) -> None:
    """Worker start-up: leave Ctrl-C to the parent, which stops runs through ``stop_event``."""
    global _STOP
    _STOP = stop_event
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_requested() -> bool:
    return _STOP is not None and _STOP.is_set()


def _stop_callback(step, loss, params) -> bool:
    """Trainer callback: a true value stops training (it then writes its checkpoint)."""
    return _stop_requested()


def run_one(spec: RunSpec) -> dict[str, Any]:
    """Train one model with one seed, evaluate it, save it; return its result.

    Skips the run if its ``result.json`` exists. With ``spec.resume``, stages
    whose parameters were saved are skipped and the current stage continues
    from its checkpoint. Returns ``{"status": "done", ...}`` or
    ``{"status": "interrupted", ...}`` (after a stop request or Ctrl-C).
    """
    from ..io import save_model
    from ..training import TrainingDivergedError, train

    run_dir = Path(spec.run_dir)
    result_path = run_dir / "result.json"
    if result_path.exists():
        return json.loads(result_path.read_text(encoding="utf-8"))
    ident = {"model": spec.model, "seed": spec.seed, "run": run_dir.name}
    if _stop_requested():
        return {"status": "interrupted", **ident}
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = spec.config
    model = build_model(spec.model, cfg)
    params = model.init_params(spec.seed)
    train_task, _ = make_tasks(cfg)
    data = train_task.all_trials()
    tr = cfg["training"]
    stages_out = []
    wall = 0.0
    losses_all = []
    try:
        for stage, steps, trainable in training_stages(spec.model, cfg):
            done_path = run_dir / f"stage_{stage}.npz"
            info_path = run_dir / f"stage_{stage}.json"
            if done_path.exists() and info_path.exists():
                params = _load_params(done_path)
                info = json.loads(info_path.read_text(encoding="utf-8"))
                stages_out.append(info)
                wall += info["wall_time"]
                losses_all.append(np.asarray(info["losses"]))
                continue
            ckpt = run_dir / f"checkpoint_{stage}.npz"
            try:
                res = train(model, params, data, steps=steps, lr=tr["lr"], optimizer=tr["optimizer"],
                            trainable=trainable, rng=spec.seed, backend=_backend(cfg),
                            log_path=run_dir / f"train_{stage}.jsonl", checkpoint_path=ckpt,
                            checkpoint_every=tr["checkpoint_every"], resume=spec.resume,
                            progress=False, callback=_stop_callback)
            except TrainingDivergedError as err:
                # a diverged run keeps the best parameters it reached; the stage records why it ended
                res = err.result
            if res.stopped == "callback":
                return {"status": "interrupted", **ident}
            # keep the best parameters seen, as the authors do
            params = {k: np.asarray(v) for k, v in res.best_params.items()}
            losses = np.asarray(res.losses, dtype=np.float64)
            info = {"stage": stage, "steps": int(steps), "trainable": list(trainable) if trainable else "all",
                    "steps_done": int(res.steps_done), "stopped": res.stopped,
                    "best_loss": float(res.best_loss), "best_step": int(res.best_step),
                    "wall_time": float(res.wall_time), "losses": losses.tolist()}
            _save_params(done_path, params)
            _atomic_json(info_path, info)
            stages_out.append(info)
            wall += info["wall_time"]
            losses_all.append(losses)
    except KeyboardInterrupt:
        return {"status": "interrupted", **ident}

    t0 = time.perf_counter()
    metrics = evaluate_params(model, params, cfg)
    eval_time = time.perf_counter() - t0
    losses = np.concatenate(losses_all) if losses_all else np.zeros(0)
    result = {
        "status": "done", **ident,
        "n_params": model.n_params(),
        "curve": curve_summary(losses),
        "stages": [{k: v for k, v in s.items() if k != "losses"} for s in stages_out],
        "wall_time": wall,
        "eval_time": eval_time,
        **metrics,
    }
    save_model(run_dir / "model.npz", model, params,
               metadata={"experiment": "mwg", "model": spec.model, "seed": spec.seed,
                         "train_loss": metrics["train_loss"], "config": dict(cfg)})
    _atomic_json(result_path, result)
    return result


# ----------------------------------------------------------------------------
# The whole experiment
# ----------------------------------------------------------------------------
class ExperimentInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`run_experiment`; finished runs are saved. ``.finished``, ``.total`` counts."""

    def __init__(self, finished: int, total: int, out: Path):
        super().__init__(f"interrupted: {finished} of {total} runs finished in {out}")
        self.finished, self.total, self.out = finished, total, out


def model_summary_lines(cfg: Mapping[str, Any]) -> list[str]:
    """One line per model: its label, sizes and parameter count."""
    lines = []
    for name in cfg["experiment"]["models"]:
        model = build_model(name, cfg)
        sizes = ", ".join(f"{k}={_fmt_num(v)}" for k, v in cfg["models"][name].items())
        lines.append(f"  {MODEL_LABELS[name]:<7} ({sizes}): {model.n_params()} parameters")
    return lines


def _fmt_num(v):
    return f"{v:g}" if isinstance(v, float) else str(v)


def _config_header(cfg: Mapping[str, Any]) -> str:
    return ("Settings of a Measure-Wait-Go experiment (nmrnn_np); written by nmrnn-np.\n"
            "Run it again with: nmrnn-np mwg --config config.toml --out NEW_FOLDER")


def prepare_out_dir(out: str | os.PathLike, cfg: Mapping[str, Any] | None, resume: bool) -> dict[str, Any]:
    """Create ``out`` for a new experiment, or read the settings of the one to resume.

    Returns the settings to use. A new experiment refuses an existing,
    non-empty folder; ``resume`` requires the folder's ``config.toml`` and
    returns its settings (``cfg`` is then ignored).
    """
    out = Path(out)
    config_path = out / "config.toml"
    if resume:
        if not config_path.exists():
            raise FileExistsError(f"cannot resume: {str(config_path)!r} does not exist "
                                  f"(start a new experiment without --resume)")
        return resolve_config("quick", config_path)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"output folder {str(out)!r} already exists and is not empty; "
                              f"use --resume to continue it or choose another --out")
    if cfg is None:
        raise ValueError("cfg is required for a new experiment")
    out.mkdir(parents=True, exist_ok=True)
    write_toml(config_path, cfg, header=_config_header(cfg))
    return dict(cfg)


def run_experiment(cfg: Mapping[str, Any] | None, out: str | os.PathLike, *, jobs: int = 0,
                   resume: bool = False, executor: Executor | None = None, figures: bool = True,
                   log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train every (model, seed) of ``cfg``, evaluate, and write the experiment folder ``out``.

    Parameters
    ----------
    cfg : dict or None
        Settings (:func:`resolve_config`); ignored with ``resume`` (the
        folder's ``config.toml`` is used).
    out : path
        Experiment folder; must not exist (or be empty) unless ``resume``.
    jobs : int
        Worker processes (:func:`make_executor`: a
        :class:`~concurrent.futures.ProcessPoolExecutor`); 0 runs everything
        in this process.
    resume : bool
        Continue an interrupted experiment: finished runs are kept,
        unfinished ones continue from their checkpoints.
    executor : concurrent.futures.Executor, optional
        Run the runs on this executor instead (e.g. a cluster executor); it
        must accept :func:`run_one` and a :class:`RunSpec`. It is not shut down.
    figures : bool
        Write the figures and ``report.md`` after training.
    log : callable
        Receives progress lines.

    Returns
    -------
    dict
        The contents of ``metrics.json``.

    Raises
    ------
    FileExistsError
        ``out`` exists and is not empty (without ``resume``), or ``resume``
        without a ``config.toml`` in ``out``.
    ExperimentInterrupted
        On Ctrl-C, after the running trainings have written checkpoints.
    """
    out = Path(out)
    cfg = prepare_out_dir(out, cfg, resume)
    ex = cfg["experiment"]
    seeds = list(range(ex["first_seed"], ex["first_seed"] + ex["seeds"]))
    specs = [RunSpec(m, s, str(out / "runs" / run_name(m, s)), cfg, resume)
             for s in seeds for m in ex["models"]]
    log(f"Measure-Wait-Go, {ex['mode']} mode: {len(ex['models'])} models x {len(seeds)} seeds "
        f"-> {out}")
    for line in model_summary_lines(cfg):
        log(line)
    todo = [sp for sp in specs if not (Path(sp.run_dir) / "result.json").exists()]
    if len(todo) < len(specs):
        log(f"  {len(specs) - len(todo)} runs already finished, {len(todo)} to go")
    t_start = time.perf_counter()
    finished = len(specs) - len(todo)

    def report(res: Mapping[str, Any]) -> None:
        nonlocal finished
        if res.get("status") != "done":
            return
        finished += 1
        l2 = res["l2"]
        log(f"  [{finished}/{len(specs)}] {MODEL_LABELS[res['model']]:<7} seed {res['seed']}: "
            f"train {res['train_loss']:.2e}, trained {l2['trained']:.2e}, "
            f"extrapolated {_fmt_opt(l2['extrapolated'])} ({res['wall_time']:.0f} s)")

    interrupted = False
    if todo:
        if executor is None and jobs == 0:
            try:
                for sp in todo:
                    res = run_one(sp)
                    if res.get("status") == "interrupted":
                        interrupted = True
                        break
                    report(res)
            except KeyboardInterrupt:
                interrupted = True
        else:
            interrupted = _run_parallel(todo, jobs, executor, report)
    if interrupted:
        raise ExperimentInterrupted(finished, len(specs), out)
    log(f"  training finished in {time.perf_counter() - t_start:.0f} s")
    return evaluate_run_dir(out, figures=figures, log=log)


def _fmt_opt(v) -> str:
    return "n/a" if v is None else f"{v:.2e}"


#: thread-count variables set to 1 in worker processes (when the user has not set them): the
#: matrices here are tiny, and multithreaded BLAS only makes parallel workers fight for the cores
_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def make_executor(jobs: int, stop_event=None) -> ProcessPoolExecutor:
    """The default executor: ``jobs`` fresh ("spawn") worker processes with single-threaded BLAS.

    Fresh processes (not forked ones) are needed so that the thread-count
    environment variables take effect before numpy loads its BLAS.
    """
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    for k in _THREAD_VARS:
        os.environ.setdefault(k, "1")
    try:
        executor = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_init,
                                       initargs=(stop_event,))
        # start every worker now, while the variables are set (spawned children copy the environment)
        for f in [executor.submit(int, 0) for _ in range(jobs)]:
            f.result()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return executor


def _run_parallel(todo: Sequence[RunSpec], jobs: int, executor: Executor | None,
                  report: Callable[[Mapping[str, Any]], None]) -> bool:
    """Run ``todo`` on an executor; return True if interrupted by Ctrl-C."""
    import multiprocessing as mp

    own = executor is None
    stop = None
    futures: list[Future] = []
    pending: set[Future] = set()
    interrupted = False
    try:
        if own:
            stop = mp.get_context("spawn").Event()
            executor = make_executor(max(1, min(jobs, len(todo))), stop)
        futures = [executor.submit(run_one, sp) for sp in todo]
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in done:
                res = fut.result()
                if res.get("status") == "interrupted":
                    interrupted = True
                report(res)
    except KeyboardInterrupt:
        interrupted = True
        if stop is not None:
            stop.set()  # running trainings checkpoint and return; queued runs return at once
        for fut in pending:
            fut.cancel()
        # runs that finish while stopping are saved anyway; report them
        for fut in pending:
            if not fut.cancelled():
                try:
                    report(fut.result())
                except Exception:  # a run that failed while stopping: its folder stays unfinished
                    pass
    finally:
        if own and executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
    return interrupted


# ----------------------------------------------------------------------------
# Aggregation and reporting
# ----------------------------------------------------------------------------
def _stats(values: Sequence[float | None]) -> dict[str, Any] | None:
    vals = np.array([v for v in values if v is not None], dtype=np.float64)
    if vals.size == 0:
        return None
    return {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if vals.size > 1 else 0.0,
            "median": float(np.median(vals)), "min": float(vals.min()), "max": float(vals.max()),
            "n": int(vals.size)}


SUMMARY_KEYS = ("train_loss", "trained", "shorter", "longer", "extrapolated", "wall_time")


def summarize(runs: Sequence[Mapping[str, Any]], models: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Mean, standard deviation, median, min and max over seeds of each model's numbers."""
    out = {}
    for m in models:
        rs = [r for r in runs if r["model"] == m]
        if not rs:
            continue
        out[m] = {
            "seeds": [r["seed"] for r in rs],
            "train_loss": _stats([r["train_loss"] for r in rs]),
            **{k: _stats([r["l2"][k] for r in rs]) for k in ("trained", "shorter", "longer", "extrapolated")},
            "wall_time": _stats([r.get("wall_time") for r in rs]),
        }
    return out


def _cell(stat: Mapping[str, Any] | None, fmt: str = ".1e") -> str:
    if stat is None:
        return "n/a"
    if stat["n"] == 1:
        return format(stat["mean"], fmt)
    return f"{format(stat['mean'], fmt)} ± {format(stat['std'], fmt)}"


def format_table(summary: Mapping[str, Mapping[str, Any]], n_params: Mapping[str, int]) -> str:
    """Markdown table of :func:`summarize`: mean ± standard deviation over seeds."""
    head = ("| model | params | seeds | train loss | L2 trained (12-18) | L2 shorter (4-10) | "
            "L2 longer (20-26) | L2 extrapolated | wall time / run (s) |")
    lines = [head, "|" + "---|" * 9]
    for m, s in summary.items():
        lines.append(f"| {MODEL_LABELS[m]} | {n_params[m]} | {len(s['seeds'])} | {_cell(s['train_loss'])} | "
                     f"{_cell(s['trained'])} | {_cell(s['shorter'])} | {_cell(s['longer'])} | "
                     f"{_cell(s['extrapolated'])} | {_cell(s['wall_time'], '.0f')} |")
    return "\n".join(lines)


def _interval_label(cfg: Mapping[str, Any]) -> dict[str, str]:
    t = cfg["task"]
    trained = sorted(t["train_intervals"])
    lo, hi = trained[0], trained[-1]
    shorter = [i for i in t["test_intervals"] if i < lo]
    longer = [i for i in t["test_intervals"] if i > hi]
    rng = lambda v: (f"{min(v)}-{max(v)}" if len(v) > 1 else str(v[0])) if v else "none"  # noqa: E731
    return {"trained": rng(trained), "shorter": rng(shorter), "longer": rng(longer)}


def load_runs(out: str | os.PathLike) -> list[tuple[dict[str, Any], Path]]:
    """Finished runs of an experiment folder: ``(result, run folder)`` pairs, by model then seed."""
    out = Path(out)
    found = []
    for d in sorted((out / "runs").glob("*")) if (out / "runs").is_dir() else []:
        rp, mp_ = d / "result.json", d / "model.npz"
        if rp.exists() and mp_.exists():
            found.append((json.loads(rp.read_text(encoding="utf-8")), d))
    order = {m: i for i, m in enumerate(MODEL_NAMES)}
    found.sort(key=lambda rd: (order.get(rd[0]["model"], 99), rd[0]["seed"]))
    return found


def evaluate_run_dir(out: str | os.PathLike, *, clamp: str | None = None, figures: bool = True,
                     log: Callable[[str], None] = print) -> dict[str, Any]:
    """Evaluate every finished run of an experiment folder; write metrics, report and figures.

    The trained models are loaded from their ``model.npz`` and evaluated again
    (simulation only, fast), so this works on any finished run, including one
    written by ``nmrnn-np train``.

    Parameters
    ----------
    out : path
        Experiment folder (with ``config.toml`` and ``runs/``).
    clamp : {"mean", "zero", "one"}, optional
        Value the ablation clamps components of s to; default the config's.
    figures : bool
        Write ``report.md`` and the PNG figures.

    Returns
    -------
    dict
        The contents of the ``metrics.json`` written.
    """
    from ..io import load_model

    out = Path(out)
    config_path = out / "config.toml"
    if not config_path.exists():
        raise FileNotFoundError(f"{str(out)!r} is not an experiment folder: it has no config.toml")
    cfg = resolve_config("quick", config_path)
    if clamp is not None and clamp not in CLAMP_MODES:
        raise ConfigError(f"clamp must be one of {', '.join(CLAMP_MODES)}, got {clamp!r}")
    runs_found = load_runs(out)
    if not runs_found:
        raise FileNotFoundError(f"{str(out)!r} has no finished runs (runs/*/result.json and model.npz)")
    models_loaded = {}
    runs = []
    for res, d in runs_found:
        model, params, _ = load_model(d / "model.npz")
        models_loaded[(res["model"], res["seed"])] = (model, params)
        metrics = evaluate_params(model, params, cfg, clamp=clamp)
        stored = res.get("train_loss")
        if stored is not None and not math.isclose(metrics["train_loss"], stored, rel_tol=1e-6, abs_tol=1e-12):
            # same parameters, same data: only a change of the code (or its backend) can do this
            log(f"  warning: {res['run']}: training loss re-evaluated as {metrics['train_loss']:.6e}, but "
                f"{stored:.6e} when the run finished; the simulation code has changed since")
        run = {k: res[k] for k in ("model", "seed", "run", "n_params", "curve", "stages", "wall_time")
               if k in res}
        run.update(metrics)
        runs.append(run)
    models = [m for m in cfg["experiment"]["models"] if any(r["model"] == m for r in runs)]
    expected = [run_name(m, s) for s in range(cfg["experiment"]["first_seed"],
                                               cfg["experiment"]["first_seed"] + cfg["experiment"]["seeds"])
                for m in cfg["experiment"]["models"]]
    missing = [n for n in expected if n not in {r["run"] for r in runs}]
    summary = summarize(runs, models)
    n_params = {m: build_model(m, cfg).n_params() for m in models}
    metrics_doc = {
        "experiment": "measure-wait-go",
        "mode": cfg["experiment"]["mode"],
        "intervals": _interval_label(cfg),
        "n_params": n_params,
        "summary": summary,
        "runs": runs,
        "missing_runs": missing,
    }
    table = format_table(summary, n_params)
    log("")
    log(table)
    if "nmrnn" in summary and "lrrnn" in summary:
        log("  " + comparison_sentence(summary))
    if missing:
        log(f"  {len(missing)} runs are unfinished: {', '.join(missing)} (continue with --resume)")
    fig_files: dict[str, str] = {}
    if figures:
        from . import plots
        fig_files = plots.make_all(out, cfg, runs, models_loaded, clamp=clamp or cfg["experiment"]["clamp"])
        _write_report(out, cfg, metrics_doc, table, fig_files)
    metrics_doc["figures"] = fig_files
    _atomic_json(out / "metrics.json", metrics_doc)
    return metrics_doc


def comparison_sentence(summary: Mapping[str, Mapping[str, Any]]) -> str:
    """One sentence comparing the NM-RNN's and the LR-RNN's extrapolation errors."""
    nm, lr = summary["nmrnn"]["extrapolated"], summary["lrrnn"]["extrapolated"]
    if nm is None or lr is None:
        return "No extrapolated intervals in the test set."
    ratio = lr["mean"] / nm["mean"] if nm["mean"] > 0 else float("inf")
    verdict = "below" if nm["mean"] < lr["mean"] else "NOT below"
    return (f"NM-RNN extrapolation error {nm['mean']:.2e} is {verdict} the LR-RNN's {lr['mean']:.2e} "
            f"(ratio {ratio:.1f}x; worst NM-RNN seed {nm['max']:.2e}, best LR-RNN seed {lr['min']:.2e}).")


_FIGURE_CAPTIONS = {
    "errors": "L2 error (mean squared error) of each model on the trained intervals and on the shorter and "
              "longer intervals it never saw; one point per seed, bar = mean.",
    "outputs": "Outputs (solid) against targets (dashed) of each model's median seed, for the trained "
               "intervals (left) and the extrapolated ones (right), aligned to the go cue.",
    "nm_signal": "The NM-RNN's neuromodulatory signal s(t), each component, aligned to the go cue; one line "
                 "per test interval.",
    "ablation": "Ablation: each component of s clamped in turn (median seed's outputs, top) and the increase of "
                "the test error per component (every seed, bottom; the numbering of the components is arbitrary "
                "and differs between seeds).",
    "latents": "The NM-RNN's output-network state projected on its K (orthonormalised) left factors, "
               "kappa = L^T x, one line per test interval.",
    "training": "Training loss per step (every seed).",
}


def _write_report(out: Path, cfg: Mapping[str, Any], metrics: Mapping[str, Any], table: str,
                  figs: Mapping[str, str]) -> None:
    ex, tr, task = cfg["experiment"], cfg["training"], cfg["task"]
    iv = metrics["intervals"]
    lines = [
        "# Measure-Wait-Go: extrapolation to untrained intervals",
        "",
        f"Mode **{ex['mode']}**; {len(ex['models'])} models x {ex['seeds']} seeds "
        f"(seeds {ex['first_seed']}..{ex['first_seed'] + ex['seeds'] - 1}). Settings: `config.toml`; "
        "every number: `metrics.json`.",
        "",
        f"Trained on intervals {task['train_intervals']} with the measure pulse at every step in "
        f"[{task['measure_window'][0]}, {task['measure_window'][1]}) (full batch); tested on intervals "
        f"{task['test_intervals']} with the measure pulse at t = {task['test_t_measure']}.",
        f"Optimiser {tr['optimizer']}, lr {tr['lr']:g}; {tr['steps']} steps"
        + (f"; the NM-RNN first trains its output network for {tr['nmrnn_output_steps']} steps"
           if tr["nmrnn_output_steps"] else "")
        + (f"{' and then' if tr['nmrnn_output_steps'] else '; the NM-RNN first trains'} only its "
           f"NM subnetwork for {tr['nmrnn_nm_steps']} steps" if tr["nmrnn_nm_steps"] else "")
        + ".",
        "",
        "## Results",
        "",
        f"L2 error = mean squared error over all time steps; trained = intervals {iv['trained']}, "
        f"shorter = {iv['shorter']}, longer = {iv['longer']}, extrapolated = shorter and longer together. "
        "Mean ± standard deviation over seeds; train loss on the 40 training trials (best parameters kept).",
        "",
        table,
        "",
    ]
    summary = metrics["summary"]
    if "nmrnn" in summary and "lrrnn" in summary:
        lines += [comparison_sentence(summary), ""]
    ab = [r["ablation"] for r in metrics["runs"] if r["model"] == "nmrnn" and "ablation" in r]
    if ab:
        inc = np.array([a["increase"] for a in ab])
        cells = ", ".join(f"s{k + 1}: {inc[:, k].mean():+.1e}" for k in range(inc.shape[1]))
        lines += [f"Ablation (components clamped to their {ab[0]['mode'] if ab[0]['mode'] != 'mean' else 'trial mean'}"
                  f"{'' if ab[0]['mode'] == 'mean' else ' value'}): mean increase of the test error over seeds: "
                  f"{cells}.", ""]
    if metrics["missing_runs"]:
        lines += [f"Unfinished runs (not in the table): {', '.join(metrics['missing_runs'])}.", ""]
    if figs:
        lines += ["## Figures", ""]
        for key, fname in figs.items():
            lines += [f"![{key}]({fname})", "", _FIGURE_CAPTIONS.get(key, ""), ""]
    atomic_write_text(out / "report.md", "\n".join(lines))
