"""Tests of nmrnn_np.tasks (and the task figures of nmrnn_np.task_plots)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nmrnn_np import tasks
from nmrnn_np.tasks import (DEFAULT_DURATIONS, ElementFinder, MeasureWaitGo, Multitask, get_task,
                            mwg_extrapolation_set)

REFERENCE = Path(__file__).resolve().parent / "reference"
FOUR = ("delay_pro", "delay_anti", "memory_pro", "memory_anti")


# ----------------------------------------------------------------------------
# Measure-Wait-Go
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("fname, make", [
    ("mwg_sample_all.npz", lambda: MeasureWaitGo(T=110, intervals=(12, 14, 16, 18), measure_window=(10, 20),
                                                 delay=15, mask_pad=None)),
    ("mwg_extrap_sample_all.npz", lambda: mwg_extrapolation_set()),
    ("mwg_sample_all_maskpad5.npz", lambda: MeasureWaitGo(T=110, intervals=(12, 14, 16, 18),
                                                          measure_window=(10, 20), delay=15, mask_pad=5)),
])
def test_mwg_reproduces_reference_exactly(fname, make):
    ref = np.load(REFERENCE / fname)
    inputs, targets, mask = make().all_trials()
    for arr in (inputs, targets, mask):
        assert arr.dtype == np.float64 and arr.ndim == 3
    np.testing.assert_array_equal(inputs, ref["inputs"].astype(np.float64))
    np.testing.assert_array_equal(targets, ref["outputs"])
    np.testing.assert_array_equal(mask, ref["masks"].astype(np.float64))


def test_mwg_extrapolation_set_conditions():
    task = mwg_extrapolation_set()
    assert task.intervals == tuple(range(4, 27, 2)) and task.measure_window == (15, 16)
    _, _, _, info = task.all_trials(return_info=True)
    np.testing.assert_array_equal(info.interval, np.arange(4, 27, 2))
    assert np.all(info.t_measure == 15)


def test_mwg_order_info_and_trial_structure():
    task = MeasureWaitGo()
    out = task.all_trials()
    assert len(out) == 3
    inputs, targets, mask, info = task.all_trials(return_info=True)
    assert inputs.shape == (40, 110, 3) and targets.shape == (40, 110, 1) and mask.shape == (40, 110, 1)
    # interval-major, then measure time
    i, j = np.divmod(np.arange(40), 10)
    np.testing.assert_array_equal(info.interval, np.array([12, 14, 16, 18])[i])
    np.testing.assert_array_equal(info.t_measure, 10 + j)
    np.testing.assert_array_equal(info.t_wait, info.t_measure + info.interval)
    np.testing.assert_array_equal(info.t_go, info.t_wait + 15)
    for b in range(40):
        for c, ev in enumerate((info.t_measure, info.t_wait, info.t_go)):
            assert np.flatnonzero(inputs[b, :, c]).tolist() == [ev[b]]
            assert inputs[b, ev[b], c] == 10.0
        go, I = info.t_go[b], info.interval[b]
        assert np.all(targets[b, :go + 1, 0] == -0.5)          # -0.5 up to and including go
        # +0.5 from go + interval (to the last bit only: the reference computes -t_go/I + t/I)
        np.testing.assert_allclose(targets[b, go + I:, 0], 0.5, rtol=0, atol=1e-15)
        np.testing.assert_allclose(np.diff(targets[b, go:go + I + 1, 0]), 1.0 / I)
        spans = info.epoch_spans(b)
        assert [s[0] for s in spans] == ["pre", "measure", "wait", "ramp", "hold"]
        assert spans[0][1] == 0 and spans[-1][2] == 110
        assert all(a[2] == b_[1] for a, b_ in zip(spans, spans[1:]))


def test_mwg_mask_pad_window():
    task = MeasureWaitGo(intervals=(6, 10), measure_window=(3, 5), delay=4, T=50, mask_pad=2)
    _, _, mask, info = task.all_trials(return_info=True)
    t = np.arange(50)
    for b in range(len(info)):
        expected = (t >= info.t_go[b] - 2) & (t < info.t_go[b] + 10 + 2)
        np.testing.assert_array_equal(mask[b, :, 0], expected.astype(float))


def test_mwg_sample_is_deterministic_and_matches_rendering():
    task = MeasureWaitGo()
    a = task.sample(7, 64, return_info=True)
    b = task.sample(np.random.default_rng(7), 64, return_info=True)
    for x, y in zip(a[:3], b[:3]):
        np.testing.assert_array_equal(x, y)
    c = task.sample(8, 64)
    assert not np.array_equal(a[0], c[0])
    inputs, targets, mask, info = a
    assert set(info.interval) <= set(task.intervals) and set(info.t_measure) <= set(range(10, 20))
    # each sampled trial equals the matching row of all_trials
    all_in, all_tg, _ = task.all_trials()
    rows = np.searchsorted(task.intervals, info.interval) * 10 + (info.t_measure - 10)
    np.testing.assert_array_equal(inputs, all_in[rows])
    np.testing.assert_array_equal(targets, all_tg[rows])


@pytest.mark.parametrize("kwargs, name", [
    (dict(intervals=(12, 60)), "intervals"),
    (dict(T=60), "intervals"),
    (dict(intervals=()), "intervals"),
    (dict(intervals=(0, 12)), "intervals"),
    (dict(measure_window=(-1, 5)), "measure_window"),
    (dict(measure_window=(20, 10)), "measure_window"),
    (dict(measure_window=(100, 120)), "measure_window"),
    (dict(measure_window=(5,)), "measure_window"),
    (dict(T=0), "T"),
    (dict(delay=-1), "delay"),
    (dict(pulse=0.0), "pulse"),
    (dict(mask_pad=-2), "mask_pad"),
])
def test_mwg_validation(kwargs, name):
    with pytest.raises(ValueError, match=name):
        MeasureWaitGo(**kwargs)


def test_mwg_sample_validation():
    with pytest.raises(ValueError, match="n"):
        MeasureWaitGo().sample(0, 0)
    with pytest.raises(TypeError, match="rng"):
        MeasureWaitGo().sample("seed", 3)


# ----------------------------------------------------------------------------
# registry
# ----------------------------------------------------------------------------

def test_get_task_registry():
    assert isinstance(get_task("mwg", T=110), MeasureWaitGo)
    assert isinstance(get_task("multitask", tasks=["delay_pro"]), Multitask)
    assert isinstance(get_task("element_finder", L=5), ElementFinder)
    with pytest.raises(ValueError, match="name.*'mwg'.*'multitask'.*'element_finder'"):
        get_task("timing")


# ----------------------------------------------------------------------------
# Multitask
# ----------------------------------------------------------------------------

def test_multitask_contract_shapes_and_types():
    for names in (FOUR, ("memory_pro", "delay_anti", "delay_pro")):
        batch = Multitask(names, T=100).sample(0, 50)
        assert batch.inputs.shape == (50, 100, 3 + len(names))
        assert batch.targets.shape == (50, 100, 3) and batch.mask.shape == (50, 100, 3)
        for arr in (batch.inputs, batch.targets, batch.mask, batch.context, batch.task_inputs):
            assert arr.dtype == np.float64
        assert batch.task.shape == batch.theta_in.shape == batch.theta_out.shape == batch.fix_off.shape == (50,)
        assert batch.task_names == names
        np.testing.assert_array_equal(batch.inputs, np.concatenate([batch.task_inputs, batch.context], -1))
        assert batch.inputs.shape[-1] == len(batch.input_names)


def test_multitask_deterministic_per_seed():
    task = Multitask()
    a, b, c = task.sample(3, 40), task.sample(np.random.default_rng(3), 40), task.sample(4, 40)
    for name in ("inputs", "targets", "task", "theta_in", "fix_off"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.inputs, c.inputs)


def test_multitask_epoch_rules():
    task = Multitask(FOUR, T=100)
    batch = task.sample(11, 400)
    T = 100
    t = np.arange(T)
    e = batch.epochs
    assert np.bincount(batch.task, minlength=4).min() > 50      # every task drawn
    # fix_off = first step where the fixation input is off
    np.testing.assert_array_equal(batch.fix_off, np.argmax(batch.inputs[:, :, 0] < 0.5, axis=1))
    np.testing.assert_array_equal(batch.fix_off, e["fix_off"])
    np.testing.assert_array_equal(e["end"], T)
    assert np.all(batch.mask == 1)
    for i in range(len(batch)):
        name = FOUR[batch.task[i]]
        on, off, fo = e["stim_on"][i], e["stim_off"][i], e["fix_off"][i]
        # context: one-hot of the task, constant
        np.testing.assert_array_equal(batch.context[i], np.tile(np.eye(4)[batch.task[i]], (T, 1)))
        # fixation input/target
        np.testing.assert_array_equal(batch.inputs[i, :, 0], (t < fo).astype(float))
        np.testing.assert_allclose(batch.targets[i, :, 0], 0.8 * (t < fo))
        # stimulus: sin, cos of theta_in while on; delay tasks keep it on to the end
        stim_on_steps = (t >= on) & (t < (T if name.startswith("delay") else off))
        if name.startswith("delay"):
            assert off == T
        else:
            assert 0 < on < off < fo < T
        np.testing.assert_allclose(batch.inputs[i, :, 1], np.sin(batch.theta_in[i]) * stim_on_steps)
        np.testing.assert_allclose(batch.inputs[i, :, 2], np.cos(batch.theta_in[i]) * stim_on_steps)
        # response target
        expect_out = batch.theta_in[i] + (np.pi if name.endswith("anti") else 0.0)
        np.testing.assert_allclose(batch.theta_out[i], np.mod(expect_out, 2 * np.pi))
        np.testing.assert_allclose(batch.targets[i, :, 1], np.sin(expect_out) * (t >= fo), atol=1e-12)
        np.testing.assert_allclose(batch.targets[i, :, 2], np.cos(expect_out) * (t >= fo), atol=1e-12)
        # named epochs tile [0, T) and are non-empty
        spans = batch.epoch_spans(i)
        assert spans[0][1] == 0 and spans[-1][2] == T
        assert all(s[2] > s[1] for s in spans) and all(a[2] == b[1] for a, b in zip(spans, spans[1:]))
        assert [s[0] for s in spans] == (["fixation", "stimulus", "response"] if name.startswith("delay")
                                         else ["fixation", "stimulus", "memory", "response"])
    assert np.all((batch.theta_in >= 0) & (batch.theta_in < 2 * np.pi))
    assert np.all((batch.theta_out >= 0) & (batch.theta_out < 2 * np.pi))


def test_multitask_time_normalisation_matches_authors_rule():
    """Durations lie in the documented ranges and steps follow t >= t_event / t_total * T."""
    task = Multitask(FOUR, T=100)
    batch = task.sample(5, 300)
    times, T = batch.event_times, 100
    delay = np.array([FOUR[k].startswith("delay") for k in batch.task])
    d = DEFAULT_DURATIONS

    def within(x, key):
        return np.all((x >= d[key][0]) & (x <= d[key][1]))

    assert within(times["stim_on"], "fixation")
    assert within((times["fix_off"] - times["stim_on"])[delay], "delay_stimulus")
    assert within((times["stim_off"] - times["stim_on"])[~delay], "memory_stimulus")
    assert within((times["fix_off"] - times["stim_off"])[~delay], "memory")
    assert within(times["end"] - times["fix_off"], "response")
    np.testing.assert_allclose(batch.step_duration, times["end"] / T)
    t = np.arange(T)
    for key in ("stim_on", "fix_off"):
        authors = np.argmax(t[None, :] >= (times[key] / times["end"] * T)[:, None], axis=1)
        np.testing.assert_array_equal(batch.epochs[key], authors)
    authors = np.argmax(t[None, :] >= (times["stim_off"] / times["end"] * T)[:, None], axis=1)
    np.testing.assert_array_equal(batch.epochs["stim_off"][~delay], authors[~delay])


def test_multitask_fixed_dt_mode():
    task = Multitask(FOUR, T=100, time_mode="fixed_dt", dt=0.05)
    batch = task.sample(2, 200)
    times = batch.event_times
    t = np.arange(100)
    np.testing.assert_array_equal(batch.step_duration, 0.05)
    for key in ("stim_on", "fix_off", "end"):
        np.testing.assert_array_equal(batch.epochs[key], np.ceil(times[key] / 0.05 - 1e-9).astype(int))
    assert np.all(batch.epochs["end"] <= 100)
    for i in range(len(batch)):
        end = batch.epochs["end"][i]
        np.testing.assert_array_equal(batch.mask[i], np.repeat((t < end)[:, None], 3, axis=1).astype(float))
        # padding continues the response epoch
        np.testing.assert_array_equal(batch.targets[i, end - 1:], np.repeat(batch.targets[i, -1:], 101 - end, 0))
        assert batch.epoch_spans(i)[-1][0] == ("padding" if end < 100 else "response")
    with pytest.raises(ValueError, match="T"):
        Multitask(FOUR, T=50, time_mode="fixed_dt", dt=0.05)      # 4.6 units = 92 steps > 50
    with pytest.raises(ValueError, match="dt"):
        Multitask(FOUR, time_mode="fixed_dt", dt=0.5)             # epochs of 0.2 units < 1 step
    with pytest.raises(ValueError, match="dt"):
        Multitask(FOUR, dt=0.05)                                  # dt only in fixed-dt mode
    with pytest.raises(ValueError, match="time_mode"):
        Multitask(FOUR, time_mode="seconds")


def test_multitask_noise_is_added_to_task_inputs_only():
    clean = Multitask(FOUR).sample(9, 200)
    noisy = Multitask(FOUR, noise_sigma=0.1).sample(9, 200)
    np.testing.assert_array_equal(noisy.context, clean.context)
    np.testing.assert_array_equal(noisy.targets, clean.targets)
    resid = noisy.task_inputs - clean.task_inputs
    assert abs(resid.std() - 0.1) < 0.005 and abs(resid.mean()) < 0.005
    with pytest.raises(ValueError, match="noise_sigma"):
        Multitask(FOUR, noise_sigma=-1.0)


def test_multitask_fixed_task_keeps_the_random_stream():
    task = Multitask(FOUR)
    mixed = task.sample(1, 30)
    only = task.sample(1, 30, task="memory_anti")
    assert np.all(only.task == 3)
    np.testing.assert_array_equal(only.theta_in, mixed.theta_in)
    np.testing.assert_allclose(only.theta_out, np.mod(mixed.theta_in + np.pi, 2 * np.pi))
    each = task.one_of_each(0)
    np.testing.assert_array_equal(each.task, [0, 1, 2, 3])
    with pytest.raises(ValueError, match="task"):
        task.sample(0, 3, task="dm1")


def test_multitask_dm_tasks():
    task = Multitask(("dm1", "dm2", "delay_pro"))
    assert task.task_input_names == ("fixation", "sin1", "cos1", "sin2", "cos2")
    batch = task.sample(4, 200)
    assert batch.inputs.shape == (200, 100, 5 + 3)
    t = np.arange(100)
    for i in range(200):
        name = batch.task_names[batch.task[i]]
        if name == "delay_pro":
            assert np.all(batch.inputs[i, :, 3:5] == 0) and np.isnan(batch.coherence[i])
            continue
        c = batch.coherence[i]
        assert 0.1 <= abs(c) <= 0.8
        gap = np.mod(batch.theta_in2[i] - batch.theta_in[i], 2 * np.pi)
        assert np.pi / 2 <= gap <= 3 * np.pi / 2
        on, sw, fo = batch.epochs["stim_on"][i], batch.epochs["stim_off"][i], batch.fix_off[i]
        used, unused = (slice(1, 3), slice(3, 5)) if name == "dm1" else (slice(3, 5), slice(1, 3))
        assert np.all(batch.inputs[i, :, unused] == 0)
        s = batch.inputs[i, :, used]
        np.testing.assert_allclose(s[(t >= on) & (t < sw)],
                                   np.tile((1 + c) * np.array([np.sin(batch.theta_in[i]), np.cos(batch.theta_in[i])]),
                                           (sw - on, 1)))
        np.testing.assert_allclose(s[(t >= sw) & (t < fo)],
                                   np.tile((1 - c) * np.array([np.sin(batch.theta_in2[i]),
                                                               np.cos(batch.theta_in2[i])]), (fo - sw, 1)))
        assert np.all(s[t < on] == 0) and np.all(s[t >= fo] == 0)
        stronger = batch.theta_in[i] if c > 0 else batch.theta_in2[i]
        np.testing.assert_allclose(batch.theta_out[i], stronger)
        assert [x[0] for x in batch.epoch_spans(i)] == ["fixation", "stimulus1", "stimulus2", "response"]


@pytest.mark.parametrize("kwargs, name", [
    (dict(tasks=("delay_pro", "go")), "tasks"),
    (dict(tasks=()), "tasks"),
    (dict(tasks="delay_pro"), "tasks"),
    (dict(tasks=("delay_pro", "delay_pro")), "tasks"),
    (dict(tasks=FOUR, T=0), "T"),
    (dict(tasks=FOUR, T=10), "T"),                      # shortest epoch would be < 1 step
    (dict(tasks=FOUR, durations={"stimulus": (0.2, 1.0)}), "durations"),
    (dict(tasks=FOUR, durations={"response": (0.7, 0.3)}), "durations"),
    (dict(tasks=FOUR, durations={"response": (0.0, 0.3)}), "durations"),
])
def test_multitask_validation(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Multitask(**kwargs)


def test_multitask_sample_validation():
    with pytest.raises(ValueError, match="n"):
        Multitask().sample(0, -3)


def test_multitask_custom_durations_constant():
    task = Multitask(("delay_pro",), T=100, durations={"fixation": (0.5, 0.5), "delay_stimulus": (1.0, 1.0),
                                                      "response": (0.5, 0.5)})
    batch = task.sample(0, 5)
    np.testing.assert_array_equal(batch.epochs["stim_on"], 25)
    np.testing.assert_array_equal(batch.fix_off, 75)


# ----------------------------------------------------------------------------
# Element finder
# ----------------------------------------------------------------------------

def test_element_finder_layout():
    task = ElementFinder()
    batch = task.sample(0, 500)
    assert batch.inputs.shape == batch.targets.shape == batch.mask.shape == (500, 26, 1)
    assert batch.inputs.dtype == batch.targets.dtype == batch.mask.dtype == np.float64
    np.testing.assert_array_equal(batch.inputs[:, 0, 0], batch.query)
    np.testing.assert_array_equal(batch.inputs[:, 1:, 0], batch.values)
    np.testing.assert_array_equal(batch.answer, batch.values[np.arange(500), batch.query])
    np.testing.assert_array_equal(batch.targets[:, :, 0], np.repeat(batch.answer[:, None], 26, 1))
    np.testing.assert_array_equal(batch.mask[:, :, 0], np.eye(26)[[25] * 500])
    assert batch.values.min() == -10 and batch.values.max() == 10          # inclusive range
    assert batch.query.min() == 0 and batch.query.max() == 24
    again = task.sample(0, 500)
    np.testing.assert_array_equal(again.inputs, batch.inputs)


def test_element_finder_variants():
    restricted = ElementFinder(query_indices=(3, 7, 20)).sample(1, 300)
    assert set(restricted.query) == {3, 7, 20}
    base = ElementFinder().sample(2, 50)
    fixed = ElementFinder().sample(2, 50, query=5)
    assert np.all(fixed.query == 5)
    np.testing.assert_array_equal(fixed.values, base.values)                # same stream
    fixed_v = ElementFinder().sample(2, 50, query=5, value=-3)
    assert np.all(fixed_v.answer == -3) and np.all(fixed_v.inputs[:, 6, 0] == -3)
    with pytest.raises(ValueError, match="query"):
        ElementFinder().sample(0, 2, query=25)
    with pytest.raises(ValueError, match="value"):
        ElementFinder().sample(0, 2, query=1, value=11)
    with pytest.raises(ValueError, match="query_indices"):
        ElementFinder(L=5, query_indices=(1, 5))
    with pytest.raises(ValueError, match="L"):
        ElementFinder(L=0)
    with pytest.raises(ValueError, match="low"):
        ElementFinder(low=3, high=2)
    with pytest.raises(ValueError, match="n"):
        ElementFinder().sample(0, 0)


# ----------------------------------------------------------------------------
# figures
# ----------------------------------------------------------------------------

def test_task_figures_are_written(tmp_path):
    from nmrnn_np.task_plots import plot_trial, save_task_figures

    paths = save_task_figures(tmp_path / "figs", rng=0)
    assert sorted(p.name for p in paths) == sorted(["task_dm.png", "task_element_finder.png",
                                                    "task_mwg.png", "task_multitask.png"])
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000

    from matplotlib.figure import Figure
    axes = Figure().subplots(2, 1)
    batch = tasks.Multitask().sample(0, 1)
    ax_in, ax_out = plot_trial(batch.task_inputs[0], batch.targets[0], batch.epoch_spans(0), ax=axes,
                               channel_names=("fixation", "sin", "cos"), target_names=("fixation", "sin", "cos"))
    assert len(ax_in.lines) == 3 and len(ax_out.lines) == 3
    with pytest.raises(ValueError, match="targets"):
        plot_trial(np.zeros((10, 2)), np.zeros((9, 1)), ax=axes)
