"""The multitask experiment: the new input channel, frozen parameters, scoring, the public contract, errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nmrnn_np import load_model, make_model
from nmrnn_np.models import nearest_size
from nmrnn_np.cli import main
from nmrnn_np.experiments import multitask as mt
from nmrnn_np.experiments import runner
from nmrnn_np.experiments.config import ConfigError

TINY = ["experiment.seeds=1", "experiment.sizes=custom", "models.nmrnn.N=8", "models.nmrnn.M=3",
        "models.nmrnn.K=2", "models.lrrnn.N=8", "models.lrrnn.K=2", "models.rnn.N=6", "models.lstm.N=4",
        "task.pretrain_trials=20", "task.retrain_trials=20", "task.test_trials=6", "task.T=40",
        "training.batch_size=10", "training.pretrain_steps=4", "training.retrain_steps=3"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mt") / "out"
    settings = runner.resolve_settings("multitask", "quick", sets=TINY)
    runner.run_experiment("multitask", settings, out, executor="inline", figures=True, log=lambda *a: None)
    return out


# ----------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("kind, cfg, grows", [
    ("nmrnn", dict(N=6, K=2, M=3, U=6, O=3, U_x=3), {"B_z"}),
    ("lrrnn", dict(N=6, K=2, U=6, O=3), {"B_x"}),
    ("rnn", dict(N=5, U=6, O=3), {"B_x"}),
    ("lstm", dict(N=4, U=6, O=3), {"W_iu", "W_fu", "W_gu", "W_ou"}),
])
def test_add_input_channel_appends_one_column_and_keeps_the_rest(kind, cfg, grows):
    model = make_model(kind, **cfg)
    params = model.init_params(3)
    new, p2 = mt.add_input_channel(model, params, 0.1)
    assert new.U == model.U + 1 and new.kind == model.kind
    if kind == "nmrnn":
        assert new.U_x == 3  # the context stays out of the output network
    changed = {k for k in params if p2[k].shape != params[k].shape}
    assert changed == grows
    for k in params:
        if k in grows:
            np.testing.assert_array_equal(p2[k][..., :-1], params[k])
            np.testing.assert_array_equal(p2[k][..., -1], 0.1)
        else:
            np.testing.assert_array_equal(p2[k], params[k])
    # with the new channel silent, the grown model computes exactly what the old one did
    x = np.random.default_rng(0).standard_normal((3, 7, 6))
    y_old = model.simulate(params, x).y
    y_new = new.simulate(p2, np.concatenate([x, np.zeros((3, 7, 1))], -1)).y
    np.testing.assert_array_equal(y_old, y_new)


def test_add_input_channel_rejects_bad_arguments():
    model = make_model("rnn", N=3, U=2, O=1)
    with pytest.raises(TypeError, match="model must be a RecurrentModel"):
        mt.add_input_channel("rnn", {}, 0.1)
    with pytest.raises(ValueError, match="init must be a finite"):
        mt.add_input_channel(model, model.init_params(0), float("nan"))
    with pytest.raises(ValueError, match="missing keys"):
        mt.add_input_channel(model, {"W": np.zeros((3, 3))}, 0.1)


def test_held_out_inputs_follow_the_authors_layout():
    s = mt.default_settings("quick")
    batch = mt._task(s, ("memory_anti",)).sample(0, 50)
    clean = mt.held_out_inputs(batch)
    assert clean.shape == (50, 100, 7)
    np.testing.assert_array_equal(clean[..., :3], batch.task_inputs)
    np.testing.assert_array_equal(clean[..., 3:6], 0.0)
    np.testing.assert_array_equal(clean[..., 6], 1.0)
    noisy = mt.held_out_inputs(batch, 3, 0.1, np.random.default_rng(1))
    np.testing.assert_array_equal(noisy[..., [0, 1, 2, 6]], clean[..., [0, 1, 2, 6]])
    assert 0.09 < noisy[..., 3:6].std() < 0.11 and abs(noisy[..., 3:6].mean()) < 0.01
    with pytest.raises(ValueError, match="rng is required"):
        mt.held_out_inputs(batch, 3, 0.1)
    x, y = mt.retraining_data(s, "memory_anti", 0)
    assert x.shape == (1000, 100, 7) and y.shape == (1000, 100, 3) and x[..., 3:6].std() > 0.05


def test_pretraining_tasks_and_sizes():
    assert mt.pretraining_tasks("memory_anti") == ("delay_pro", "delay_anti", "memory_pro")
    assert mt.pretraining_tasks("delay_pro") == ("delay_anti", "memory_pro", "memory_anti")
    with pytest.raises(ValueError, match="held_out must be one of"):
        mt.pretraining_tasks("dm1")
    s = mt.default_settings("full")
    counts = {m: mt.parameter_counts(m, s) for m in mt.MODEL_NAMES}
    # the authors' sizes (DESIGN 4.1) and the trained subsets of stage 2
    assert {m: c["pretrain"]["total"] for m, c in counts.items()} == \
        {"nmrnn": 1482, "nmrnn_input": 1482, "lrrnn": 1703, "rnn": 10903, "lstm": 43100}
    assert counts["nmrnn"]["retrain"] == {"total": 1487, "trainable": 84}
    assert counts["nmrnn_input"]["retrain"]["trainable"] == 100 * 3 + 5 * 7
    assert counts["lrrnn"]["retrain"]["trainable"] == 700 and counts["rnn"]["retrain"]["trainable"] == 700
    assert counts["lstm"]["retrain"]["trainable"] == 2800
    # matched sizes are the nearest to the NM-RNN's count
    assert nearest_size("lrrnn", 1482, K=4, U=6, O=3) == mt.MATCHED_SIZES["lrrnn"]["N"]
    assert nearest_size("rnn", 1482, U=6, O=3) == mt.MATCHED_SIZES["rnn"]["N"]
    assert nearest_size("lstm", 1482, U=6, O=3) == mt.MATCHED_SIZES["lstm"]["N"]
    with pytest.raises(ValueError, match="budget must be a positive int"):
        nearest_size("rnn", 0, U=6, O=3)
    with pytest.raises(TypeError, match="chooses N"):
        nearest_size("rnn", 100, N=3, U=6, O=3)
    with pytest.raises(ValueError, match="name"):
        nearest_size("gru", 100, U=6, O=3)


class _Echo:
    """A stand-in model whose output is a given array."""

    def __init__(self, y):
        self.y = y

    def simulate(self, params, inputs, backend=None):
        return self


def test_score_uses_both_rules():
    s = mt.default_settings("quick")
    batch = mt._task(s, ("memory_pro",)).sample(0, 20)
    flipped = batch.targets.copy()
    flipped[:, -1, 1:] *= -1  # the response points the opposite way at the last step
    out = mt.score(_Echo(flipped), {}, batch.inputs, batch)
    assert out["arctan2"] == 0.0 and out["authors"] == 1.0 and out["mse"] > 0
    exact = mt.score(_Echo(batch.targets), {}, batch.inputs, batch)
    assert exact["arctan2"] == exact["authors"] == 1.0 and exact["mse"] == 0.0


# ----------------------------------------------------------------------------
# A tiny end-to-end run
# ----------------------------------------------------------------------------
def test_metrics_follow_the_public_contract(tiny_run):
    doc = json.loads((tiny_run / "metrics.json").read_text())
    runs = doc["runs"]
    assert sorted(r["model"] for r in runs) == sorted(mt.MODEL_NAMES)
    for r in runs:
        assert (tiny_run / "runs" / r["run"]).is_dir()
        assert r["held_out"] == "memory_anti" and r["seed"] == 0
        for rule in ("arctan2", "authors"):
            pc = r["percent_correct"][rule]
            for key in ("held_out_before", "held_out_after"):
                assert 0.0 <= pc[key] <= 1.0
            for key in ("pretrained_after_pretraining", "pretrained_after_retraining"):
                assert set(pc[key]) == {"delay_pro", "delay_anti", "memory_pro"}
                assert all(0.0 <= v <= 1.0 for v in pc[key].values())
        assert r["param_counts"]["retrain"]["total"] == r["param_counts"]["pretrain"]["total"] + \
            (3 if r["model"].startswith("nmrnn") else {"lrrnn": 8, "rnn": 6, "lstm": 16}[r["model"]])
        assert r["wall_time"] >= 0 and r["mse"]["held_out_after"] > 0
    report = (tiny_run / "report.md").read_text()
    assert "NM-RNN (NM only)" in report and "held-out task correct before -> after" in report
    for name in ("accuracy", "retraining", "trials", "nm_signal", "nm_state"):
        assert (tiny_run / f"multitask_{name}.png").stat().st_size > 1000


FROZEN = {"nmrnn": ("L", "R", "B_x", "C", "d"), "nmrnn_input": ("L", "R", "C", "d", "W_z", "A", "a"),
          "lrrnn": ("L", "R", "C", "d"), "rnn": ("W", "C", "d"),
          "lstm": ("W_ih", "W_fh", "W_gh", "W_oh", "b_i", "b_f", "b_g", "b_o", "C")}


@pytest.mark.parametrize("model", mt.MODEL_NAMES)
def test_retraining_changes_only_the_chosen_parameters(tiny_run, model):
    d = tiny_run / "runs" / f"{model}_memory_anti_seed0"
    m1, p1, _ = load_model(d / "pretrained.npz")
    m2, p2, meta = load_model(d / "retrained.npz")
    assert m1.U == 6 and m2.U == 7 and meta["stage"] == "retrain"
    for k in FROZEN[model]:
        np.testing.assert_array_equal(p2[k], p1[k], err_msg=k)  # bit-identical
    trained = set(p2) - set(FROZEN[model])
    assert any(not np.array_equal(p2[k][..., :p1[k].shape[-1]], p1[k]) for k in trained)
    # and the final model is the retrained one
    _, pf, _ = load_model(d / "model.npz")
    for k in pf:
        np.testing.assert_array_equal(pf[k], p2[k])


def test_held_out_all_runs_each_task_and_names_are_unique():
    s = runner.resolve_settings("multitask", "quick", sets=["experiment.held_out=all", "experiment.seeds=2"])
    specs = runner.expand_runs("multitask", s)
    assert len(specs) == 4 * len(mt.MODEL_NAMES) * 2
    assert len({sp.name for sp in specs}) == len(specs)
    assert {sp.run["held_out"] for sp in specs} == set(mt.FOUR_TASKS)


@pytest.mark.parametrize("sets, needle", [
    (["experiment.held_out=dm1"], "experiment.held_out"),
    (['experiment.models=["nmrnn","gru"]'], "experiment.models"),
    (["experiment.sizes=huge"], "experiment.sizes"),
    (["training.batch_size=5000"], "training.batch_size"),
    (["training.retrain_lr=0"], "training.retrain_lr"),
    (["task.context_noise=-1"], "task.context_noise"),
    (["task.T=3"], "task.T"),
])
def test_bad_settings_name_the_key(sets, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        runner.resolve_settings("multitask", "quick", sets=sets)


def test_cli_rejects_an_unknown_held_out_task(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["multitask", "--held-out", "nonsense", "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    assert "--held-out" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
