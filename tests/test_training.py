"""The trainer: best parameters, frozen groups, minibatches, logs, checkpoints, resume, divergence."""
from __future__ import annotations

import json

import autograd.numpy as anp
import numpy as np
import pytest

import nmrnn_np as nm
from nmrnn_np.losses import masked_mse
from nmrnn_np.optim import Optimizer
from nmrnn_np.training import TrainingDivergedError, load_checkpoint, train, trainable_keys

N_TRIALS, T = 6, 8


def tiny_nmrnn():
    return nm.NMRNN(N=5, K=2, M=3, U=2, O=1)


def tiny_data(model=None, seed=1, mask=True):
    model = model or tiny_nmrnn()
    g = np.random.default_rng(seed)
    inputs = g.standard_normal((N_TRIALS, T, model.n_inputs))
    targets = 0.3 * g.standard_normal((N_TRIALS, T, model.n_outputs))
    m = (g.random((N_TRIALS, T)) > 0.2).astype(float) if mask else None
    m = None if m is None else np.maximum(m, np.eye(N_TRIALS, T))  # every trial keeps a nonzero weight
    return inputs, targets, m


def same(a: dict, b: dict) -> bool:
    """Bit-identical dicts of arrays."""
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes() for k in a)


KW = dict(backend="numpy", progress=False)


def test_full_batch_training_lowers_the_loss_and_keeps_the_best():
    model = tiny_nmrnn()
    params = model.init_params(0)
    data = tiny_data(model)
    res = train(model, params, data, steps=12, lr=0.05, **KW)
    assert res.stopped == "completed" and res.steps_done == 12 and res.losses.shape == (12,)
    assert res.losses[-1] < 0.8 * res.losses[0]
    assert res.best_step == int(np.argmin(res.losses)) and res.best_loss == res.losses.min()
    # the loss of step k is the loss of the parameters before update k
    assert model.loss(res.best_params, *data, backend="numpy") == pytest.approx(res.best_loss, rel=1e-13)
    assert model.loss(params, *data, backend="numpy") == pytest.approx(res.losses[0], rel=1e-13)
    assert res.trainable == tuple(model.param_shapes()) and res.opt_state.count == 12
    assert res.wall_time > 0


def test_trainable_names_resolve_keys_and_groups():
    model = tiny_nmrnn()
    assert trainable_keys(model, "nm") == ("W_z", "B_z", "A", "a")
    assert trainable_keys(model, ["C", "input"]) == ("B_x", "C", "B_z")
    assert trainable_keys(model, None) == tuple(model.param_shapes())
    with pytest.raises(ValueError, match=r"unknown name\(s\) \['bogus'\].*'L'.*'nm'"):
        trainable_keys(model, ("nm", "bogus"))
    with pytest.raises(ValueError, match="empty"):
        trainable_keys(model, [])


def test_frozen_parameters_are_bit_identical_even_with_weight_decay():
    model = tiny_nmrnn()
    params = model.init_params(3)
    # a large decay would visibly shrink any array it touched
    res = train(model, params, tiny_data(model), steps=3, optimizer=Optimizer(lr=0.05, weight_decay=0.5, clip=1.0),
                trainable=("nm",), **KW)
    nm_keys = set(model.groups["nm"])
    assert same({k: v for k, v in res.params.items() if k not in nm_keys},
                {k: v for k, v in params.items() if k not in nm_keys})
    assert all(not np.array_equal(res.params[k], params[k]) for k in nm_keys)
    assert set(res.opt_state.mu) == nm_keys


@pytest.mark.parametrize("make", [
    lambda: nm.NMRNN(N=4, K=1, M=2, U=2, O=1), lambda: nm.LowRankRNN(N=4, K=1, U=2, O=1),
    lambda: nm.VanillaRNN(N=4, U=2, O=1), lambda: nm.LSTM(N=3, U=2, O=1)])
def test_every_model_trains_only_its_input_weights(make):
    model = make()
    params = model.init_params(0)
    res = train(model, params, tiny_data(model), steps=2, lr=0.01, trainable="input", **KW)
    inp = set(model.groups["input"])
    for k in params:
        assert np.array_equal(res.params[k], params[k]) is (k not in inp), k


