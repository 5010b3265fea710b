"""Task generators: Measure-Wait-Go, the four-task set (+ DM1/DM2), element finder.

Every task is an object whose timing and sizes are constructor arguments
(defaults = the values of Costacurta et al., NeurIPS 2024), with named input
and output channels and named epochs per trial. Every generator

- takes ``rng`` (``None | int | numpy.random.Generator``, normalised once by
  :func:`nmrnn_np._rng.as_generator`) and is deterministic for a given seed;
- returns float64 arrays shaped ``(B, T, channels)`` (batch, time, channel);
- validates its arguments, raising :class:`ValueError` that names the
  offending argument.

Tasks
-----
:class:`MeasureWaitGo`
    Interval timing (measure an interval, wait, reproduce it as a ramp).
:class:`Multitask`
    Delay Pro, Delay Anti, Memory Pro, Memory Anti (Duncker et al. 2020, as
    coded by the NM-RNN authors) and optionally their DM1/DM2 variants.
:class:`ElementFinder`
    Recall the q-th element of a sequence of integers.

:func:`get_task` maps the names ``"mwg"``, ``"multitask"`` and
``"element_finder"`` to these classes. ``docs/tasks.md`` documents every
task with a figure, its channels and epochs, and how it compares with
Yang et al. (2019) and neurogym.
"""
from __future__ import annotations

import inspect
import numbers
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from ._rng import as_generator
from ._validation import boolean, choice, integer, known_kwargs, mapping, nonnegative_float, positive_float, positive_int, real

__all__ = [
    "MeasureWaitGo",
    "MWGInfo",
    "mwg_extrapolation_set",
    "Multitask",
    "MultitaskBatch",
    "MULTITASK_NAMES",
    "DEFAULT_DURATIONS",
    "ElementFinder",
    "ElementFinderBatch",
    "TASK_REGISTRY",
    "get_task",
]


# ----------------------------------------------------------------------------
# small validation helpers (local to this module)
# ----------------------------------------------------------------------------

def _int_sequence(value, name: str, minimum: int = 1) -> tuple[int, ...]:
    """A non-empty sequence of integers >= ``minimum``."""
    try:
        items = list(np.asarray(value).ravel())
    except Exception:  # pragma: no cover - exotic objects
        raise ValueError(f"{name} must be a non-empty sequence of integers, got {value!r}") from None
    if np.ndim(value) > 1 or len(items) == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of integers, got {value!r}")
    return tuple(positive_int(v.item() if hasattr(v, "item") else v, name, minimum=minimum) for v in items)


def _int_pair(value, name: str) -> tuple[int, int]:
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (lo, hi) of integers, got {value!r}") from None
    return integer(lo, name), integer(hi, name)


def _float_pair(value, name: str) -> tuple[float, float]:
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair of numbers, got {value!r}") from None
    return real(lo, name), real(hi, name)


def _nonneg_int(value, name: str) -> int:
    return positive_int(value, name, minimum=0)


def _nonneg_float(value, name: str) -> float:
    return nonnegative_float(value, name)


# ============================================================================
# 1. Measure-Wait-Go
# ============================================================================

@dataclass(frozen=True)
class MWGInfo:
    """Per-trial metadata of a Measure-Wait-Go batch (all arrays shape (B,), int64).

    Attributes
    ----------
    interval : ndarray, shape (B,)
        Interval to measure and reproduce (steps).
    t_measure, t_wait, t_go : ndarray, shape (B,)
        Steps of the three pulses: ``t_wait = t_measure + interval`` and
        ``t_go = t_wait + delay``.
    T : int
        Trial length (steps).
    """

    interval: np.ndarray
    t_measure: np.ndarray
    t_wait: np.ndarray
    t_go: np.ndarray
    T: int

    @property
    def ramp_end(self) -> np.ndarray:
        """First step at which the target has reached its final value, ``t_go + interval``."""
        return self.t_go + self.interval

    @property
    def epochs(self) -> dict[str, np.ndarray]:
        """Epoch boundaries per trial: ``measure``, ``wait``, ``go``, ``ramp_end``, ``end``."""
        return {
            "measure": self.t_measure,
            "wait": self.t_wait,
            "go": self.t_go,
            "ramp_end": self.ramp_end,
            "end": np.full_like(self.t_go, self.T),
        }

    def epoch_spans(self, i: int) -> list[tuple[str, int, int]]:
        """Named half-open epochs ``[start, stop)`` of trial ``i``.

        ``pre`` (before the measure pulse), ``measure`` (measure -> wait
        pulse: the interval being measured), ``wait`` (wait -> go, the
        fixed delay), ``ramp`` (go -> go + interval) and ``hold``.
        """
        i = integer(i, "i", -len(self), len(self) - 1)
        b = [0, int(self.t_measure[i]), int(self.t_wait[i]), int(self.t_go[i]),
             min(int(self.ramp_end[i]), self.T), self.T]
        names = ["pre", "measure", "wait", "ramp", "hold"]
        return [(n, b[k], b[k + 1]) for k, n in enumerate(names) if b[k + 1] > b[k]]

    def __len__(self) -> int:
        return int(self.interval.shape[0])


