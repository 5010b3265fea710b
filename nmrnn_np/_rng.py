"""Randomness: every stochastic function takes ``rng`` and normalises it here."""
from __future__ import annotations

import numbers

import numpy as np

RNGLike = "None | int | numpy.random.Generator"


def as_generator(rng: None | int | np.random.Generator, name: str = "rng") -> np.random.Generator:
    """Return a :class:`numpy.random.Generator` for ``rng``.

    Parameters
    ----------
    rng : None, int or numpy.random.Generator
        ``None`` gives a fresh, OS-seeded generator; an int (>= 0) seeds
        ``numpy.random.default_rng``; a Generator is returned unchanged so that
        successive calls share its stream.
    name : str
        Argument name used in the error message.
    """
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if int(rng) < 0:
            raise ValueError(f"{name} must be a non-negative integer seed, got {rng}")
        return np.random.default_rng(int(rng))
    raise TypeError(
        f"{name} must be None, a non-negative int seed or a numpy.random.Generator, "
        f"got {type(rng).__name__}"
    )
