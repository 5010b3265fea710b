"""The models: NM-RNN, LR-RNN, vanilla RNN, LSTM, and a registry by name."""
from __future__ import annotations

from .base import RecurrentModel, Trajectory, sigmoid
from .lowrank import LowRankRNN, NMRNN, lowrank_x_update
from .vanilla import LSTM, VanillaRNN

#: registry: name -> class (the CLI and save/load use these names)
MODELS: dict[str, type[RecurrentModel]] = {"nmrnn": NMRNN, "lrrnn": LowRankRNN, "rnn": VanillaRNN, "lstm": LSTM}


def make_model(name: str, **config) -> RecurrentModel:
    """Build a model by registry name (``"nmrnn"``, ``"lrrnn"``, ``"rnn"``, ``"lstm"``)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    return MODELS[name](**config)


__all__ = ["RecurrentModel", "Trajectory", "NMRNN", "LowRankRNN", "VanillaRNN", "LSTM", "MODELS",
           "make_model", "lowrank_x_update", "sigmoid"]