class MeasureWaitGo:
    """Measure-Wait-Go interval-timing task (the NM-RNN paper's timing task).

    Three pulse inputs of height ``pulse`` mark ``t_measure``,
    ``t_wait = t_measure + interval`` and ``t_go = t_wait + delay``. The
    target is ``ramp[0]`` until go, then a linear ramp to ``ramp[1]`` that
    lasts ``interval`` steps, then ``ramp[1]``:

    .. math::

        y^*(t) = r_0 + (r_1 - r_0)\\,\\mathrm{clip}\\big((t - t_{go}) / I, 0, 1\\big).

    Parameters
    ----------
    T : int
        Trial length in steps (110).
    intervals : sequence of int
        Intervals to measure (12, 14, 16, 18).
    measure_window : (int, int)
        ``(lo, hi)``: the measure pulse comes at a step in ``[lo, hi)``
        (10, 20). Requires ``0 <= lo < hi <= T``.
    delay : int
        Steps from the wait pulse to the go pulse (15).
    pulse : float
        Height of the input pulses (10.0).
    ramp : (float, float)
        Target before go and after the ramp (-0.5, 0.5).
    mask_pad : int or None
        ``None``: the mask is all ones. Otherwise the mask is 1 on
        ``t_go - mask_pad <= t < t_go + max(intervals) + mask_pad``.

    Notes
    -----
    Channels: inputs ``("measure", "wait", "go")`` (the authors call the
    second pulse "set"); output ``("ramp",)``. Every (interval, t_measure)
    combination must fit: ``max(t_go) + max(intervals) < T``, so the ramp of
    the latest, longest trial reaches its final value inside the trial.

    :meth:`all_trials` reproduces the authors' ``sample_all`` exactly
    (``tests/reference/mwg_*.npz``).
    """

    input_names = ("measure", "wait", "go")
    output_names = ("ramp",)

    def __init__(self, T: int = 110, intervals: Sequence[int] = (12, 14, 16, 18),
                 measure_window: tuple[int, int] = (10, 20), delay: int = 15,
                 pulse: float = 10.0, ramp: tuple[float, float] = (-0.5, 0.5),
                 mask_pad: int | None = None) -> None:
        self.T = positive_int(T, "T")
        self.intervals = _int_sequence(intervals, "intervals", minimum=1)
        lo, hi = _int_pair(measure_window, "measure_window")
        if not (0 <= lo < hi <= self.T):
            raise ValueError(
                f"measure_window must satisfy 0 <= lo < hi <= T={self.T} (measure steps in [lo, hi) "
                f"inside [0, T)), got {measure_window!r}")
        self.measure_window = (lo, hi)
        self.delay = _nonneg_int(delay, "delay")
        self.pulse = positive_float(pulse, "pulse")
        self.ramp = _float_pair(ramp, "ramp")
        self.mask_pad = None if mask_pad is None else _nonneg_int(mask_pad, "mask_pad")
        latest = (hi - 1) + 2 * max(self.intervals) + self.delay
        if latest >= self.T:
            raise ValueError(
                f"intervals too long for T={self.T}: the latest trial (t_measure={hi - 1}, "
                f"interval={max(self.intervals)}, delay={self.delay}) ends its ramp at step {latest} "
                f">= T; shorten intervals/measure_window/delay or increase T")

    def __repr__(self) -> str:
        return (f"MeasureWaitGo(T={self.T}, intervals={self.intervals}, measure_window="
                f"{self.measure_window}, delay={self.delay}, pulse={self.pulse}, ramp={self.ramp}, "
                f"mask_pad={self.mask_pad})")

    @property
    def n_conditions(self) -> int:
        """Number of (interval, t_measure) pairs: ``len(intervals) * (hi - lo)``."""
        lo, hi = self.measure_window
        return len(self.intervals) * (hi - lo)

    def trials(self, interval, t_measure, return_info: bool = False):
        """Render trials for given intervals and measure times.

        Parameters
        ----------
        interval, t_measure : array_like of int, shape (B,)
            Any integers (they need not be in ``intervals`` or
            ``measure_window``) such that the trial fits in ``T``.
        return_info : bool
            Also return an :class:`MWGInfo`.

        Returns
        -------
        inputs : ndarray, shape (B, T, 3)
        targets : ndarray, shape (B, T, 1)
        mask : ndarray, shape (B, T, 1)
            Float 0/1.
        info : MWGInfo
            Only with ``return_info=True``.
        """
        return_info = boolean(return_info, "return_info")
        interval = np.atleast_1d(np.asarray(interval))
        t_measure = np.atleast_1d(np.asarray(t_measure))
        if interval.ndim != 1 or not np.issubdtype(interval.dtype, np.integer) or np.any(interval < 1):
            raise ValueError(f"interval must be a 1-D array of integers >= 1, got {interval!r}")
        if t_measure.shape != interval.shape or not np.issubdtype(t_measure.dtype, np.integer):
            raise ValueError(f"t_measure must be an integer array of the shape of interval {interval.shape}, "
                             f"got {t_measure!r}")
        if np.any(t_measure < 0):
            raise ValueError("t_measure must be >= 0")
        interval = interval.astype(np.int64)
        t_measure = t_measure.astype(np.int64)
        t_wait = t_measure + interval
        t_go = t_wait + self.delay
        if np.any(t_go + interval >= self.T):
            raise ValueError(f"interval/t_measure: some trials do not fit in T={self.T} "
                             f"(t_go + interval must be < T)")
        T = self.T
        t = np.arange(T)[None, :]
        inputs = np.zeros((interval.size, T, 3))
        for c, ev in enumerate((t_measure, t_wait, t_go)):
            inputs[:, :, c] = self.pulse * (t == ev[:, None])
        # Same operation order as the reference (slope, intercept, clip, affine) so that the
        # stored reference targets are reproduced bit for bit.
        slope = 1.0 / interval[:, None]
        intercept = -t_go[:, None] * slope
        frac = np.clip(intercept + t * slope, 0.0, 1.0)
        r0, r1 = self.ramp
        targets = (r0 + (r1 - r0) * frac)[:, :, None]
        if self.mask_pad is None:
            mask = np.ones((interval.size, T, 1))
        else:
            pad = self.mask_pad
            on = (t >= t_go[:, None] - pad) & (t < t_go[:, None] + max(self.intervals) + pad)
            mask = on.astype(np.float64)[:, :, None]
        out = (inputs, targets, mask)
        if return_info:
            out += (MWGInfo(interval, t_measure, t_wait, t_go, T),)
        return out

    def all_trials(self, return_info: bool = False):
        """Every (interval, t_measure) pair, interval-major (the authors' order).

        Trial ``i * (hi - lo) + j`` has ``interval = intervals[i]`` and
        ``t_measure = lo + j``.

        Parameters
        ----------
        return_info : bool
            Also return the per-trial :class:`MWGInfo` (4-tuple).

        Returns
        -------
        inputs : ndarray, shape (B, T, 3)
            Pulses of height ``pulse`` at measure, wait and go.
        targets : ndarray, shape (B, T, 1)
        mask : ndarray, shape (B, T, 1)
            With ``B = len(intervals) * (hi - lo)``.
        """
        lo, hi = self.measure_window
        intervals = np.repeat(np.asarray(self.intervals, dtype=np.int64), hi - lo)
        t_measure = np.tile(np.arange(lo, hi, dtype=np.int64), len(self.intervals))
        return self.trials(intervals, t_measure, return_info=return_info)

    def sample(self, rng: None | int | np.random.Generator, n: int, return_info: bool = False):
        """``n`` random trials.

        Draws, in this order, ``n`` interval indices uniform over
        ``intervals`` and ``n`` measure steps uniform in ``[lo, hi)``.

        Parameters
        ----------
        rng : None, int or numpy.random.Generator
        n : int
            Number of trials (>= 1).
        return_info : bool
            Also return the :class:`MWGInfo`.

        Returns
        -------
        inputs, targets, mask[, info]
            As :meth:`all_trials`, with ``B = n``.
        """
        n = positive_int(n, "n")
        return_info = boolean(return_info, "return_info")
        gen = as_generator(rng)
        idx = gen.integers(len(self.intervals), size=n)
        lo, hi = self.measure_window
        t_measure = gen.integers(lo, hi, size=n)
        interval = np.asarray(self.intervals, dtype=np.int64)[idx]
        return self.trials(interval, t_measure, return_info=return_info)