def test_minibatches_follow_the_documented_draw_and_per_trial_states():
    model = tiny_nmrnn()
    params = model.init_params(0)
    data = tiny_data(model)
    x0 = np.random.default_rng(9).standard_normal((N_TRIALS, model.N))
    res = train(model, params, data, steps=1, batch_size=3, rng=5, initial_states={"x0": x0}, **KW)
    idx = np.random.default_rng(5).choice(N_TRIALS, size=3, replace=False)
    expected = model.loss(params, data[0][idx], data[1][idx], data[2][idx], backend="numpy", x0=x0[idx])
    assert res.losses[0] == pytest.approx(expected, rel=1e-13)
    full = model.loss(params, *data, backend="numpy", x0=x0)
    assert abs(res.losses[0] - full) > 1e-6  # really a subset


def test_json_log_lines(tmp_path):
    model = tiny_nmrnn()
    log = tmp_path / "log.jsonl"
    res = train(model, model.init_params(0), tiny_data(model), steps=5, lr=0.05, log_path=log, log_every=2, **KW)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 2, 4]
    for r in records:
        assert set(r) == {"step", "loss", "best_loss", "wall_time"}
        assert r["loss"] == res.losses[r["step"]]
        assert r["best_loss"] == res.losses[: r["step"] + 1].min()
    assert records[-1]["wall_time"] >= records[0]["wall_time"] >= 0


def test_progress_bar_only_when_asked(capsys):
    model = tiny_nmrnn()
    data = tiny_data(model)
    train(model, model.init_params(0), data, steps=1, backend="numpy", progress=True)
    assert "loss=" in capsys.readouterr().err
    train(model, model.init_params(0), data, steps=1, backend="numpy")  # stderr is not a terminal here
    assert capsys.readouterr().err == ""


def run_kw(tmp_path, name):
    return dict(steps=10, lr=0.05, batch_size=3, rng=7, checkpoint_every=4, log_path=tmp_path / f"{name}.jsonl",
                checkpoint_path=tmp_path / f"{name}.npz", **KW)


def assert_same_run(a, b):
    assert same(a.params, b.params) and same(a.best_params, b.best_params)
    assert a.losses.tobytes() == b.losses.tobytes()
    assert (a.best_step, a.best_loss, a.steps_done) == (b.best_step, b.best_loss, b.steps_done)
    assert same(a.opt_state.mu, b.opt_state.mu) and same(a.opt_state.nu, b.opt_state.nu)


def test_resume_after_ctrl_c_is_bit_identical(tmp_path):
    model = tiny_nmrnn()
    params = model.init_params(0)
    data = tiny_data(model)
    whole = train(model, params, data, **run_kw(tmp_path, "whole"))
    ck = load_checkpoint(tmp_path / "whole.npz")  # the final checkpoint holds the end of the run
    assert ck["step"] == 10 and same(ck["params"], whole.params)

    def interrupt(step, loss, p):
        if step == 5:
            raise KeyboardInterrupt

    kw = run_kw(tmp_path, "cut")
    with pytest.raises(KeyboardInterrupt):
        train(model, params, data, callback=interrupt, **kw)
    ck = load_checkpoint(kw["checkpoint_path"])
    assert ck["step"] == 6 and ck["losses"].tobytes() == whole.losses[:6].tobytes()
    assert json.loads(kw["log_path"].read_text().splitlines()[-1])["event"] == "interrupted"
    # a different seed must not matter: the checkpoint's rng state is restored
    resumed = train(model, params, data, resume=True, **{**kw, "rng": 123})
    assert_same_run(resumed, whole)
    records = [json.loads(line) for line in kw["log_path"].read_text().splitlines()]
    # the resumed run appended to the log: steps 0-5, the interruption, the resumption, steps 6-9
    assert [r["step"] for r in records if "event" not in r] == list(range(10))
    assert [(r["event"], r["step"]) for r in records if "event" in r] == [("interrupted", 6), ("resumed", 6)]


def test_resume_from_a_shorter_run_is_bit_identical(tmp_path):
    model = tiny_nmrnn()
    params = model.init_params(1)
    data = tiny_data(model, mask=False)
    kw = run_kw(tmp_path, "a")
    whole = train(model, params, data, **kw)
    kw = run_kw(tmp_path, "b")
    assert not kw["checkpoint_path"].exists()
    first = train(model, params, data, resume=True, **{**kw, "steps": 3})  # no file yet: a fresh start
    assert first.steps_done == 3 and load_checkpoint(kw["checkpoint_path"])["step"] == 3
    assert_same_run(train(model, params, data, resume=True, **kw), whole)


