"""Fuzzed public API: bad input gives a TypeError or ValueError naming the argument.

For each public callable (``Case``) and each of its arguments, hypothesis
draws a wrong value -- wrong types, integral floats for counts, bools,
strings and unknown names, NaN/inf, empty arrays, arrays of the wrong shape,
broken parameter dicts, missing folders -- while every other argument keeps
a valid value. A call passes when it either succeeds (the drawn value happened
to be valid) with a finite result, or raises ``TypeError``/``ValueError``
whose message names the argument. Anything else fails the test: another
exception type (IndexError, KeyError, ZeroDivisionError...), a numba typing
error, a RuntimeWarning (warnings are errors here) or a NaN result from
finite input. Unknown keyword arguments are tried once per callable.

Deterministic: ``derandomize=True``, no example database, and a fixed budget
per argument (6 drawn values plus every argument-specific wrong value). The
tests run in a temporary folder, since a drawn string is often a valid file name.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nmrnn_np as nm
from nmrnn_np import losses, metrics, optim, task_plots, tasks
from nmrnn_np.experiments import analysis
from nmrnn_np.training import TrainingDivergedError, load_checkpoint, trainable_keys

FUZZ = settings(max_examples=6, derandomize=True, deadline=None, database=None, print_blob=False,
                suppress_health_check=list(HealthCheck))

nan, inf = float("nan"), float("inf")


class Opaque:
    """An object of no useful type."""

    def __repr__(self):
        return "Opaque()"


#: wrong values tried for every argument
GENERIC = [None, True, False, 0, -1, 1, 2, 2.0, 0.5, -0.5, 3.7, nan, inf, -inf, 1e300, "", "bogus", "nmrnn",
           b"x", 1j, [], [1], ["nmrnn"], [[1, 2], [3]], (1, 2), {}, {"bogus": 1}, Opaque(), np.int64(2),
           np.float64(nan), np.bool_(True), np.array([]), np.zeros((0, 3)), np.zeros((2, 0, 1)), np.ones(3),
           np.ones((2, 2)), np.full((2, 2), nan), np.array(["a", "b"]), print]


def array_variants(a: np.ndarray) -> list:
    """Wrong variants of a valid array: extra/missing dimension, transposed, empty, NaN, inf, wrong length."""
    a = np.asarray(a, dtype=np.float64)
    out = [a[..., None], a.T.copy(), a[:0], a.astype(complex) + 1j, a.tolist()]
    if a.ndim:
        out += [a[0], np.concatenate([a, a[..., -1:]], axis=-1) if a.shape[-1] else a]
        for bad in (nan, inf, -inf):
            b = a.copy()
            if b.size:
                b.flat[b.size // 2] = bad
            out.append(b)
    return out


def params_variants(model, p: dict) -> list:
    """Broken parameter dicts: a key missing or extra, an entry of the wrong shape, NaN, all-zero L."""
    keys = list(p)
    out = [{k: v for k, v in p.items() if k != keys[0]}, {**p, "bogus": np.ones(2)},
           {**p, keys[-1]: np.ones((7, 7))}, {**p, keys[0]: np.full(np.shape(p[keys[0]]), nan)},
           {**p, keys[0]: "abc"}, list(p.values())]
    if "L" in p:
        out.append({**p, "L": np.zeros(np.shape(p["L"]))})
        out.append({**p, "L": np.ones(np.shape(p["L"]))})   # rank 1 < K
    return out


def path_variants(tmp: Path) -> list:
    return [str(tmp / "missing" / "dir" / "file.npz"), str(tmp), tmp, "", 5, None, ["a"], Opaque()]


@dataclass
class Case:
    """A public callable and valid keyword arguments for it."""

    name: str
    call: Callable[..., Any]
    valid: Callable[[], dict]            # fresh valid arguments (rngs, dicts) for each call
    extra: dict = field(default_factory=dict)   # argument -> extra wrong values (array variants...)
    #: argument -> exception types that are a documented answer besides TypeError/ValueError
    allowed: dict = field(default_factory=dict)
    #: the result may be non-finite when an input is (metrics of diverged outputs)
    nan_passes: bool = False
    #: the part of the result that must be finite (default: all of it)
    finite_part: Callable[[Any], Any] = lambda out: out


def _contains_nonfinite(obj, depth=0) -> bool:
    if depth > 3:
        return False
    if isinstance(obj, (float, np.floating)):
        return not math.isfinite(obj)
    if isinstance(obj, np.ndarray) and obj.dtype.kind == "f":
        return not np.isfinite(obj).all()
    if isinstance(obj, dict):
        return any(_contains_nonfinite(v, depth + 1) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(_contains_nonfinite(v, depth + 1) for v in obj)
    if is_dataclass(obj) and not isinstance(obj, type):
        return any(_contains_nonfinite(getattr(obj, f.name), depth + 1) for f in fields(obj))
    return False


def _has_nonfinite(value) -> bool:
    try:
        return not bool(np.isfinite(np.asarray(value, dtype=complex)).all())
    except (TypeError, ValueError):
        return isinstance(value, dict) and any(_has_nonfinite(v) for v in value.values())


def run_case(case: Case, arg: str, value) -> None:
    kwargs = case.valid()
    kwargs[arg] = value
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            out = case.call(**kwargs)
        except (TypeError, ValueError) as err:
            msg = str(err)
            mod = type(err).__module__
            assert not mod.startswith("numba"), f"{case.name}({arg}={value!r}): numba error {err!r}"
            # a file argument may be named by its value (the path) instead
            named = arg in msg or (isinstance(value, (str, Path)) and len(str(value)) > 3 and str(value) in msg)
            assert named, f"{case.name}({arg}={value!r}) raised {type(err).__name__} without naming {arg!r}: {msg}"
            return
        except tuple(case.allowed.get(arg, ())) as err:   # a documented answer (e.g. FileNotFoundError)
            assert arg in str(err) or str(value) in str(err), f"{case.name}({arg}={value!r}): {err!r}"
            return
    if _contains_nonfinite(case.finite_part(out)) and not (case.nan_passes and _has_nonfinite(value)):
        pytest.fail(f"{case.name}({arg}={value!r}) returned a non-finite result instead of an error")


# ----------------------------------------------------------------------------
# Valid inputs
# ----------------------------------------------------------------------------
B, T = 2, 6
MODELS = {
    "nmrnn": nm.NMRNN(N=5, K=2, M=3, U=2, O=1),
    "lrrnn": nm.LowRankRNN(N=5, K=2, U=2, O=1),
    "rnn": nm.VanillaRNN(N=5, U=2, O=1),
    "lstm": nm.LSTM(N=4, U=2, O=1),
}
PARAMS = {k: m.init_params(0) for k, m in MODELS.items()}
U_ = np.random.default_rng(1).standard_normal((B, T, 2))
Y_ = np.random.default_rng(2).standard_normal((B, T, 1))
M_ = np.ones((B, T, 1))


def model_cases() -> list[Case]:
    cases = []
    ctor = {
        "nmrnn": (nm.NMRNN, dict(N=5, K=2, M=3, U=2, O=1, tau_x=10.0, tau_z=100.0, dt=1.0, signal_dim=None,
                                 orthonormalize=True, divide_by_N=False, feedback=False, readout_bias=True,
                                 U_x=None, phi="tanh", tied=False)),
        "lrrnn": (nm.LowRankRNN, dict(N=5, K=2, U=2, O=1, tau=10.0, dt=1.0, orthonormalize=True, divide_by_N=True,
                                      readout_bias=True, phi="tanh", tied=False)),
        "rnn": (nm.VanillaRNN, dict(N=5, U=2, O=1, tau=10.0, dt=1.0, divide_by_N=True, readout_bias=True,
                                    phi="tanh")),
        "lstm": (nm.LSTM, dict(N=4, U=2, O=1)),
    }
    for kind, (cls, kw) in ctor.items():
        cases.append(Case(cls.__name__, cls, lambda kw=kw: dict(kw)))
        model, p = MODELS[kind], PARAMS[kind]
        state = {"lstm": "h0"}.get(kind, "x0")
        n_state = model.state_sizes()[state[0]]
        pv = params_variants(model, p)
        for meth in ("simulate", "outputs"):
            cases.append(Case(f"{kind}.{meth}", getattr(model, meth),
                              lambda p=p, state=state, n=n_state: {"params": dict(p), "inputs": U_, "backend": None,
                                                                   state: np.full(n, 0.1)},
                              extra={"params": pv, "inputs": array_variants(U_), state: array_variants(np.ones(n_state))}))
        for meth in ("loss", "loss_and_grad"):
            cases.append(Case(f"{kind}.{meth}", getattr(model, meth),
                              lambda p=p: dict(params=dict(p), inputs=U_, targets=Y_, mask=M_, loss="masked_mse",
                                               backend=None),
                              extra={"params": pv, "inputs": array_variants(U_), "targets": array_variants(Y_),
                                     "mask": array_variants(M_) + [np.zeros_like(M_), -M_]}))
        cases.append(Case(f"{kind}.init_params", model.init_params, lambda: {"rng": 0}))
    cases.append(Case("nmrnn.init_params(scheme)", MODELS["nmrnn"].init_params, lambda: {"rng": 0, "scheme": "fan_in"}))
    cases.append(Case("make_model", nm.make_model, lambda: dict(name="lstm", N=3, U=1, O=1)))
    ref = nm.to_reference_params(MODELS["nmrnn"], PARAMS["nmrnn"])
    cases.append(Case("from_reference_params", nm.from_reference_params,
                      lambda: dict(kind="nm_rnn", ref_params=dict(ref), tau_x=10.0),
                      extra={"ref_params": [{**ref, "row_factors": np.zeros((5, 2))}, {**ref, "row_factors": "x"}]}))
    cases.append(Case("to_reference_params", nm.to_reference_params,
                      lambda: dict(model=MODELS["nmrnn"], arrays=dict(PARAMS["nmrnn"])),
                      extra={"arrays": params_variants(MODELS["nmrnn"], PARAMS["nmrnn"])}))

    def use_backend(backend):
        with nm.use_backend(backend):
            pass
    cases.append(Case("use_backend", use_backend, lambda: {"backend": "numpy"}))
    return cases


def train_cases(tmp: Path) -> list[Case]:
    model, p = MODELS["nmrnn"], PARAMS["nmrnn"]
    data = (U_, Y_, M_)
    return [
        Case("train", nm.train,
             lambda: dict(model=model, params=dict(p), data=data, steps=2, lr=None, optimizer="clip_adamw",
                          trainable=None, batch_size=None, rng=0, loss="masked_mse", initial_states=None,
                          backend=None, log_path=str(tmp / "log.jsonl"), log_every=1, checkpoint_path=None,
                          checkpoint_every=1000, resume=False, progress=False, callback=None),
             extra={"params": params_variants(model, p), "log_path": path_variants(tmp),
                    "checkpoint_path": path_variants(tmp), "trainable": [5, ["nm", 5], "bogus", [], ["L", "bogus"]],
                    "data": [(U_,), (U_, Y_, M_, M_), (U_, Y_[:, :3]), (U_, Y_, -M_), "data", {"inputs": U_}],
                    "initial_states": [{"h0": np.ones(5)}, {"x0": np.ones(4)}, [1, 2]],
                    "batch_size": [3, 0, 2.0]},
             # a finite but huge learning rate is valid input whose training diverges, as documented
             allowed={"lr": (TrainingDivergedError,)}),
        Case("trainable_keys", trainable_keys, lambda: dict(model=model, trainable="nm")),
        Case("save_model", nm.save_model,
             lambda: dict(path=str(tmp / "m.npz"), model=model, params=dict(p), metadata={"a": 1}),
             extra={"path": path_variants(tmp), "params": params_variants(model, p),
                    "metadata": [{"x": Opaque()}, [1]]}),
        Case("load_checkpoint", load_checkpoint, lambda: dict(path=str(tmp / "ckpt.npz")),
             extra={"path": path_variants(tmp) + [str(tmp / "garbage.npz"), str(tmp / "saved.npz")]},
             allowed={"path": (FileNotFoundError,)}),
        Case("load_model", nm.load_model, lambda: dict(path=str(tmp / "saved.npz")),
             extra={"path": path_variants(tmp) + [str(tmp / "garbage.npz")]},
             allowed={"path": (FileNotFoundError,)}),
    ]


def _batch_arrays(batch):
    """What must be finite in a multitask batch (its metadata use NaN for "no second stimulus")."""
    return batch.inputs, batch.targets, batch.mask


def task_cases() -> list[Case]:
    mwg = tasks.MeasureWaitGo()
    mt = tasks.Multitask(T=30)
    ef = tasks.ElementFinder(L=5)
    mwg_kw = dict(T=110, intervals=(12, 14, 16, 18), measure_window=(10, 20), delay=15, pulse=10.0,
                  ramp=(-0.5, 0.5), mask_pad=None)
    mt_kw = dict(tasks=("delay_pro", "memory_anti"), T=30, time_mode="normalised", dt=None, durations=None,
                 noise_sigma=0.0, fixation_target=0.8, stimulus_amplitude=1.0)
    return [
        Case("MeasureWaitGo", tasks.MeasureWaitGo, lambda: dict(mwg_kw),
             extra={"intervals": [(12, 2.0), (0,), ((1, 2), (3, 4)), ("a",)], "measure_window": [(1,), (5, 2), (1.5, 3)]}),
        Case("MeasureWaitGo.trials", mwg.trials, lambda: dict(interval=[12, 14], t_measure=[10, 11], return_info=False),
             extra={"interval": [[12.5, 14], [0, 14], [[12]], [80, 14]], "t_measure": [[10], [-1, 2], [1.5, 2]]}),
        Case("MeasureWaitGo.sample", mwg.sample, lambda: dict(rng=0, n=3, return_info=True)),
        Case("MeasureWaitGo.all_trials", mwg.all_trials, lambda: dict(return_info=False)),
        Case("mwg_extrapolation_set", tasks.mwg_extrapolation_set,
             lambda: dict(T=110, intervals=(4, 6), t_measure=15, delay=15)),
        Case("Multitask", tasks.Multitask, lambda: dict(mt_kw),
             extra={"durations": [[1], {"fixation": (1,)}, {"bogus": (0.1, 0.2)}, {"fixation": (0.5, 0.1)},
                                  {"fixation": ("a", 1)}],
                    "tasks": [("delay_pro", "delay_pro"), ("bogus",), (1, 2), "delay_pro"]}),
        Case("Multitask.sample", mt.sample, lambda: dict(rng=0, n=3, task=None),
             extra={"task": ["bogus", 7, -1, [0, 1], [0, 1, "x"], 1.5, [0.5, 1, 2]]},
             finite_part=_batch_arrays),
        Case("Multitask.one_of_each", mt.one_of_each, lambda: dict(rng=0),
             finite_part=_batch_arrays),
        Case("ElementFinder", tasks.ElementFinder, lambda: dict(L=5, low=-3, high=3, query_indices=None),
             extra={"query_indices": [[5], [-1], [1.5], [[1]]]}),
        Case("ElementFinder.sample", ef.sample, lambda: dict(rng=0, n=3, query=None, value=None),
             extra={"query": [5, -1, 2.0], "value": [11, 2.0, -4]}),
        Case("MWGInfo.epoch_spans", mwg.sample(0, 2, return_info=True)[3].epoch_spans, lambda: dict(i=1)),
        Case("MultitaskBatch.epoch_spans", mt.sample(0, 2).epoch_spans, lambda: dict(i=-1)),
        Case("ElementFinderBatch.epoch_spans", ef.sample(0, 2).epoch_spans, lambda: dict(i=0)),
        Case("get_task", tasks.get_task, lambda: dict(name="element_finder", L=4)),
    ]


def metric_cases() -> list[Case]:
    batch = tasks.Multitask(T=30).sample(0, 3)
    u, y = batch.inputs, batch.targets
    av = {"inputs": array_variants(u), "targets": array_variants(y), "outputs": array_variants(y)}
    return [
        Case("masked_l2", metrics.masked_l2, lambda: dict(outputs=Y_, targets=Y_ + 1, mask=M_), nan_passes=True,
             extra={"outputs": array_variants(Y_), "targets": array_variants(Y_),
                    "mask": array_variants(M_) + [np.ones((B, T)), -M_, 0 * M_]}),
        Case("decode_angle", metrics.decode_angle, lambda: dict(sin=np.ones(3), cos=np.ones(3), rule="arctan2"),
             extra={"sin": array_variants(np.ones(3))}, nan_passes=True),
        Case("circular_distance", metrics.circular_distance, lambda: dict(a=np.ones(3), b=np.zeros(3)),
             extra={"a": array_variants(np.ones(3))}, nan_passes=True),
        Case("fixation_off_step", metrics.fixation_off_step, lambda: dict(inputs=u, threshold=0.5),
             extra={"inputs": array_variants(u)}),
        Case("trial_correct", metrics.trial_correct,
             lambda: dict(inputs=u, targets=y, outputs=y, rule="arctan2", tolerance=0.3, fixation_threshold=0.5),
             extra=av, nan_passes=True),
        Case("percent_correct", metrics.percent_correct,
             lambda: dict(inputs=u, targets=y, outputs=y, rule="authors", tolerance=0.3, fixation_threshold=0.5),
             extra=av, nan_passes=True),
    ]


def loss_optim_cases() -> list[Case]:
    lv = {"y": array_variants(Y_), "targets": array_variants(Y_), "mask": array_variants(M_) + [np.ones((B, T)), -M_]}
    g = {k: np.ones_like(v) for k, v in PARAMS["rnn"].items()}
    opt = optim.ClipAdamW(1e-2)
    state = opt.init(PARAMS["rnn"])
    gv = [{"W": "x"}, {"W": np.full((2, 2), nan)}, [1.0]]
    return [
        Case("losses.masked_mse", losses.masked_mse, lambda: dict(y=Y_, targets=Y_ + 1, mask=M_), extra=lv,
             nan_passes=True),
        Case("losses.mse", losses.mse, lambda: dict(y=Y_, targets=Y_ + 1), extra=lv, nan_passes=True),
        Case("losses.last_step_mse", losses.last_step_mse, lambda: dict(y=Y_, targets=Y_ + 1), extra=lv,
             nan_passes=True),
        Case("losses.get_loss", losses.get_loss, lambda: dict(loss="mse")),
        Case("optim.Optimizer", optim.Optimizer,
             lambda: dict(lr=1e-2, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, weight_decay=0.0, clip=None,
                          clip_norm=None)),
        Case("optim.make_optimizer", optim.make_optimizer, lambda: dict(name="adam", lr=None, b1=0.9),
             extra={"name": [opt, "sgd"]}),
        Case("optim.ClipAdamW", optim.ClipAdamW, lambda: dict(lr=1e-2, eps=1e-8)),
        Case("optim.clip_by_value", optim.clip_by_value, lambda: dict(grads=dict(g), c=1.0), extra={"grads": gv},
             nan_passes=True),
        Case("optim.clip_by_global_norm", optim.clip_by_global_norm, lambda: dict(grads=dict(g), max_norm=1.0),
             extra={"grads": gv}, nan_passes=True),
        Case("optim.global_norm", optim.global_norm, lambda: dict(grads=dict(g)), extra={"grads": gv},
             nan_passes=True),
        Case("Optimizer.update", opt.update, lambda: dict(grads=dict(g), state=state, params=dict(PARAMS["rnn"])),
             extra={"grads": gv + [{**g, "W": np.ones(3)}], "params": params_variants(MODELS["rnn"], PARAMS["rnn"])},
             nan_passes=True),
        Case("Optimizer.init", opt.init, lambda: dict(params=dict(PARAMS["rnn"]))),
    ]


def analysis_cases() -> list[Case]:
    model, p = MODELS["nmrnn"], PARAMS["nmrnn"]
    x = model.simulate(p, U_).x
    s = model.simulate(p, U_).s
    pv = params_variants(model, p)
    return [
        Case("simulate_nmrnn_clamped", analysis.simulate_nmrnn_clamped,
             lambda: dict(model=model, params=dict(p), inputs=U_, clamp={0: 0.5}),
             extra={"params": pv, "inputs": array_variants(U_), "model": [MODELS["lstm"]],
                    "clamp": [{0: 2.0}, {0: -0.1}, {5: 0.5}, {0.0: 0.5}, {0: nan}, {0: np.ones(7)}, {"a": 1}, [0.5]]}),
        Case("simulate_nmrnn_frozen_signal", analysis.simulate_nmrnn_frozen_signal,
             lambda: dict(model=model, params=dict(p), inputs=U_, freeze_step=1),
             extra={"params": pv, "inputs": array_variants(U_), "model": [MODELS["lstm"]],
                    "freeze_step": [U_.shape[1], -1, 1.5, True, "a", [1] * (U_.shape[0] + 1), [[1]], nan]}),
        Case("clamp_values", analysis.clamp_values, lambda: dict(s=s, mode="mean"), extra={"s": array_variants(s)}),
        Case("ablate_components", analysis.ablate_components,
             lambda: dict(model=model, params=dict(p), inputs=U_, targets=Y_, mask=None, mode="mean", components=[1]),
             extra={"components": [[5], [-1], [0.5], 5, "0", [[0]]], "model": [MODELS["lstm"], MODELS["lrrnn"]],
                    "params": pv, "targets": array_variants(Y_), "mask": array_variants(M_) + [0 * M_]}),
        Case("latent_projection", analysis.latent_projection, lambda: dict(model=model, params=dict(p), x=x),
             extra={"model": [MODELS["lstm"], MODELS["rnn"]], "params": pv, "x": array_variants(x)}),
        Case("align_to_events", analysis.align_to_events,
             lambda: dict(values=x, events=np.array([2, 3]), before=2, after=3), nan_passes=True,
             finite_part=lambda out: out[0],   # the windows are NaN outside the trial, by design
             extra={"events": [[2.5, 3], [1], [[1, 2]], ["a", "b"]], "values": array_variants(x)}),
    ]


# ----------------------------------------------------------------------------
# task_plots and the theory package
# ----------------------------------------------------------------------------
def _plot_trial(**kw):
    from matplotlib.figure import Figure
    fig = Figure()
    axes = fig.subplots(2, 1)
    if kw.get("ax", "fresh") == "fresh":
        kw["ax"] = axes
    return tuple(map(type, task_plots.plot_trial(**kw)))


def theory_cases() -> list[Case]:
    import theory
    rank1 = nm.NMRNN(N=5, K=1, M=3, U=2, O=1, tied=True, phi="linear")
    p1 = rank1.init_params(0)
    s = np.full((2, 5), 0.5)
    kappa = theory.latent_closed_form_discrete(s, np.ones(2), 0.1)
    ramp = dict(y_go=-0.5, y_end=0.5, d_eff=1.0)
    anything = lambda out: ()   # noqa: E731 (NaN/inf results by design: outside the ramp, infeasible)
    rv = {"params": params_variants(rank1, p1), "inputs": array_variants(U_), "model": [MODELS["nmrnn"], MODELS["lstm"]],
          "x0": array_variants(np.ones(5))}
    run = lambda: dict(model=rank1, params=dict(p1), inputs=U_, traj=None, x0=None)   # noqa: E731
    return [
        Case("plot_trial", _plot_trial,
             lambda: dict(inputs=U_[0], targets=Y_[0], epochs=[("a", 0, 3)], ax="fresh", channel_names=["u0", "u1"],
                          target_names=["y"], mask=M_[0], title="t"),
             extra={"inputs": array_variants(U_[0]), "targets": array_variants(Y_[0]), "mask": array_variants(M_[0]),
                    "epochs": [[("a", 0)], [("a", 5, 2)], [(1, 0, 2)], [("a", 0, 99)], "ab"]}, nan_passes=True),
        Case("effective_timescale", theory.effective_timescale, lambda: dict(s=[0.2, 0.5], tau_x=10.0),
             extra={"s": [[1.5], [-0.1]]}, finite_part=anything),
        Case("forget_factor", theory.forget_factor, lambda: dict(s=[0.2, 0.5], alpha=0.1)),
        Case("latent_closed_form_discrete", theory.latent_closed_form_discrete,
             lambda: dict(s=s, kappa0=np.ones(2), alpha=0.1, g=None),
             extra={"s": array_variants(s), "g": array_variants(s)}),
        Case("latent_closed_form_continuous", theory.latent_closed_form_continuous,
             lambda: dict(t=np.linspace(0, 5, 4), kappa0=1.0, tau_x=10.0, s=0.5, s_integral=None, g=None,
                          quad_tol=1e-10)),
        Case("latent_constant_signal", theory.latent_constant_signal,
             lambda: dict(t=np.linspace(0, 5, 4), kappa0=1.0, s=0.5, tau_x=10.0)),
        Case("inverse_signal_discrete", theory.inverse_signal_discrete,
             lambda: dict(kappa=kappa, alpha=0.1, kappa0=np.ones(2), g=None),
             extra={"kappa": array_variants(kappa)}, finite_part=anything),
        Case("inverse_signal_continuous", theory.inverse_signal_continuous,
             lambda: dict(kappa=np.ones(3), dkappa=-0.05 * np.ones(3), tau_x=10.0, g=None), finite_part=anything),
        Case("signal_feasible", theory.signal_feasible, lambda: dict(s=[0.2, 0.5], closed=False)),
        Case("readout_constants", theory.readout_constants, lambda: dict(model=rank1, params=dict(p1), output=0),
             extra=rv),
        Case("ramp_t_star", theory.ramp_t_star, lambda: dict(t_go=20.0, interval=12.0, **ramp)),
        Case("ramp_rho", theory.ramp_rho, lambda: dict(ramp)),
        Case("ramp_signal", theory.ramp_signal,
             lambda: dict(t=np.arange(20.0, 40.0), t_go=20.0, interval=12.0, tau_x=10.0, dt=None, outside="nan", **ramp),
             finite_part=anything),
        Case("go_signal_gap", theory.go_signal_gap, lambda: dict(interval=[12.0, 14.0], tau_x=10.0, **ramp),
             finite_part=anything),
        Case("ramp_min_interval", theory.ramp_min_interval, lambda: dict(tau_x=10.0, dt=None, **ramp),
             finite_part=anything),
        Case("ramp_kappa", theory.ramp_kappa, lambda: dict(t=np.arange(30.0), t_go=5.0, interval=12.0, c=1.0, **ramp)),
        Case("ramp_forget_product", theory.ramp_forget_product, lambda: dict(ramp), finite_part=anything),
        Case("ramp_rounding_rmse", theory.ramp_rounding_rmse,
             lambda: dict(interval=12, tau_x=10.0, dt=1.0, fraction=0.5, **ramp), finite_part=anything),
        Case("ramp_signal_with_transients", theory.ramp_signal_with_transients,
             lambda: dict(model=rank1, params=dict(p1), inputs=U_, targets=Y_, x0=None, output=0),
             extra={**rv, "targets": array_variants(Y_)}, finite_part=anything),
        Case("forget_gate_from_signal", theory.forget_gate_from_signal, lambda: dict(s=s, alpha=0.1)),
        Case("signal_from_forget_gate", theory.signal_from_forget_gate,
             lambda: dict(f=np.full(3, 0.95), alpha=0.1, check_range=True)),
        Case("gated_recurrence", theory.gated_recurrence,
             lambda: dict(f=np.full((2, 5, 1), 0.9), i=np.ones((2, 5, 1)), g=np.ones((2, 5, 1)), c0=np.zeros((2, 1))),
             extra={"f": array_variants(np.full((2, 5, 1), 0.9)), "c0": array_variants(np.zeros((2, 1)))}),
        Case("gates_from_run", theory.gates_from_run, run, extra=rv),
        Case("latent_update", theory.latent_update, run, extra=rv),
        Case("gate_mapping_mismatch", theory.gate_mapping_mismatch, run, extra=rv),
    ]


@pytest.fixture(autouse=True)
def _in_tmp_folder(tmp_path, monkeypatch):
    """Run in a fresh folder: a drawn path such as "C3" is a valid file name and gets written."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("fuzz")
    nm.save_model(d / "saved.npz", MODELS["nmrnn"], PARAMS["nmrnn"])
    (d / "garbage.npz").write_bytes(b"not a zip")
    nm.train(MODELS["rnn"], PARAMS["rnn"], (U_, Y_), steps=1, checkpoint_path=d / "ckpt.npz", progress=False)
    return d


