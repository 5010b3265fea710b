"""The optimiser against hand computations of optax's clip + adamw formulas."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nmrnn_np.optim import (AdamState, ClipAdamW, NonFiniteStep, Optimizer, clip_by_global_norm, clip_by_value, global_norm,
                            make_optimizer)


def hand_clip_adamw(p, grads, lr, c=1.0, b1=0.9, b2=0.999, eps=1e-8, wd=1e-4):
    """Scalar-by-scalar re-derivation of optax.chain(clip(c), adamw(lr)) on a flat list."""
    m = [0.0] * len(p)
    v = [0.0] * len(p)
    p = list(p)
    history = []
    for t, g in enumerate(grads, start=1):
        for i in range(len(p)):
            gi = min(max(g[i], -c), c)
            m[i] = b1 * m[i] + (1 - b1) * gi
            v[i] = b2 * v[i] + (1 - b2) * gi * gi
            m_hat = m[i] / (1 - b1 ** t)
            v_hat = v[i] / (1 - b2 ** t)
            p[i] = p[i] - lr * (m_hat / (math.sqrt(v_hat) + eps) + wd * p[i])
        history.append((list(p), list(m), list(v)))
    return history


def test_two_steps_match_hand_computation():
    # entries above and below the clip level, negative ones, a bias-like 1-d array
    params = {"W": np.array([[0.5, -1.2], [2.0, 0.0]]), "b": np.array([0.3, -0.7])}
    g1 = {"W": np.array([[3.0, -0.2], [0.5, -5.0]]), "b": np.array([0.01, 1.5])}
    g2 = {"W": np.array([[-0.4, 2.5], [0.0, 0.9]]), "b": np.array([-2.0, 0.2])}
    lr = 0.05
    opt = ClipAdamW(lr)
    state = opt.init(params)
    p1, state = opt.update(g1, state, params)
    p2, state = opt.update(g2, state, p1)

    flat = lambda d: list(np.concatenate([d["W"].ravel(), d["b"]]))  # noqa: E731
    (hp1, _, _), (hp2, hm2, hv2) = hand_clip_adamw(flat(params), [flat(g1), flat(g2)], lr)
    np.testing.assert_allclose(flat(p1), hp1, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(flat(p2), hp2, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(flat(state.mu), hm2, rtol=1e-14)
    np.testing.assert_allclose(flat(state.nu), hv2, rtol=1e-14)
    assert state.count == 2


def test_first_step_closed_form():
    # at t = 1, m_hat = g~ and v_hat = g~^2, so the step is -lr (sign(g~) |g~|/(|g~|+eps) + wd p)
    p = {"a": np.array([1.0, -2.0, 0.5])}
    g = {"a": np.array([10.0, -0.25, 0.0])}
    lr, wd = 0.1, 1e-4
    new, state = ClipAdamW(lr).update(g, ClipAdamW(lr).init(p), p)
    gc = np.array([1.0, -0.25, 0.0])
    expected = p["a"] - lr * (gc / (np.abs(gc) + 1e-8) + wd * p["a"])
    np.testing.assert_allclose(new["a"], expected, rtol=1e-15)
    # the moments saw the CLIPPED gradient
    np.testing.assert_allclose(state.mu["a"], 0.1 * gc, rtol=1e-15)
    np.testing.assert_allclose(state.nu["a"], 0.001 * gc ** 2, rtol=1e-15)


def test_weight_decay_is_decoupled_and_scaled_by_lr():
    p = {"a": np.array([4.0])}
    zero = {"a": np.array([0.0])}
    opt = Optimizer(lr=0.5, weight_decay=0.1)
    new, _ = opt.update(zero, opt.init(p), p)
    # zero gradient: only the decay acts, p - lr * wd * p
    assert new["a"][0] == pytest.approx(4.0 - 0.5 * 0.1 * 4.0, rel=1e-15)
    adam = make_optimizer("adam", 0.5)
    assert adam.weight_decay == 0.0
    new, _ = adam.update(zero, adam.init(p), p)
    assert new["a"][0] == 4.0


def test_clipping_functions():
    g = {"a": np.array([3.0, -4.0]), "b": np.array([[0.5]])}
    np.testing.assert_array_equal(clip_by_value(g, 1.0)["a"], [1.0, -1.0])
    np.testing.assert_array_equal(clip_by_value(g, 1.0)["b"], [[0.5]])
    assert global_norm(g) == pytest.approx(math.sqrt(25.25))
    clipped = clip_by_global_norm(g, 1.0)
    assert global_norm(clipped) == pytest.approx(1.0, rel=1e-14)
    np.testing.assert_allclose(clipped["a"], g["a"] / math.sqrt(25.25))
    small = clip_by_global_norm(g, 10.0)
    np.testing.assert_array_equal(small["a"], g["a"])
    # the optimiser uses the norm clip when asked
    opt = make_optimizer("clip_norm_adamw", 0.1)
    _, state = opt.update(g, opt.init(g), g)
    np.testing.assert_allclose(state.mu["a"], 0.1 * clipped["a"], rtol=1e-14)


def test_inputs_are_not_modified_and_state_round_trips():
    p = {"a": np.array([1.0, 2.0])}
    g = {"a": np.array([0.3, -0.1])}
    p_copy, g_copy = {"a": p["a"].copy()}, {"a": g["a"].copy()}
    opt = ClipAdamW(0.01)
    s0 = opt.init(p)
    _, s1 = opt.update(g, s0, p)
    np.testing.assert_array_equal(p["a"], p_copy["a"])
    np.testing.assert_array_equal(g["a"], g_copy["a"])
    assert s0.count == 0 and np.all(s0.mu["a"] == 0)
    back = AdamState.from_arrays(s1.to_arrays("opt/"), "opt/")
    assert back.count == 1
    np.testing.assert_array_equal(back.mu["a"], s1.mu["a"])
    np.testing.assert_array_equal(back.nu["a"], s1.nu["a"])


def test_make_optimizer_names_and_defaults():
    authors = make_optimizer("clip_adamw")
    assert authors == Optimizer(lr=1e-2, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-4, clip=1.0)
    assert make_optimizer("adam", 1e-2, eps=1e-7).eps == 1e-7
    assert make_optimizer(authors, 0.5).lr == 0.5
    assert make_optimizer(authors) is authors
    assert Optimizer(**authors.config()) == authors
    with pytest.raises(ValueError, match="clip_adamw"):
        make_optimizer("sgd", 0.1)
    with pytest.raises(TypeError, match="momentum.*known keyword arguments"):
        make_optimizer("adam", 0.1, momentum=0.9)


@pytest.mark.parametrize("kwargs, word", [
    (dict(lr=0.0), "lr"), (dict(lr=float("nan")), "lr"), (dict(lr=1e-3, b1=1.0), "b1"),
    (dict(lr=1e-3, b2=-0.1), "b2"), (dict(lr=1e-3, weight_decay=-1), "weight_decay"),
    (dict(lr=1e-3, clip=0.0), "clip"), (dict(lr=1e-3, clip=1.0, clip_norm=1.0), "at most one"),
])
def test_bad_hyperparameters(kwargs, word):
    with pytest.raises(ValueError, match=word):
        Optimizer(**kwargs)


def test_update_rejects_mismatched_keys_and_shapes():
    opt = ClipAdamW(0.1)
    p = {"a": np.zeros(2)}
    with pytest.raises(ValueError, match="same"):
        opt.update({"b": np.zeros(2)}, opt.init(p), p)
    with pytest.raises(ValueError, match="shape"):
        opt.update({"a": np.zeros(3)}, opt.init(p), p)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")   # the overflow of the last case
@pytest.mark.parametrize("opt", [ClipAdamW(1e-2), Optimizer(1e-2), Optimizer(1e-2, clip_norm=1.0)],
                         ids=["clip", "plain", "clip_norm"])
def test_trainer_step_names_non_finite_arrays(opt):
    """The trainer's step (``_apply(check_finite=True)``) tests the concatenated vector once and names the arrays."""
    params = {"a": np.ones((2, 3)), "b": np.ones(4), "c": np.ones(1)}
    state = opt.init(params)
    grads = {"a": np.zeros((2, 3)), "b": np.array([0.0, np.inf, 0.0, 0.0]), "c": np.array([np.nan])}
    with pytest.raises(NonFiniteStep) as info:
        opt._apply(grads, state, params, check_finite=True)
    assert info.value.what == "gradient" and info.value.keys == ["b", "c"]
    # an inf gradient is caught before clipping would make it finite
    with pytest.raises(NonFiniteStep):
        opt._apply({**grads, "c": np.zeros(1)}, state, params, check_finite=True)
    # finite gradients whose update overflows the parameters
    huge = {k: np.full_like(v, 1.7e308) for k, v in params.items()}
    big = Optimizer(1e308) if opt.clip is None else ClipAdamW(1e308)
    with pytest.raises(NonFiniteStep) as info:
        big._apply({k: -np.ones_like(v) for k, v in params.items()}, big.init(huge), huge, check_finite=True)
    assert info.value.what == "update" and info.value.keys == ["a", "b", "c"]
    # without the check, and on finite steps, the same numbers as the public update
    good = {k: np.full_like(v, 0.3) for k, v in params.items()}
    checked, _ = opt._apply(good, state, params, check_finite=True)
    public, _ = opt.update(good, state, params)
    assert all(np.array_equal(checked[k], public[k]) for k in params)
