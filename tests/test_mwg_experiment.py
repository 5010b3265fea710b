"""The Measure-Wait-Go experiment: settings, analyses, and a tiny end-to-end run with interrupt/resume."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from nmrnn_np.experiments import analysis, config as C, mwg, runner
from nmrnn_np.experiments.config import ConfigError
from nmrnn_np.io import load_model
from nmrnn_np.models import NMRNN, LowRankRNN
from nmrnn_np.tasks import mwg_extrapolation_set

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def tiny_overrides(**training):
    """Small models and a few steps: the whole pipeline in seconds on the NumPy path."""
    return {
        "experiment": {"seeds": 2, "backend": "numpy"},
        "training": {"steps": 4, "nmrnn_output_steps": 2, "nmrnn_nm_steps": 2, "checkpoint_every": 2,
                     **training},
        "models": {"nmrnn": {"N": 8, "M": 3}, "lrrnn": {"N": 8}, "rnn": {"N": 5}, "lstm": {"N": 3}},
    }


# ----------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", mwg.MODES)
def test_default_config_round_trips_through_toml(mode):
    cfg = mwg.default_config(mode)
    text = C.dumps_toml(cfg, header="a comment\nover two lines")
    assert tomllib.loads(text) == cfg
    assert text.startswith("# a comment\n# over two lines\n")


def test_toml_writer_handles_awkward_values():
    data = {"s": 'quote " backslash \\ newline \n é', "f": 1e-5, "big": 1e300, "whole": 2.0,
            "neg": -0.5, "b": False, "e": [], "t": {"x y": 1, "sub": {"z": [1.5, 2.5]}}, "none": None}
    back = tomllib.loads(C.dumps_toml(data))
    expected = {k: v for k, v in data.items() if v is not None}
    assert back == expected
    assert isinstance(back["whole"], float)
    with pytest.raises(ConfigError, match="t.bad"):
        C.dumps_toml({"t": {"bad": [[1], [2]]}})


def test_full_mode_is_the_authors_schedule():
    cfg = mwg.default_config("full")
    tr = cfg["training"]
    assert (tr["lr"], tr["steps"], tr["nmrnn_output_steps"], tr["nmrnn_nm_steps"]) == (1e-2, 50_000, 10_000, 10_000)
    assert cfg["experiment"]["seeds"] == 10
    assert mwg.training_stages("nmrnn", cfg) == [("output", 10_000, ("output",)), ("nm", 10_000, ("nm",)),
                                                 ("full", 50_000, None)]
    assert mwg.training_stages("lstm", cfg) == [("full", 50_000, None)]


def test_models_are_parameter_matched():
    cfg = mwg.default_config("quick")
    counts = {m: mwg.build_model(m, cfg).n_params() for m in mwg.MODEL_NAMES}
    assert counts == {"nmrnn": 1059, "lrrnn": 1061, "rnn": 1086, "lstm": 1155}


@pytest.mark.parametrize("overrides, key", [
    ({"training": {"stpes": 3}}, "training.stpes"),
    ({"training": {"steps": "many"}}, "training.steps"),
    ({"training": {"lr": True}}, "training.lr"),
    ({"models": {"nmrnn": {"N": 1.5}}}, "models.nmrnn.N"),
    ({"models": {"gru": {"N": 3}}}, "models.gru"),
    ({"experiment": 3}, "experiment"),
    ({"task": {"train_intervals": [12, "x"]}}, "task.train_intervals[1]"),
    ({"experiment": {"seeds": 0}}, "experiment.seeds"),
    ({"experiment": {"models": ["nmrnn", "gru"]}}, "experiment.models"),
    ({"experiment": {"clamp": "half"}}, "experiment.clamp"),
    ({"training": {"lr": -1.0}}, "training.lr"),
    ({"training": {"nmrnn_nm_steps": -1}}, "training.nmrnn_nm_steps"),
    ({"task": {"test_intervals": [4, 60]}}, "task"),
    ({"task": {"train_T": -1}}, "task.train_T"),
    ({"task": {"train_T": 60}}, "task"),          # too short for the training intervals
    ({"models": {"nmrnn": {"K": 200}}}, "models.nmrnn"),
])
def test_bad_settings_name_the_key(overrides, key):
    with pytest.raises(ConfigError) as info:
        mwg.resolve_config("quick", overrides=overrides)
    assert key in str(info.value)
    assert "\n" not in str(info.value)


def test_settings_precedence_defaults_file_overrides(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('[experiment]\nmode = "full"\nseeds = 4\n[training]\nsteps = 7\nlr = 0.5\n')
    cfg = mwg.resolve_config("quick", f, {"training": {"lr": 0.25}})
    assert cfg["experiment"]["mode"] == "full"            # from the file
    assert cfg["training"]["nmrnn_nm_steps"] == 10_000     # default of the file's mode
    assert (cfg["experiment"]["seeds"], cfg["training"]["steps"]) == (4, 7)
    assert cfg["training"]["lr"] == 0.25                  # override wins over the file
    f.write_text("[training\nsteps = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        mwg.resolve_config("quick", f)
    with pytest.raises(ConfigError, match="does not exist"):
        mwg.resolve_config("quick", tmp_path / "missing.toml")


# ----------------------------------------------------------------------------
# Analyses
# ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_nmrnn():
    model = NMRNN(N=12, K=3, M=4, U=3, O=1)
    params = model.init_params(3)
    params["A"] = params["A"] * 20.0  # make s move, so clamping it matters
    inputs, targets, mask, info = mwg_extrapolation_set().all_trials(return_info=True)
    return model, params, inputs, targets, mask, info


def test_clamped_simulation_without_clamp_is_the_model(small_nmrnn):
    model, params, inputs, *_ = small_nmrnn
    ref = model.simulate(params, inputs, backend="numpy")
    out = analysis.simulate_nmrnn_clamped(model, params, inputs)
    for k in ("y", "x", "z", "s"):
        np.testing.assert_array_equal(out[k], getattr(ref, k))


def test_clamping_every_component_to_one_gives_the_unmodulated_lowrank_network(small_nmrnn):
    model, params, inputs, *_ = small_nmrnn
    out = analysis.simulate_nmrnn_clamped(model, params, inputs, clamp={0: 1.0, 1: 1.0, 2: 1.0})
    lr = LowRankRNN(N=12, K=3, U=3, O=1, divide_by_N=False)
    lr_params = {k: params[k] for k in lr.param_shapes()}
    np.testing.assert_allclose(out["y"], lr.simulate(lr_params, inputs, backend="numpy").y, rtol=0, atol=1e-13)
    assert np.all(out["s"] == 1.0)


def test_clamping_one_component_holds_it_and_changes_the_output(small_nmrnn):
    model, params, inputs, *_ = small_nmrnn
    free = analysis.simulate_nmrnn_clamped(model, params, inputs)
    per_trial = np.linspace(0.1, 0.9, inputs.shape[0])
    out = analysis.simulate_nmrnn_clamped(model, params, inputs, clamp={1: per_trial})
    np.testing.assert_array_equal(out["s"][:, :, 1], np.repeat(per_trial[:, None], inputs.shape[1], axis=1))
    np.testing.assert_array_equal(out["s"][:, :, [0, 2]], free["s"][:, :, [0, 2]])
    np.testing.assert_array_equal(out["z"], free["z"])  # no feedback: z does not see x
    assert np.abs(out["y"] - free["y"]).max() > 1e-3
    with pytest.raises(ValueError, match=r"clamp keys.*\[0, 2\]"):
        analysis.simulate_nmrnn_clamped(model, params, inputs, clamp={3: 0.5})
    with pytest.raises(ValueError, match="clamp\\[0\\]"):
        analysis.simulate_nmrnn_clamped(model, params, inputs, clamp={0: np.ones(5)})


def test_ablation_errors_and_clamp_values(small_nmrnn):
    model, params, inputs, targets, mask, _ = small_nmrnn
    ab = analysis.ablate_components(model, params, inputs, targets, mask, mode="mean")
    free = model.simulate(params, inputs, backend="numpy")
    np.testing.assert_allclose(ab.values, free.s.mean(axis=1))
    assert ab.baseline_error == pytest.approx(np.mean((free.y - targets) ** 2))
    for k in range(3):
        again = analysis.simulate_nmrnn_clamped(model, params, inputs, clamp={k: ab.values[:, k]})
        assert ab.errors[k] == pytest.approx(np.mean((again["y"] - targets) ** 2))
    np.testing.assert_allclose(ab.error_increase, ab.errors - ab.baseline_error)
    assert np.all(analysis.clamp_values(free.s, "zero") == 0) and np.all(analysis.clamp_values(free.s, "one") == 1)
    with pytest.raises(ValueError, match="mode must be one of"):
        analysis.clamp_values(free.s, "half")


def test_latent_projection_uses_the_orthonormalised_factors(small_nmrnn):
    model, params, inputs, *_ = small_nmrnn
    x = model.simulate(params, inputs, backend="numpy").x
    kappa = analysis.latent_projection(model, params, x)
    Q = model.prepare(params)["L"]
    np.testing.assert_allclose(Q.T @ Q, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(kappa, x @ Q)
    assert not np.allclose(kappa, x @ params["L"])  # the raw L is not orthonormal


def test_align_to_events_pads_outside_the_trial():
    values = np.arange(10.0).reshape(1, 10, 1).repeat(2, axis=0)
    lags, w = analysis.align_to_events(values, np.array([1, 8]), before=3, after=4)
    assert lags.tolist() == [-3, -2, -1, 0, 1, 2, 3]
    assert np.isnan(w[0, :2, 0]).all() and w[0, 2:, 0].tolist() == [0, 1, 2, 3, 4]
    assert w[1, :5, 0].tolist() == [5, 6, 7, 8, 9] and np.isnan(w[1, 5:, 0]).all()


def test_evaluate_params_splits_intervals():
    cfg = mwg.resolve_config("quick", overrides=tiny_overrides())
    model = mwg.build_model("nmrnn", cfg)
    params = model.init_params(0)
    res = mwg.evaluate_params(model, params, cfg)
    per = res["l2_per_interval"]
    assert sorted(map(int, per)) == list(range(4, 27, 2))
    mean = lambda ivs: np.mean([per[str(i)] for i in ivs])  # noqa: E731 (one trial per interval, same length)
    assert res["l2"]["trained"] == pytest.approx(mean([12, 14, 16, 18]))
    assert res["l2"]["shorter"] == pytest.approx(mean([4, 6, 8, 10]))
    assert res["l2"]["longer"] == pytest.approx(mean([20, 22, 24, 26]))
    assert res["l2"]["extrapolated"] == pytest.approx(mean([4, 6, 8, 10, 20, 22, 24, 26]))
    assert len(res["ablation"]["increase"]) == 3
    assert "ablation" not in mwg.evaluate_params(mwg.build_model("lstm", cfg),
                                                 mwg.build_model("lstm", cfg).init_params(0), cfg)


# ----------------------------------------------------------------------------
# End to end, in this process
# ----------------------------------------------------------------------------
class _StopAfter:
    """Stands in for the experiment's STOP file: "exists" from the n-th check on."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def exists(self):
        self.calls += 1
        return self.calls >= self.n