def mwg_extrapolation_set(T: int = 110, intervals: Sequence[int] = tuple(range(4, 27, 2)),
                          t_measure: int = 15, **kwargs) -> MeasureWaitGo:
    """The paper's extrapolation test set: intervals 4, 6, ..., 26, measure at t = 15.

    Parameters
    ----------
    T : int
    intervals : sequence of int
    t_measure : int
        Single measure step (``measure_window = (t_measure, t_measure + 1)``).
    **kwargs
        Other :class:`MeasureWaitGo` arguments (``delay``, ``pulse``, ``ramp``,
        ``mask_pad``).

    Returns
    -------
    MeasureWaitGo
        Call ``.all_trials()`` for the 12 trials (reproduces
        ``mwg_extrap_sample_all.npz``).
    """
    t_measure = _nonneg_int(t_measure, "t_measure")
    return MeasureWaitGo(T=T, intervals=intervals, measure_window=(t_measure, t_measure + 1), **kwargs)


# ============================================================================
# 2. The four-task set (+ DM1/DM2)
# ============================================================================

MULTITASK_NAMES = ("delay_pro", "delay_anti", "memory_pro", "memory_anti", "dm1", "dm2")
"""Names accepted by :class:`Multitask`. ``dm1``/``dm2`` add a second stimulus modality."""

_FAMILY = {"delay_pro": "delay", "delay_anti": "delay", "memory_pro": "memory",
           "memory_anti": "memory", "dm1": "dm", "dm2": "dm"}
_ANTI = {"delay_anti", "memory_anti"}

DEFAULT_DURATIONS: dict[str, tuple[float, float]] = {
    "fixation": (0.3, 0.7),         # all tasks: trial start -> stimulus on
    "delay_stimulus": (0.2, 1.5),   # delay tasks: stimulus on -> fix-off (stimulus stays on)
    "memory_stimulus": (0.2, 1.6),  # memory tasks: stimulus on -> stimulus off
    "memory": (0.2, 1.6),           # memory tasks: stimulus off -> fix-off
    "dm_stimulus1": (0.2, 1.6),     # DM tasks: stimulus 1 on -> stimulus 2 on
    "dm_stimulus2": (0.2, 1.6),     # DM tasks: stimulus 2 on -> fix-off
    "response": (0.3, 0.7),         # all tasks: fix-off -> end of trial
}
"""Epoch durations ``(lo, hi)`` in time units ("seconds"), each drawn U(lo, hi) per trial.

Keys in draw order (the order of this dict). Values of the authors' code."""

# epoch durations that make up a trial of each family, in order
_CHAIN = {
    "delay": ("fixation", "delay_stimulus", "response"),
    "memory": ("fixation", "memory_stimulus", "memory", "response"),
    "dm": ("fixation", "dm_stimulus1", "dm_stimulus2", "response"),
}