_FRESH = iter(range(10**9))


def runner_cases(tmp: Path) -> list[Case]:
    """The experiment runner's public functions, on the toy experiment of tests/toy_experiment.py."""
    from nmrnn_np.experiments import runner
    runner.EXPERIMENTS.setdefault("toy", "toy_experiment:EXPERIMENT")
    settings = runner.resolve_settings("toy", "quick", sets=["experiment.seeds=1", "training.steps=2"])
    finished = tmp / "toy-finished"

    def finished_folder() -> Path:
        # made when first needed, not when the cases are listed (listing uses a placeholder folder)
        if not (finished / "metrics.json").exists():
            runner.run_experiment("toy", settings, finished, executor="inline", figures=False, log=lambda m: None)
        return finished

    return [
        Case("resolve_settings", runner.resolve_settings,
             lambda: dict(experiment="toy", mode="quick", file=None, overrides=None, sets=["training.lr=0.1"],
                          grid=["training.N=2,3"]),
             extra={"sets": [["training.bogus=1"], ["training.lr"], "training.lr=1", [1]],
                    "grid": [["training.N=0,1"], ["experiment.seeds=1,2"], "training.N=2", {"training.N": 2}],
                    "overrides": [{"training": {"N": "x"}}, {"bogus": 1}], "file": path_variants(tmp)}),
        Case("expand_runs", runner.expand_runs, lambda: dict(experiment="toy", settings=dict(settings)),
             extra={"experiment": ["nosuch", "a:b"]}),
        Case("run_experiment", runner.run_experiment,
             lambda: dict(experiment="toy", settings=dict(settings), out=tmp / f"toy-{next(_FRESH)}",
                          executor="inline", jobs=1, scheduler=None, resume=False, figures=False,
                          log=lambda m: None),
             extra={"settings": [{**settings, "training": {"N": 0}}, {"experiment": {}}], "out": [tmp, str(tmp)],
                    "executor": ["threads", "Process"], "scheduler": ["tcp://127.0.0.1:1"]}),
        Case("aggregate", runner.aggregate,
             lambda: dict(out=finished_folder(), figures=False, reevaluate=False, overrides=None, log=lambda m: None),
             extra={"out": path_variants(tmp), "overrides": [{"training": {"N": "x"}}, {"bogus": 1}]}),
    ]