def test_experiment_end_to_end_refuses_overwrite_and_resumes_after_interrupt(tmp_path, monkeypatch):
    cfg = mwg.resolve_config("quick", overrides=tiny_overrides())
    cfg["experiment"]["models"] = ["nmrnn", "lrrnn"]

    # reference: one uninterrupted experiment
    ref = mwg.run_experiment(cfg, tmp_path / "ref", jobs=0, figures=False, log=lambda s: None)
    assert {(r["model"], r["seed"]) for r in ref["runs"]} == {(m, s) for m in ("nmrnn", "lrrnn") for s in (0, 1)}

    # interrupted in the middle of the first run's second stage (checks: start of the run, start of each
    # stage, then one per step)
    out = tmp_path / "exp"
    stop = _StopAfter(6)
    monkeypatch.setattr(runner, "_stop_path", lambda run_dir: stop)
    with pytest.raises(mwg.ExperimentInterrupted) as info:
        mwg.run_experiment(cfg, out, jobs=0, figures=False, log=lambda s: None)
    assert (info.value.finished, info.value.total) == (0, 4)
    run0 = out / "runs" / "nmrnn_seed0"
    assert (run0 / "stage_output.npz").exists() and (run0 / "checkpoint_nm.npz").exists()
    assert not (run0 / "stage_nm.npz").exists() and not (run0 / "result.json").exists()
    monkeypatch.undo()

    # a new experiment in the same folder is refused; resume finishes it from the checkpoints
    with pytest.raises(runner.ExperimentError, match="--resume"):
        mwg.run_experiment(cfg, out, jobs=0, figures=False, log=lambda s: None)
    lines = []
    doc = mwg.run_experiment(None, out, jobs=0, resume=True, figures=True, log=lines.append)
    assert not doc["missing_runs"]
    # resuming reproduces the uninterrupted runs exactly
    for name in ("nmrnn_seed0", "nmrnn_seed1", "lrrnn_seed1"):
        _, p_ref, _ = load_model(tmp_path / "ref" / "runs" / name / "model.npz")
        model, p, meta = load_model(out / "runs" / name / "model.npz")
        for k in p_ref:
            np.testing.assert_array_equal(p[k], p_ref[k])
    res0 = json.loads((run0 / "result.json").read_text())
    assert [s["stage"] for s in res0["stages"]] == ["output", "nm", "full"]
    assert res0["curve"]["steps"] == 2 + 2 + 4

    # the folder: settings, metrics, report, figures
    assert tomllib.loads((out / "config.toml").read_text()) == cfg
    metrics = json.loads((out / "metrics.json").read_text())
    assert [e["model"] for e in metrics["summary"]] == ["nmrnn", "lrrnn"]
    s = metrics["summary"][0]["extrapolated"]
    vals = [r["l2"]["extrapolated"] for r in metrics["runs"] if r["model"] == "nmrnn"]
    assert s["mean"] == pytest.approx(np.mean(vals)) and s["std"] == pytest.approx(np.std(vals, ddof=1))
    assert s["median"] == pytest.approx(np.median(vals)) and s["n"] == 2
    report = (out / "report.md").read_text()
    assert "| NM-RNN |" in report and "| LR-RNN |" in report
    for key, fname in metrics["figures"].items():
        assert (out / fname).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", key
        assert f"]({fname})" in report
    assert set(metrics["figures"]) == {"errors", "outputs", "nm_signal", "ablation", "latents", "hold", "training"}
    assert any("fails to hold" in line or "leaves it by more than" in line for line in lines)
    assert any("NM-RNN extrapolation error" in line for line in lines)

    # a finished experiment resumes to a no-op: nothing is retrained
    stamp = (run0 / "model.npz").stat().st_mtime_ns
    mwg.run_experiment(None, out, jobs=0, resume=True, figures=False, log=lambda s: None)
    assert (run0 / "model.npz").stat().st_mtime_ns == stamp


