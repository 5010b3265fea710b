"""Figures of the theory report; each takes the dict a :mod:`theory.compare` function returns.

No analysis happens here: every number drawn was computed by
:mod:`theory.rank1`, :mod:`theory.ramp`, :mod:`theory.lstm_gate` or
:mod:`theory.compare`. Each function saves one PNG and returns its path.
"""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import ramp as ramp_theory  # noqa: E402
from . import rank1  # noqa: E402

__all__ = ["plot_timescale", "plot_exactness", "plot_inverse", "plot_lstm", "plot_ramp_network",
           "plot_go_gap", "plot_ramp_prediction"]

_DPI = 100


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_timescale(res: dict, path: str | os.PathLike) -> Path:
    """Prediction 1 (Figure 2A counterpart): kappa(t) for constant s, and tau_eff = tau_x / (1 - s)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    t = res["t"]
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(res["s_values"])))
    for s, sim, cont, col in zip(res["s_values"], res["kappa_sim"], res["kappa_continuous"], colors):
        ax1.plot(np.r_[0, t], np.r_[1, cont], color=col, label=f"s = {s:g}")
        ax1.plot(t[::4], sim[::4], "o", ms=3, color=col)
    ax1.set(xlabel="time (units of dt)", ylabel=r"$\kappa(t)/\kappa_0$",
            title=r"$\kappa$ under constant s (lines: $e^{-(1-s)t/\tau_x}$, dots: network)")
    ax1.legend(fontsize=7, frameon=False)
    s_grid = np.linspace(0.0, 0.99, 200)
    tau_x = res["effective_timescale"][0] * (1 - res["s_values"][0])
    ax2.semilogy(s_grid, rank1.effective_timescale(s_grid, tau_x), color="k")
    ax2.plot(res["s_values"], res["effective_timescale"], "o", color="C3")
    ax2.set(xlabel="s", ylabel=r"$\tau_\mathrm{eff} = \tau_x/(1-s)$", title="effective time constant")
    return _save(fig, path)


def plot_exactness(closed: dict, cont: dict, euler: dict, path: str | os.PathLike) -> Path:
    """Predictions 1 against simulation: discrete closed form, continuous vs solve_ivp, Euler O(dt)."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    ax = axes[0]
    steps = np.arange(1, closed["example_kappa"].size + 1)
    ax.plot(steps, closed["example_kappa"], color="k", lw=2.5, alpha=0.4, label=r"network $l^\top x_t$")
    ax.plot(steps, closed["example_closed_form"], "--", color="C1", label="closed form (product)")
    ax.set(xlabel="step t", ylabel=r"$\kappa_t$",
           title=f"discrete: max error {closed['max_abs_error']:.1e}")
    axs = ax.twinx()
    axs.plot(steps, closed["example_s"], color="C2", lw=0.8)
    axs.set_ylabel("s_t", color="C2")
    axs.set_ylim(0, 1)
    ax.legend(fontsize=7, frameon=False, loc="lower left")
    ax = axes[1]
    ex = cont["example"]
    ax.plot(ex["t"], ex["kappa_ode"], color="k", lw=2.5, alpha=0.4, label="solve_ivp (N-dim)")
    ax.plot(ex["t"], ex["kappa_closed"], "--", color="C1", label="closed form")
    axs = ax.twinx()
    axs.plot(ex["t"], ex["s"], color="C2", lw=0.8)
    axs.set_ylim(0, 1)
    axs.set_ylabel("s(t)", color="C2")
    ax.set(xlabel="time", ylabel=r"$\kappa(t)$", title=f"continuous: max error {cont['max_abs_error']:.1e}")
    ax.legend(fontsize=7, frameon=False)
    ax = axes[2]
    dts, errs = np.array(euler["dts"]), np.array(euler["errors"])
    ax.loglog(dts, errs, "o-", color="C0", label="max |Euler - ODE|")
    ax.loglog(dts, errs[0] * dts / dts[0], "k:", label="slope 1")
    ax.set(xlabel="dt", ylabel="error in kappa", title=f"Euler vs continuous: order {euler['order']:.2f}")
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return _save(fig, path)