def _ceil_step(x: np.ndarray) -> np.ndarray:
    """First integer step ``t`` with ``t >= x`` (values within 1e-9 of an integer snap to it)."""
    return np.ceil(np.round(x, 9)).astype(np.int64)


@dataclass
class MultitaskBatch:
    """A batch of trials of the four-task set (returned by :meth:`Multitask.sample`).

    Attributes
    ----------
    inputs : ndarray, shape (n, T, C_task + n_tasks)
        ``concatenate([task_inputs, context], -1)``.
    targets : ndarray, shape (n, T, 3)
        ``[fixation, sin(theta_out), cos(theta_out)]``.
    mask : ndarray, shape (n, T, 3)
        All ones in time-normalised mode (as the authors); in fixed-dt mode
        0 on the padding steps ``t >= end``.
    task : ndarray of int, shape (n,)
        Index into ``task_names`` of each trial.
    task_names : tuple of str
    theta_in, theta_out : ndarray, shape (n,)
        Stimulus and response angles in ``[0, 2 pi)``. For DM trials
        ``theta_in`` is the angle of stimulus 1 and ``theta_out`` that of
        the stronger stimulus.
    fix_off : ndarray of int, shape (n,)
        First step at which the fixation input is off (= ``epochs["fix_off"]``).
    epochs : dict of str -> ndarray of int, shape (n,)
        ``stim_on``, ``stim_off`` (memory: stimulus off; delay: ``T``, the
        stimulus stays on; DM: onset of stimulus 2), ``fix_off``, ``end``
        (``T`` in time-normalised mode).
    context : ndarray, shape (n, T, n_tasks)
        One-hot task cue, constant over the trial.
    task_inputs : ndarray, shape (n, T, C_task)
        ``[fixation, sin, cos]`` (``C_task = 3``) or, when DM tasks are in the
        set, ``[fixation, sin1, cos1, sin2, cos2]`` (``C_task = 5``). Input
        noise, if any, is included.
    theta_in2, coherence : ndarray, shape (n,)
        DM trials: angle of stimulus 2 and signed coherence (NaN otherwise).
    step_duration : ndarray, shape (n,)
        Time units per step: ``total / T`` in time-normalised mode, ``dt``
        in fixed-dt mode.
    event_times : dict of str -> ndarray, shape (n,)
        The sampled event times in time units, before conversion to steps:
        ``stim_on``, ``stim_off`` (NaN for delay tasks), ``fix_off``, ``end``
        (the trial's total duration).
    input_names, output_names : tuple of str
        Channel names of ``inputs`` and ``targets``.
    """

    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    task: np.ndarray
    task_names: tuple[str, ...]
    theta_in: np.ndarray
    theta_out: np.ndarray
    fix_off: np.ndarray
    epochs: dict[str, np.ndarray]
    context: np.ndarray
    task_inputs: np.ndarray
    theta_in2: np.ndarray
    coherence: np.ndarray
    step_duration: np.ndarray
    event_times: dict[str, np.ndarray] = field(default_factory=dict)
    input_names: tuple[str, ...] = field(default=())
    output_names: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return int(self.task.shape[0])

    @property
    def T(self) -> int:
        return int(self.inputs.shape[1])

    def epoch_spans(self, i: int) -> list[tuple[str, int, int]]:
        """Named half-open epochs ``[start, stop)`` of trial ``i``.

        ``fixation``, ``stimulus`` (delay: until fix-off), ``memory``
        (memory tasks), ``stimulus1``/``stimulus2`` (DM), ``response``, and
        ``padding`` (fixed-dt mode, steps after the sampled end).
        """
        i = integer(i, "i", -len(self), len(self) - 1)
        name = self.task_names[int(self.task[i])]
        fam = _FAMILY[name]
        e = {k: int(v[i]) for k, v in self.epochs.items()}
        if fam == "delay":
            b = [("fixation", 0, e["stim_on"]), ("stimulus", e["stim_on"], e["fix_off"])]
        elif fam == "memory":
            b = [("fixation", 0, e["stim_on"]), ("stimulus", e["stim_on"], e["stim_off"]),
                 ("memory", e["stim_off"], e["fix_off"])]
        else:
            b = [("fixation", 0, e["stim_on"]), ("stimulus1", e["stim_on"], e["stim_off"]),
                 ("stimulus2", e["stim_off"], e["fix_off"])]
        b.append(("response", e["fix_off"], e["end"]))
        if e["end"] < self.T:
            b.append(("padding", e["end"], self.T))
        return [s for s in b if s[2] > s[1]]