def test_resume_checks_the_run(tmp_path):
    model = tiny_nmrnn()
    params = model.init_params(0)
    data = tiny_data(model)
    kw = run_kw(tmp_path, "c")
    train(model, params, data, **{**kw, "steps": 2})
    other = nm.NMRNN(N=5, K=2, M=4, U=2, O=1)
    with pytest.raises(ValueError, match="cannot resume.*M=3"):
        train(other, other.init_params(0), data, resume=True, **kw)
    with pytest.raises(ValueError, match="cannot resume.*trains"):
        train(model, params, data, resume=True, trainable="nm", **kw)
    with pytest.warns(UserWarning, match="optimizer"):
        res = train(model, params, data, resume=True, **{**kw, "lr": 0.01, "steps": 3})
    assert res.steps_done == 3
    with pytest.raises(ValueError, match="needs a checkpoint_path"):
        train(model, params, data, steps=2, resume=True, **KW)


def test_resume_rejects_non_finite_parameters_in_the_checkpoint(tmp_path):
    # the training steps skip the parameter checks (done once at the start): load_checkpoint checks a
    # checkpoint's parameters, so a damaged file cannot pass as a divergence
    model = tiny_nmrnn()
    params = model.init_params(0)
    data = tiny_data(model)
    kw = run_kw(tmp_path, "nan")
    train(model, params, data, **{**kw, "steps": 2})
    path = kw["checkpoint_path"]
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["params/L"] = np.full_like(arrays["params/L"], np.nan)
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"nan\.npz: params\['L'\] contains NaN"):
        train(model, params, data, resume=True, **kw)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    model = tiny_nmrnn()
    params = model.init_params(0)
    data = tiny_data(model)
    calls = []

    def poisoned(y, targets, mask):
        calls.append(1)  # one loss evaluation per step: NaN from step 5 on
        return masked_mse(y, targets, mask) * (np.nan if len(calls) > 5 else 1.0)

    kw = dict(steps=10, lr=0.05, checkpoint_every=2, checkpoint_path=tmp_path / "ck.npz",
              log_path=tmp_path / "log.jsonl", **KW)
    seen = {}

    def grab(step, loss, p):
        if step == 4:
            seen["bytes"] = kw["checkpoint_path"].read_bytes()

    with pytest.raises(TrainingDivergedError, match=r"step 5: the loss is nan.*checkpoint, at step 4") as info:
        train(model, params, data, loss=poisoned, callback=grab, **kw)
    err = info.value
    assert isinstance(err, FloatingPointError) and err.step == 5
    assert kw["checkpoint_path"].read_bytes() == seen["bytes"]  # untouched since step 4
    ck = load_checkpoint(kw["checkpoint_path"])
    assert ck["step"] == 4 and all(np.all(np.isfinite(v)) for v in ck["params"].values())
    res = err.result
    assert res.stopped == "non_finite" and res.steps_done == 5 and res.losses.shape == (5,)
    assert np.all(np.isfinite(res.losses)) and res.best_loss == res.losses.min()
    # the parameters handed back are those after five clean updates
    clean = train(model, params, data, steps=5, lr=0.05, **KW)
    assert same(res.params, clean.params) and same(res.best_params, clean.best_params)
    last = json.loads(kw["log_path"].read_text().splitlines()[-1])
    assert last["event"] == "non_finite" and last["step"] == 5 and last["loss"] is None


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_non_finite_gradient_names_the_parameter():
    # no QR of L here: its VJP (scipy solve_triangular) rejects NaN cotangents rather than passing them on
    model = nm.NMRNN(N=5, K=2, M=3, U=2, O=1, orthonormalize=False)

    def sqrt_at_zero(y, targets, mask):
        # finite value, but d sqrt(s)/ds is infinite at s = 0, so the gradient is NaN
        return masked_mse(y, targets, mask) + anp.sqrt(anp.sum(0.0 * y))

    with pytest.raises(TrainingDivergedError, match=r"step 0: the gradient of \['L'.*not finite") as info:
        train(model, model.init_params(0), tiny_data(model), steps=3, loss=sqrt_at_zero, **KW)
    assert info.value.result.steps_done == 0 and np.isinf(info.value.result.best_loss)


