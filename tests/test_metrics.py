"""Tests of nmrnn_np.metrics."""
from __future__ import annotations

import numpy as np
import pytest

from nmrnn_np.metrics import (circular_distance, decode_angle, fixation_off_step, masked_l2, percent_correct,
                              trial_correct)
from nmrnn_np.tasks import Multitask


@pytest.fixture(scope="module")
def batch():
    return Multitask().sample(123, 300)


def _with_response(targets, theta, amplitude=1.0):
    """Copy of targets whose response channels point at theta (per trial) at every step."""
    out = targets.copy()
    out[:, :, 1] = amplitude * np.sin(theta)[:, None]
    out[:, :, 2] = amplitude * np.cos(theta)[:, None]
    return out


def _authors_percent_correct(inputs, targets, outputs):
    """Independent per-trial re-statement of the official rule (arctan(sin/cos)), for comparison."""
    correct = 0
    for u, y_star, y in zip(inputs, targets, outputs):
        off = u[:, 0] < 0.5
        fix_off = int(np.argmax(off))
        if np.all(y[:fix_off, 0] > 0.5):
            with np.errstate(divide="ignore", invalid="ignore"):
                d = np.arctan(y_star[-1, 1] / y_star[-1, 2]) - np.arctan(y[-1, 1] / y[-1, 2])
            if min(abs(d), 2 * np.pi - abs(d)) < np.pi / 10:
                correct += 1
    return correct / len(inputs)


# ----------------------------------------------------------------------------
# masked L2
# ----------------------------------------------------------------------------

def test_masked_l2_formula():
    rng = np.random.default_rng(0)
    y, t = rng.normal(size=(4, 6, 2)), rng.normal(size=(4, 6, 2))
    m = (rng.random((4, 6, 2)) < 0.5).astype(float)
    assert masked_l2(y, t, m) == pytest.approx(np.sum(m * (y - t) ** 2) / np.sum(m))
    assert masked_l2(y, t) == pytest.approx(np.mean((y - t) ** 2))
    m1 = (rng.random((4, 6, 1)) < 0.5).astype(float)
    full = np.repeat(m1, 2, axis=2)
    assert masked_l2(y, t, m1) == pytest.approx(masked_l2(y, t, full))
    assert masked_l2(t, t, m) == 0.0


def test_masked_l2_last_step_is_element_finder_loss():
    from nmrnn_np.tasks import ElementFinder
    b = ElementFinder().sample(0, 16)
    outputs = np.random.default_rng(1).normal(size=b.targets.shape)
    assert masked_l2(outputs, b.targets, b.mask) == pytest.approx(np.mean((outputs[:, -1, 0] - b.answer) ** 2))


def test_masked_l2_validation():
    y = np.zeros((2, 3, 1))
    with pytest.raises(ValueError, match="targets"):
        masked_l2(y, np.zeros((2, 4, 1)))
    with pytest.raises(ValueError, match="mask"):
        masked_l2(y, y, np.zeros((2, 3, 2)))
    with pytest.raises(ValueError, match="mask"):
        masked_l2(y, y, np.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match="outputs"):
        masked_l2(np.zeros((2, 3)), y)


# ----------------------------------------------------------------------------
# angles
# ----------------------------------------------------------------------------

def test_decode_angle_rules():
    theta = np.array([0.3, 2.0, -2.5, 3.0])
    np.testing.assert_allclose(decode_angle(np.sin(theta), np.cos(theta)), theta)
    np.testing.assert_allclose(decode_angle(3 * np.sin(theta), 3 * np.cos(theta)), theta)   # amplitude-free
    auth = decode_angle(np.sin(theta), np.cos(theta), rule="authors")
    assert np.all(np.abs(auth) <= np.pi / 2)
    np.testing.assert_allclose(np.mod(auth - theta, np.pi), 0, atol=1e-12)   # only defined mod pi
    with pytest.raises(ValueError, match="rule"):
        decode_angle(0.0, 1.0, rule="arctan")


def test_circular_distance():
    np.testing.assert_allclose(circular_distance(0.1, 2 * np.pi - 0.1), 0.2)
    np.testing.assert_allclose(circular_distance(np.pi, -np.pi), 0.0, atol=1e-12)
    np.testing.assert_allclose(circular_distance(0.0, np.pi), np.pi)
    np.testing.assert_allclose(circular_distance(5 * np.pi, 0.5), np.pi - 0.5)


def test_fixation_off_step():
    u = np.ones((2, 10, 3))
    u[0, 4:, 0] = 0.0
    np.testing.assert_array_equal(fixation_off_step(u), [4, 10])


# ----------------------------------------------------------------------------
# percent correct
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("rule", ["arctan2", "authors"])
def test_targets_score_100_percent(batch, rule):
    assert percent_correct(batch.inputs, batch.targets, batch.targets, rule=rule) == 1.0
    assert percent_correct(batch.inputs, batch.targets, 0.6 * batch.targets + 0.55 * (batch.targets[..., :1] > 0),
                           rule=rule) == 1.0