class Multitask:
    """The four-task set of Duncker et al. (2020) as coded by the NM-RNN authors.

    Delay Pro, Delay Anti, Memory Pro, Memory Anti, and optionally the
    authors' DM1/DM2. A batch draws the task of each trial uniformly at
    random from ``tasks``.

    Parameters
    ----------
    tasks : sequence of str
        Distinct names from :data:`MULTITASK_NAMES`; the order sets the
        context channel of each task.
    T : int
        Steps per trial (100).
    time_mode : {"normalised", "fixed_dt"}
        ``"normalised"`` (default, the authors'): every trial's sampled
        durations are divided by that trial's total duration and multiplied
        by ``T``, so every trial fills exactly ``T`` steps and one step lasts
        ``total / T`` time units (varies per trial). ``"fixed_dt"``: one step
        lasts ``dt`` time units; trials are shorter than ``T`` and padded.
    dt : float or None
        Time units per step in fixed-dt mode (default 0.05). Must be
        ``None`` in normalised mode.
    durations : mapping, optional
        Overrides of :data:`DEFAULT_DURATIONS` (``{key: (lo, hi)}``, time
        units, ``0 < lo <= hi``).
    noise_sigma : float
        Standard deviation of i.i.d. Gaussian noise added to every task
        input channel at every step (not to the context channels); 0 (the
        default) draws no noise. Not scaled by ``dt``.
    fixation_target : float
        Fixation output target before fix-off (0.8).
    stimulus_amplitude : float
        Amplitude of the (sin, cos) stimulus (1.0).

    Notes
    -----
    **Channels.** Task inputs ``[fixation, sin theta_in, cos theta_in]``
    (with DM tasks in the set: ``[fixation, sin1, cos1, sin2, cos2]``), then
    one one-hot context channel per task in ``tasks``. Outputs
    ``[fixation, sin theta_out, cos theta_out]``.

    **Epochs** (durations in :data:`DEFAULT_DURATIONS`):

    - delay pro/anti: fixation -> stimulus on (stays on to the end of the
      trial) -> fix-off -> response -> end;
    - memory pro/anti: fixation -> stimulus on -> stimulus off (memory) ->
      fix-off -> response -> end;
    - DM1/DM2: fixation -> stimulus 1 (amplitude ``1 + c``, angle
      ``theta_1``) -> stimulus 2 (amplitude ``1 - c``, angle
      ``theta_2 = theta_1 + U(pi/2, 3pi/2)``) -> fix-off -> response to the
      stronger stimulus. ``|c| ~ U(0.1, 0.8)`` with a random sign. DM1 uses
      modality 1 (channels sin1, cos1), DM2 modality 2.

    The fixation input is 1 before fix-off, 0 after. The fixation target is
    ``fixation_target`` before fix-off, 0 after; the response target is 0
    before fix-off and ``(sin, cos)(theta_out)`` from fix-off on. Anti
    tasks: ``theta_out = (theta_in + pi) mod 2 pi``. ``theta_in ~ U[0, 2pi)``.

    **Rounding.** Event times become integer steps by ``ceil``: step ``t``
    belongs to the epoch that contains the time of step ``t``, i.e. it is
    after an event at (rescaled) time ``b`` iff ``t >= b`` -- exactly the
    comparison ``t >= t_event / t_total * T`` of the authors' code in
    normalised mode; ``ceil(t_event / dt)`` in fixed-dt mode.

    **Fixed-dt mode.** Steps ``[end, T)`` after the sampled trial continue
    the response epoch (same inputs and targets) with mask 0, so the last
    step is always a response step. A configuration whose longest possible
    trial exceeds ``T`` steps raises ``ValueError`` (never clipped).

    **Validation.** Every epoch of every possible trial spans at least one
    step: in normalised mode ``T * lo_e / (lo_e + sum of the other his) >= 1``
    for each epoch ``e``; in fixed-dt mode ``lo_e >= dt``.

    **Random draws** (in this order, whatever ``tasks`` is): task indices
    (n), theta_in (n), one U(lo, hi) draw of size n per key of
    :data:`DEFAULT_DURATIONS` (in its order), the DM angle offset, the DM
    coherence magnitude and its sign (n each), then the noise (only if
    ``noise_sigma > 0``).
    """

    output_names = ("fixation", "sin", "cos")

    def __init__(self, tasks: Sequence[str] = ("delay_pro", "delay_anti", "memory_pro", "memory_anti"),
                 T: int = 100, *, time_mode: str = "normalised", dt: float | None = None,
                 durations: Mapping[str, tuple[float, float]] | None = None, noise_sigma: float = 0.0,
                 fixation_target: float = 0.8, stimulus_amplitude: float = 1.0) -> None:
        try:
            tasks = tuple(tasks) if not isinstance(tasks, str) else ()
        except TypeError:
            tasks = ()
        if len(tasks) == 0:
            raise ValueError(f"tasks must be a non-empty sequence of names from {MULTITASK_NAMES}")
        for name in tasks:
            if name not in MULTITASK_NAMES:
                raise ValueError(f"tasks: unknown task {name!r}; valid names are {', '.join(MULTITASK_NAMES)}")
        if len(set(tasks)) != len(tasks):
            raise ValueError(f"tasks must not contain duplicates, got {tasks!r}")
        self.tasks = tuple(tasks)
        self.T = positive_int(T, "T")
        self.time_mode = choice(time_mode, "time_mode", ("normalised", "fixed_dt"))
        if self.time_mode == "normalised":
            if dt is not None:
                raise ValueError("dt must be None in time_mode='normalised' (the step length is total/T per trial)")
            self.dt = None
        else:
            self.dt = 0.05 if dt is None else positive_float(dt, "dt")
        self.durations = dict(DEFAULT_DURATIONS)
        if durations is not None:
            mapping(durations, "durations", f"a dict {{epoch: (lo, hi)}} with keys from {', '.join(DEFAULT_DURATIONS)}")
        for key, val in dict(durations or {}).items():
            if key not in DEFAULT_DURATIONS:
                raise ValueError(f"durations: unknown key {key!r}; valid keys are {', '.join(DEFAULT_DURATIONS)}")
            lo, hi = _float_pair(val, f"durations[{key!r}]")
            if not 0 < lo <= hi:
                raise ValueError(f"durations[{key!r}] must satisfy 0 < lo <= hi, got {val!r}")
            self.durations[key] = (lo, hi)
        self.noise_sigma = _nonneg_float(noise_sigma, "noise_sigma")
        self.fixation_target = real(fixation_target, "fixation_target")
        self.stimulus_amplitude = positive_float(stimulus_amplitude, "stimulus_amplitude")
        self.has_dm = any(_FAMILY[t] == "dm" for t in self.tasks)
        self._check_timing()

    def _check_timing(self) -> None:
        for fam in sorted({_FAMILY[t] for t in self.tasks}):
            chain = _CHAIN[fam]
            his = sum(self.durations[k][1] for k in chain)
            if self.time_mode == "normalised":
                for k in chain:
                    lo, hi = self.durations[k]
                    worst = self.T * lo / (lo + his - hi)
                    if worst < 1:
                        raise ValueError(
                            f"T={self.T} is too small: the {k!r} epoch of {fam} trials can be as short as "
                            f"{worst:.2f} steps; need T >= {int(np.ceil(self.T / worst))} (or change durations)")
            else:
                for k in chain:
                    if self.durations[k][0] < self.dt:
                        raise ValueError(
                            f"dt={self.dt} is longer than the shortest {k!r} epoch "
                            f"({self.durations[k][0]}): an epoch could span zero steps")
                longest = int(_ceil_step(np.array(his / self.dt)))
                if longest > self.T:
                    raise ValueError(
                        f"T={self.T} too small for dt={self.dt}: the longest {fam} trial lasts {his:g} time "
                        f"units = {longest} steps; use T >= {longest} or a larger dt")

    def __repr__(self) -> str:
        dt = "" if self.dt is None else f", dt={self.dt}"
        return (f"Multitask(tasks={self.tasks}, T={self.T}, time_mode={self.time_mode!r}{dt}, "
                f"noise_sigma={self.noise_sigma})")

    # channel layout ----------------------------------------------------------
    @property
    def task_input_names(self) -> tuple[str, ...]:
        """Names of the task input channels."""
        if self.has_dm:
            return ("fixation", "sin1", "cos1", "sin2", "cos2")
        return ("fixation", "sin", "cos")

    @property
    def context_names(self) -> tuple[str, ...]:
        """Names of the context channels, ``"context:<task>"``."""
        return tuple(f"context:{t}" for t in self.tasks)

    @property
    def input_names(self) -> tuple[str, ...]:
        """Names of all input channels (task inputs then context)."""
        return self.task_input_names + self.context_names

    @property
    def n_inputs(self) -> int:
        return len(self.input_names)

    # sampling ----------------------------------------------------------------
    def _task_indices(self, task, drawn: np.ndarray) -> np.ndarray:
        n = drawn.shape[0]
        if task is None:
            return drawn
        if not isinstance(task, (str, numbers.Integral, Sequence, np.ndarray)):
            raise TypeError(f"task must be None, one task (name or index) or a sequence of length n={n}, "
                            f"got {task!r}")
        items = [task] * n if isinstance(task, (str, numbers.Integral)) else list(task)
        if len(items) != n:
            raise ValueError(f"task must be None, one task (name or index) or a sequence of length n={n}")
        out = np.empty(n, dtype=np.int64)
        for i, t in enumerate(items):
            if isinstance(t, str):
                if t not in self.tasks:
                    raise ValueError(f"task: {t!r} is not in this set {self.tasks}")
                out[i] = self.tasks.index(t)
            elif isinstance(t, numbers.Integral) and not isinstance(t, bool) and 0 <= t < len(self.tasks):
                out[i] = int(t)
            else:
                raise ValueError(f"task: {t!r} is neither a name in {self.tasks} nor an index < {len(self.tasks)}")
        return out

    def sample(self, rng: None | int | np.random.Generator, n: int, task=None) -> MultitaskBatch:
        """Draw a mixed batch of ``n`` trials.

        Parameters
        ----------
        rng : None, int or numpy.random.Generator
        n : int
            Number of trials (>= 1).
        task : None, str, int or sequence, optional
            ``None``: the task of each trial is drawn uniformly from
            ``tasks``. A name or index: every trial is that task. A sequence
            of length ``n``: the task of each trial. The random stream is
            the same in all cases (task indices are always drawn), so the
            same seed gives the same angles and durations.

        Returns
        -------
        MultitaskBatch
            ``inputs`` (n, T, C_task + n_tasks), ``targets`` (n, T, 3),
            ``mask`` (n, T, 3) and per-trial metadata.
        """
        n = positive_int(n, "n")
        gen = as_generator(rng)
        T = self.T
        k = len(self.tasks)
        drawn = gen.integers(k, size=n)
        theta_in = gen.uniform(0.0, 2 * np.pi, size=n)
        dur = {key: gen.uniform(lo, hi, size=n) for key, (lo, hi) in self.durations.items()}
        dm_offset = gen.uniform(np.pi / 2, 3 * np.pi / 2, size=n)
        coh_mag = gen.uniform(0.1, 0.8, size=n)
        coh_sign = np.where(gen.random(size=n) < 0.5, -1.0, 1.0)
        task = self._task_indices(task, drawn)

        names = np.asarray(self.tasks, dtype=object)[task]
        fam = np.array([_FAMILY[t] for t in names])
        anti = np.array([t in _ANTI for t in names])
        is_delay, is_memory, is_dm = fam == "delay", fam == "memory", fam == "dm"

        # event times in time units
        stim_on = dur["fixation"]
        second = np.where(is_delay, np.nan,
                          stim_on + np.where(is_memory, dur["memory_stimulus"], dur["dm_stimulus1"]))
        fix_off = np.where(is_delay, stim_on + dur["delay_stimulus"],
                           second + np.where(is_memory, dur["memory"], dur["dm_stimulus2"]))
        total = fix_off + dur["response"]

        if self.time_mode == "normalised":
            def to_step(x):
                return _ceil_step(x / total * T)
            e_end = np.full(n, T, dtype=np.int64)
            step_duration = total / T
        else:
            def to_step(x):
                return _ceil_step(x / self.dt)
            e_end = to_step(total)
            step_duration = np.full(n, self.dt)
        e_stim_on = to_step(stim_on)
        e_stim_off = np.where(is_delay, T, to_step(np.where(is_delay, 0.0, second)))
        e_fix_off = to_step(fix_off)

        # angles
        theta_in2 = np.where(is_dm, np.mod(theta_in + dm_offset, 2 * np.pi), np.nan)
        coherence = np.where(is_dm, coh_mag * coh_sign, np.nan)
        theta_out = np.where(anti, np.mod(theta_in + np.pi, 2 * np.pi), theta_in)
        theta_out = np.where(is_dm & (coh_sign < 0), theta_in2, theta_out)

        # render
        t = np.arange(T)[None, :]
        before_go = t < e_fix_off[:, None]
        c_task = len(self.task_input_names)
        task_inputs = np.zeros((n, T, c_task))
        task_inputs[:, :, 0] = before_go
        amp = self.stimulus_amplitude
        sin_in, cos_in = amp * np.sin(theta_in)[:, None], amp * np.cos(theta_in)[:, None]
        # pro/anti: one stimulus on channels 1, 2 in [stim_on, stim_off)
        on1 = (~is_dm)[:, None] & (t >= e_stim_on[:, None]) & (t < e_stim_off[:, None])
        task_inputs[:, :, 1] += on1 * sin_in
        task_inputs[:, :, 2] += on1 * cos_in
        if self.has_dm:
            s1 = is_dm[:, None] & (t >= e_stim_on[:, None]) & (t < e_stim_off[:, None])
            s2 = is_dm[:, None] & (t >= e_stim_off[:, None]) & before_go
            a1 = np.where(is_dm, 1.0 + coherence, 0.0)[:, None] * amp
            a2 = np.where(is_dm, 1.0 - coherence, 0.0)[:, None] * amp
            th2 = np.where(is_dm, theta_in2, 0.0)[:, None]
            sin_dm = s1 * a1 * np.sin(theta_in)[:, None] + s2 * a2 * np.sin(th2)
            cos_dm = s1 * a1 * np.cos(theta_in)[:, None] + s2 * a2 * np.cos(th2)
            mod2 = np.array([t == "dm2" for t in names])[:, None]
            task_inputs[:, :, 1] += np.where(mod2, 0.0, sin_dm)
            task_inputs[:, :, 2] += np.where(mod2, 0.0, cos_dm)
            task_inputs[:, :, 3] += np.where(mod2, sin_dm, 0.0)
            task_inputs[:, :, 4] += np.where(mod2, cos_dm, 0.0)

        targets = np.zeros((n, T, 3))
        targets[:, :, 0] = self.fixation_target * before_go
        targets[:, :, 1] = ~before_go * np.sin(theta_out)[:, None]
        targets[:, :, 2] = ~before_go * np.cos(theta_out)[:, None]

        context = np.zeros((n, T, k))
        context[np.arange(n), :, task] = 1.0
        mask = np.ones((n, T, 3))
        if self.time_mode == "fixed_dt":
            mask *= (t < e_end[:, None])[:, :, None]

        if self.noise_sigma > 0:
            task_inputs = task_inputs + self.noise_sigma * gen.standard_normal(task_inputs.shape)

        epochs = {"stim_on": e_stim_on, "stim_off": e_stim_off.astype(np.int64),
                  "fix_off": e_fix_off, "end": e_end}
        return MultitaskBatch(
            inputs=np.concatenate([task_inputs, context], axis=-1), targets=targets, mask=mask,
            task=task, task_names=self.tasks, theta_in=theta_in, theta_out=theta_out,
            fix_off=e_fix_off.copy(), epochs=epochs, context=context, task_inputs=task_inputs,
            theta_in2=theta_in2, coherence=coherence, step_duration=np.asarray(step_duration, dtype=float),
            event_times={"stim_on": stim_on, "stim_off": second, "fix_off": fix_off, "end": total},
            input_names=self.input_names, output_names=self.output_names)

    def one_of_each(self, rng: None | int | np.random.Generator = None) -> MultitaskBatch:
        """One trial of every task in ``tasks``, in order (trial ``i`` is ``tasks[i]``)."""
        return self.sample(rng, len(self.tasks), task=list(range(len(self.tasks))))


