"""The numba fast path of the low-rank models (NM-RNN, LR-RNN) against the NumPy reference.

Oracles: the readable NumPy step (trajectories), plain autograd through it
(gradients), central finite differences of the numba loss itself, the
authors' stored outputs. The kernels' tanh is tested in test_kernel_scalar.py.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import nmrnn_np as nm
from conftest import REFERENCE_DIR, load_reference

pytestmark = pytest.mark.skipif(not nm.HAVE_NUMBA, reason="the numba fast path needs numba")

from nmrnn_np._kernels import lowrank as K  # noqa: E402  (after the skip marker on purpose)

# ----------------------------------------------------------------------------
# every option combination of the NM-RNN (2^8 = 256), plus the LR-RNN's
# ----------------------------------------------------------------------------
NM_OPTIONS = ("global_signal", "orthonormalize", "divide_by_N", "feedback", "readout_bias", "context",
              "linear", "tied")
NM_VARIANTS = [dict(zip(NM_OPTIONS, flags)) for flags in itertools.product((False, True), repeat=len(NM_OPTIONS))]
LR_VARIANTS = [dict(zip(("orthonormalize", "divide_by_N", "readout_bias", "linear", "tied"), flags))
               for flags in itertools.product((False, True), repeat=5)]

# sizes chosen all different, so a wrong axis cannot pass by accident
B, T, N, RANK, M, U, O = 3, 11, 7, 3, 4, 5, 2


def _variant_id(v):
    return "-".join(k for k, on in v.items() if on) or "base"


def _variant_seed(v):
    """A different seed for every variant: its flags read as a binary number."""
    return int("".join("1" if on else "0" for on in v.values()), 2)


def make_nmrnn(v, N=N, K=RANK):
    return nm.NMRNN(N=N, K=K, M=M, U=U, O=O, tau_x=4.0, tau_z=9.0,
                    signal_dim=1 if v["global_signal"] else None, orthonormalize=v["orthonormalize"],
                    divide_by_N=v["divide_by_N"], feedback=v["feedback"], readout_bias=v["readout_bias"],
                    U_x=3 if v["context"] else None, phi="linear" if v["linear"] else "tanh", tied=v["tied"])


def make_lrrnn(v, N=N, K=RANK):
    return nm.LowRankRNN(N=N, K=K, U=U, O=O, tau=4.0, orthonormalize=v["orthonormalize"],
                         divide_by_N=v["divide_by_N"], readout_bias=v["readout_bias"],
                         phi="linear" if v["linear"] else "tanh", tied=v["tied"])


def problem(model, seed):
    """Random parameters, inputs with exact zeros, targets, a 0/1 mask, random initial states."""
    rng = np.random.default_rng(seed)
    params = model.init_params(rng)
    # unit-norm columns of L, as after orthonormalisation, so no variant explodes over T steps
    params["L"] = params["L"] / np.linalg.norm(params["L"], axis=0)
    inputs = rng.normal(size=(B, T, model.U)) * (rng.random((B, T, model.U)) < 0.5)   # exact zeros too
    targets = rng.normal(size=(B, T, model.O))
    mask = (rng.random((B, T)) < 0.7).astype(float)
    mask[0, -1] = 1.0
    states = {f"{s}0": rng.normal(size=(B, n)) for s, n in model.state_sizes().items()}
    return params, inputs, targets, mask, states


def assert_grads_close(g_fast, g_ref, rtol):
    assert set(g_fast) == set(g_ref)
    for k in g_ref:
        scale = np.max(np.abs(g_ref[k]))
        np.testing.assert_allclose(g_fast[k], g_ref[k], rtol=rtol, atol=1e-12 * scale, err_msg=k)


def directional_fd(model, params, args, kwargs, key, direction, h):
    """Central difference of the numba loss along ``direction`` on ``params[key]``."""
    def loss(eps):
        p = dict(params, **{key: params[key] + eps * direction})
        return model.loss(p, *args, backend="numba", **kwargs)
    return (loss(h) - loss(-h)) / (2 * h)


def check_model(model, seed, fd=True):
    params, inputs, targets, mask, states = problem(model, seed)
    a = model.simulate(params, inputs, backend="numpy", **states).as_dict()
    b = model.simulate(params, inputs, backend="numba", **states).as_dict()
    assert set(a) == set(b)
    for k in a:
        assert b[k].shape == a[k].shape and b[k].flags.c_contiguous
        np.testing.assert_allclose(b[k], a[k], rtol=1e-12, atol=1e-12, err_msg=k)

    loss_np, g_np = model.loss_and_grad(params, inputs, targets, mask, backend="numpy", **states)
    loss_nb, g_nb = model.loss_and_grad(params, inputs, targets, mask, backend="numba", **states)
    assert loss_nb == pytest.approx(loss_np, rel=1e-12)
    assert_grads_close(g_nb, g_np, rtol=1e-10)
    if not fd:
        return
    rng = np.random.default_rng(seed + 1)
    for key, g in g_nb.items():
        v = rng.normal(size=g.shape)
        h = 1e-5 * max(1.0, np.max(np.abs(params[key])))
        fd_value = directional_fd(model, params, (inputs, targets, mask), states, key, v, h)
        assert np.sum(g * v) == pytest.approx(fd_value, rel=1e-6, abs=1e-9), key


@pytest.mark.parametrize("variant", NM_VARIANTS, ids=_variant_id)
def test_nmrnn_every_variant_matches_numpy_and_finite_differences(variant):
    check_model(make_nmrnn(variant), seed=_variant_seed(variant))


@pytest.mark.parametrize("variant", LR_VARIANTS, ids=_variant_id)
def test_lrrnn_every_variant_matches_numpy_and_finite_differences(variant):
    check_model(make_lrrnn(variant), seed=1000 + _variant_seed(variant))


@pytest.mark.parametrize("rank", [1, 2, 4, 5])
def test_ranks_other_than_three_and_a_single_output(rank):
    # K = 1 (S = K = 1 goes through the one-gain branch, which must equal the per-component one), O = 1;
    # K < 3 runs the generic loops, K = 4 its own fused loops (the multitask rank), K = 5 the fused
    # first-three-components loops plus one pass per extra; feedback and linear leave the fused
    # backward pass for the generic one
    v = dict.fromkeys(NM_OPTIONS, False)
    model = nm.NMRNN(N=6, K=rank, M=2, U=2, O=1)
    check_model(model, seed=3)
    check_model(make_nmrnn(dict(v, global_signal=True), K=rank), seed=4, fd=False)
    check_model(nm.LowRankRNN(N=7, K=rank, U=2, O=1), seed=5, fd=False)
    for option in ("feedback", "linear", "context"):
        check_model(make_nmrnn(dict(v, **{option: True}), K=rank), seed=6, fd=False)


def test_timing_task_size_agrees_to_1e12():
    # the benchmark configuration (N=100, K=3, M=5, U=3, O=1, B=40, T=110) on the task's inputs
    mwg = np.load(REFERENCE_DIR / "mwg_sample_all.npz")
    model = nm.NMRNN(N=100, K=3, M=5, U=3, O=1)
    params = model.init_params(0)
    inputs, targets = mwg["inputs"].astype(float), mwg["outputs"]
    a = model.simulate(params, inputs, backend="numpy")
    b = model.simulate(params, inputs, backend="numba")
    for k in ("y", "x", "z", "s"):
        np.testing.assert_allclose(getattr(b, k), getattr(a, k), rtol=1e-12, atol=1e-12, err_msg=k)
    loss_np, g_np = model.loss_and_grad(params, inputs, targets, backend="numpy")
    loss_nb, g_nb = model.loss_and_grad(params, inputs, targets, backend="numba")
    assert loss_nb == pytest.approx(loss_np, rel=1e-12)
    assert_grads_close(g_nb, g_np, rtol=1e-10)


# ----------------------------------------------------------------------------
# the authors' reference outputs through the numba backend
# ----------------------------------------------------------------------------
REFERENCE_CASES = [("nm_rnn_R3", "nm_rnn"), ("nm_rnn_R1", "nm_rnn"), ("nm_rnn_R3_K1", "nm_rnn"),
                   ("context_nm_rnn", "context_nm_rnn"), ("lr_rnn", "lr_rnn")]


@pytest.mark.parametrize("name,kind", REFERENCE_CASES)
@pytest.mark.parametrize("orth", [True, False])
def test_reference_outputs_losses_and_gradients_with_numba(name, kind, orth):
    d, ref = load_reference(name)
    hyper = (dict(tau_x=float(d["tau_x"]), tau_z=float(d["tau_z"])) if "tau_x" in d else dict(tau=float(d["tau"])))
    model, params = nm.from_reference_params(kind, ref, orthonormalize=orth, **hyper)
    inputs = d["inputs"] if "inputs" in d else np.concatenate([d["task_inputs"], d["context_inputs"]], axis=-1)
    states = {k: d[k] for k in ("x0", "z0") if k in d}
    suffix = "orthT" if orth else "orthF"

    traj = model.simulate(params, inputs, backend="numba", **states)
    for ours, theirs in (("y", "ys"), ("x", "xs"), ("z", "zs"), ("s", "s")):
        if f"{theirs}_{suffix}" in d:
            np.testing.assert_allclose(getattr(traj, ours), d[f"{theirs}_{suffix}"], rtol=1e-10, atol=1e-13)

    loss, grads = model.loss_and_grad(params, inputs, d["targets"], d["mask"], backend="numba", **states)
    np.testing.assert_allclose(loss, d[f"loss_{suffix}"], rtol=1e-8)
    ref_grads = nm.to_reference_params(model, grads)
    assert set(ref_grads) == set(ref)
    for key, g in ref_grads.items():
        np.testing.assert_allclose(g, d[f"grad_{suffix}_{key}"], rtol=1e-8, atol=1e-12, err_msg=key)


# ----------------------------------------------------------------------------
# structure: no N x N array, one compiled kernel, checks before numba runs
# ----------------------------------------------------------------------------
class _Spy:
    """Stands in for a kernel: records the shapes of its array arguments, then runs it (or refuses to)."""

    def __init__(self, kernel, allow=True):
        self.kernel, self.allow, self.shapes = kernel, allow, []

    def __call__(self, *args):
        if not self.allow:
            raise AssertionError("the kernel ran although the input was invalid")
        self.shapes.append([a.shape for a in args if isinstance(a, np.ndarray)])
        return self.kernel(*args)


def test_kernels_never_receive_an_N_by_N_array(monkeypatch):
    # N = 13 differs from every other size, so an (N, N) matrix would show up as two axes of 13
    model = nm.NMRNN(N=13, K=2, M=3, U=4, O=2, feedback=True)
    params, inputs, targets, mask, states = problem(model, 0)
    fwd, bwd = _Spy(K.lowrank_forward), _Spy(K.lowrank_backward)
    monkeypatch.setattr(K, "lowrank_forward", fwd)
    monkeypatch.setattr(K, "lowrank_backward", bwd)
    model.simulate(params, inputs, backend="numba", **states)
    model.loss_and_grad(params, inputs, targets, mask, backend="numba", **states)
    assert len(fwd.shapes) == 2 and len(bwd.shapes) == 1
    for call in fwd.shapes + bwd.shapes:
        for shape in call:
            assert shape.count(13) <= 1, shape
    # the factors enter as (K, N) arrays
    assert (2, 13) in fwd.shapes[0] and (2, 13) in bwd.shapes[0]


def test_one_compiled_kernel_serves_every_variant():
    for v in (NM_VARIANTS[0], NM_VARIANTS[-1], LR_VARIANTS[5]):
        model = make_nmrnn(v) if "feedback" in v else make_lrrnn(v)
        params, inputs, targets, mask, states = problem(model, 1)
        model.loss_and_grad(params, inputs, targets, mask, backend="numba", **states)
        model.simulate(params, inputs, backend="numba", **states)
    # one compilation per precision (float32 ones come from backend="numba32", tested elsewhere)
    for kernel in (K.lowrank_forward, K.lowrank_backward):
        assert len([sig for sig in kernel.signatures if "float64" in str(sig[0])]) == 1
        assert len(kernel.signatures) <= 2


@pytest.mark.parametrize("what", ["nan_input", "inf_input", "nan_param", "bad_shape", "bad_x0", "nan_target"])
def test_bad_input_is_rejected_before_numba_runs(monkeypatch, what):
    model = make_nmrnn(dict.fromkeys(NM_OPTIONS, False))
    params, inputs, targets, mask, states = problem(model, 2)
    monkeypatch.setattr(K, "lowrank_forward", _Spy(K.lowrank_forward, allow=False))
    monkeypatch.setattr(K, "lowrank_backward", _Spy(K.lowrank_backward, allow=False))
    if what == "nan_input":
        inputs[1, 2, 0] = np.nan
    elif what == "inf_input":
        inputs[0, 0, 4] = np.inf
    elif what == "nan_param":
        params["L"][0, 0] = np.nan
    elif what == "bad_shape":
        inputs = inputs[:, :, :-1]
    elif what == "bad_x0":
        states["x0"] = np.zeros((B, N + 1))
    elif what == "nan_target":
        targets[0, 0, 0] = np.nan
    match = {"nan_input": "inputs", "inf_input": "inputs", "nan_param": "params", "bad_shape": "inputs",
             "bad_x0": "x0", "nan_target": "targets"}[what]
    with pytest.raises(ValueError, match=match):
        if what != "nan_target":
            model.simulate(params, inputs, backend="numba", **states)
        model.loss_and_grad(params, inputs, targets, mask, backend="numba", **states)


@pytest.mark.parametrize("density", ["dense", "sparse"])
def test_dense_and_sparse_input_steps_match_numpy(density):
    # the kernels form B_x u_t (and the dB_x term) by one BLAS product at steps with more than 3
    # nonzero inputs per trial, and by one pass over N per nonzero input otherwise: both must agree
    model = nm.NMRNN(N=9, K=2, M=3, U=4, O=2)
    params, inputs, targets, mask, states = problem(model, seed=11)
    rng = np.random.default_rng(12)
    if density == "dense":
        inputs = rng.normal(size=inputs.shape)               # every entry nonzero: the product
    else:
        inputs = np.zeros(inputs.shape)                       # one nonzero entry per step: the passes
        inputs[0, :, 1] = rng.normal(size=inputs.shape[1])
    a = model.simulate(params, inputs, backend="numpy", **states).as_dict()
    b = model.simulate(params, inputs, backend="numba", **states).as_dict()
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-12, atol=1e-12, err_msg=k)
    loss_np, g_np = model.loss_and_grad(params, inputs, targets, mask, backend="numpy", **states)
    loss_nb, g_nb = model.loss_and_grad(params, inputs, targets, mask, backend="numba", **states)
    assert loss_nb == pytest.approx(loss_np, rel=1e-12)
    assert_grads_close(g_nb, g_np, rtol=1e-10)