def test_evaluate_run_dir_reports_unfinished_runs(tmp_path):
    cfg = mwg.resolve_config("quick", overrides=tiny_overrides())
    cfg["experiment"]["models"] = ["lstm"]
    out = tmp_path / "e"
    mwg.run_experiment(cfg, out, jobs=0, figures=False, log=lambda s: None)
    (out / "runs" / "lstm_seed1" / "result.json").unlink()
    doc = mwg.evaluate_run_dir(out, figures=False, log=lambda s: None)
    assert doc["missing_runs"] == ["lstm_seed1"]
    assert [r["seed"] for r in doc["runs"]] == [0]
    with pytest.raises(runner.ExperimentError, match="config.toml"):
        mwg.evaluate_run_dir(tmp_path, log=lambda s: None)


# ----------------------------------------------------------------------------
# The hold after the ramp (issue 16: seeds that fail to hold their output)
# ----------------------------------------------------------------------------
def test_frozen_signal_simulation(small_nmrnn):
    model, params, inputs, *_ = small_nmrnn
    B, T, _ = inputs.shape
    free = analysis.simulate_nmrnn_clamped(model, params, inputs)
    last = analysis.simulate_nmrnn_frozen_signal(model, params, inputs, T - 1)
    for k in ("y", "x", "z", "s"):
        np.testing.assert_array_equal(last[k], free[k])
    at = np.arange(B) * 7 + 20
    out = analysis.simulate_nmrnn_frozen_signal(model, params, inputs, at)
    np.testing.assert_array_equal(out["z"], free["z"])  # z keeps evolving; only the x update sees the frozen s
    for b in range(B):
        np.testing.assert_array_equal(out["s"][b, :at[b] + 1], free["s"][b, :at[b] + 1])
        np.testing.assert_array_equal(out["s"][b, at[b]:], np.broadcast_to(free["s"][b, at[b]], (T - at[b], 3)))
        np.testing.assert_array_equal(out["y"][b, :at[b] + 1], free["y"][b, :at[b] + 1])
    assert np.abs(out["y"] - free["y"]).max() > 1e-4
    with pytest.raises(ValueError, match="freeze_step must lie in"):
        analysis.simulate_nmrnn_frozen_signal(model, params, inputs, T)
    with pytest.raises(ValueError, match="freeze_step must be a scalar or have shape"):
        analysis.simulate_nmrnn_frozen_signal(model, params, inputs, np.zeros(3, dtype=int))
    with pytest.raises(TypeError, match="freeze_step must be an int"):
        analysis.simulate_nmrnn_frozen_signal(model, params, inputs, 2.5)


