"""Prediction 3 against a trained network: the quick rank-1 network's s(t) follows the hyperbola.

The network is the one-unit linear NM-RNN whose output side is set from the
theory (``theory.compare.readout_fixed_params``: d_eff = 2.5, so rho = 2) with
only the NM subnetwork trained on the paper's 40 Measure-Wait-Go trials. The
tolerance for each trained interval is ``theory.ramp.ramp_rounding_rmse``: the
RMSE a signal pays for following the hyperbola but returning smoothly to the
hold value s = 1 over the last half of the ramp (the NM signal, tau_z = 100,
cannot jump). ``docs/theory.md`` explains the choice.
"""
from __future__ import annotations

import pytest

from theory import compare, ramp

TRAINED = (12, 14, 16, 18)


@pytest.fixture(scope="module")
def trained():
    net = compare.train_mwg_network("readout_fixed", steps=6000, rng=0)
    return net, compare.ramp_comparison(net["model"], net["params"])


def _tolerance(interval, cmp):
    return ramp.ramp_rounding_rmse(interval, y_go=-0.5, y_end=0.5, d_eff=cmp["d_eff"], tau_x=10.0)


def test_trained_signal_follows_the_hyperbola_on_trained_intervals(trained):
    net, cmp = trained
    assert net["best_loss"] < 5e-3
    for interval in TRAINED:
        assert cmp["rmse"][str(interval)] < _tolerance(interval, cmp), (interval, cmp["rmse"])


def test_the_untrained_network_fails_the_same_tolerance(trained):
    net, cmp = trained
    model = net["model"]
    before = compare.ramp_comparison(model, compare.readout_fixed_params(model, 0))
    for interval in TRAINED:
        assert before["rmse"][str(interval)] > _tolerance(interval, cmp), (interval, before["rmse"])


def test_one_minus_s_after_go_shrinks_with_the_interval(trained):
    """The direction of the 1/T_I law (its slope is not asserted: training rounds the onset, see docs)."""
    _, cmp = trained
    gap = dict(zip(cmp["intervals"], cmp["gap_emitted"]))
    values = [gap[i] for i in TRAINED]
    assert all(a > b for a, b in zip(values, values[1:])), values
