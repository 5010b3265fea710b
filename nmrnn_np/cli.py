"""The ``nmrnn-np`` command (also ``python -m nmrnn_np``).

Subcommands
-----------
``mwg``
    The main experiment: train the four parameter-matched models on
    Measure-Wait-Go, test them on intervals they never saw, write a report.
``train``
    Train one model on one task (one seed) into a run folder.
``evaluate``
    Extrapolation table and figures for a trained run folder.
``demo``
    Simulate an untrained NM-RNN on a few timing trials and save a figure.

Adding a subcommand: write a module with ``add_parser(subparsers)`` that adds
its parser with ``subparsers.add_parser(...)`` and sets ``func`` (a function
``args -> exit code``) with ``set_defaults``, then list the module in
:data:`COMMAND_MODULES`.

Errors in options or settings end with a one-line message naming the option
and exit status 2; Ctrl-C ends with status 130 after saving what finished.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Callable, Sequence

__all__ = ["main", "build_parser", "COMMAND_MODULES", "HelpFormatter"]

#: modules that register further subcommands, each through ``add_parser(subparsers)``
COMMAND_MODULES: tuple[str, ...] = ("nmrnn_np.demo", "theory.cli")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keep the descriptions' line breaks; add "(default: X)" to options that have a real default.

    Options whose default is None or False (taken from the mode or the config file, or flags) and
    help texts that already say their default are left alone.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("default" in text or action.default is None or action.default is False
                or action.default == argparse.SUPPRESS or not action.option_strings):
            return text
        return text + " (default: %(default)s)"


def _number(convert, accept, expected: str):
    """An argparse ``type`` that converts with ``convert`` and requires ``accept(value)``."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}")
        return value
    return parse


_positive_int = _number(int, lambda v: v >= 1, "an integer >= 1")
_nonneg_int = _number(int, lambda v: v >= 0, "an integer >= 0")
_positive_float = _number(float, lambda v: 0 < v < float("inf"), "a positive number")


def _model_list(text: str) -> list[str]:
    from .experiments.mwg import MODEL_NAMES
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in MODEL_NAMES]
    if not names or bad:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(MODEL_NAMES)}, got {text!r}")
    return names


def _default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


# ----------------------------------------------------------------------------
# mwg
# ----------------------------------------------------------------------------
_MWG_DESCRIPTION = """\
The timing-task experiment of Costacurta et al. (NeurIPS 2024), end to end.

Trains an NM-RNN (N=100, M=5, K=3), a low-rank RNN (N=106, K=3), a vanilla RNN
(N=31) and an LSTM (N=15) -- about 1,100 parameters each -- on Measure-Wait-Go
intervals {12, 14, 16, 18} (all 40 trials, full batch), tests them on intervals
{4, 6, ..., 26}, and writes config.toml, metrics.json, report.md, figures and
the trained models into the output folder.

Settings come from the mode (--quick, the default, or --full), then from
--config FILE.toml, then from the options below. An existing output folder is
never overwritten: use --resume to continue an interrupted experiment.
"""


def _add_experiment_options(p: argparse.ArgumentParser, *, single: bool) -> None:
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick",
                      help="short schedule that finishes in minutes on 2 cores (the default)")
    mode.add_argument("--full", dest="mode", action="store_const", const="full",
                      help="the authors' schedule: lr 1e-2, 50k steps (NM-RNN: 10k output-network-only, "
                           "10k NM-only, then 50k full)" + ("" if single else ", 10 seeds"))
    p.add_argument("--config", metavar="FILE.toml", default=None,
                   help="read settings from a TOML file (same layout as the config.toml written to the output "
                        "folder); options given on the command line win")
    p.add_argument("--steps", type=_positive_int, default=None,
                   help="full-parameter training steps per model (default: from the mode)")
    p.add_argument("--lr", type=_positive_float, default=None, help="learning rate (default: from the mode)")
    p.add_argument("--backend", choices=("auto", "numba", "numpy"), default=None,
                   help="simulation backend; auto = numba when installed (default: auto)")
    if not single:
        p.add_argument("--models", type=_model_list, default=None, metavar="LIST",
                       help="comma-separated subset of nmrnn,lrrnn,rnn,lstm (default: all four)")
        p.add_argument("--seeds", type=_positive_int, default=None, metavar="N",
                       help="seeds per model (default: 3 quick, 10 full)")
        p.add_argument("--first-seed", type=_nonneg_int, default=None, metavar="S",
                       help="seeds are S, S+1, ... (default 0)")
        p.add_argument("--clamp", choices=("mean", "zero", "one"), default=None,
                       help="ablation: clamp each component of s to its trial mean, 0 or 1 (default: mean)")
    p.add_argument("--resume", action="store_true",
                   help="continue the unfinished runs of an existing output folder from their checkpoints, with "
                        "the settings stored in its config.toml")


