"""The rank-1 theory of the NM-RNN, as pure functions, each checked against ``nmrnn_np`` simulations.

Rank 1, phi = identity, tied factors r = l with |l| = 1: the latent state
``kappa = l^T x`` obeys ``tau_x dkappa/dt = -(1 - s(t)) kappa + l^T B_x u(t)``.

Modules
-------
:mod:`theory.rank1`
    Prediction 1 (closed-form kappa for any s, discrete and continuous; the
    effective time constant ``tau_x / (1 - s)``) and prediction 2 (the inverse
    problem: the s that produces a given kappa, and where it is feasible).
:mod:`theory.ramp`
    Prediction 3: the hyperbolic s(t) that produces the Measure-Wait-Go ramp.
:mod:`theory.lstm_gate`
    Prediction 4: s as an LSTM forget gate; what becomes of it with tanh and rank K.
:mod:`theory.compare`
    Every prediction against simulations and trained networks.
:mod:`theory.plots`, :mod:`theory.cli`
    Figures and the ``nmrnn-np theory`` command.

``docs/theory.md`` derives every equation.
"""
from .lstm_gate import (GateSequences, forget_gate_from_signal, gate_mapping_mismatch, gated_recurrence,
                        gates_from_run, latent_update, signal_from_forget_gate)
from .ramp import (ReadoutConstants, go_signal_gap, ramp_forget_product, ramp_kappa, ramp_min_interval, ramp_rho,
                   ramp_rounding_rmse, ramp_signal, ramp_signal_with_transients, ramp_t_star, readout_constants)
from .rank1 import (effective_timescale, forget_factor, inverse_signal_continuous, inverse_signal_discrete,
                    latent_closed_form_continuous, latent_closed_form_discrete, latent_constant_signal,
                    signal_feasible)

__all__ = [
    "effective_timescale", "forget_factor", "latent_closed_form_discrete", "latent_closed_form_continuous",
    "latent_constant_signal", "inverse_signal_discrete", "inverse_signal_continuous", "signal_feasible",
    "ReadoutConstants", "readout_constants", "ramp_t_star", "ramp_rho", "ramp_signal", "go_signal_gap",
    "ramp_min_interval", "ramp_kappa", "ramp_forget_product", "ramp_rounding_rmse", "ramp_signal_with_transients",
    "GateSequences", "forget_gate_from_signal", "signal_from_forget_gate", "gated_recurrence",
    "gates_from_run", "latent_update", "gate_mapping_mismatch",
]