# ============================================================================
# 3. Element finder
# ============================================================================

@dataclass
class ElementFinderBatch:
    """A batch of element-finder trials (returned by :meth:`ElementFinder.sample`).

    Attributes
    ----------
    inputs : ndarray, shape (n, L + 1, 1)
        Step 0: the query index q; steps 1..L: the L integers.
    targets : ndarray, shape (n, L + 1, 1)
        The answer ``values[q]`` at every step (only the last step is scored).
    mask : ndarray, shape (n, L + 1, 1)
        1 at the last step, 0 elsewhere: ``masked_l2(outputs, targets, mask)``
        is the authors' last-step MSE.
    query : ndarray of int, shape (n,)
    values : ndarray of int, shape (n, L)
    answer : ndarray of int, shape (n,)
        ``values[arange(n), query]``.
    """

    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    query: np.ndarray
    values: np.ndarray
    answer: np.ndarray

    def __len__(self) -> int:
        return int(self.query.shape[0])

    def epoch_spans(self, i: int) -> list[tuple[str, int, int]]:
        """``query`` [0, 1), ``sequence`` [1, L + 1); the response is read at the last step."""
        i = integer(i, "i", -len(self), len(self) - 1)
        L = self.values.shape[1]
        return [("query", 0, 1), ("sequence", 1, L + 1)]


