"""The models: NM-RNN, LR-RNN, vanilla RNN, LSTM, and a registry by name."""
from __future__ import annotations

import inspect

from .. import _validation as V
from .base import RecurrentModel, Trajectory, sigmoid
from .lowrank import LowRankRNN, NMRNN, lowrank_x_update
from .vanilla import LSTM, VanillaRNN

#: registry: name -> class (the CLI and save/load use these names)
MODELS: dict[str, type[RecurrentModel]] = {"nmrnn": NMRNN, "lrrnn": LowRankRNN, "rnn": VanillaRNN, "lstm": LSTM}


def make_model(name: str, **config) -> RecurrentModel:
    """Build a model by registry name (``"nmrnn"``, ``"lrrnn"``, ``"rnn"``, ``"lstm"``).

    ``config`` are the class's constructor arguments; an unknown one raises
    :class:`TypeError` listing the known ones.
    """
    V.choice(name, "name", tuple(MODELS))
    cls = MODELS[name]
    V.known_kwargs(config, list(inspect.signature(cls).parameters), f"make_model({name!r})")
    return cls(**config)


__all__ = ["RecurrentModel", "Trajectory", "NMRNN", "LowRankRNN", "VanillaRNN", "LSTM", "MODELS",
           "make_model", "lowrank_x_update", "sigmoid"]