def _overrides(args: argparse.Namespace, single: bool) -> dict:
    """Nested config overrides from the options that were given."""
    ov: dict = {"experiment": {}, "training": {}}
    if args.mode is not None:
        ov["experiment"]["mode"] = args.mode
    if args.steps is not None:
        ov["training"]["steps"] = args.steps
    if args.lr is not None:
        ov["training"]["lr"] = args.lr
    if args.backend is not None:
        ov["experiment"]["backend"] = args.backend
    if single:
        ov["experiment"]["models"] = [args.model]
        ov["experiment"]["seeds"] = 1
        ov["experiment"]["first_seed"] = args.seed
    else:
        for opt, key in (("models", "models"), ("seeds", "seeds"), ("first_seed", "first_seed"),
                         ("clamp", "clamp")):
            if getattr(args, opt) is not None:
                ov["experiment"][key] = getattr(args, opt)
    return {k: v for k, v in ov.items() if v}


def _settings_options_given(args: argparse.Namespace, single: bool) -> list[str]:
    names = ["mode", "config", "steps", "lr", "backend"]
    if not single:
        names += ["models", "seeds", "first_seed", "clamp"]
    flags = {"mode": "--quick/--full", "first_seed": "--first-seed"}
    return [flags.get(n, f"--{n}") for n in names if getattr(args, n) is not None]


def _check_resumed_run(out: str, args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """``train --resume``: the folder must hold a run of the given --model and --seed."""
    from .experiments.config import ConfigError, read_toml
    path = os.path.join(out, "config.toml")
    if not os.path.exists(path):
        return  # run_experiment reports the missing config.toml
    try:
        ex = read_toml(path).get("experiment", {})
    except ConfigError as exc:
        parser.error(str(exc))
    if ex.get("models") != [args.model]:
        parser.error(f"--model {args.model}: {out} holds a run of {ex.get('models')}")
    if ex.get("first_seed", 0) != args.seed:
        parser.error(f"--seed {args.seed}: {out} holds seed {ex.get('first_seed', 0)}")


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser, single: bool) -> int:
    from .experiments.config import ConfigError
    from .experiments.mwg import ExperimentInterrupted, resolve_config, run_experiment

    out = args.out or (f"train-{args.model}-seed{args.seed}" if single else None)
    if args.resume:
        out = out or "mwg-quick"
        given = _settings_options_given(args, single)
        if given:
            parser.error(f"{given[0]} cannot be combined with --resume: a resumed experiment keeps the "
                         f"settings of {os.path.join(out, 'config.toml')}")
        if single:
            _check_resumed_run(out, args, parser)
        cfg = None
    else:
        try:
            cfg = resolve_config(args.mode or "quick", args.config, _overrides(args, single))
        except ConfigError as exc:
            where = f"--config {args.config}: " if args.config else ""
            parser.error(f"{where}{exc}")
    out = out or f"mwg-{cfg['experiment']['mode']}"
    jobs = 1 if single else args.jobs
    try:
        run_experiment(cfg, out, jobs=jobs, resume=args.resume, figures=not single)
    except (FileExistsError, ConfigError) as exc:
        parser.error(str(exc))
    except ExperimentInterrupted as exc:
        print(f"\nInterrupted: {exc.finished} of {exc.total} runs finished and are saved in {out}. "
              f"Continue with: nmrnn-np {'train' if single else 'mwg'} --resume --out {out}"
              + (f" --model {args.model} --seed {args.seed}" if single else ""), file=sys.stderr)
        return 130
    if single:
        print(f"\nSaved in {out}. Figures and the extrapolation table: nmrnn-np evaluate {out}")
    else:
        print(f"\nResults, figures and report: {out}/report.md")
    return 0


