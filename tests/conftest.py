"""Shared test helpers: where the authors' reference outputs live, and which backends exist."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nmrnn_np import HAVE_NUMBA

#: outputs of the authors' JAX code (a copy of the project's shared/reference; see its README.md)
REFERENCE_DIR = Path(__file__).resolve().parent / "reference"

#: every backend this machine can run; without numba only the NumPy path is tested
BACKENDS = ["numpy", "numba"] if HAVE_NUMBA else ["numpy"]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


def load_reference(name: str):
    """Arrays of ``REFERENCE_DIR/name.npz`` and the parameter dict (authors' names)."""
    path = REFERENCE_DIR / f"{name}.npz"
    if not path.exists():
        raise FileNotFoundError(f"reference file {path} is missing")
    d = dict(np.load(path, allow_pickle=False))
    params = {k[len("param_"):]: v for k, v in d.items() if k.startswith("param_")}
    return d, params