def experiment_cases() -> list[Case]:
    """The public building blocks of the multitask, element-finder and modulation experiments."""
    from nmrnn_np.experiments import eft, modulation, multitask
    from nmrnn_np.experiments import runner
    from nmrnn_np.models import nearest_size
    mt_batch = tasks.Multitask(T=40).sample(0, 6)
    held = tasks.Multitask(tasks=("memory_anti",), T=40).sample(1, 4)
    rnn = nm.make_model("rnn", N=3, U=6, O=3)
    grid = [0.0, 0.25, 0.5]
    states = [[0.1, 0.2, 0.3], [0.0, 0.5, 1.0], [1.0, 1.5, 0.2], [0.3, 0.1, 0.7]]
    xs = np.random.default_rng(0).standard_normal((3, 5, 4))
    return [
        Case("nearest_size", nearest_size, lambda: dict(name="lrrnn", budget=120, K=2, U=2, O=1),
             extra={"budget": [0, -3, 2.5, "100"], "K": [0, 99, 1.5]}),
        Case("add_input_channel", multitask.add_input_channel,
             lambda: dict(model=rnn, params=rnn.init_params(0), init=0.1),
             extra={"params": params_variants(rnn, rnn.init_params(0))}),
        Case("held_out_inputs", multitask.held_out_inputs,
             lambda: dict(batch=held, n_old_contexts=3, context_noise=0.1, rng=np.random.default_rng(0)),
             extra={"batch": [mt_batch.inputs, tasks.ElementFinder().sample(0, 2)], "context_noise": [-0.1]}),
        Case("pretrained_inputs", multitask.pretrained_inputs, lambda: dict(batch=mt_batch, n_new=1),
             extra={"n_new": [-1, 1.5]}),
        Case("pretraining_tasks", multitask.pretraining_tasks, lambda: dict(held_out="memory_anti"),
             extra={"held_out": ["dm1", "Memory Anti"]}),
        Case("parse_config", eft.parse_config, lambda: dict(config="5,18,8"),
             extra={"config": ["5,18", "0,1,1", "a,b,c", [5, 18, 8], "5,18,8,1"]}),
        Case("eft_sampler", eft.sampler, lambda: dict(task=tasks.ElementFinder(L=5), batch_size=4),
             extra={"batch_size": [0, 2.0, -1], "task": [tasks.Multitask()]}),
        Case("parse_size", modulation.parse_size, lambda: dict(size="16,4"),
             extra={"size": ["16", "4,16", "0,0", [16, 4]]}),
        Case("task_names", modulation.task_names, lambda: dict(n_tasks=4), extra={"n_tasks": [0, 7, 2.0]}),
        Case("mixed_context", modulation.mixed_context, lambda: dict(batch=mt_batch, lam=0.3, shift=1),
             extra={"lam": [-0.1, 1.1], "batch": [mt_batch.inputs]}),
        Case("noisy_context", modulation.noisy_context,
             lambda: dict(batch=mt_batch, sigma=0.5, rng=np.random.default_rng(0)), extra={"sigma": [-1.0]}),
        Case("auc", modulation.auc, lambda: dict(x=grid, y=[1.0, 0.8, 0.5]),
             extra={"x": [[0.5, 0.0, 0.25], [0.0], [0.0, 0.0, 1.0]], "y": [[1.0, 0.5]]}),
        Case("threshold_crossing", modulation.threshold_crossing, lambda: dict(x=grid, y=[1.0, 0.8, 0.5], level=0.9),
             extra={"y": [[1.0]]}),
        Case("participation_ratio", analysis.participation_ratio, lambda: dict(x=xs), extra={"x": array_variants(xs)}),
        Case("principal_subspace", analysis.principal_subspace, lambda: dict(x=xs, k=2),
             extra={"k": [0, 5, 2.0], "x": array_variants(xs)}),
        Case("principal_angles", analysis.principal_angles,
             lambda: dict(a=np.eye(4)[:, :2], b=np.eye(4)[:, 1:3]), extra={"b": [np.eye(3)[:, :2], np.ones(4)]}),
        Case("trajectory_distance", analysis.trajectory_distance,
             lambda: dict(a=np.asarray(states), b=np.asarray(states) + 1.0), extra={"b": [np.ones((2, 3))]}),
    ] + [
        Case(f"resolve_settings_{name}", runner.resolve_settings,
             lambda name=name: dict(experiment=name, mode="quick", file=None, overrides=None,
                                    sets=["experiment.seeds=1"], grid=[]),
             extra={"sets": [["training.bogus=1"], ["experiment.models=[1]"], ["experiment.seeds=0"],
                             ["task.test_trials=0"], ["task.T=2"]]})
        for name in ("multitask", "eft", "modulation")
    ]


