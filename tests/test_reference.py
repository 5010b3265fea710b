"""Conformance with the authors' JAX code: every stored trajectory, loss and gradient.

Tolerances from tests/reference/README.md: forward values and losses
rtol 1e-10, gradients rtol 1e-8 (atol 1e-12 for entries near zero).
"""
from __future__ import annotations

import numpy as np
import pytest

import nmrnn_np as nm
from conftest import load_reference

RNN_CASES = [("nm_rnn_R3", "nm_rnn"), ("nm_rnn_R1", "nm_rnn"), ("nm_rnn_R3_K1", "nm_rnn"),
             ("context_nm_rnn", "context_nm_rnn"), ("lr_rnn", "lr_rnn")]


def _hyper(d):
    if "tau_x" in d:
        return dict(tau_x=float(d["tau_x"]), tau_z=float(d["tau_z"]))
    return dict(tau=float(d["tau"]))


def _inputs(d):
    if "inputs" in d:
        return d["inputs"]
    return np.concatenate([d["task_inputs"], d["context_inputs"]], axis=-1)


def _states(d):
    return {k: d[k] for k in ("x0", "z0") if k in d}


@pytest.mark.parametrize("name,kind", RNN_CASES)
@pytest.mark.parametrize("orth", [True, False])
def test_lowrank_models_match_reference(name, kind, orth, backend):
    d, ref = load_reference(name)
    model, params = nm.from_reference_params(kind, ref, orthonormalize=orth, **_hyper(d))
    suffix = "orthT" if orth else "orthF"
    traj = model.simulate(params, _inputs(d), backend=backend, **_states(d))
    np.testing.assert_allclose(traj.y, d[f"ys_{suffix}"], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(traj.x, d[f"xs_{suffix}"], rtol=1e-10, atol=1e-13)
    if "zs_" + suffix in d:
        np.testing.assert_allclose(traj.z, d[f"zs_{suffix}"], rtol=1e-10, atol=1e-13)
    if "s_" + suffix in d:
        np.testing.assert_allclose(traj.s, d[f"s_{suffix}"], rtol=1e-10, atol=1e-13)
    if orth and "U_qr" in d:
        np.testing.assert_allclose(model.prepare(params)["L"], d["U_qr"], rtol=1e-12, atol=1e-14)

    loss, grads = model.loss_and_grad(params, _inputs(d), d["targets"], d["mask"], backend=backend,
                                      **_states(d))
    np.testing.assert_allclose(loss, d[f"loss_{suffix}"], rtol=1e-10)
    for key, g in nm.to_reference_params(model, grads).items():
        np.testing.assert_allclose(g, d[f"grad_{suffix}_{key}"], rtol=1e-8, atol=1e-12, err_msg=key)


def test_vanilla_rnn_matches_reference(backend):
    d, ref = load_reference("rnn")
    model, params = nm.from_reference_params("rnn", ref, tau=float(d["tau"]))
    traj = model.simulate(params, d["inputs"], x0=d["x0"], backend=backend)
    np.testing.assert_allclose(traj.y, d["ys"], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(traj.x, d["xs"], rtol=1e-10, atol=1e-13)
    loss, grads = model.loss_and_grad(params, d["inputs"], d["targets"], d["mask"], x0=d["x0"],
                                      backend=backend)
    np.testing.assert_allclose(loss, d["loss"], rtol=1e-10)
    for key, g in nm.to_reference_params(model, grads).items():
        np.testing.assert_allclose(g, d[f"grad_{key}"], rtol=1e-8, atol=1e-12, err_msg=key)


def test_lstm_matches_reference(backend):
    d, ref = load_reference("simple_lstm")
    model, params = nm.from_reference_params("lstm", ref)
    traj = model.simulate(params, d["inputs"], c0=d["c0"], h0=d["h0"], backend=backend)
    np.testing.assert_allclose(traj.y, d["ys"], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(traj.c[:, -1], d["c_final"], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(traj.h[:, -1], d["h_final"], rtol=1e-10, atol=1e-13)
    # the authors' LSTM loss is a plain mean (no mask)
    loss, grads = model.loss_and_grad(params, d["inputs"], d["targets"], loss="mse", c0=d["c0"], h0=d["h0"],
                                      backend=backend)
    np.testing.assert_allclose(loss, d["loss"], rtol=1e-10)
    for key, g in nm.to_reference_params(model, grads).items():
        np.testing.assert_allclose(g, d[f"grad_{key}"], rtol=1e-8, atol=1e-12, err_msg=key)


def test_round_trip_of_reference_names():
    d, ref = load_reference("nm_rnn_R3")
    model, params = nm.from_reference_params("nm_rnn", ref)
    back = nm.to_reference_params(model, params)
    assert set(back) == set(ref)
    for k in ref:
        np.testing.assert_array_equal(back[k], ref[k])


# ----------------------------------------------------------------------------
# the element-finder NM-RNN (feedback variant, 1/N, no QR, no readout bias)
# ----------------------------------------------------------------------------
def _eft_targets(d):
    """The authors' (B,) targets at the last step of a (B, T, 1) array (the other steps are ignored)."""
    B, T, _ = d["inputs"].shape
    targets = np.zeros((B, T, 1))
    targets[:, -1, 0] = d["targets"]
    return targets


def test_eft_nm_rnn_matches_reference(backend):
    d, ref = load_reference("eft_nm_rnn")
    model, params = nm.from_reference_params("eft_nm_rnn", ref, tau_x=float(d["tau_x"]), tau_z=float(d["tau_z"]))
    assert (model.feedback, model.divide_by_N, model.orthonormalize, model.readout_bias) == (True, True, False, False)
    assert (model.N, model.K, model.M, model.S, model.U, model.O) == (18, 8, 5, 8, 1, 1)
    assert model.n_params() == 497   # the paper's first configuration
    states = dict(x0=d["x0"], z0=d["z0"])
    traj = model.simulate(params, d["inputs"], backend=backend, **states)
    for ours, theirs in (("y", "ys"), ("x", "xs"), ("z", "zs"), ("s", "s")):
        np.testing.assert_allclose(getattr(traj, ours), d[theirs], rtol=1e-10, atol=1e-13, err_msg=ours)

    loss, grads = model.loss_and_grad(params, d["inputs"], _eft_targets(d), loss="last_step_mse",
                                      backend=backend, **states)
    np.testing.assert_allclose(loss, d["loss"], rtol=1e-10)
    ref_grads = nm.to_reference_params(model, grads)
    assert set(ref_grads) == set(ref)
    for key, g in ref_grads.items():
        np.testing.assert_allclose(g, d[f"grad_{key}"], rtol=1e-8, atol=1e-12, err_msg=key)


def test_eft_round_trip_and_wrong_options():
    d, ref = load_reference("eft_nm_rnn")
    model, params = nm.from_reference_params("eft_nm_rnn", ref, tau_x=2.0, tau_z=10.0)
    back = nm.to_reference_params(model, params)
    assert set(back) == set(ref)
    for k in ref:
        np.testing.assert_array_equal(back[k], ref[k])
    # the element-finder code has no QR option and no readout bias
    with pytest.raises(TypeError, match="orthonormalize"):
        nm.from_reference_params("eft_nm_rnn", ref, orthonormalize=True)
    with pytest.raises(ValueError, match="nm_sigmoid_bias"):
        nm.from_reference_params("eft_nm_rnn", {**ref, "readout_bias": np.zeros(1)})
    # a feedback NM-RNN with other options is none of the authors' models
    other = nm.NMRNN(N=18, K=8, M=5, U=1, O=1, feedback=True)
    with pytest.raises(ValueError, match="eft_nm_rnn"):
        nm.to_reference_params(other, other.init_params(0))
