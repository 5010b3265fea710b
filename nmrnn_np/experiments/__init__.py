"""Experiments of the study, runnable end to end (``nmrnn-np mwg``) and as functions.

:mod:`~nmrnn_np.experiments.mwg`
    Measure-Wait-Go: four parameter-matched models, extrapolation to untrained intervals.
:mod:`~nmrnn_np.experiments.analysis`
    Clamping the NM-RNN's signal s, projections on the left factors.
:mod:`~nmrnn_np.experiments.plots`
    The experiment's figures.
:mod:`~nmrnn_np.experiments.config`
    Settings as nested dicts: TOML reading, writing and validation.
"""
from .analysis import ablate_components, latent_projection, simulate_nmrnn_clamped
from .config import ConfigError, dumps_toml, read_toml, write_toml
from .mwg import default_config, evaluate_run_dir, resolve_config, run_experiment

__all__ = ["run_experiment", "evaluate_run_dir", "resolve_config", "default_config", "simulate_nmrnn_clamped",
           "ablate_components", "latent_projection", "ConfigError", "dumps_toml", "read_toml", "write_toml"]