def plot_inverse(inverse: dict, path: str | os.PathLike, tau_x: float = 10.0) -> Path:
    """Prediction 2: the signal needed for given kappa trajectories, and where it is feasible."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    t = np.linspace(0.0, 60.0, 601)
    examples = {
        "slow decay": np.exp(-t / 40.0),
        "fast decay": np.exp(-t / 6.0),
        "linear ramp to 0.2": 1.0 - 0.8 * t / 60.0,
        "growth": np.exp(t / 80.0),
    }
    for k, (name, kap) in enumerate(examples.items()):
        dk = np.gradient(kap, t)
        s = rank1.inverse_signal_continuous(kap, dk, tau_x)
        ax1.plot(t, kap, color=f"C{k}", label=name)
        ok = rank1.signal_feasible(s)
        ax2.plot(t, np.where(ok, s, np.nan), color=f"C{k}")
        ax2.plot(t, np.where(ok, np.nan, s), color=f"C{k}", ls=":")
    ax1.set(xlabel="time", ylabel=r"wanted $\kappa(t)$", title="target latent trajectories")
    ax1.legend(fontsize=7, frameon=False)
    ax2.axhspan(0, 1, color="0.9", zorder=0)
    ax2.set(xlabel="time", ylabel=r"needed $s = 1 + \tau_x\dot\kappa/\kappa$",
            title=f"inverse problem (grey: feasible; dotted: infeasible)\n"
                  f"recovery from simulated runs: max error {inverse['max_abs_error']:.1e}")
    ax2.set_ylim(-1.0, 1.6)
    return _save(fig, path)


def plot_lstm(lstm: dict, tanh: dict, path: str | os.PathLike) -> Path:
    """Prediction 4: forget gates of a run, the gated recurrence vs kappa, and the tanh mismatch."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    a = lstm["alpha"]
    steps = np.arange(1, lstm["example_f"].size + 1)
    ax = axes[0]
    ax.axhspan(1 - a, 1, color="0.9")
    ax.plot(steps, lstm["example_f"], color="C0")
    ax.set(xlabel="step t", ylabel=r"$f_t = 1 - \alpha(1-s_t)$", ylim=(1 - 1.5 * a, 1 + 0.2 * a),
           title=r"forget gate, confined to $[1-\alpha, 1]$")
    ax = axes[1]
    ax.plot(steps, lstm["example_kappa"], color="k", lw=2.5, alpha=0.4, label=r"network $\kappa_t$")
    ax.plot(steps, lstm["example_c"], "--", color="C1", label=r"$c_t = f_t c_{t-1} + \alpha g_t$")
    ax.set(xlabel="step t", title=f"gated recurrence: max error {lstm['max_abs_error']:.1e}")
    ax.legend(fontsize=7, frameon=False)
    ax = axes[2]
    sc = tanh["input_scales"]
    for k, label in enumerate(("tanh_rank1", "tanh_rank3")):
        ax.loglog(sc, tanh[label]["one_step_relative"], "o-", color=f"C{k}", label=f"{label}: one step")
        ax.loglog(sc, tanh[label]["rollout_relative"], "s--", color=f"C{k}", label=f"{label}: rollout")
    ax.set(xlabel="input scale", ylabel=r"max $|c - \kappa|$ / max $|\kappa|$",
           title="linear gate mapping on tanh networks")
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return _save(fig, path)


def plot_ramp_prediction(path: str | os.PathLike, *, tau_x: float = 10.0, d_values=(0.8, 1.5, 3.0),
                         intervals=(6, 12, 18, 26), y_go: float = -0.5, y_end: float = 0.5) -> Path:
    """Prediction 3 on its own: the hyperbolic s(t) for several intervals and offsets."""
    fig, axes = plt.subplots(1, len(d_values), figsize=(4 * len(d_values), 3.4), sharey=True)
    for ax, d in zip(np.atleast_1d(axes), d_values):
        tmin = ramp_theory.ramp_min_interval(y_go=y_go, y_end=y_end, d_eff=d, tau_x=tau_x)
        for k, I in enumerate(intervals):
            t = np.linspace(0, I, 200)
            s = ramp_theory.ramp_signal(t, 0.0, I, y_go=y_go, y_end=y_end, d_eff=d, tau_x=tau_x,
                                        outside="hold")
            s[0] = np.nan
            ax.plot(t, s, color=plt.cm.plasma(k / len(intervals)), label=f"T_I = {I}")
        ax.axhline(0, color="k", lw=0.5)
        ax.set(title=f"d_eff = {d}: feasible for T_I > {tmin:.1f}", xlabel="time after go")
    np.atleast_1d(axes)[0].set_ylabel(r"needed $s(t) = 1 - \tau_x/(t^*-t)$")
    np.atleast_1d(axes)[0].legend(fontsize=7, frameon=False)
    return _save(fig, path)