class _OutputsModel:
    """Stands in for a model in hold_metrics: 'simulates' a given function of the trial's timing."""

    def __init__(self, drift):
        self.drift = drift

    def simulate(self, params, inputs, backend=None):
        from types import SimpleNamespace
        task = mwg_extrapolation_set(T=inputs.shape[1])
        _, targets, _, info = task.all_trials(return_info=True)
        y = targets[..., 0].copy()
        for i in range(len(y)):
            y[i] += self.drift(np.arange(inputs.shape[1]) - (info.t_go[i] + info.interval[i]))
        return SimpleNamespace(y=y[..., None])


def test_hold_metrics_measure_the_hold_after_the_ramp():
    cfg = mwg.default_config("full")
    perfect = mwg.hold_metrics(_OutputsModel(lambda lag: 0.0 * lag), {}, cfg)
    assert perfect["error"] < 1e-12 and not perfect["fails"]
    assert perfect["held_until"] == mwg.HOLD_T and set(perfect["held_until_per_interval"].values()) == {mwg.HOLD_T}
    assert perfect["T_test"] == 110 and perfect["T_train"] == 110
    # from 50 steps after the ramp the output drifts by 0.05 per step: it leaves the band (0.25) 56 steps after
    drifting = mwg.hold_metrics(_OutputsModel(lambda lag: 0.05 * np.clip(lag - 50, 0, None)), {}, cfg)
    ends = {i: 15 + i + 15 + i for i in range(4, 27, 2)}     # t_end = t_go + I, with t_go = 15 + I + 15
    assert drifting["held_until_per_interval"] == {str(i): e + 56 for i, e in ends.items()}
    assert drifting["held_until"] == ends[4] + 56
    # inside the 110-step trial: after interval 4 the last step is 71 after the ramp (21 * 0.05 off);
    # after interval 26 it is 27 (no drift yet)
    assert drifting["error_per_interval"]["4"] == pytest.approx(1.05)
    assert drifting["error_per_interval"]["26"] < 1e-12
    assert drifting["fails"] and drifting["error"] == pytest.approx(1.05)
    # a late ramp is not a failed hold: the output arrives 20 steps after the ramp's end and then stays
    late = mwg.hold_metrics(_OutputsModel(lambda lag: np.where((lag >= 0) & (lag < 20), -0.4, 0.0)), {}, cfg)
    assert not late["fails"] and late["error"] < 1e-12 and late["held_until"] == mwg.HOLD_T
    # an output that never arrives fails, with its distance at the trial's last step
    never = mwg.hold_metrics(_OutputsModel(lambda lag: np.where(lag >= 0, -0.3, 0.0)), {}, cfg)
    assert never["fails"] and never["error"] == pytest.approx(0.3) and never["held_until"] == ends[4]
    nan = mwg.hold_metrics(_OutputsModel(lambda lag: np.where(lag > 60, np.nan, 0.0)), {}, cfg)
    assert nan["fails"] and nan["error"] == np.inf and nan["held_until"] == ends[4] + 61
    text = mwg.hold_sentence([{"model": "nmrnn", "seed": 0, "hold": drifting},
                              {"model": "nmrnn", "seed": 1, "hold": perfect},
                              {"model": "lrrnn", "seed": 0, "hold": perfect}], ["nmrnn", "lrrnn"])
    assert "NM-RNN 1 of 2 (seed 0: off by 1.05)" in text and "LR-RNN 0 of 1" in text
    assert mwg.hold_sentence([{"model": "nmrnn", "seed": 0}], ["nmrnn"]) == ""