def test_callback_can_stop_and_ctrl_c_without_checkpoint_reraises(tmp_path):
    model = tiny_nmrnn()
    params = model.init_params(0)
    data = tiny_data(model)
    res = train(model, params, data, steps=10, callback=lambda step, loss, p: step == 1, **KW)
    assert res.stopped == "callback" and res.steps_done == 2

    def interrupt(step, loss, p):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(model, params, data, steps=3, callback=interrupt, **KW)


def test_bad_arguments():
    model = tiny_nmrnn()
    params = model.init_params(0)
    inputs, targets, mask = tiny_data(model)
    with pytest.raises(ValueError, match="data"):
        train(model, params, inputs, steps=1, **KW)
    with pytest.raises(ValueError, match="targets"):
        train(model, params, (inputs, targets[:, :-1]), steps=1, **KW)
    with pytest.raises(ValueError, match="batch_size"):
        train(model, params, (inputs, targets), steps=1, batch_size=N_TRIALS + 1, **KW)
    with pytest.raises(ValueError, match="steps"):
        train(model, params, (inputs, targets), steps=0, **KW)
    with pytest.raises(ValueError, match="optimizer"):
        train(model, params, (inputs, targets), steps=1, optimizer="sgd", **KW)
    with pytest.raises(ValueError, match="missing keys"):
        train(model, {k: v for k, v in params.items() if k != "L"}, (inputs, targets), steps=1, **KW)


# ----------------------------------------------------------------------------
# The authors' procedure: optimiser restarts every R steps, batches repeat per chunk
# ----------------------------------------------------------------------------
def test_restart_every_equals_separate_fresh_optimiser_runs():
    model = tiny_nmrnn()
    params = model.init_params(0)
    data = tiny_data(model)
    chunked = train(model, params, data, steps=6, restart_every=3, **KW)
    first = train(model, params, data, steps=3, **KW)
    second = train(model, first.params, data, steps=3, **KW)
    # moments zeroed and the step count (bias correction) restarted: two independent 3-step runs
    assert same(chunked.params, second.params)
    assert chunked.losses.tobytes() == np.concatenate([first.losses, second.losses]).tobytes()
    assert int(chunked.opt_state.count) == 3
    plain = train(model, params, data, steps=6, **KW)
    assert not same(plain.params, chunked.params)


def test_restart_every_repeats_the_minibatches_of_each_chunk(tmp_path):
    model = tiny_nmrnn()
    params = model.init_params(0)
    seen = []

    def sampler(rng):
        x = rng.standard_normal((3, 12, model.U))
        seen.append(x)
        return x, np.zeros((3, 12, model.O))
    train(model, params, sampler, steps=8, restart_every=4, rng=5, **KW)
    drawn = seen[1:]  # the first draw checks the sampler on a copy of the generator
    assert len(drawn) == 8 and not np.array_equal(drawn[0], drawn[1])
    for a, b in zip(drawn[:4], drawn[4:]):
        np.testing.assert_array_equal(a, b)
    # fixed data with minibatches: the same trials per chunk; and a resume mid-chunk keeps the pattern
    data = tiny_data(model)
    kw = dict(steps=8, batch_size=2, restart_every=4, rng=3, **KW)
    whole = train(model, params, data, **kw)
    ck = tmp_path / "c.npz"
    train(model, params, data, checkpoint_path=ck, **{**kw, "steps": 6})
    resumed = train(model, params, data, checkpoint_path=ck, resume=True, **kw)
    assert same(resumed.params, whole.params) and resumed.losses.tobytes() == whole.losses.tobytes()
    with pytest.raises(ValueError, match="restart_every"):
        train(model, params, data, checkpoint_path=ck, resume=True, **{**kw, "restart_every": 2})


def test_chunk_end_rule_keeps_the_parameters_at_the_end_of_the_best_chunk():
    model = tiny_nmrnn()
    params = model.init_params(0)
    data = tiny_data(model)
    res = train(model, params, data, steps=9, restart_every=3, best_rule="chunk_end", **KW)
    ends = [2, 5, 8]
    k = min(ends, key=lambda i: res.losses[i])
    assert res.best_step == k + 1 and res.best_loss == res.losses[k]
    upto = train(model, params, data, steps=k + 1, restart_every=3, **KW)
    assert same(res.best_params, upto.params)  # the parameters after the chunk's last update
    with pytest.raises(ValueError, match="chunk_end"):
        train(model, params, data, steps=3, best_rule="chunk_end", **KW)
    with pytest.raises(ValueError, match="best_rule"):
        train(model, params, data, steps=3, best_rule="last", **KW)
