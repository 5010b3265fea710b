"""Experiments of the study, runnable end to end (``nmrnn-np run NAME``) and as functions.

:mod:`~nmrnn_np.experiments.runner`
    The runner every experiment runs on: settings, grid, run folders, resume,
    executors (local processes or a dask cluster), faults, summaries, reports.
:mod:`~nmrnn_np.experiments.base`
    What an experiment declares (:class:`Experiment`, :class:`Stage`).
:mod:`~nmrnn_np.experiments.summary`
    Summaries over seeds (mean, median, IQR, counts) and markdown tables.
:mod:`~nmrnn_np.experiments.mwg`
    Measure-Wait-Go: four parameter-matched models, extrapolation to untrained
    intervals (figures in :mod:`~nmrnn_np.experiments.mwg_figures`).
:mod:`~nmrnn_np.experiments.analysis`
    Clamping the NM-RNN's signal s, projections on the left factors.
:mod:`~nmrnn_np.experiments.config`
    Settings as nested dicts: TOML reading, writing and validation.
"""
from .analysis import ablate_components, latent_projection, simulate_nmrnn_clamped
from .base import Experiment, RunContext, Stage
from .config import ConfigError, dumps_toml, read_toml, write_toml
from .runner import (EXPERIMENTS, ExperimentError, ExperimentInterrupted, aggregate, get_experiment, register,
                     resolve_settings, run_experiment)

__all__ = ["run_experiment", "resolve_settings", "aggregate", "get_experiment", "register", "EXPERIMENTS",
           "Experiment", "Stage", "RunContext", "ExperimentError", "ExperimentInterrupted", "simulate_nmrnn_clamped",
           "ablate_components", "latent_projection", "ConfigError", "dumps_toml", "read_toml", "write_toml"]
