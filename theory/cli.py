"""``nmrnn-np theory [--quick] --out DIR``: every prediction checked against simulation.

Writes ``DIR/theory.json`` (the numbers), ``DIR/theory_*.png`` (the figures)
and ``DIR/report.md`` (numbers, figures and what they show). ``--quick``
trains small budgets so the whole command takes under 3 minutes on two cores
with the numba kernels; the default trains longer.

The ``theory`` subcommand is registered by :func:`add_parser`;
``python -m theory.cli`` runs the same command standalone.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nmrnn_np.io import atomic_write_text

__all__ = ["add_parser", "run_theory", "main", "QUICK", "FULL"]

#: settings of ``--quick``: training budgets sized for < 3 minutes on 2 cores (numba)
QUICK: dict[str, Any] = dict(N=100, M=5, steps={"readout_fixed": 10000, "latent": 5000, "linear": 4000,
                                                "tanh": 4000}, lr=1e-2, n_networks=3)
#: settings without ``--quick``
FULL: dict[str, Any] = dict(N=100, M=5, steps={"readout_fixed": 30000, "latent": 20000, "linear": 20000,
                                               "tanh": 20000}, lr=1e-2, n_networks=10)

#: the trained network whose RMSE is the headline ``ramp_signal_rmse``
PRIMARY = "readout_fixed"

_TITLES = {"readout_fixed": "N=1 linear, readout fixed, NM trained", "latent": "N=1 linear, all trained",
           "linear": "N={N} linear, all trained", "tanh": "N={N} tanh, all trained"}


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    return value


def _scalars(d: dict) -> dict:
    """The entries of a result dict that belong in JSON (no traces)."""
    return {k: v for k, v in d.items() if not isinstance(v, np.ndarray) and k not in ("example", "model", "params")}


def run_theory(out: str | Path, *, quick: bool = False, seed: int = 0, backend: str | None = None,
               steps: int | None = None, log=print) -> dict:
    """Run every comparison, write ``theory.json``, the figures and ``report.md`` into ``out``.

    Parameters
    ----------
    out : path
        Output folder (created).
    quick : bool
        Small training budgets (:data:`QUICK`) instead of :data:`FULL`.
    seed : int
        Seed of the trained networks' initial parameters.
    backend : {"numba", "numpy"}, optional
        Backend for training and for simulating the trained networks (the
        exactness checks always use the NumPy equations).
    steps : int, optional
        Override the training steps of every network.
    log : callable
        Progress messages (``print`` by default).

    Returns
    -------
    dict
        The content of ``theory.json``.
    """
    from . import compare, plots

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = dict(QUICK if quick else FULL)
    step_budget = dict(settings["steps"])
    if steps is not None:
        step_budget = {k: int(steps) for k in step_budget}
    t_start = time.perf_counter()
    n_net = settings["n_networks"]

    log("exactness checks on random linear symmetric rank-1 networks ...")
    closed = compare.check_latent_closed_form(n_net)
    inverse = compare.check_inverse_signal(n_net)
    lstm = compare.check_lstm_mapping(n_net)
    cont = compare.check_continuous_closed_form()
    euler = compare.check_euler_convergence()
    tanh = compare.check_tanh_gate_mapping()
    const = compare.constant_signal_network([0.01, 0.5, 0.8, 0.9, 0.95, 0.99])
    figures = [
        plots.plot_timescale(const, out / "theory_timescale.png"),
        plots.plot_exactness(closed, cont, euler, out / "theory_exactness.png"),
        plots.plot_inverse(inverse, out / "theory_inverse.png"),
        plots.plot_lstm(lstm, tanh, out / "theory_lstm.png"),
        plots.plot_ramp_prediction(out / "theory_ramp_prediction.png"),
    ]

    titles = {k: v.format(N=settings["N"]) for k, v in _TITLES.items()}
    networks: dict[str, dict] = {}
    cmps: dict[str, dict] = {}
    for kind in compare.NETWORK_KINDS:
        log(f"training the {titles[kind]} rank-1 network ({step_budget[kind]} steps) ...")
        net = compare.train_mwg_network(kind, N=settings["N"], M=settings["M"], steps=step_budget[kind],
                                        lr=settings["lr"], rng=seed, backend=backend)
        cmp = compare.ramp_comparison(net["model"], net["params"], backend=backend)
        cmps[kind] = cmp
        networks[kind] = dict(
            title=titles[kind], steps=net["steps"], best_loss=net["best_loss"], wall_time=net["wall_time"],
            off_manifold_norm=compare.off_manifold_norm(net["model"], net["params"]),
            **{k: cmp[k] for k in ("c", "d_eff", "rho", "min_interval", "gap_slope", "rmse", "rmse_clipped",
                                   "rmse_transients",
                                   "output_rmse", "gap_emitted", "gap_predicted", "log_decay_emitted",
                                   "log_decay_predicted", "intervals", "trained")},
        )
        figures.append(plots.plot_ramp_network(cmp, titles[kind], out / f"theory_ramp_{kind}.png",
                                               show_transients=net["model"].N > 1 and net["model"].phi == "linear"))
    figures.append(plots.plot_go_gap({titles[k]: v for k, v in cmps.items()}, out / "theory_go_gap.png"))

    result = dict(
        latent_closed_form_max_abs_error=closed["max_abs_error"],
        inverse_signal_max_abs_error=inverse["max_abs_error"],
        lstm_mapping_max_abs_error=lstm["max_abs_error"],
        continuous_vs_solve_ivp_max_abs_error=cont["max_abs_error"],
        ramp_signal_rmse=networks[PRIMARY]["rmse"],
        ramp_signal_rmse_network=PRIMARY,
        euler_vs_continuous=dict(dts=euler["dts"], errors=euler["errors"], order=euler["order"]),
        details=dict(latent_closed_form=_scalars(closed), inverse_signal=_scalars(inverse),
                     lstm_mapping=_scalars(lstm), continuous=_scalars(cont),
                     constant_signal=dict(max_abs_error_discrete=const["max_abs_error_discrete"],
                                          s_values=const["s_values"],
                                          effective_timescale=const["effective_timescale"]),
                     tanh_gate_mapping=tanh),
        networks=networks,
        settings=dict(quick=bool(quick), seed=int(seed), backend=backend, N=settings["N"], M=settings["M"],
                      steps=step_budget, lr=settings["lr"], n_networks=n_net),
        figures=[p.name for p in figures],
    )
    result["runtime_seconds"] = time.perf_counter() - t_start
    result = _jsonable(result)
    atomic_write_text(out / "theory.json", json.dumps(result, indent=2) + "\n")
    atomic_write_text(out / "report.md", _report(result))
    log(f"wrote {out / 'theory.json'}, {out / 'report.md'} and {len(figures)} figures "
        f"in {result['runtime_seconds']:.0f} s")
    return result


def _fmt(x, digits=3) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float) and (abs(x) < 1e-3 or abs(x) >= 1e4) and x != 0:
        return f"{x:.1e}"
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def _report(r: dict) -> str:
    """report.md: the numbers of theory.json as tables, with the figures."""
    lines = ["# Rank-1 theory of the NM-RNN, checked against simulation", "",
             "Generated by `nmrnn-np theory" + (" --quick" if r["settings"]["quick"] else "") + "`; the "
             "derivations are in `docs/theory.md`.", "",
             "## Exactness (random linear symmetric rank-1 networks)", "",
             "| check | max abs error |", "|---|---|",
             "| prediction 1, discrete closed form vs simulated l^T x | "
             f"{_fmt(r['latent_closed_form_max_abs_error'])} |",
             f"| prediction 2, inverse signal vs emitted s | {_fmt(r['inverse_signal_max_abs_error'])} |",
             f"| prediction 4, gated recurrence vs kappa (and s -> f -> s) | {_fmt(r['lstm_mapping_max_abs_error'])} |",
             f"| prediction 1, continuous closed form vs solve_ivp | "
             f"{_fmt(r['continuous_vs_solve_ivp_max_abs_error'])} |", ""]
    e = r["euler_vs_continuous"]
    lines += ["Euler (the simulated network) against the continuous solution: "
              + ", ".join(f"dt={d:g}: {_fmt(x)}" for d, x in zip(e["dts"], e["errors"]))
              + f"; fitted order {e['order']:.3f} (first order expected).", ""]
    tg = r["details"]["tanh_gate_mapping"]
    lines += ["Linear gate mapping on tanh networks (max |c - kappa| / max |kappa|; the exact latent identity "
              f"with s gating R^T tanh(x) holds to {_fmt(tg['exact_identity_max_abs'])}):", "",
              "| input scale | " + " | ".join(_fmt(s) for s in tg["input_scales"]) + " |",
              "|---" * (1 + len(tg["input_scales"])) + "|"]
    for label in ("tanh_rank1", "tanh_rank3"):
        for m in ("one_step_relative", "rollout_relative"):
            name = "one step" if m.startswith("one") else "rollout"
            lines.append(f"| {label} {name} | " + " | ".join(_fmt(v) for v in tg[label][m]) + " |")
    lines += ["", "![timescale](theory_timescale.png)", "", "![exactness](theory_exactness.png)", "",
              "![inverse](theory_inverse.png)", "", "![lstm](theory_lstm.png)", "",
              "## Prediction 3 against trained networks", "",
              "Each network is a rank-1 symmetric NM-RNN (N = 1 or {N}, as named; M = {M}) trained on Measure-Wait-Go "
              "(intervals 12-18) and run on intervals 4-26 (t_measure = 15). RMSE of the emitted s(t) "
              "against the hyperbola over the ramp steps t_go+1 .. t_go+T_I. P = I - l l^T; the last column "
              "measures what the theory ignores (0 for N = 1).".format(**r["settings"]), ""]
    nets = r["networks"]
    lines += ["| network | steps | best loss | c | d_eff | rho | feasible T_I > | max(norm C P, norm P B_x) |",
              "|---|---|---|---|---|---|---|---|"]
    for k, n in nets.items():
        lines.append(f"| {n['title']} | {n['steps']} | {_fmt(n['best_loss'])} | {_fmt(n['c'])} | "
                     f"{_fmt(n['d_eff'])} | {_fmt(n['rho'])} | {_fmt(n['min_interval'])} | "
                     f"{_fmt(n['off_manifold_norm'])} |")
    lines += ["", "Per network and interval (* = trained): RMSE over the ramp of the emitted s against the "
              "hyperbola, against the hyperbola clipped to the feasible [0, 1], and (linear N > 1 only) against "
              "the prediction that includes the input-driven readout C x_perp; 1 - s at step t_go + 1 emitted "
              "and predicted; the total decay -sum log f_t from the last hold step to the ramp end (predicted: "
              "log((d_eff - y_go)/(d_eff - y_end)), the same for every interval); RMSE of the output.", ""]
    for n in nets.values():
        trained = {i for i, t in zip(n["intervals"], n["trained"]) if t}
        pred_decay = _fmt(n["log_decay_predicted"])
        lines += [f"**{n['title']}** (predicted total decay {pred_decay})", "",
                  "| T_I | s vs hyperbola | vs clipped | vs incl. C x_perp | 1-s(t_go+1) | predicted | "
                  "total decay | y RMSE |", "|---|---|---|---|---|---|---|---|"]
        for k, I in enumerate(n["intervals"]):
            key = str(I)
            tr = _fmt(n["rmse_transients"][key]) if n.get("rmse_transients") else "-"
            lines.append(f"| {I}{'*' if I in trained else ''} | {_fmt(n['rmse'][key])} | "
                         f"{_fmt(n['rmse_clipped'][key])} | {tr} | {_fmt(n['gap_emitted'][k])} | "
                         f"{_fmt(n['gap_predicted'][k])} | {_fmt(n['log_decay_emitted'][key])} | "
                         f"{_fmt(n['output_rmse'][key])} |")
        lines.append("")
    lines += [""]
    for k in nets:
        lines += [f"![{k}](theory_ramp_{k}.png)", ""]
    lines += ["![go gap](theory_go_gap.png)", "",
              f"Total runtime {r['runtime_seconds']:.0f} s.", ""]
    return "\n".join(lines)


def _command(args) -> int:
    run_theory(args.out, quick=args.quick, seed=args.seed, backend=args.backend, steps=args.steps)
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``theory`` on an ``argparse`` subparsers object and set its ``func``."""
    p = subparsers.add_parser(
        "theory", help="rank-1 theory: predictions checked against simulation and trained networks",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder for theory.json, figures and report.md")
    p.add_argument("--quick", action="store_true", help="small training budgets (< 3 minutes on 2 cores)")
    p.add_argument("--seed", type=int, default=0, help="seed of the trained networks (default: 0)")
    p.add_argument("--steps", type=int, default=None, help="override the training steps of every network")
    p.add_argument("--backend", choices=("numba", "numpy"), default=None,
                   help="simulation backend (default: numba when installed)")
    p.set_defaults(func=_command)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point: ``python -m theory.cli [--quick] --out DIR``."""
    parser = argparse.ArgumentParser(prog="theory")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(["theory", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