class ElementFinder:
    """Element finder task (EFT): report the q-th element of a sequence.

    Input is one scalar channel: first the query index ``q`` in ``[0, L)``,
    then ``L`` integers drawn uniformly from ``{low, ..., high}``
    (inclusive). The target ``values[q]`` is scored at the last step only.

    Parameters
    ----------
    L : int
        Sequence length (25).
    low, high : int
        Inclusive range of the integers (-10, 10).
    query_indices : sequence of int or None
        If given, random queries are drawn uniformly from this set (each in
        ``[0, L)``), as in the authors' restricted-query variant.

    Notes
    -----
    Channels: input ``("value",)`` (query then sequence), output
    ``("answer",)``. The authors' JAX generator draws the integers from
    ``[-10, 10]`` inclusive (their older torch generator used ``[-10, 9]``).
    Inputs are the raw integers (not normalised).
    """

    input_names = ("value",)
    output_names = ("answer",)

    def __init__(self, L: int = 25, low: int = -10, high: int = 10,
                 query_indices: Sequence[int] | None = None) -> None:
        self.L = positive_int(L, "L")
        low, high = _int_pair((low, high), "low/high")
        if low > high:
            raise ValueError(f"low must be <= high, got low={low}, high={high}")
        self.low, self.high = low, high
        if query_indices is None:
            self.query_indices = None
        else:
            q = _int_sequence(query_indices, "query_indices", minimum=0)
            if max(q) >= self.L:
                raise ValueError(f"query_indices must lie in [0, L={self.L}), got {q}")
            self.query_indices = tuple(sorted(set(q)))

    def __repr__(self) -> str:
        return f"ElementFinder(L={self.L}, low={self.low}, high={self.high}, query_indices={self.query_indices})"

    @property
    def T(self) -> int:
        """Steps per trial, ``L + 1``."""
        return self.L + 1

    def sample(self, rng: None | int | np.random.Generator, n: int, query: int | None = None,
               value: int | None = None) -> ElementFinderBatch:
        """Draw ``n`` trials.

        Draws (in this order) the ``(n, L)`` integers, then the ``n`` query
        indices (always drawn, so fixing ``query`` leaves the values
        unchanged for a given seed).

        Parameters
        ----------
        rng : None, int or numpy.random.Generator
        n : int
        query : int or None
            Fixed query index for every trial (in ``[0, L)``); ``None``
            draws it (from ``query_indices`` if set).
        value : int or None
            If given, the element at each trial's query is set to this value
            (in ``[low, high]``): a fixed target for the analysis figures.

        Returns
        -------
        ElementFinderBatch
        """
        n = positive_int(n, "n")
        gen = as_generator(rng)
        values = gen.integers(self.low, self.high + 1, size=(n, self.L))
        if self.query_indices is None:
            q = gen.integers(0, self.L, size=n)
        else:
            q = np.asarray(self.query_indices)[gen.integers(len(self.query_indices), size=n)]
        if query is not None:
            query = _nonneg_int(query, "query")
            if query >= self.L:
                raise ValueError(f"query must be in [0, L={self.L}), got {query}")
            q = np.full(n, query)
        q = q.astype(np.int64)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not self.low <= value <= self.high:
                raise ValueError(f"value must be an integer in [{self.low}, {self.high}], got {value!r}")
            values[np.arange(n), q] = int(value)
        answer = values[np.arange(n), q]
        inputs = np.concatenate([q[:, None], values], axis=1).astype(np.float64)[:, :, None]
        targets = np.repeat(answer.astype(np.float64)[:, None], self.T, axis=1)[:, :, None]
        mask = np.zeros((n, self.T, 1))
        mask[:, -1, 0] = 1.0
        return ElementFinderBatch(inputs, targets, mask, q, values, answer)


# ============================================================================
# registry
# ============================================================================

TASK_REGISTRY: dict[str, type] = {
    "mwg": MeasureWaitGo,
    "multitask": Multitask,
    "element_finder": ElementFinder,
}
"""Task name -> class. When you add a task class, register it here."""


def get_task(name: str, **kwargs):
    """Construct a task by name.

    Parameters
    ----------
    name : {"mwg", "multitask", "element_finder"}
    **kwargs
        Constructor arguments of the task class.

    Returns
    -------
    MeasureWaitGo, Multitask or ElementFinder
    """
    choice(name, "name", tuple(TASK_REGISTRY))
    cls = TASK_REGISTRY[name]
    known_kwargs(kwargs, list(inspect.signature(cls).parameters), f"get_task({name!r})")
    return cls(**kwargs)