@pytest.mark.parametrize("rule", ["arctan2", "authors"])
def test_breaking_fixation_scores_0_percent(batch, rule):
    broken = batch.targets.copy()
    broken[np.arange(len(batch)), batch.fix_off - 1, 0] = 0.2    # one step before fix-off
    assert percent_correct(batch.inputs, batch.targets, broken, rule=rule) == 0.0
    # nothing is required after fix-off: a fixation output that never drops still counts
    never_released = batch.targets.copy()
    never_released[:, :, 0] = 0.9
    assert percent_correct(batch.inputs, batch.targets, never_released, rule=rule) == 1.0


def test_opposite_response_wrong_with_arctan2_but_correct_under_authors_rule(batch):
    opposite = _with_response(batch.targets, batch.theta_out + np.pi)
    assert percent_correct(batch.inputs, batch.targets, opposite) == 0.0
    assert percent_correct(batch.inputs, batch.targets, opposite, rule="authors") == 1.0
    assert not trial_correct(batch.inputs, batch.targets, opposite).any()


def test_authors_rule_fails_near_vertical_targets():
    """Near +-pi/2 arctan(sin/cos) flips sign: a response 0.05 rad away counts as wrong."""
    task = Multitask(("delay_pro",))
    b = task.sample(0, 1)
    targets = _with_response(b.targets, np.array([np.pi / 2 - 0.02]))
    outputs = _with_response(b.targets, np.array([np.pi / 2 + 0.03]))
    assert percent_correct(b.inputs, targets, outputs) == 1.0
    assert percent_correct(b.inputs, targets, outputs, rule="authors") == 0.0


def test_angular_tolerance_is_pi_over_10(batch):
    inside = _with_response(batch.targets, batch.theta_out + 0.99 * np.pi / 10, amplitude=0.3)
    outside = _with_response(batch.targets, batch.theta_out - 1.01 * np.pi / 10, amplitude=2.0)
    assert percent_correct(batch.inputs, batch.targets, inside) == 1.0
    assert percent_correct(batch.inputs, batch.targets, outside) == 0.0
    assert percent_correct(batch.inputs, batch.targets, outside, tolerance=np.pi / 5) == 1.0


def test_only_the_last_step_is_decoded(batch):
    out = batch.targets.copy()
    out[:, :-1, 1:] = -out[:, :-1, 1:]          # wrong everywhere but the last step
    assert percent_correct(batch.inputs, batch.targets, out) == 1.0
    out = batch.targets.copy()
    out[:, -1, 1:] = -out[:, -1, 1:]
    assert percent_correct(batch.inputs, batch.targets, out) == 0.0


def test_mixed_batch_fraction_and_agreement_with_authors_rule(batch):
    rng = np.random.default_rng(5)
    n = len(batch)
    theta = batch.theta_out + rng.choice([0.0, 0.05, 0.5, np.pi], size=n)
    out = _with_response(batch.targets, theta)
    out[:, :, 0] = batch.targets[:, :, 0]
    breaks = rng.random(n) < 0.3
    out[breaks, 0, 0] = 0.0
    expected = (~breaks) & (np.abs(theta - batch.theta_out) < np.pi / 10)
    np.testing.assert_array_equal(trial_correct(batch.inputs, batch.targets, out), expected)
    assert percent_correct(batch.inputs, batch.targets, out) == pytest.approx(expected.mean())
    noisy = out + 0.3 * rng.normal(size=out.shape)
    assert percent_correct(batch.inputs, batch.targets, noisy, rule="authors") == pytest.approx(
        _authors_percent_correct(batch.inputs, batch.targets, noisy))


def test_nan_outputs_are_wrong(batch):
    out = batch.targets.copy()
    out[:5, -1, 1] = np.nan
    out[5:10, 0, 0] = np.nan
    correct = trial_correct(batch.inputs, batch.targets, out)
    assert not correct[:10].any() and correct[10:].all()


def test_percent_correct_validation(batch):
    u, t = batch.inputs, batch.targets
    with pytest.raises(ValueError, match="outputs"):
        percent_correct(u, t, t[:, :, :2])
    with pytest.raises(ValueError, match="targets"):
        percent_correct(u, t[:, :, :2], t[:, :, :2])
    with pytest.raises(ValueError, match="inputs"):
        percent_correct(u[:, :50], t, t)
    with pytest.raises(ValueError, match="inputs"):
        percent_correct(u[0], t, t)
    with pytest.raises(ValueError, match="rule"):
        percent_correct(u, t, t, rule="arctan")
    result = percent_correct(u, t, t)
    assert isinstance(result, float) and 0.0 <= result <= 1.0
