r"""One trainer for every model and task: :func:`train`.

Gradient descent on ``model.loss_and_grad`` with the authors' optimiser
(:mod:`nmrnn_np.optim`) by default, full batch or random minibatches, for a
fixed number of steps, optionally on a chosen subset of the parameters (the
multitask experiment retrains only the NM subnetwork or only the input
weights). It keeps the best parameters seen, logs JSON lines, shows a tqdm
bar, and writes checkpoints from which a run resumes bit for bit.

Step numbering: step ``k`` (``k = 0, 1, ..., steps - 1``) evaluates the loss
and gradient at the current parameters :math:`p_k`, then applies update
``k + 1`` of the optimiser, giving :math:`p_{k+1}`. So ``losses[k]`` is the
loss of :math:`p_k`, the *pre-update* parameters, and a checkpoint "at step
s" holds :math:`p_s`, the parameters after ``s`` updates.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from . import _validation as V
from ._backend import resolve_backend
from ._rng import as_generator
from .io import atomic_savez, from_json_array, json_array, model_from_config, read_npz
from .losses import get_loss
from .models import RecurrentModel
from .optim import AdamState, NonFiniteStep, Optimizer, make_optimizer

Params = dict[str, np.ndarray]

CHECKPOINT_FORMAT = "nmrnn_np.checkpoint"
CHECKPOINT_VERSION = 1


class TrainingDivergedError(FloatingPointError):
    """A non-finite loss, gradient or parameter stopped :func:`train`.

    Attributes
    ----------
    step : int
        The step at which it happened.
    result : TrainResult
        ``stopped == "non_finite"``; ``params`` are the last finite parameters
        (before the failing step) and ``best_params`` the best seen.
    """

    def __init__(self, message: str, step: int, result: "TrainResult"):
        super().__init__(message)
        self.step = step
        self.result = result


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    params : dict of arrays
        Parameters after the last update (frozen entries unchanged).
    best_params : dict of arrays
        The parameters with the lowest loss seen. The loss of step k is that
        of the parameters *before* update k, so ``best_params`` is one of
        p_0 ... p_{steps-1}; the final ``params`` are never evaluated.
    best_loss : float
        ``losses[best_step]``; ``inf`` if no finite loss was seen. (With
        ``best_rule="chunk_end"``: ``losses[best_step - 1]``, the loss of the
        chunk's last step, whose update gave ``best_params``.)
    best_step : int
        Step whose pre-update parameters are ``best_params``.
    losses : array (steps_done,)
        Loss at every step (on that step's minibatch when minibatching).
    steps_done : int
        Number of updates applied, counting those before a resume.
    wall_time : float
        Seconds spent training, summed over resumed segments.
    stopped : {"completed", "non_finite", "callback"}
        Why training ended.
    trainable : tuple of str
        The parameter keys that were trained.
    opt_state : AdamState
        Optimiser state after the last update (moments of the trainable keys).
    """

    params: Params
    best_params: Params
    best_loss: float
    best_step: int
    losses: np.ndarray
    steps_done: int
    wall_time: float
    stopped: str
    trainable: tuple[str, ...] = ()
    opt_state: AdamState | None = field(default=None, repr=False)


# ----------------------------------------------------------------------------
# Argument handling
# ----------------------------------------------------------------------------
def trainable_keys(model: RecurrentModel, trainable: None | str | Sequence[str]) -> tuple[str, ...]:
    """Resolve parameter keys and group names (``model.groups``) to parameter keys.

    ``None`` means every parameter. The result follows ``model.param_shapes()``
    order and has no duplicates. Unknown names raise ValueError listing the
    valid keys and groups.
    """
    if not isinstance(model, RecurrentModel):
        raise TypeError(f"model must be a RecurrentModel, got {type(model).__name__}")
    shapes = model.param_shapes()
    if trainable is None:
        return tuple(shapes)
    groups = dict(getattr(model, "groups", {}) or {})
    if not isinstance(trainable, (str, list, tuple, set, frozenset)):
        raise TypeError(f"trainable must be None, a name or a list of parameter keys / group names "
                        f"(keys {list(shapes)}, groups {sorted(groups)}), got {trainable!r} ({type(trainable).__name__})")
    names = [trainable] if isinstance(trainable, str) else list(trainable)
    if not names:
        raise ValueError("trainable is empty: name at least one parameter key or group (None trains all)")
    chosen: set[str] = set()
    unknown = []
    for name in names:
        if not isinstance(name, str):
            unknown.append(name)
        elif name in shapes:
            chosen.add(name)
        elif name in groups:
            chosen.update(k for k in groups[name] if k in shapes)
        else:
            unknown.append(name)
    if unknown:
        raise ValueError(f"trainable: unknown name(s) {unknown} for {type(model).__name__}; valid parameter keys "
                         f"are {list(shapes)} and valid groups are "
                         f"{ {g: list(k) for g, k in groups.items()} }")
    return tuple(k for k in shapes if k in chosen)


