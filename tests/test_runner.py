"""The experiment runner: settings, grids, executors, faults, Ctrl-C, summaries."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nmrnn_np.cli import main
from nmrnn_np.experiments import runner, summary
from nmrnn_np.experiments.config import ConfigError

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def toy_registered(monkeypatch):
    monkeypatch.setitem(runner.EXPERIMENTS, "toy", "toy_experiment:EXPERIMENT")


def results(out: Path) -> dict:
    return {d.name: json.loads((d / "result.json").read_text()) for d in sorted((out / "runs").iterdir())
            if (d / "result.json").exists()}


def strip_times(res: dict) -> dict:
    drop = ("wall_time", "eval_time")
    out = {k: v for k, v in res.items() if k not in drop}
    out["stages"] = [{k: v for k, v in s.items() if k not in drop} for s in res["stages"]]
    return out


# ----------------------------------------------------------------------------
# Settings, --set and --grid
# ----------------------------------------------------------------------------
def test_set_and_grid_make_the_intended_runs():
    s = runner.resolve_settings("toy", "quick", sets=["training.lr=3e-3", "experiment.seeds=1"],
                                grid=["training.N=3,5", "training.steps=2,4"])
    assert s["training"]["lr"] == 0.003 and s["grid"] == {"training.N": [3, 5], "training.steps": [2, 4]}
    specs = runner.expand_runs("toy", s)
    assert [sp.name for sp in specs] == ["rnn_seed0__training.N=3__training.steps=2",
                                         "rnn_seed0__training.N=3__training.steps=4",
                                         "rnn_seed0__training.N=5__training.steps=2",
                                         "rnn_seed0__training.N=5__training.steps=4"]
    assert [(sp.settings["training"]["N"], sp.settings["training"]["steps"]) for sp in specs] == \
        [(3, 2), (3, 4), (5, 2), (5, 4)]
    assert specs[1].run == {"model": "rnn", "seed": 0, "training.N": 3, "training.steps": 4}


@pytest.mark.parametrize("sets, grid, needle", [
    (["training.bogus=1"], [], "training.bogus"),
    (["training.lr=fast"], [], "training.lr must be a number"),
    (["training.lr"], [], "KEY=VALUE"),
    ([], ["training.bogus=1,2"], "training.bogus"),
    ([], ["training.N=1,x"], "training.N must be an integer"),
    ([], ["training.N=0,2"], "training.N must be >= 1"),
    ([], ["training.N=2,2"], "listed twice"),
    ([], ["experiment.seeds=1,2"], "cannot be swept"),
    (["experiment.fault=sometimes"], [], "experiment.fault"),
])
def test_bad_set_and_grid_values_name_the_key(sets, grid, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        runner.resolve_settings("toy", "quick", sets=sets, grid=grid)


def test_the_grid_is_stored_and_resumed_with_the_folder(tmp_path):
    s = runner.resolve_settings("toy", "quick", grid=["training.N=2,3"], sets=["experiment.seeds=1"])
    doc = runner.run_experiment("toy", s, tmp_path / "o", executor="inline", figures=True, log=lambda m: None)
    assert [r["run"] for r in doc["runs"]] == ["rnn_seed0__training.N=2", "rnn_seed0__training.N=3"]
    assert [r["training.N"] for r in doc["runs"]] == [2, 3]
    assert [e["training.N"] for e in doc["summary"]] == [2, 3] and doc["grid"] == {"training.N": [2, 3]}
    report = (tmp_path / "o" / "report.md").read_text()
    assert "| model | training.N | seeds |" in report and "`training.N` in [2, 3]" in report
    again = runner.resolve_settings("toy", "quick", tmp_path / "o" / "config.toml")
    assert again == s


def test_settings_are_checked_before_the_folder_exists(tmp_path, capsys):
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as info:
        main(["run", "toy", "--set", "training.bogus=1", "--out", str(out)])
    assert info.value.code == 2 and not out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("nmrnn-np run toy: error:") and "training.bogus" in err[-1]
    with pytest.raises(SystemExit):
        main(["mwg", "--set", "training.optimizer=sgd", "--out", str(out)])
    assert "training.optimizer must be one of" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("argv, needle", [
    (["run", "toy", "--executor", "threads"], "--executor"),
    (["run", "toy", "--jobs", "-1"], "--jobs"),
    (["run", "toy", "--grid", "training.N"], "KEY=V1,V2"),
    (["run", "toy", "--scheduler", "tcp://x:1"], "--scheduler needs --executor dask"),
    (["run", "nosuch"], "invalid choice"),
    (["run", "toy", "--resume", "--set", "training.N=2"], "--set cannot be combined with --resume"),
])
def test_bad_options_are_one_line_errors(argv, needle, capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        main(argv + ["--out", str(tmp_path / "o")] if argv[1] != "nosuch" else argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and needle in err.strip().splitlines()[-1]


# ----------------------------------------------------------------------------
# Executors give the same numbers
# ----------------------------------------------------------------------------
def test_process_pool_equals_inline(tmp_path):
    s = runner.resolve_settings("toy", "quick")
    runner.run_experiment("toy", s, tmp_path / "a", executor="inline", log=lambda m: None, figures=False)
    runner.run_experiment("toy", s, tmp_path / "b", executor="process", jobs=2, log=lambda m: None, figures=False)
    a, b = results(tmp_path / "a"), results(tmp_path / "b")
    assert list(a) == ["rnn_seed0", "rnn_seed1"]
    assert {k: strip_times(v) for k, v in a.items()} == {k: strip_times(v) for k, v in b.items()}


def test_local_dask_cluster_equals_the_process_pool(tmp_path):
    pytest.importorskip("distributed")
    from test_runner_mwg_pinned import PINNED
    from nmrnn_np.experiments import mwg
    pinned = json.loads(PINNED.read_text())
    cfg = mwg.resolve_config("quick", overrides={**pinned["overrides"], "experiment": {
        **pinned["overrides"]["experiment"], "models": ["nmrnn", "lstm"], "seeds": 1}})
    runner.run_experiment("mwg", cfg, tmp_path / "p", executor="process", jobs=2, figures=False, log=lambda m: None)
    doc = runner.run_experiment("mwg", cfg, tmp_path / "d", executor="dask", jobs=2, figures=False,
                                log=lambda m: None)
    assert not doc["failed_runs"]
    p, d = results(tmp_path / "p"), results(tmp_path / "d")
    assert list(p) == ["lstm_seed0", "nmrnn_seed0"]
    assert {k: strip_times(v) for k, v in p.items()} == {k: strip_times(v) for k, v in d.items()}


def test_dask_refuses_a_folder_the_workers_cannot_write(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(runner, "_check_folder_on_worker", lambda out: f"host h cannot write in {out}")
    s = runner.resolve_settings("toy", "quick")
    with pytest.raises(runner.ExperimentError, match="storage every worker shares"):
        runner.run_experiment("toy", s, tmp_path / "o", executor="dask", jobs=1, log=lambda m: None)


def test_a_worker_without_the_run_folder_fails_the_run_with_the_reason(tmp_path):
    res = runner.execute_run(tmp_path / "runs" / "nowhere")
    assert res["status"] == "failed" and "storage that every worker shares" in res["reason"]


# ----------------------------------------------------------------------------
# Faults
# ----------------------------------------------------------------------------
def test_a_worker_killed_once_is_retried_and_succeeds(tmp_path):
    s = runner.resolve_settings("toy", "quick", sets=['experiment.fault="die_once"'])
    lines = []
    doc = runner.run_experiment("toy", s, tmp_path / "o", executor="process", jobs=2, log=lines.append,
                                figures=False)
    assert [r["run"] for r in doc["runs"]] == ["rnn_seed0", "rnn_seed1"] and not doc["failed_runs"]
    assert any("rnn_seed1: worker process" in m and "SIGKILL" in m and "retrying once" in m for m in lines)


def test_a_run_that_always_dies_fails_and_the_others_finish(tmp_path, capsys):
    out = tmp_path / "o"
    code = main(["run", "toy", "--set", 'experiment.fault="die_always"', "--seeds", "3", "--jobs", "2",
                 "--out", str(out), "--no-figures"])
    assert code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "1 run failed" in err and "rnn_seed1: worker process" in err and "SIGKILL (2 times)" in err
    doc = json.loads((out / "metrics.json").read_text())
    assert [r["run"] for r in doc["runs"]] == ["rnn_seed0", "rnn_seed2"]
    assert [f["run"] for f in doc["failed_runs"]] == ["rnn_seed1"]


def test_a_raising_run_fails_with_its_reason_and_resume_retries_it(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", "toy", "--set", 'experiment.fault="raise"', "--jobs", "0", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "rnn_seed1: RuntimeError: the toy run was told to fail" in err and "--resume" in err
    assert "Traceback" in (out / "runs" / "rnn_seed1" / "failed.json").read_text()  # kept for the user
    (out / "ALLOW").write_text("")
    assert main(["run", "toy", "--resume", "--jobs", "0", "--out", str(out)]) == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert [r["run"] for r in doc["runs"]] == ["rnn_seed0", "rnn_seed1"] and not doc["failed_runs"]


def test_ctrl_c_keeps_finished_runs_and_resume_completes_them(tmp_path):
    out = tmp_path / "o"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent), str(HERE)]))
    code = ("import sys; from nmrnn_np.experiments import runner; "
            "runner.register('toy', 'toy_experiment:EXPERIMENT'); from nmrnn_np.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    argv = [sys.executable, "-c", code, "run", "toy", "--seeds", "3", "--jobs", "1", "--no-figures",
            "--set", "experiment.sleep=0.05", "--set", "training.steps=40", "--out", str(out)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    # wait until the first run has finished and the second one is training
    while time.time() < deadline and not ((out / "runs" / "rnn_seed0" / "result.json").exists()
                                          and (out / "runs" / "rnn_seed1" / "train_fit.jsonl").exists()):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "--resume" in stderr
    assert (out / "runs" / "rnn_seed0" / "result.json").exists()
    assert not (out / "runs" / "rnn_seed1" / "result.json").exists()
    assert (out / "runs" / "rnn_seed1" / "checkpoint_fit.npz").exists()  # the interrupted run checkpointed
    resumed = subprocess.run(argv[:3] + ["run", "toy", "--resume", "--jobs", "1", "--no-figures", "--out", str(out)],
                             env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    doc = json.loads((out / "metrics.json").read_text())
    assert [r["run"] for r in doc["runs"]] == ["rnn_seed0", "rnn_seed1", "rnn_seed2"]
    # the resumed run equals an uninterrupted one
    s = runner.resolve_settings("toy", "quick", sets=["experiment.seeds=3", "training.steps=40"])
    ref = runner.run_experiment("toy", s, tmp_path / "ref", executor="inline", figures=False, log=lambda m: None)
    assert [r["test_mse"] for r in ref["runs"]] == [r["test_mse"] for r in doc["runs"]]


# ----------------------------------------------------------------------------
# Files and summaries
# ----------------------------------------------------------------------------
def test_every_file_of_a_run_folder_is_written_and_no_temporary_is_left(tmp_path):
    s = runner.resolve_settings("toy", "quick")
    runner.run_experiment("toy", s, tmp_path / "o", executor="process", jobs=1, log=lambda m: None)
    out = tmp_path / "o"
    leftovers = [p for p in out.rglob("*") if p.name.endswith(".tmp") or ".tmp" in p.name]
    assert leftovers == []
    run = out / "runs" / "rnn_seed0"
    for name in ("run.json", "result.json", "model.npz", "stage_fit.npz", "stage_fit.json", "checkpoint_fit.npz",
                 "train_fit.jsonl", "worker.log"):
        assert (run / name).exists(), name
    assert json.loads((run / "run.json").read_text())["settings"] == s
    assert Path(json.loads((out / "metrics.json").read_text())["runs"][0]["run"]) == Path("rnn_seed0")


def test_summaries_survive_one_bad_seed():
    runs = [{"model": "a", "seed": i, "err": v} for i, v in enumerate([1e-3, 2e-3, 7e-2, 1.5e-3])]
    (entry,) = summary.summarize(runs, {"err": "err"}, ["model"])
    st = entry["err"]
    assert st["median"] == pytest.approx(1.75e-3) and st["mean"] == pytest.approx(np.mean([1e-3, 2e-3, 7e-2, 1.5e-3]))
    assert st["q25"] < st["median"] < st["q75"] and st["gmean"] == pytest.approx(
        math.exp(np.mean(np.log([1e-3, 2e-3, 7e-2, 1.5e-3]))))
    assert summary.outlier_seeds(runs, "err") == [(2, 7e-2)]
    assert summary.count_better([1e-3, 2e-3, 7e-2], [1.8e-3, 5e-3]) == {"n": 3, "below_best": 1, "below_median": 2}
    assert summary.format_cell(st, ".1e") == "1.8e-03 [1.4e-03, 1.9e-02]"
    assert summary.stats([None, float("nan")]) is None


def test_the_authors_training_procedure_is_a_setting_every_experiment_has(tmp_path):
    s = runner.resolve_settings("toy", "quick", sets=["experiment.seeds=1", "experiment.best_rule=chunk_end"],
                                grid=["experiment.restart_every=2,3"])
    doc = runner.run_experiment("toy", s, tmp_path / "o", executor="inline", figures=False, log=lambda m: None)
    a, b = doc["runs"]
    assert a["run"].endswith("restart_every=2") and a["test_mse"] != b["test_mse"]
    log = [json.loads(line) for line in (tmp_path / "o" / "runs" / a["run"] / "train_fit.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(6))
    with pytest.raises(ConfigError, match="chunk_end"):
        runner.resolve_settings("toy", "quick", sets=["experiment.best_rule=chunk_end"])