def all_cases(tmp: Path) -> list[Case]:
    return (model_cases() + train_cases(tmp) + task_cases() + metric_cases() + loss_optim_cases() + analysis_cases()
            + theory_cases() + runner_cases(tmp) + experiment_cases())


def _arguments():
    """(case name, argument) pairs, for parametrize (built in a scratch folder, removed afterwards).

    Listing a case builds its valid arguments, which may write files (the
    runner cases run the toy experiment), so never in the working folder.
    """
    import shutil
    import tempfile
    scratch = Path(tempfile.mkdtemp(prefix="nmrnn-fuzz-listing-"))
    try:
        out = []
        for case in all_cases(scratch):
            out += [(case.name, arg) for arg in case.valid()]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def _case(name: str, tmp: Path) -> Case:
    return next(c for c in all_cases(tmp) if c.name == name)


def bad_values(case: Case, arg: str):
    specific = case.extra.get(arg, [])
    return st.one_of(st.sampled_from(GENERIC + specific),
                     st.floats(allow_nan=True, allow_infinity=True),
                     st.integers(-3, 12),
                     st.text(max_size=4))


@pytest.mark.parametrize("name, arg", _arguments())
def test_bad_argument_gives_a_clear_error(name, arg, tmp):
    case = _case(name, tmp)

    @FUZZ
    @given(value=bad_values(case, arg))
    def check(value):
        run_case(case, arg, value)

    check()
    # and every argument-specific wrong value, not only those hypothesis happened to draw
    for value in case.extra.get(arg, []):
        run_case(case, arg, value)