def _check_data(model: RecurrentModel, data, what: str = "data") -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise ValueError(f"{what} must be a tuple (inputs, targets) or (inputs, targets, mask) of arrays "
                         f"(n, T, .), got {type(data).__name__}"
                         + (f" of length {len(data)}" if isinstance(data, (tuple, list)) else ""))
    inputs = model.check_inputs(data[0], f"{what} inputs")
    mask = data[2] if len(data) == 3 else None
    try:
        targets, mask = model._check_targets(inputs, data[1], mask)
    except ValueError as err:
        raise ValueError(f"{what}: {err}") from None
    return inputs, targets, mask


def _fingerprint(arrays: Sequence[np.ndarray | None]) -> str:
    """SHA-256 of the training data, to notice a resume with different data."""
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none")
        else:
            h.update(str(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _stderr_is_tty() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # closed or detached stream
        return False


def _restore_rng(gen: np.random.Generator, state: dict) -> np.random.Generator:
    """Put ``gen`` in ``state`` (a ``bit_generator.state`` dict), or build one of the stored type."""
    name = state.get("bit_generator")
    if type(gen.bit_generator).__name__ != name:
        bit_gen = getattr(np.random, str(name), None)
        if bit_gen is None:
            raise ValueError(f"checkpoint rng uses an unknown bit generator {name!r}")
        gen = np.random.Generator(bit_gen())
    gen.bit_generator.state = state
    return gen


# ----------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Snapshot:
    """A consistent state between two steps (replaced as one object, so Ctrl-C never sees half a step)."""

    step: int
    params: Params
    opt_state: AdamState
    rng_state: dict
    best_loss: float
    best_step: int
    best_params: Params


def _write_checkpoint(path: Path, snap: _Snapshot, losses: list, model: RecurrentModel,
                      meta: dict, wall_time: float) -> None:
    arrays = {
        "format": np.array(CHECKPOINT_FORMAT),
        "format_version": np.array(CHECKPOINT_VERSION, dtype=np.int64),
        "kind": np.array(model.kind),
        "config": json_array(model.config(), "the model config"),
        "meta": json_array(meta, "checkpoint metadata"),
        "step": np.array(snap.step, dtype=np.int64),
        "rng_state": json_array(snap.rng_state, "rng state"),
        "best_loss": np.array(snap.best_loss, dtype=np.float64),
        "best_step": np.array(snap.best_step, dtype=np.int64),
        "losses": np.array(losses[:snap.step], dtype=np.float64),
        "wall_time": np.array(wall_time, dtype=np.float64),
    }
    arrays.update({f"params/{k}": v for k, v in snap.params.items()})
    arrays.update({f"best_params/{k}": v for k, v in snap.best_params.items()})
    arrays.update(snap.opt_state.to_arrays("opt/"))
    atomic_savez(path, arrays)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`train`.

    Returns
    -------
    dict with keys
        ``model`` (RecurrentModel), ``step`` (updates done), ``params``,
        ``best_params``, ``best_loss``, ``best_step``, ``losses`` (step,),
        ``opt_state`` (AdamState), ``rng_state`` (dict for
        ``Generator.bit_generator.state``), ``wall_time`` and ``meta``
        (batch size, number of trials, data hash, loss name, optimiser
        hyperparameters, trainable keys).

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file; unreadable, not a checkpoint, or inconsistent content
        (the message names the file and the problem).
    """
    path = V.input_path(path, "path")
    arrays = read_npz(path, "checkpoint")
    fmt = str(arrays["format"]) if "format" in arrays and arrays["format"].dtype.kind == "U" else None
    if fmt != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an nmrnn_np training checkpoint (format entry {fmt!r})")
    version = int(arrays.get("format_version", -1))
    if not 1 <= version <= CHECKPOINT_VERSION:
        raise ValueError(f"{path}: unsupported checkpoint format_version {version}")
    for key in ("kind", "step", "best_loss", "best_step", "losses", "wall_time", "opt/count"):
        if key not in arrays:
            raise ValueError(f"{path}: missing entry {key!r}")
    model = model_from_config(str(arrays["kind"]), from_json_array(arrays, "config", path), str(path))
    out: dict[str, Any] = {"model": model}
    for prefix in ("params", "best_params"):
        p = {k[len(prefix) + 1:]: v for k, v in arrays.items() if k.startswith(prefix + "/")}
        try:
            out[prefix] = {k: np.array(v) for k, v in model.check_params(p, name=prefix).items()}
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None
    step = int(arrays["step"])
    losses = np.array(arrays["losses"], dtype=np.float64)
    if losses.shape != (step,):
        raise ValueError(f"{path}: the loss history has shape {losses.shape}, expected ({step},) for step {step}")
    opt_state = AdamState.from_arrays(arrays, "opt/")
    meta = from_json_array(arrays, "meta", path)
    trainable = tuple(meta.get("trainable", ()))
    if set(opt_state.mu) != set(trainable):
        raise ValueError(f"{path}: optimiser moments for {sorted(opt_state.mu)} but trainable keys {list(trainable)}")
    for k in trainable:
        if opt_state.mu[k].shape != out["params"][k].shape or opt_state.nu[k].shape != out["params"][k].shape:
            raise ValueError(f"{path}: optimiser moments of {k!r} have the wrong shape")
    out.update(step=step, best_loss=float(arrays["best_loss"]), best_step=int(arrays["best_step"]),
               losses=losses, opt_state=opt_state, rng_state=from_json_array(arrays, "rng_state", path),
               wall_time=float(arrays["wall_time"]), meta=meta)
    return out


def _check_resume(ck: dict, model: RecurrentModel, keys: tuple[str, ...], meta: dict, path: Path, steps: int):
    if ck["model"] != model:
        raise ValueError(f"cannot resume from {path}: it was written for {ck['model']!r}, "
                         f"but train() was given {model!r}")
    if tuple(ck["meta"].get("trainable", ())) != keys:
        raise ValueError(f"cannot resume from {path}: it trained {list(ck['meta'].get('trainable', ()))}, "
                         f"this call trains {list(keys)}")
    if ck["step"] > steps:
        raise ValueError(f"cannot resume from {path}: it is at step {ck['step']}, beyond steps={steps}")
    for name in ("restart_every", "best_rule"):
        if ck["meta"].get(name, {"restart_every": 0, "best_rule": "step"}[name]) != meta.get(name):
            raise ValueError(f"cannot resume from {path}: it trained with {name}={ck['meta'].get(name)!r}, "
                             f"this call uses {meta.get(name)!r}")
    differences = [name for name in ("optimizer", "batch_size", "n_trials", "data_sha256", "loss")
                   if ck["meta"].get(name) != meta.get(name)]
    if differences:
        warnings.warn(f"resuming from {path} with a different {', '.join(differences)} than the run that wrote "
                      "it: the result will not match an uninterrupted run", UserWarning, stacklevel=3)


# ----------------------------------------------------------------------------
# The trainer
# ----------------------------------------------------------------------------
class _JsonLog:
    """JSON-lines log, one object per line, flushed line by line."""

    def __init__(self, path: str | os.PathLike | None, start: int):
        self.fh = None
        if path is None:
            return
        path = Path(path)
        # a resumed run appends (the log is a history: the steps after the checkpoint that were lost
        # with the interruption appear twice, after a "resumed" event); a fresh run starts a new file
        self.fh = open(path, "a" if start > 0 else "w", buffering=1)
        if start > 0:
            self.fh.write(json.dumps({"step": start, "event": "resumed"}) + "\n")

    def write(self, **record):
        if self.fh is not None:
            self.fh.write(json.dumps(record) + "\n")

    def close(self):
        if self.fh is not None:
            self.fh.close()


def train(model: RecurrentModel, params: Mapping[str, np.ndarray], data, *, steps: int,
          lr: float | None = None, optimizer: str | Optimizer = "clip_adamw",
          trainable: None | str | Sequence[str] = None, batch_size: int | None = None,
          rng: None | int | np.random.Generator = 0, loss: str | Callable = "masked_mse",
          initial_states: Mapping[str, Any] | None = None, backend: str | None = None,
          log_path: str | os.PathLike | None = None, log_every: int = 1,
          checkpoint_path: str | os.PathLike | None = None, checkpoint_every: int = 1000,
          resume: bool = False, progress: bool | None = None,
          callback: Callable[[int, float, Params], Any] | None = None,
          restart_every: int = 0, best_rule: str = "step") -> TrainResult:
    r"""Train ``model`` from ``params`` on ``data`` for ``steps`` optimiser steps.

    Parameters
    ----------
    model : RecurrentModel
    params : dict of arrays
        Starting parameters (not modified; copied).
    data : tuple (inputs, targets) or (inputs, targets, mask), or a sampler
        Arrays (n, T, U), (n, T, O) and (n, T), (n, T, 1) or (n, T, O); mask
        may be None. Or a *sampler*: a callable ``data(rng)`` that returns
        such a tuple, a fresh batch drawn from the trainer's generator
        ``rng`` at every step (the element-finder task draws 128 new trials
        per step). With a sampler, ``batch_size`` must be None and
        ``initial_states`` shared, shape (dim,); the batches are a function of
        ``rng`` alone, so a resumed run draws the same batches as an
        uninterrupted one.
    steps : int
        Number of optimiser steps in total (a resumed run counts the steps
        before the checkpoint).
    lr : float, optional
        Learning rate. Default 1e-2 for a named optimiser (the authors'
        timing-task rate); for an :class:`~nmrnn_np.optim.Optimizer` its own
        rate unless ``lr`` is given.
    optimizer : str or Optimizer
        ``"clip_adamw"`` (default; the authors' element-wise clip at 1 then
        AdamW with weight decay 1e-4), ``"clip_norm_adamw"``, ``"adamw"``,
        ``"adam"``, or an :class:`~nmrnn_np.optim.Optimizer`. See
        :func:`nmrnn_np.optim.make_optimizer`.
    trainable : None, str or sequence of str
        Parameter keys and/or group names of ``model.groups`` (e.g. ``"nm"``,
        ``"input"``, ``"output"``) to train; the rest stay frozen: their
        gradients are ignored, they get no weight decay and the returned arrays
        equal the given ones bit for bit. ``None`` trains everything.
    batch_size : int, optional
        ``None``: every step uses all n trials. Otherwise each step uses
        ``batch_size`` distinct trials drawn with
        ``rng.choice(n, batch_size, replace=False)``, independently per step.
        Not with a sampler.
    rng : None, int or Generator
        Source of the minibatch draws (default seed 0, so a call is
        reproducible). Ignored on resume: the checkpoint's generator state is
        restored.
    loss : str or callable
        ``"masked_mse"`` (default), ``"mse"``, ``"last_step_mse"`` or a
        callable ``(y, targets, mask)``; forwarded to ``model.loss_and_grad``.
    initial_states : dict, optional
        ``x0``, ``z0``, ``h0``, ``c0`` as (dim,) (shared) or (n, dim) (one per
        trial; minibatches take the rows of their trials). Default 0.1.
    backend : {"numba", "numpy", "numba32"}, optional
        Forwarded to ``model.loss_and_grad``.
    log_path : path, optional
        JSON-lines log, one line every ``log_every`` steps and at the last
        step: ``{"step", "loss", "best_loss", "wall_time"}`` (``loss`` is
        ``losses[step]``). Events (``"interrupted"``, ``"non_finite"``) get a
        line with an ``"event"`` key. A fresh run overwrites the file; a resumed
        run keeps the lines before the checkpoint's step and appends.
    log_every : int
        Logging period in steps.
    checkpoint_path : path, optional
        Where to write checkpoints (an ``.npz``; see :func:`load_checkpoint`),
        every ``checkpoint_every`` steps, at the end, and on Ctrl-C. Each write
        is atomic (temporary file, then :func:`os.replace`).
    checkpoint_every : int
        Checkpoint period in steps.
    resume : bool
        Continue from ``checkpoint_path`` if that file exists (else start
        afresh). The checkpoint's parameters, optimiser state, rng state, loss
        history and best parameters replace ``params`` and ``rng``; the result
        is bit-identical to an uninterrupted run with the same arguments.
        Resuming with another model or other trainable keys is an error;
        with another optimiser, batch size, loss or data, a warning.
    progress : bool, optional
        Show a tqdm bar with the current and best loss on stderr. ``None``
        (default): only when stderr is a terminal.
    callback : callable, optional
        ``callback(step, loss, params)`` after each step, with ``loss =
        losses[step]`` and ``params`` (a copy) the parameters after that step's update.
        A true return value stops training (``stopped="callback"``).
    restart_every : int
        0 (default): one optimiser run. ``R > 0``: the authors' trainer
        (``fit_*`` in ``nmrnn/fitting.py`` of lindermanlab/nm-rnn runs 1000-step
        ``lax.scan`` chunks, each from the *initial* optimiser state and random
        key, because the state returned by the scan is discarded): every ``R``
        steps the optimiser state is reset (Adam's moments to zero and its step
        count to 0, so the bias correction restarts and the next update has full
        size) and the minibatch generator is reset to its state at step 0, so
        the same ``R`` minibatches (or sampler batches) repeat in every chunk.
        ``restart_every=1000`` reproduces the procedure behind the paper's
        timing and multitask figures.
    best_rule : {"step", "chunk_end"}
        Which parameters are returned as ``best_params``: ``"step"`` (default)
        those with the lowest loss at any step; ``"chunk_end"`` the authors'
        rule: the parameters at the end of the ``restart_every``-step chunk
        whose *last* step had the lowest loss (a final partial chunk counts as
        a chunk). Needs ``restart_every > 0``.

    Returns
    -------
    TrainResult

    Raises
    ------
    TrainingDivergedError
        A non-finite loss or gradient (of a trainable key) at step k, or an
        update that made a parameter non-finite. Nothing of step k is kept:
        ``error.result.params`` are the (finite) parameters before it, the
        checkpoint file keeps the last checkpoint written before it, and the
        message names the step.
    KeyboardInterrupt
        Re-raised after writing a checkpoint of the last completed step (when
        ``checkpoint_path`` is set).

    Notes
    -----
    Best parameters are tracked at every step, by the loss of step k, which is
    evaluated at the parameters *before* update k (on that step's minibatch
    when minibatching, so then "best" is noisy). The authors checked for
    the best only every 1000 steps; checking every step costs nothing extra
    here (the loss is computed anyway) and can only find an equal or lower loss.
    """
    if not isinstance(model, RecurrentModel):
        raise TypeError(f"model must be a RecurrentModel, got {type(model).__name__}")
    steps = V.positive_int(steps, "steps")
    restart_every = V.positive_int(restart_every, "restart_every", minimum=0)
    V.choice(best_rule, "best_rule", ("step", "chunk_end"))
    if best_rule == "chunk_end" and restart_every == 0:
        raise ValueError("best_rule='chunk_end' needs restart_every > 0 (the chunk length)")
    resume = V.boolean(resume, "resume")
    if progress is not None:
        progress = V.boolean(progress, "progress")
    if log_path is not None:
        log_path = V.output_path(log_path, "log_path")
    if checkpoint_path is not None:
        checkpoint_path = V.output_path(checkpoint_path, "checkpoint_path")
    log_every = V.positive_int(log_every, "log_every")
    checkpoint_every = V.positive_int(checkpoint_every, "checkpoint_every")
    opt = make_optimizer(optimizer, lr)
    keys = trainable_keys(model, trainable)
    params = {k: np.array(v) for k, v in model.check_params(params).items()}
    gen = as_generator(rng)
    sampler = data if callable(data) else None
    if sampler is not None:
        # one draw from a copy of the generator checks the sampler's output without consuming randomness
        probe = np.random.Generator(type(gen.bit_generator)())
        probe.bit_generator.state = gen.bit_generator.state
        inputs, targets, mask = _check_data(model, sampler(probe), "data(rng)")
        if batch_size is not None:
            raise ValueError("batch_size must be None when data is a sampler (it draws its own batches)")
    else:
        inputs, targets, mask = _check_data(model, data)
    n = inputs.shape[0]
    if initial_states is not None and not isinstance(initial_states, Mapping):
        raise TypeError(f"initial_states must be a dict or None, got {type(initial_states).__name__}")
    try:
        init = model.initial_states(n, **dict(initial_states or {}))
    except (TypeError, ValueError) as err:
        raise type(err)(f"initial_states: {err}") from None
    if sampler is not None:
        shared = {k: np.asarray(v) for k, v in dict(initial_states or {}).items()}
        if any(v.ndim != 1 for v in shared.values()):
            raise ValueError("initial_states must be shared, shape (dim,), when data is a sampler "
                             "(its batches are new trials at every step)")
    if batch_size is not None:
        batch_size = V.positive_int(batch_size, "batch_size")
        if batch_size > n:
            raise ValueError(f"batch_size={batch_size} exceeds the number of trials n={n}")
    backend_name = resolve_backend(backend)
    loss_fn = get_loss(loss)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
    if progress is None:
        progress = _stderr_is_tty()
    ckpt = None if checkpoint_path is None else Path(checkpoint_path)
    if ckpt is not None and not ckpt.parent.is_dir():
        raise ValueError(f"checkpoint_path: directory {ckpt.parent} does not exist")
    if resume and ckpt is None:
        raise ValueError("resume=True needs a checkpoint_path")

    meta = {"trainable": list(keys), "optimizer": opt.config(), "batch_size": batch_size, "n_trials": n,
            "restart_every": restart_every, "best_rule": best_rule, "rng_initial_state": gen.bit_generator.state,
            "loss": loss if isinstance(loss, str) else getattr(loss, "__name__", "callable"),
            "data_sha256": None if ckpt is None else
            (f"sampler:{getattr(sampler, '__qualname__', type(sampler).__qualname__)}" if sampler is not None else
             _fingerprint([inputs, targets, mask] + [init[k] for k in sorted(init)]))}

    # -- the state at the start: fresh or from the checkpoint -----------------
    losses: list[float] = []
    prior_wall = 0.0
    if resume and ckpt.exists():
        ck = load_checkpoint(ckpt)
        _check_resume(ck, model, keys, meta, ckpt, steps)
        # the chunks of restart_every restart from the generator state of the run's step 0
        meta["rng_initial_state"] = ck["meta"].get("rng_initial_state", meta["rng_initial_state"])
        gen = _restore_rng(gen, ck["rng_state"])
        losses = [float(v) for v in ck["losses"]]
        prior_wall = ck["wall_time"]
        snap = _Snapshot(ck["step"], ck["params"], ck["opt_state"], gen.bit_generator.state,
                         ck["best_loss"], ck["best_step"], ck["best_params"])
    else:
        snap = _Snapshot(0, params, opt.init({k: params[k] for k in keys}), gen.bit_generator.state,
                         math.inf, 0, params)
    last_checkpoint = snap.step if (resume and ckpt is not None and ckpt.exists()) else None

    t0 = time.perf_counter()

    def elapsed() -> float:
        return prior_wall + (time.perf_counter() - t0)

    def result(stopped: str) -> TrainResult:
        copy = lambda p: {k: np.array(v) for k, v in p.items()}  # noqa: E731 - never alias the caller's arrays
        return TrainResult(params=copy(snap.params), best_params=copy(snap.best_params),
                           best_loss=float(snap.best_loss), best_step=int(snap.best_step),
                           losses=np.array(losses[:snap.step], dtype=np.float64), steps_done=snap.step,
                           wall_time=elapsed(), stopped=stopped, trainable=keys, opt_state=snap.opt_state)

    def checkpoint() -> None:
        nonlocal last_checkpoint
        if ckpt is not None:
            _write_checkpoint(ckpt, snap, losses, model, meta, elapsed())
            last_checkpoint = snap.step

    def batch():
        if sampler is not None:
            b_inputs, b_targets, b_mask = _check_data(model, sampler(gen), "data(rng)")
            return b_inputs, b_targets, b_mask, model.initial_states(b_inputs.shape[0], **dict(initial_states or {}))
        if batch_size is None:
            return inputs, targets, mask, init
        idx = gen.choice(n, size=batch_size, replace=False)
        return (inputs[idx], targets[idx], None if mask is None else mask[idx],
                {k: v[idx] for k, v in init.items()})

    log = _JsonLog(log_path, snap.step)
    bar = tqdm(total=steps, initial=snap.step, disable=not progress, desc="train", unit="step",
               dynamic_ncols=True, file=sys.stderr)
    stopped = "completed"
    try:
        for k in range(snap.step, steps):
            if restart_every and k > 0 and k % restart_every == 0:
                # the authors' chunk boundary: fresh optimiser state, the generator back at step 0's state
                gen.bit_generator.state = meta["rng_initial_state"]
                snap = _Snapshot(snap.step, snap.params, opt.init({key: snap.params[key] for key in keys}),
                                 gen.bit_generator.state, snap.best_loss, snap.best_step, snap.best_params)
            b_inputs, b_targets, b_mask, b_init = batch()
            try:
                # every argument was checked: the data by _check_data, the parameters at the start
                # and, after every update, by the finiteness test below
                value, grads = model._checked_loss_and_grad(snap.params, loss_fn, b_inputs, b_targets, b_mask,
                                                            backend_name, b_init)
            except (ValueError, FloatingPointError, np.linalg.LinAlgError):
                # A NaN forward pass can make a backward step raise instead of returning NaN
                # (scipy's check_finite in the QR VJP does). The loss alone tells divergence
                # apart from bad input: only a non-finite loss counts as divergence.
                value = model.loss(snap.params, b_inputs, b_targets, b_mask, loss=loss, backend=backend, **b_init)
                if math.isfinite(value):
                    raise
            problem = None
            if not math.isfinite(value):
                problem = f"the loss is {value}"
            else:
                try:
                    new, opt_state = opt._apply({key: grads[key] for key in keys}, snap.opt_state,
                                                {key: snap.params[key] for key in keys}, check_finite=True)
                except NonFiniteStep as bad:
                    problem = (f"the gradient of {bad.keys} is not finite (loss {value:.6g})" if bad.what == "gradient"
                               else f"the update made {bad.keys} non-finite (loss {value:.6g})")
            if problem is not None:
                log.write(step=k, loss=value if math.isfinite(value) else None, event="non_finite",
                          wall_time=elapsed())
                kept = ("no checkpoint was written" if last_checkpoint is None else
                        f"the last checkpoint, at step {last_checkpoint} in {ckpt}, is kept")
                best = ("no finite loss was seen" if math.isinf(snap.best_loss) else
                        f"the best loss was {snap.best_loss:.6g} at step {snap.best_step}")
                message = (f"training stopped at step {k}: {problem}. Parameters before step {k} are in "
                           f"error.result.params; {best} (error.result.best_params); {kept}.")
                raise TrainingDivergedError(message, k, result("non_finite"))

            losses.append(value)
            new_params = {**snap.params, **new}
            best_loss, best_step, best_params = snap.best_loss, snap.best_step, snap.best_params
            if best_rule == "step":
                if value < snap.best_loss:
                    best_loss, best_step, best_params = value, k, snap.params
            elif ((k + 1) % restart_every == 0 or k == steps - 1) and value < snap.best_loss:
                # chunk end: judged by the loss of its last step, the parameters after that step's update kept
                best_loss, best_step, best_params = value, k + 1, new_params
            snap = _Snapshot(k + 1, new_params, opt_state, gen.bit_generator.state,
                             best_loss, best_step, best_params)

            if k % log_every == 0 or k == steps - 1:
                log.write(step=k, loss=value, best_loss=best_loss, wall_time=elapsed())
            if progress:
                bar.set_postfix(loss=f"{value:.4g}", best=f"{best_loss:.4g}", refresh=False)
            bar.update(1)
            if ckpt is not None and (k + 1) % checkpoint_every == 0:
                checkpoint()
            if callback is not None and callback(k, value, {key: v.copy() for key, v in snap.params.items()}):
                stopped = "callback"
                break
        if last_checkpoint != snap.step:
            checkpoint()
    except KeyboardInterrupt:
        if ckpt is not None:
            checkpoint()
        log.write(step=snap.step, event="interrupted", wall_time=elapsed(),
                  checkpoint=None if ckpt is None else str(ckpt))
        raise
    finally:
        bar.close()
        log.close()
    return result(stopped)


__all__ = ["train", "TrainResult", "TrainingDivergedError", "trainable_keys", "load_checkpoint"]
