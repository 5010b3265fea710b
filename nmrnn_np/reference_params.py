"""The one place that knows the authors' parameter names (lindermanlab/nm-rnn).

:func:`from_reference_params` builds a model and our parameter dict from a
dict keyed by the authors' names (e.g. a model trained with their JAX code);
:func:`to_reference_params` maps a parameter or gradient dict back.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ._validation import choice, float_array
from .models import LSTM, LowRankRNN, NMRNN, RecurrentModel, VanillaRNN
from .models.vanilla import GATES

#: our key -> the authors' key, per reference kind
_LOWRANK = {"L": "row_factors", "R": "column_factors", "B_x": "input_weights",
            "C": "readout_weights", "d": "readout_bias"}
_NM = {"W_z": "nm_rec_weight", "B_z": "nm_input_weight", "A": "nm_sigmoid_weight",
       "a": "nm_sigmoid_intercept"}
NAMES: dict[str, dict[str, str]] = {
    "nm_rnn": {**_LOWRANK, **_NM},
    "context_nm_rnn": {**_LOWRANK, **_NM},
    # element-finder code: no readout bias, the intercept is called nm_sigmoid_bias, and the feedback x -> z
    "eft_nm_rnn": {**{k: v for k, v in _LOWRANK.items() if k != "d"}, **_NM, "a": "nm_sigmoid_bias",
                   "W_zx": "nm_feedback_weight", "b_zx": "nm_feedback_bias"},
    "lr_rnn": dict(_LOWRANK),
    "rnn": {"W": "recurrent_weights", "B_x": "input_weights", "C": "readout_weights", "d": "readout_bias"},
    "lstm": {**{f"W_{q}u": f"weights_{q}u" for q in GATES}, **{f"W_{q}h": f"weights_{q}h" for q in GATES},
             **{f"b_{q}": f"bias_{q}h" for q in GATES}, "C": "readout_weights"},
}
#: the options of the authors' element-finder NM-RNN (feedback x -> z, recurrent term / N, no QR of L,
#: no readout bias); :mod:`nmrnn_np.experiments.eft` builds its NM-RNNs with these
EFT_NMRNN_OPTIONS: dict[str, Any] = dict(feedback=True, divide_by_N=True, orthonormalize=False, readout_bias=False)
_HYPER = {"nm_rnn": ("tau_x", "tau_z", "orthonormalize"),
          "context_nm_rnn": ("tau_x", "tau_z", "orthonormalize"),
          "eft_nm_rnn": ("tau_x", "tau_z"),
          "lr_rnn": ("tau", "orthonormalize"), "rnn": ("tau",), "lstm": ()}


def _arrays(kind: str, ref_params: Mapping[str, Any]) -> dict[str, np.ndarray]:
    if not isinstance(ref_params, Mapping):
        raise TypeError(f"ref_params must be a dict keyed by the authors' names, got {type(ref_params).__name__}")
    names = NAMES[kind]
    expected = set(names.values())
    missing = sorted(expected - set(ref_params))
    extra = sorted(set(ref_params) - expected)
    if missing or extra:
        raise ValueError(f"ref_params for kind {kind!r}: missing keys {missing}, unexpected keys {extra} "
                         f"(expected exactly {sorted(expected)})")
    return {ours: float_array(ref_params[theirs], f"ref_params[{theirs!r}]", ndim=(1, 2))
            for ours, theirs in names.items()}


def from_reference_params(kind: str, ref_params: Mapping[str, Any], **hyper) -> tuple[RecurrentModel, dict]:
    """Model and parameters from a dict with the authors' key names.

    Parameters
    ----------
    kind : {"nm_rnn", "context_nm_rnn", "eft_nm_rnn", "lr_rnn", "rnn", "lstm"}
        The authors' model function the parameters belong to. ``"eft_nm_rnn"``
        is the NM-RNN of their element-finder code (``nm_rnn`` in
        ``nmlrrnn_vs_lstm/eft_datageneration_and_training``): the feedback
        variant, recurrent term divided by N, L not orthonormalised, no
        readout bias; its keys add ``nm_feedback_weight`` (W_zx),
        ``nm_feedback_bias`` (b_zx) and call the intercept ``nm_sigmoid_bias``.
    ref_params : dict of arrays
        Keyed by the authors' names (``row_factors``, ``nm_rec_weight``, ...).
    **hyper
        ``tau_x``, ``tau_z`` (NM-RNNs; default 10, 100), ``tau`` (LR-RNN,
        RNN; default 10), ``orthonormalize`` (NM-RNNs, LR-RNN; default True,
        the authors' ``orth_u``; not for ``eft_nm_rnn``, which has no QR).
        Sizes are inferred from the arrays. For ``eft_nm_rnn`` pass the
        element-finder time constants, ``tau_x=2, tau_z=10``.

    Returns
    -------
    model, params
        ``model.simulate(params, inputs, ...)`` then reproduces the authors'
        ``batched_*`` functions. For ``context_nm_rnn`` the inputs are the
        concatenation ``[task_inputs, context_inputs]``.
    """
    choice(kind, "kind", tuple(NAMES))
    bad = sorted(set(hyper) - set(_HYPER[kind]))
    if bad:
        raise TypeError(f"unexpected hyper-parameter(s) {bad} for kind {kind!r}; allowed: {list(_HYPER[kind])}")
    p = _arrays(kind, ref_params)
    if kind in ("nm_rnn", "context_nm_rnn"):
        N, K = p["L"].shape
        U = p["B_z"].shape[1]
        U_x = p["B_x"].shape[1]
        if kind == "nm_rnn" and U_x != U:
            raise ValueError(f"ref_params: input_weights has {U_x} inputs but nm_input_weight has {U}; "
                             "use kind='context_nm_rnn' when z receives extra context inputs")
        model = NMRNN(N=N, K=K, M=p["W_z"].shape[0], U=U, O=p["C"].shape[0],
                      signal_dim=p["A"].shape[0], U_x=U_x, **hyper)
    elif kind == "eft_nm_rnn":
        N, K = p["L"].shape
        model = NMRNN(N=N, K=K, M=p["W_z"].shape[0], U=p["B_z"].shape[1], O=p["C"].shape[0],
                      signal_dim=p["A"].shape[0], **EFT_NMRNN_OPTIONS, **hyper)
    elif kind == "lr_rnn":
        N, K = p["L"].shape
        model = LowRankRNN(N=N, K=K, U=p["B_x"].shape[1], O=p["C"].shape[0], **hyper)
    elif kind == "rnn":
        model = VanillaRNN(N=p["W"].shape[0], U=p["B_x"].shape[1], O=p["C"].shape[0], **hyper)
    else:
        model = LSTM(N=p["W_iu"].shape[0], U=p["W_iu"].shape[1], O=p["C"].shape[0])
    return model, model.check_params(p, name="ref_params (renamed)")


def reference_kind(model: RecurrentModel) -> str:
    """The authors' kind for a model, or ValueError when they have no such model."""
    if isinstance(model, NMRNN):
        if getattr(model, "modulation", "synaptic") != "synaptic" or model.tied or model.phi != "tanh":
            raise ValueError("the authors' NM-RNNs have only synaptic modulation, untied factors and tanh; "
                             f"cannot map {model!r}")
        if model.feedback:
            if model.divide_by_N and not model.orthonormalize and not model.readout_bias and model.U_x == model.U:
                return "eft_nm_rnn"
            raise ValueError("the authors' feedback NM-RNN (eft_nm_rnn) divides by N, does not orthonormalise "
                             f"L, has no readout bias and no context inputs; cannot map {model!r}")
        if not model.readout_bias or model.divide_by_N:
            raise ValueError("the authors' nm_rnn has a readout bias and no 1/N option; "
                             f"cannot map {model!r}")
        return "nm_rnn" if model.U_x == model.U else "context_nm_rnn"
    if isinstance(model, LowRankRNN):
        if model.tied or not model.readout_bias or not model.divide_by_N or model.phi != "tanh":
            raise ValueError(f"the authors' lr_rnn has no such options; cannot map {model!r}")
        return "lr_rnn"
    if isinstance(model, VanillaRNN):
        if not model.readout_bias or not model.divide_by_N or model.phi != "tanh":
            raise ValueError(f"the authors' rnn has no such options; cannot map {model!r}")
        return "rnn"
    if isinstance(model, LSTM):
        return "lstm"
    raise ValueError(f"model must be an NMRNN, LowRankRNN, VanillaRNN or LSTM, got {type(model).__name__}")


def to_reference_params(model: RecurrentModel, arrays: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Rename a parameter (or gradient) dict of ``model`` to the authors' key names."""
    names = NAMES[reference_kind(model)]
    checked = model.check_params(arrays, name="arrays")
    return {names[k]: np.asarray(v) for k, v in checked.items()}
