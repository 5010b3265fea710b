"""The modulation experiment: contexts, summaries, packing, the public contract, errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nmrnn_np.experiments import modulation as mx
from nmrnn_np.experiments import runner
from nmrnn_np.experiments.config import ConfigError

TINY = ["experiment.seeds=1", 'experiment.sizes=["6,2","8,2"]', 'experiment.reference="8,2"',
        "experiment.n_tasks=[2,3]", "experiment.reference_tasks=3", "training.steps=3", "training.batch_size=8", "task.T=40", "task.test_trials=5",
        "task.lambdas=[0.0,0.25,0.5]", "task.sigmas=[0.0,1.0]"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mod") / "out"
    settings = runner.resolve_settings("modulation", "quick", sets=TINY)
    runner.run_experiment("modulation", settings, out, executor="inline", figures=True, log=lambda *a: None)
    return out


def test_the_three_modulations_have_the_same_parameters():
    s = mx.default_settings("quick")
    for size in s["experiment"]["sizes"]:
        N, K = mx.parse_size(size)
        for n in (2, 4, 6):
            models = [mx.build_model({"modulation": m, "N": N, "K": K, "n_tasks": n}, s) for m in mx.MODULATIONS]
            assert len({m.n_params() for m in models}) == 1
            assert len({tuple(m.param_shapes().items()) for m in models}) == 1
            assert all(m.U_x == (5 if n > 4 else 3) for m in models)  # the context reaches z only


def test_mixed_and_noisy_contexts():
    s = mx.default_settings("quick")
    batch = mx.test_batch(s, 4)
    np.testing.assert_array_equal(mx.mixed_context(batch, 0.0), batch.inputs)  # lambda = 0: the one-hot cue
    half = mx.mixed_context(batch, 0.5)
    ctx = half[..., 3:]
    idx = np.arange(len(batch.task))
    np.testing.assert_array_equal(ctx[idx, :, batch.task], 0.5)
    np.testing.assert_array_equal(ctx[idx, :, (batch.task + 1) % 4], 0.5)
    np.testing.assert_array_equal(ctx.sum(-1), 1.0)
    np.testing.assert_array_equal(half[..., :3], batch.task_inputs)
    noisy = mx.noisy_context(batch, 0.5, np.random.default_rng(0))
    assert 0.45 < (noisy[..., 3:] - batch.context).std() < 0.55
    np.testing.assert_array_equal(noisy[..., :3], batch.task_inputs)
    np.testing.assert_array_equal(mx.noisy_context(batch, 0.0, np.random.default_rng(0)), batch.inputs)
    with pytest.raises(ValueError, match="lam"):
        mx.mixed_context(batch, 1.5)
    # each task appears test_trials times, in order
    assert np.array_equal(np.bincount(batch.task), [100] * 4)


def test_auc_and_threshold():
    assert mx.auc([0.0, 0.5], [1.0, 1.0]) == pytest.approx(1.0)
    assert mx.auc([0.0, 0.25, 0.5], [1.0, 0.5, 0.0]) == pytest.approx(0.5)
    assert mx.auc([0, 1, 2], [0, 1, 1]) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="increasing"):
        mx.auc([0.5, 0.0], [1, 1])
    assert mx.threshold_crossing([0, 0.1, 0.2], [1.0, 0.9, 0.7], 0.8) == pytest.approx(0.15)
    assert mx.threshold_crossing([0, 0.1], [1.0, 0.9], 0.8) is None
    assert mx.threshold_crossing([0, 0.1], [0.5, 0.9], 0.8) == 0.0


def test_packing_table_takes_the_majority_of_seeds_and_the_best_k():
    def run(m, N, K, n, packed):
        return {"modulation": m, "N": N, "K": K, "n_tasks": n, "packed": packed}
    runs = [run("synaptic", 16, 4, 2, True), run("synaptic", 16, 4, 2, False),   # half of the seeds: packed
            run("synaptic", 16, 4, 4, False), run("synaptic", 16, 4, 4, False),
            run("synaptic", 16, 2, 4, True), run("synaptic", 16, 2, 4, True),
            run("excitability", 16, 4, 2, False), run("excitability", 16, 4, 2, False)]
    by_n, by_size = mx.packing_table(runs, ["synaptic", "excitability"])
    assert by_size == {"synaptic": {"16,4": 2, "16,2": 4}, "excitability": {"16,4": 0}}
    assert by_n == {"synaptic": {"16": 4}, "excitability": {"16": 0}}


def test_metrics_follow_the_public_contract(tiny_run):
    doc = json.loads((tiny_run / "metrics.json").read_text())
    runs = doc["runs"]
    assert len(runs) == 3 * 2 * 2
    for r in runs:
        assert (tiny_run / "runs" / r["run"]).is_dir()
        assert r["modulation"] in mx.MODULATIONS and r["seed"] == 0 and r["N"] in (6, 8) and r["n_tasks"] in (2, 3)
        assert set(r["correct"]) == set(mx.TASK_ORDER[:r["n_tasks"]])
        reference = r["N"] == 8 and r["n_tasks"] == 3
        assert ("ambiguity_auc" in r) == reference
        if reference:
            assert 0.0 <= r["ambiguity_auc"] <= 1.0 and 0.0 <= r["noise_auc"] <= 1.0
            base = r["ambiguity"]["mixed"][0]
            assert r["ambiguity_auc_relative"] == (pytest.approx(r["ambiguity_auc"] / base) if base > 0 else None)
            assert len(r["ambiguity"]["mixed"]) == 3 and r["dynamics"]["participation_ratio"] >= 1.0
    assert set(doc["packing"]) == set(mx.MODULATIONS)
    for m, d in doc["packing"].items():
        assert set(d) == {"6", "8"} and all(v in (0, 2, 3) for v in d.values())
    for name in ("packing", "ambiguity", "dynamics"):
        assert (tiny_run / f"modulation_{name}.png").stat().st_size > 1000
    assert "Packing" in (tiny_run / "report.md").read_text()


@pytest.mark.parametrize("sets, needle", [
    (['experiment.modulations=["synaptic","gain"]'], "experiment.modulations"),
    (['experiment.sizes=["16"]'], "experiment.sizes"),
    (['experiment.reference="8,4"'], "experiment.reference"),
    (['experiment.sizes=["16,1"]', 'experiment.reference="16,1"'], "K >= 2"),
    (["experiment.n_tasks=[1]"], "experiment.n_tasks"),
    (["experiment.reference_tasks=5"], "experiment.reference_tasks"),
    (["task.lambdas=[0.5,0.0]"], "task.lambdas"),
    (["training.steps=0"], "training.steps"),
])
def test_bad_settings_name_the_key(sets, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        runner.resolve_settings("modulation", "quick", sets=sets)