def test_hold_and_procedure_figures(small_nmrnn, tmp_path):
    from nmrnn_np.experiments import mwg_figures as F
    model, params, *_ = small_nmrnn
    cfg = mwg.default_config("quick")
    hold = mwg.hold_metrics(model, params, cfg)
    assert set(hold["held_until_per_interval"]) == {str(i) for i in range(4, 27, 2)}
    runs = [{"model": m, "seed": s, "hold": hold, "l2": {"trained": 1e-3 * (s + 1), "extrapolated": 2e-3 * (s + 1)}}
            for m in ("nmrnn", "lrrnn") for s in range(3)]
    trials = F.hold_trials(model, params, cfg, 200)
    assert trials["y"].shape == (12, 200) and trials["y_frozen"].shape == (12, 200) and trials["s"].shape[:2] == (12, 200)
    np.testing.assert_allclose(trials["y"][:, :110], model.simulate(params, mwg.make_tasks(cfg)[1].all_trials()[0]).y[..., 0],
                               rtol=0, atol=1e-12)
    fig = F.plot_hold(runs, ["nmrnn", "lrrnn"], trials, 0)
    assert len(fig.axes) == 3 + 3            # durations, outputs, frozen outputs; s1..s3
    assert len(F.plot_hold(runs, ["nmrnn", "lrrnn"], None, None).axes) == 1
    fig = F.plot_procedures({"ours": runs, "authors'": runs[:4]}, ["nmrnn", "lrrnn"])
    assert len(fig.axes) == 4
    fig.savefig(tmp_path / "p.png")