def _add_mwg(subparsers) -> None:
    p = subparsers.add_parser("mwg", help="the timing experiment: four models, extrapolation to new intervals",
                              description=_MWG_DESCRIPTION, formatter_class=HelpFormatter)
    _add_experiment_options(p, single=False)
    p.add_argument("--jobs", type=_nonneg_int, default=_default_jobs(), metavar="J",
                   help="worker processes training runs in parallel (default: the number of CPUs, "
                        f"here {_default_jobs()}); 0 trains in this process")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: mwg-quick or mwg-full); must not exist unless --resume")
    p.set_defaults(func=lambda args: _run(args, p, single=False))


# ----------------------------------------------------------------------------
# train
# ----------------------------------------------------------------------------
_TRAIN_DESCRIPTION = """\
Train one model on one task with one seed.

The run folder has the layout of an `nmrnn-np mwg` experiment with a single
run (config.toml, runs/<model>_seed<k>/model.npz, metrics.json), so
`nmrnn-np evaluate DIR` makes its extrapolation table and figures.
"""


def _add_train(subparsers) -> None:
    from .models import MODELS
    p = subparsers.add_parser("train", help="train one model (one seed) on a task",
                              description=_TRAIN_DESCRIPTION, formatter_class=HelpFormatter)
    p.add_argument("--task", choices=("mwg",), default="mwg", help="task: mwg = Measure-Wait-Go")
    p.add_argument("--model", choices=tuple(MODELS), required=True,
                   help="nmrnn = NM-RNN, lrrnn = low-rank RNN, rnn = vanilla RNN, lstm = LSTM "
                        "(sizes of the parameter-matched study)")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="seed of the initial parameters")
    _add_experiment_options(p, single=True)
    p.add_argument("--out", default=None, metavar="DIR",
                   help="run folder (default: train-<model>-seed<seed>); must not exist unless --resume")
    p.set_defaults(func=lambda args: _run(args, p, single=True))


# ----------------------------------------------------------------------------
# evaluate
# ----------------------------------------------------------------------------
def _evaluate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .experiments.config import ConfigError
    from .experiments.mwg import evaluate_run_dir

    if not os.path.isdir(args.run_dir):
        parser.error(f"RUN_DIR {args.run_dir!r} is not a folder")
    try:
        evaluate_run_dir(args.run_dir, clamp=args.clamp, figures=not args.no_figures)
    except (FileNotFoundError, ConfigError) as exc:
        parser.error(str(exc))
    print(f"\nWritten: {os.path.join(args.run_dir, 'metrics.json')}"
          + ("" if args.no_figures else f", {os.path.join(args.run_dir, 'report.md')} and the figures"))
    return 0


def _add_evaluate(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="extrapolation table and figures for a trained run folder",
        description="Evaluate every finished run of a folder written by `nmrnn-np mwg` or `nmrnn-np train` on "
                    "the trained and the untrained intervals; print the table and (re)write metrics.json, "
                    "report.md and the figures in that folder.",
        formatter_class=HelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="folder written by `nmrnn-np mwg` or `nmrnn-np train`")
    p.add_argument("--clamp", choices=("mean", "zero", "one"), default=None,
                   help="ablation: clamp each component of s to its trial mean, 0 or 1 "
                        "(default: the folder's setting)")
    p.add_argument("--no-figures", action="store_true", help="only the table and metrics.json")
    p.set_defaults(func=lambda args: _evaluate(args, p))


# ----------------------------------------------------------------------------
def _registrars() -> list[Callable]:
    funcs: list[Callable] = [_add_mwg, _add_train, _add_evaluate]
    for name in COMMAND_MODULES:
        funcs.append(importlib.import_module(name).add_parser)
    return funcs


def build_parser() -> argparse.ArgumentParser:
    """The ``nmrnn-np`` argument parser with every registered subcommand."""
    from . import __version__
    parser = argparse.ArgumentParser(
        prog="nmrnn-np",
        description="Neuromodulated RNNs (Costacurta et al., NeurIPS 2024) in NumPy. "
                    "Start with `nmrnn-np mwg` (the timing experiment) or `nmrnn-np demo`.",
        formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in _registrars():
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nmrnn-np`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
