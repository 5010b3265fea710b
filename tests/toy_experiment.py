"""A tiny experiment for the runner's tests: a small vanilla RNN fitting random targets.

Its settings can make a run misbehave, to test the runner's fault handling:
``experiment.fault`` is ``"none"``, ``"die_once"`` (the worker process kills
itself the first time the run starts), ``"die_always"`` or ``"raise"`` (the
run raises unless the file ``OUT/ALLOW`` exists); ``experiment.faulty``
names the run it applies to (``"rnn_seed1"``). ``experiment.sleep`` slows
every training step (seconds), so a test can interrupt a run mid-training.
"""
from __future__ import annotations

import os
import signal
import time

import numpy as np

from nmrnn_np.experiments.base import Experiment, Stage, base_settings
from nmrnn_np.experiments.config import ConfigError
from nmrnn_np.metrics import masked_l2
from nmrnn_np.models import make_model

FAULTS = ("none", "die_once", "die_always", "raise")


class ToyExperiment(Experiment):
    name = "toy"
    title = "Toy experiment"
    summary = "a tiny vanilla RNN fitting random targets (runner tests)"
    summary_metrics = {"final": "test_mse", "wall_time": "wall_time"}
    group_fields = ("model",)

    def default_settings(self, mode):
        return {"experiment": base_settings("toy", mode, 2, fault="none", faulty="rnn_seed1", sleep=0.0),
                "training": {"steps": 6 if mode == "quick" else 12, "lr": 1e-2, "N": 4}}

    def validate(self, settings):
        if settings["experiment"]["fault"] not in FAULTS:
            raise ConfigError(f"experiment.fault must be one of {', '.join(FAULTS)}")
        if settings["training"]["N"] < 1:
            raise ConfigError("training.N must be >= 1")

    def grid(self, settings):
        ex = settings["experiment"]
        return [{"model": "rnn", "seed": s} for s in range(ex["first_seed"], ex["first_seed"] + ex["seeds"])]

    def build(self, ctx):
        ex = ctx.settings["experiment"]
        if ctx.name == ex["faulty"] and ex["fault"] in ("die_once", "die_always"):
            marker = ctx.run_dir / "died_once"
            if ex["fault"] == "die_always" or not marker.exists():
                marker.write_text("x")
                os.kill(os.getpid(), signal.SIGKILL)
        if ctx.name == ex["faulty"] and ex["fault"] == "raise" and not (ctx.run_dir.parent.parent / "ALLOW").exists():
            raise RuntimeError("the toy run was told to fail")
        model = make_model("rnn", N=ctx.settings["training"]["N"], U=2, O=1)
        return model, model.init_params(ctx.seed)

    def stages(self, ctx, model):
        sleep = ctx.settings["experiment"]["sleep"]

        def sampler(rng):
            if sleep:
                time.sleep(sleep)
            x = rng.standard_normal((5, 7, 2))
            return x, np.tanh(x[..., :1])

        tr = ctx.settings["training"]
        return [Stage("fit", tr["steps"], sampler, lr=tr["lr"], optimizer="adam")]

    def evaluate(self, ctx, model, params):
        rng = np.random.default_rng(123)
        x = rng.standard_normal((20, 7, 2))
        return {"test_mse": masked_l2(model.simulate(params, x).y, np.tanh(x[..., :1]))}


EXPERIMENT = ToyExperiment()
