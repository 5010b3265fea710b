"""nmrnn_np: neuromodulated recurrent neural networks (Costacurta et al., NeurIPS 2024) in NumPy.

Models (:class:`NMRNN`, :class:`LowRankRNN`, :class:`VanillaRNN`,
:class:`LSTM`) hold sizes and options; parameters are plain dicts of arrays.
Every model has a readable NumPy step (the equations) and a numba fast path
that agrees with it; see the README.
"""
from ._backend import HAVE_NUMBA, default_backend, use_backend
from .models import LSTM, MODELS, LowRankRNN, NMRNN, RecurrentModel, Trajectory, VanillaRNN, make_model
from .reference_params import from_reference_params, to_reference_params
from . import losses, metrics, tasks
from .io import load_model, save_model
from .training import TrainResult, train

__version__ = "0.1.0"

__all__ = ["NMRNN", "LowRankRNN", "VanillaRNN", "LSTM", "RecurrentModel", "Trajectory", "MODELS",
           "make_model", "from_reference_params", "to_reference_params", "use_backend",
           "default_backend", "HAVE_NUMBA", "train", "TrainResult", "save_model", "load_model",
           "tasks", "metrics", "losses", "__version__"]