def test_compare_folders_table_figure_and_errors(tmp_path):
    from nmrnn_np.cli import main
    from nmrnn_np.experiments import mwg_compare
    ok = {"fails": False, "error": 0.05}
    bad = {"fails": True, "error": 2.5}

    def folder(name, nm_vals, lr_vals):
        runs = [{"model": "nmrnn", "seed": s, "l2": {"trained": 1e-5, "extrapolated": v},
                 "hold": bad if v > 1e-2 else ok} for s, v in enumerate(nm_vals)]
        runs += [{"model": "lrrnn", "seed": s, "l2": {"trained": 1e-3, "extrapolated": v}, "hold": ok}
                 for s, v in enumerate(lr_vals)]
        d = tmp_path / name
        d.mkdir()
        (d / "metrics.json").write_text(json.dumps({"experiment": "mwg", "runs": runs}))
        return d
    a = folder("a", [1e-3, 7e-2, 2e-3], [5e-3, 6e-3, 4e-3])
    b = folder("b", [3e-3, 2e-3, 1e-3], [2e-3, 6e-3, 4e-3])
    table = mwg_compare.compare_folders({"ours": a, "authors'": b}, tmp_path / "cmp.png")
    assert (tmp_path / "cmp.png").stat().st_size > 0
    assert "| NM-RNN | ours | 3 | 1.00e-05 [1.0e-05, 1.0e-05] | 2.00e-03 [1.5e-03, 3.6e-02] | " \
           "seeds 0-2: 1.0e-03 7.0e-02 2.0e-03 | 1 of 3 (seed 1) |" in table
    assert "* ours: 2 of 3 NM-RNN seeds beat the best LR-RNN seed, 2 of 3 its median" in table
    assert "* authors': 1 of 3 NM-RNN seeds beat the best LR-RNN seed, 3 of 3 its median" in table
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "metrics.json").write_text(json.dumps({"experiment": "eft", "runs": []}))
    with pytest.raises(ValueError, match="not the metrics of a Measure-Wait-Go"):
        mwg_compare.load_runs(tmp_path / "other")
    with pytest.raises(ValueError, match="no metrics.json"):
        mwg_compare.load_runs(tmp_path)
    assert main(["compare", f"x={a}"]) == 0
    with pytest.raises(SystemExit) as info:
        main(["compare", f"x={tmp_path / 'other'}"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["compare", str(a)])
    assert info.value.code == 2
