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


def nearest_size(name: str, budget: int, **config) -> int:
    """The hidden size N whose model has the parameter count nearest ``budget`` (ties: the smaller N).

    ``config`` are the other constructor arguments of :func:`make_model`
    (U, O, K, ...). Sizes the constructor rejects (N below the rank K) are
    skipped. E.g. ``nearest_size("rnn", 1482, U=6, O=3) == 34`` (1,465
    parameters) and ``nearest_size("lstm", 500, U=1, O=1) == 10`` (490).
    """
    V.choice(name, "name", tuple(MODELS))
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget must be a positive int (a number of parameters), got {budget!r}")
    if "N" in config:
        raise TypeError("nearest_size chooses N: do not pass it")
    K = config.get("K")
    start = K if isinstance(K, int) and not isinstance(K, bool) and K >= 1 else 1
    # the smallest model checks the other arguments (a bad one raises here, naming itself)
    best, best_gap = start, abs(make_model(name, N=start, **config).n_params() - budget)
    N = start
    while True:  # the count grows with N, so the nearest N is found where it passes the budget
        N += 1
        n = make_model(name, N=N, **config).n_params()
        if abs(n - budget) < best_gap:
            best, best_gap = N, abs(n - budget)
        if n >= budget:
            return int(best)


__all__ = ["RecurrentModel", "Trajectory", "NMRNN", "LowRankRNN", "VanillaRNN", "LSTM", "MODELS",
           "make_model", "nearest_size", "lowrank_x_update", "sigmoid"]
