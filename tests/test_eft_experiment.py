"""The element-finder experiment: sizes, the sampler, the public contract, errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nmrnn_np import load_model
from nmrnn_np.experiments import eft
from nmrnn_np.experiments import runner
from nmrnn_np.experiments.config import ConfigError
from nmrnn_np.experiments.runner import load_initial_states
from nmrnn_np.metrics import masked_l2
from nmrnn_np.models import nearest_size

TINY = ["experiment.seeds=1", 'experiment.nm_configs=["2,4,2"]', "experiment.budget=40",
        "training.steps=5", "training.batch_size=8", "task.L=5", "task.test_trials=40"]


def run_tiny(out: Path, figures: bool = False) -> Path:
    settings = runner.resolve_settings("eft", "quick", sets=TINY)
    runner.run_experiment("eft", settings, out, executor="inline", figures=figures, log=lambda *a: None)
    return out


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    return run_tiny(tmp_path_factory.mktemp("eft") / "out", figures=True)


def test_the_five_configurations_have_the_studys_parameter_counts():
    s = eft.default_settings("full")
    counts = [eft.build_model({"model": "nmrnn", "M": M, "N": N, "K": K}, s).n_params() for M, N, K in eft.NM_CONFIGS]
    assert counts == [497, 510, 483, 509, 497]
    assert [eft.parse_config(c) for c in s["experiment"]["nm_configs"]] == list(eft.NM_CONFIGS)
    m = eft.build_model({"model": "nmrnn", "M": 5, "N": 18, "K": 8}, s)
    assert (m.feedback, m.divide_by_N, m.orthonormalize, m.readout_bias) == (True, True, False, False)
    assert (m.tau_x, m.tau_z) == (2.0, 10.0)


def test_baselines_are_sized_to_the_budget():
    s = eft.default_settings("full")
    sizes = eft.baseline_sizes(s)
    assert sizes == {"lstm": 10, "lrrnn": 42, "rnn": 21}
    counts = {k: eft.build_model({"model": k, "N": n}, s).n_params() for k, n in sizes.items()}
    assert counts == {"lstm": 490, "lrrnn": 504, "rnn": 484}
    # nearest: one unit more or less is farther from the budget
    for k, n in sizes.items():
        for other in (n - 1, n + 1):
            assert abs(eft.build_model({"model": k, "N": other}, s).n_params() - 500) >= abs(counts[k] - 500)
    assert nearest_size("lrrnn", 30, K=4, U=1, O=1) >= 4  # never below the rank
    with pytest.raises(ValueError, match="budget"):
        nearest_size("lstm", -5, U=1, O=1)


def test_parse_config():
    assert eft.parse_config("5,18,8") == (5, 18, 8)
    for bad in ("5,18", "a,b,c", "0,3,3"):
        with pytest.raises(ValueError, match="M,N,K"):
            eft.parse_config(bad)
    with pytest.raises(TypeError, match="M,N,K"):
        eft.parse_config([5, 18, 8])


def test_sampler_draws_the_same_batches_from_the_same_seed():
    task = eft.make_task(eft.default_settings("quick"))
    data = eft.sampler(task, 16)
    a, b = data(np.random.default_rng(3)), data(np.random.default_rng(3))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    c = data(np.random.default_rng(4))
    assert not np.array_equal(a[0], c[0])
    assert a[0].shape == (16, 26, 1) and a[2][:, -1, 0].all() and not a[2][:, :-1].any()


def test_metrics_follow_the_public_contract(tiny_run):
    doc = json.loads((tiny_run / "metrics.json").read_text())
    runs = doc["runs"]
    assert sorted(r["model"] for r in runs) == ["lrrnn", "lstm", "nmrnn", "rnn"]
    for r in runs:
        d = tiny_run / "runs" / r["run"]
        assert d.is_dir() and r["seed"] == 0
        assert r["n_params"] > 0 and r["test_mse"] > 0 and r["min_train_loss"] > 0
        assert len(r["mse_per_query"]) == 5
        model, params, _ = load_model(d / "model.npz")
        states = load_initial_states(d)
        expected = {"nmrnn": {"x0", "z0"}, "lstm": {"h0", "c0"}}.get(r["model"], {"x0"})
        assert set(states) == expected
        # the saved model and initial states reproduce the run's test MSE
        batch = eft.test_set(runner.resolve_settings("eft", "quick", sets=TINY))
        y = model.simulate(params, batch.inputs, **states).y
        assert masked_l2(y, batch.targets, batch.mask) == pytest.approx(r["test_mse"], rel=1e-12)
    nm = next(r for r in runs if r["model"] == "nmrnn")
    assert (nm["M"], nm["N"], nm["K"]) == (2, 4, 2) and len(nm["ablation"]["clamped"]) == 2
    for name in ("test_mse", "training", "per_query", "dynamics_query", "dynamics_value", "ablation"):
        assert (tiny_run / f"eft_{name}.png").stat().st_size > 1000
    assert "Median test MSE" in (tiny_run / "report.md").read_text()


def test_a_seed_fixes_the_run(tiny_run, tmp_path):
    again = run_tiny(tmp_path / "again")
    a = json.loads((tiny_run / "metrics.json").read_text())["runs"]
    b = json.loads((again / "metrics.json").read_text())["runs"]
    assert [(r["run"], r["test_mse"], r["min_train_loss"]) for r in a] == \
        [(r["run"], r["test_mse"], r["min_train_loss"]) for r in b]


@pytest.mark.parametrize("sets, needle", [
    (["training.steps=0"], "training.steps"),
    (['experiment.models=["nmrnn","gru"]'], "experiment.models"),
    (['experiment.nm_configs=["5,18"]'], "experiment.nm_configs"),
    (['experiment.nm_configs=["5,4,8"]'], "experiment.nm_configs"),
    (["training.eps=0"], "training.eps"),
    (["task.low=5", "task.high=-5"], "task"),
])
def test_bad_settings_name_the_key(sets, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        runner.resolve_settings("eft", "quick", sets=sets)
