"""The ``nmrnn-np`` command line: help, argument errors, and a tiny end-to-end run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nmrnn_np import cli

REPO = Path(__file__).resolve().parents[1]

TINY_TOML = """\
[experiment]
seeds = 2
backend = "numpy"

[training]
steps = 3
nmrnn_output_steps = 1
nmrnn_nm_steps = 1

[models.nmrnn]
N = 8
M = 3

[models.lrrnn]
N = 8

[models.rnn]
N = 5

[models.lstm]
N = 3
"""


def run_cli(capsys, *argv):
    """``main(argv)`` -> (exit status, stdout, stderr); argparse exits are caught."""
    try:
        status = cli.main(list(argv))
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, err, *needles):
    assert status == 2
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("nmrnn-np") and ": error: " in last, err
    for needle in needles:
        assert needle in last, (needle, last)


@pytest.fixture
def tiny_toml(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_TOML)
    return path


# ----------------------------------------------------------------------------
def test_help_lists_every_subcommand(capsys):
    status, out, _ = run_cli(capsys, "--help")
    assert status == 0
    for name in ("mwg", "train", "evaluate", "demo", "theory"):
        assert name in out


@pytest.mark.parametrize("command, options", [
    ("mwg", ["--quick", "--full", "--seeds", "--jobs", "--out", "--config", "--resume", "--clamp", "--models"]),
    ("train", ["--task", "--model", "--steps", "--lr", "--seed", "--out", "--config", "--resume"]),
    ("evaluate", ["RUN_DIR", "--clamp", "--no-figures"]),
    ("demo", ["--out", "--seed", "--intervals"]),
])
def test_subcommand_help_explains_every_option(capsys, command, options):
    status, out, _ = run_cli(capsys, command, "--help")
    assert status == 0
    for opt in options:
        assert opt in out
    assert "(default: None)" not in out


def test_subcommands_are_registered_through_modules(monkeypatch):
    import types
    fake = types.ModuleType("fake_cmd")

    def add_parser(subparsers):
        p = subparsers.add_parser("fake", help="a registered extra command")
        p.set_defaults(func=lambda args: 7)

    fake.add_parser = add_parser
    monkeypatch.setitem(sys.modules, "fake_cmd", fake)
    monkeypatch.setattr(cli, "COMMAND_MODULES", cli.COMMAND_MODULES + ("fake_cmd",))
    assert cli.main(["fake"]) == 7


@pytest.mark.parametrize("argv, needles", [
    (["mwg", "--seeds", "0"], ["--seeds", ">= 1"]),
    (["mwg", "--seeds", "two"], ["--seeds"]),
    (["mwg", "--jobs", "-1"], ["--jobs"]),
    (["mwg", "--lr", "-0.1"], ["--lr"]),
    (["mwg", "--steps", "0"], ["--steps"]),
    (["mwg", "--models", "nmrnn,gru"], ["--models"]),
    (["mwg", "--clamp", "half"], ["--clamp"]),
    (["mwg", "--quick", "--full"], ["--full", "--quick"]),
    (["mwg", "--frobnicate"], ["--frobnicate"]),
    (["train", "--task", "mwg"], ["--model"]),
    (["train", "--model", "gru"], ["--model"]),
    (["train", "--model", "nmrnn", "--task", "dm"], ["--task"]),
    (["nosuchcommand"], ["nosuchcommand"]),
])
def test_bad_options_give_a_one_line_error(capsys, argv, needles):
    status, _, err = run_cli(capsys, *argv)
    assert_one_line_error(status, err, *needles)


@pytest.mark.parametrize("toml, needles", [
    ("[training]\nstpes = 3\n", ["training.stpes", "allowed"]),
    ("[training]\nsteps = 'many'\n", ["training.steps"]),
    ("[experiment]\nmode = 'slow'\n", ["experiment.mode"]),
    ("[models.nmrnn]\nN = 0\n", ["models.nmrnn"]),
    ("[training\n", ["not valid TOML"]),
])
def test_bad_config_files_name_the_key(capsys, tmp_path, toml, needles):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    status, _, err = run_cli(capsys, "mwg", "--config", str(path), "--out", str(tmp_path / "o"))
    assert_one_line_error(status, err, "--config", *needles)
    assert not (tmp_path / "o").exists()


def test_missing_paths_and_resume_conflicts(capsys, tmp_path):
    status, _, err = run_cli(capsys, "mwg", "--config", str(tmp_path / "none.toml"))
    assert_one_line_error(status, err, "does not exist")
    status, _, err = run_cli(capsys, "evaluate", str(tmp_path / "nowhere"))
    assert_one_line_error(status, err, "RUN_DIR", "not a folder")
    status, _, err = run_cli(capsys, "evaluate", str(tmp_path))
    assert_one_line_error(status, err, "config.toml")
    status, _, err = run_cli(capsys, "mwg", "--resume", "--out", str(tmp_path))
    assert_one_line_error(status, err, "cannot resume", "config.toml")
    status, _, err = run_cli(capsys, "mwg", "--resume", "--seeds", "3", "--out", str(tmp_path))
    assert_one_line_error(status, err, "--seeds", "--resume")
    status, _, err = run_cli(capsys, "demo", "--out", str(tmp_path / "x.jpg"))
    assert_one_line_error(status, err, "--out", ".png")


def test_mwg_train_evaluate_end_to_end(capsys, tmp_path, tiny_toml):
    out = tmp_path / "exp"
    status, stdout, err = run_cli(capsys, "mwg", "--config", str(tiny_toml), "--models", "nmrnn,lstm",
                                  "--out", str(out), "--jobs", "2")
    assert status == 0, err
    assert "NM-RNN  (N=8, M=3, K=3, tau_x=10, tau_z=100):" in stdout and "parameters" in stdout
    assert "| NM-RNN |" in stdout and "| LSTM |" in stdout
    for name in ("config.toml", "metrics.json", "report.md", "mwg_errors.png", "mwg_ablation.png",
                 "runs/nmrnn_seed1/model.npz", "runs/lstm_seed0/result.json"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert {(r["model"], r["seed"]) for r in metrics["runs"]} == {("nmrnn", 0), ("nmrnn", 1), ("lstm", 0), ("lstm", 1)}
    nm0 = next(r for r in metrics["runs"] if r["model"] == "nmrnn" and r["seed"] == 0)
    assert nm0["curve"]["steps"] == 1 + 1 + 3 and nm0["wall_time"] > 0
    assert set(nm0["l2"]) == {"trained", "shorter", "longer", "extrapolated"}

    # never overwritten
    status, _, err = run_cli(capsys, "mwg", "--config", str(tiny_toml), "--out", str(out))
    assert_one_line_error(status, err, str(out), "--resume")

    # evaluate with another clamp mode rewrites the metrics of the same runs
    status, stdout, err = run_cli(capsys, "evaluate", str(out), "--clamp", "zero", "--no-figures")
    assert status == 0, err
    again = json.loads((out / "metrics.json").read_text())
    assert all(r["ablation"]["mode"] == "zero" for r in again["runs"] if r["model"] == "nmrnn")
    assert [e for e in again["summary"] if e["model"] == "lstm"] == [e for e in metrics["summary"]
                                                                     if e["model"] == "lstm"]

    # train one model into its own run folder, then evaluate it
    run = tmp_path / "one"
    status, stdout, err = run_cli(capsys, "train", "--model", "lrrnn", "--config", str(tiny_toml),
                                  "--steps", "2", "--seed", "5", "--out", str(run))
    assert status == 0, err
    assert f"nmrnn-np evaluate {run}" in stdout
    assert (run / "runs" / "lrrnn_seed5" / "model.npz").exists()
    status, stdout, err = run_cli(capsys, "evaluate", str(run))
    assert status == 0, err
    assert "| LR-RNN | " in stdout and (run / "mwg_outputs.png").exists()
    status, _, err = run_cli(capsys, "train", "--model", "nmrnn", "--resume", "--out", str(run))
    assert_one_line_error(status, err, "--model nmrnn", "lrrnn")


def test_python_dash_m_and_demo(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    png = tmp_path / "demo.png"
    proc = subprocess.run([sys.executable, "-m", "nmrnn_np", "demo", "--backend", "numpy", "--intervals", "6", "20",
                           "--out", str(png)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "1059 parameters" in proc.stdout


def test_corrupt_folders_and_files_are_one_line_errors(capsys, tmp_path, tiny_toml):
    out = tmp_path / "exp"
    status, _, err = run_cli(capsys, "mwg", "--config", str(tiny_toml), "--models", "lstm", "--seeds", "1",
                             "--jobs", "0", "--no-figures", "--out", str(out))
    assert status == 0, err
    run = out / "runs" / "lstm_seed0"
    # a truncated model file
    good = (run / "model.npz").read_bytes()
    (run / "model.npz").write_bytes(good[: len(good) // 2])
    status, _, err = run_cli(capsys, "evaluate", str(out), "--no-figures")
    assert_one_line_error(status, err, "model.npz")
    (run / "model.npz").write_bytes(good)
    # a result.json that is not JSON
    (run / "result.json").write_text("{not json")
    status, _, err = run_cli(capsys, "evaluate", str(out), "--no-figures")
    assert_one_line_error(status, err, "result.json")
    status, _, err = run_cli(capsys, "mwg", "--resume", "--out", str(out))
    assert_one_line_error(status, err, "result.json")
    # a config.toml that is no longer valid
    (out / "config.toml").write_text("[training]\nsteps = -3\n")
    status, _, err = run_cli(capsys, "mwg", "--resume", "--out", str(out))
    assert_one_line_error(status, err, "training.steps")
    # an output folder whose parent is a file
    status, _, err = run_cli(capsys, "mwg", "--out", str(tiny_toml / "x"))
    assert_one_line_error(status, err, "does not exist")


def test_unexpected_errors_are_one_line_too(capsys, monkeypatch):
    from nmrnn_np.experiments import runner

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(runner, "run_experiment", broken)
    status, _, err = run_cli(capsys, "mwg", "--seeds", "1")
    assert_one_line_error(status, err, "No space left on device", "NMRNN_NP_DEBUG")
    monkeypatch.setenv("NMRNN_NP_DEBUG", "1")
    with pytest.raises(OSError):
        cli.main(["mwg", "--seeds", "1"])
