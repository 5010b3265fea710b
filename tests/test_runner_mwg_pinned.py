"""The Measure-Wait-Go port onto the runner gives the numbers of the code before it.

``tests/data/mwg_tiny_pinned.json`` was written by the pre-runner
``nmrnn_np.experiments.mwg`` (commit c2c02e3) for a tiny configuration
(4 models x 2 seeds, 40 steps, NM-RNN 10 + 10 staged steps, 4 test intervals),
numba backend. Every per-run number must match: the port moved code, it must
not change what it computes. The tolerance covers the numba/NumPy difference
(~1e-12 after 60 steps), not a change of the computation.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from nmrnn_np.experiments import mwg

PINNED = Path(__file__).resolve().parent / "data" / "mwg_tiny_pinned.json"


def _flat(x, prefix=""):
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _flat(v, f"{prefix}.{k}")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _flat(v, f"{prefix}[{i}]")
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        yield prefix, float(x)
    else:
        yield prefix, x


def pinned_runs(tmp_path, executor="inline", jobs=1):
    pinned = json.loads(PINNED.read_text())
    cfg = mwg.resolve_config("quick", overrides=pinned["overrides"])
    doc = mwg.run_experiment(cfg, tmp_path / "out", executor=executor, jobs=jobs, figures=False,
                             log=lambda s: None)
    return pinned["runs"], doc


def assert_runs_match(expected, runs):
    got = {r["run"]: r for r in runs}
    assert sorted(got) == sorted(r["run"] for r in expected)
    for ref in expected:
        run = got[ref["run"]]
        run = {**run, "best_losses": [s["best_loss"] for s in run["stages"]]}
        for key, value in _flat(ref):
            have = dict(_flat(run)).get(key)
            if isinstance(value, float):
                assert have is not None and math.isclose(have, value, rel_tol=1e-9, abs_tol=1e-15), \
                    f"{ref['run']}{key}: {have} != pinned {value}"
            else:
                assert have == value, f"{ref['run']}{key}: {have!r} != pinned {value!r}"


def test_tiny_mwg_metrics_equal_the_pinned_pre_runner_numbers(tmp_path):
    expected, doc = pinned_runs(tmp_path)
    assert len(doc["runs"]) == 8 and not doc["failed_runs"] and not doc["missing_runs"]
    assert_runs_match(expected, doc["runs"])