@pytest.mark.parametrize("name", sorted({n for n, _ in _arguments()}))
def test_unknown_keyword_is_named(name, tmp):
    case = _case(name, tmp)
    kwargs = case.valid()
    kwargs["bogus_option"] = 1
    with pytest.raises(TypeError, match="bogus_option"):
        case.call(**kwargs)


# ----------------------------------------------------------------------------
# The examples of the issue, pinned
# ----------------------------------------------------------------------------
def test_issue_examples(tmp):
    model, p = MODELS["nmrnn"], PARAMS["nmrnn"]
    with pytest.raises(TypeError, match="bogus.*known keyword arguments: N, K"):
        nm.make_model("nmrnn", bogus=1)
    with pytest.raises(TypeError, match="bogus"):
        tasks.get_task("mwg", bogus=1)
    with pytest.raises(TypeError, match="name must be one of 'nmrnn'"):
        nm.make_model(["nmrnn"])
    with pytest.raises(TypeError, match="trainable"):
        nm.train(model, p, (U_, Y_), steps=1, trainable=5)
    with pytest.raises(TypeError, match="durations"):
        tasks.Multitask(durations=[1])
    with pytest.raises(ValueError, match="components"):
        analysis.ablate_components(model, p, U_, Y_, components=[5])
    with pytest.raises(TypeError, match="model must be a low-rank model"):
        analysis.latent_projection(MODELS["lstm"], PARAMS["lstm"], np.ones((B, T, 4)))
    with pytest.raises(ValueError, match="log_path.*does not exist"):
        nm.train(model, p, (U_, Y_), steps=1, log_path=tmp / "missing" / "dir" / "log.jsonl")
    with pytest.raises(ValueError, match="path.*is a folder"):
        nm.save_model(tmp, model, p)
    with pytest.raises(ValueError, match=r"params\['L'\].*rank deficient"):
        model.loss_and_grad({**p, "L": np.zeros((5, 2))}, U_, Y_)
    with pytest.raises(TypeError, match="N must be an integer"):
        nm.LSTM(N=True, U=1, O=1)
    with pytest.raises(TypeError, match="orthonormalize must be True or False"):
        nm.NMRNN(5, 2, 3, 2, 1, orthonormalize="no")
    with pytest.raises(TypeError, match="steps must be an integer"):
        nm.train(model, p, (U_, Y_), steps=2.0)
    with pytest.raises(ValueError, match="fixation_threshold"):
        batch = tasks.Multitask(T=30).sample(0, 2)
        metrics.percent_correct(batch.inputs, batch.targets, batch.targets, fixation_threshold=nan)
    with pytest.raises(ValueError, match=r"clamp\[0\] must lie in \[0, 1\]"):
        analysis.simulate_nmrnn_clamped(model, p, U_, clamp={0: 2.0})
    # one mask vocabulary: a (B, T) mask means the same to model.loss, masked_l2 and masked_mse
    mask2 = np.random.default_rng(3).uniform(0.1, 1.0, (B, T))
    y = model.simulate(p, U_).y
    assert metrics.masked_l2(y, Y_, mask2) == pytest.approx(model.loss(p, U_, Y_, mask2))
    assert float(losses.masked_mse(y, Y_, mask2)) == pytest.approx(model.loss(p, U_, Y_, mask2))


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_outputs_differentiable_over_the_parameter_dict(backend):
    """``autograd.grad`` over the whole dict, as the docstring of ``outputs`` says, equals loss_and_grad."""
    import autograd
    import autograd.numpy as anp
    if backend == "numba" and not nm.HAVE_NUMBA:
        pytest.skip("numba not installed")
    model, p = MODELS["nmrnn"], PARAMS["nmrnn"]
    grads = autograd.grad(lambda q: anp.mean((model.outputs(q, U_, backend=backend) - Y_) ** 2))(p)
    _, ref = model.loss_and_grad(p, U_, Y_, backend=backend)
    for k in p:
        np.testing.assert_allclose(grads[k], ref[k], rtol=1e-10, atol=1e-14)