def plot_ramp_network(cmp: dict, title: str, path: str | os.PathLike, *, show_transients: bool = False) -> Path:
    """A trained network: output and emitted s(t) against prediction 3, aligned to go.

    Columns: trained intervals, extrapolated intervals and, with
    ``show_transients``, the prediction that includes the readout of x_perp.
    """
    ncol = 3 if show_transients else 2
    fig, axes = plt.subplots(2, ncol, figsize=(4.6 * ncol, 6.4), sharex=True)
    t = cmp["t_rel"]
    intervals = np.array(cmp["intervals"])
    trained = np.array(cmp["trained"])
    colors = plt.cm.coolwarm(np.linspace(0, 1, len(intervals)))
    for b, (I, col) in enumerate(zip(intervals, colors)):
        cols = [0 if trained[b] else 1] + ([2] if show_transients and trained[b] else [])
        for c in cols:
            axes[0, c].plot(t, cmp["target"][b], color=col, lw=0.8, ls=":")
            axes[0, c].plot(t, cmp["y"][b], color=col, lw=1.5, label=f"T_I={I}")
            axes[1, c].plot(t, cmp["s_emitted"][b], color=col, lw=1.5)
            ref = cmp["s_transients"][b] if c == 2 else cmp["s_predicted"][b]
            # an infeasible requirement (s outside (0, 1)) is off the axes; drawing it would only add the pole
            axes[1, c].plot(t, np.where((ref > 0) & (ref < 1), ref, np.nan), color=col, lw=1.0, ls="--")
    axes[0, 0].set_title(f"{title}\ntrained intervals (dotted: target)", fontsize=9)
    feasible = (f"prediction 3 feasible for T_I > {cmp['min_interval']:.1f}" if np.isfinite(cmp["min_interval"])
                else "prediction 3 infeasible for every T_I (rho <= 0)")
    axes[0, 1].set_title(f"extrapolated intervals ({feasible})", fontsize=9)
    axes[1, 0].set_title(f"s emitted (solid) vs hyperbola (dashed where feasible); $d_{{eff}}$={cmp['d_eff']:.2f}, "
                         f"$\\rho$={cmp['rho']:.2f}", fontsize=9)
    axes[1, 1].set_title("s emitted vs hyperbola, extrapolated", fontsize=9)
    if show_transients:
        axes[0, 2].set_title("trained intervals", fontsize=9)
        axes[1, 2].set_title("s vs prediction including $C x_\\perp$ (dashed)", fontsize=9)
    for ax in axes[0]:
        ax.set_ylabel("y")
        ax.legend(fontsize=6, frameon=False, ncol=2)
    for ax in axes[1]:
        ax.set(xlabel="steps after go", ylabel="s", ylim=(-0.05, 1.05))
    fig.tight_layout()
    return _save(fig, path)


def plot_go_gap(cmps: dict, path: str | os.PathLike) -> Path:
    """Prediction 3 in two numbers per trial, for every trained network.

    Left: 1 - s just after go against 1/T_I, emitted (points) and predicted
    (dashed line). Right: the total decay :math:`-\\sum \\log f_t` over the
    ramp, emitted (points) and predicted (a constant, dashed).
    """
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.0))
    for k, (name, cmp) in enumerate(cmps.items()):
        inv = 1.0 / np.array(cmp["intervals"], dtype=float)
        trained = np.array(cmp["trained"])
        gap = np.array(cmp["gap_emitted"])
        ax.plot(inv[trained], gap[trained], "o", color=f"C{k}", label=f"{name}")
        ax.plot(inv[~trained], gap[~trained], "o", mfc="none", color=f"C{k}")
        if cmp["rho"] > 0:  # otherwise prediction 3 is infeasible for every interval: no line
            grid = np.linspace(0, inv.max() * 1.05, 50)
            ax.plot(grid, cmp["gap_slope"] * grid, color=f"C{k}", lw=1, ls="--")
        decay = np.array([cmp["log_decay_emitted"][str(i)] for i in cmp["intervals"]])
        ax2.plot(np.array(cmp["intervals"])[trained], decay[trained], "o", color=f"C{k}", label=name)
        ax2.plot(np.array(cmp["intervals"])[~trained], decay[~trained], "o", mfc="none", color=f"C{k}")
        if np.isfinite(cmp["log_decay_predicted"]):
            ax2.axhline(cmp["log_decay_predicted"], color=f"C{k}", lw=1, ls="--")
    ax.set(xlabel=r"$1/T_I$", ylabel=r"$1 - s$ at step $t_{go}+1$", ylim=(-0.05, 1.05))
    ax.set_title(r"$1 - s(t_{go}^+) = \tau_x (y_{end}-y_{go}) / ((d_{eff}-y_{go}) T_I)$ (dashed)", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    ax2.set(xlabel=r"$T_I$", ylabel=r"$-\sum_{ramp} \log f_t$")
    ax2.set_title(r"total decay over the ramp: $\log((d_{eff}-y_{go})/(d_{eff}-y_{end}))$ (dashed)", fontsize=9)
    ax2.text(0.02, 0.90, "filled: trained intervals; open: extrapolated", transform=ax2.transAxes, fontsize=7,
             va="top")
    return _save(fig, path)
