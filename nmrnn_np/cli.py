"""The ``nmrnn-np`` command (also ``python -m nmrnn_np``).

Subcommands
-----------
``run NAME`` (and the shortcut ``NAME``)
    Run a registered experiment (:data:`nmrnn_np.experiments.runner.EXPERIMENTS`),
    e.g. ``mwg``, the main experiment: train the four parameter-matched models
    on Measure-Wait-Go, test them on intervals they never saw, write a report.
``train``
    Train one model on one task (one seed) into a run folder.
``evaluate``
    Evaluate the runs of an experiment folder again: table, metrics, figures.
``demo``
    Simulate an untrained NM-RNN on a few timing trials and save a figure.

Adding a subcommand: write a module with ``add_parser(subparsers)`` that adds
its parser with ``subparsers.add_parser(...)`` and sets ``func`` (a function
``args -> exit code``) with ``set_defaults``, then list the module in
:data:`COMMAND_MODULES`.

Errors in options, settings, folders and files end with a one-line message
naming what is wrong and exit status 2 (``NMRNN_NP_DEBUG=1`` shows a
traceback); runs that fail end with one line each and status 1; Ctrl-C ends
with status 130 after saving what finished.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Callable, Sequence

__all__ = ["main", "build_parser", "COMMAND_MODULES", "HelpFormatter"]

#: modules that register further subcommands, each through ``add_parser(subparsers)``
COMMAND_MODULES: tuple[str, ...] = ("nmrnn_np.demo", "nmrnn_np.experiments.mwg_compare", "theory.cli")


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


def _default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


# ----------------------------------------------------------------------------
# Experiments: `nmrnn-np run NAME` and the shortcut `nmrnn-np NAME`
# ----------------------------------------------------------------------------
_RUN_EPILOG = """Settings come from the mode (--quick, the default, or --full), then from
--config FILE.toml, then from the options, then from --set KEY=VALUE (any key
of the config.toml the run writes, dotted: --set training.lr=3e-3). --grid
KEY=V1,V2 runs every listed value (several --grid: their cartesian product).
Everything is validated before the output folder is created.

An existing output folder is never overwritten: --resume continues an
interrupted or partly failed experiment with the settings in its config.toml.
Ctrl-C stops cleanly (finished runs are kept; exit status 130). A run whose
worker dies is retried once; runs that fail are listed at the end (exit
status 1). --executor dask runs on a dask.distributed cluster: an existing
one (--scheduler tcp://HOST:8786) or a local one of --jobs workers; run
folders must be on storage all workers share (docs/experiments.md).
"""


def _add_experiment_options(p: argparse.ArgumentParser, options, *, single: bool = False) -> None:
    """Options of every experiment, then an experiment's own ``options`` (its ``cli_options``)."""
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick",
                      help="short schedule that finishes in minutes on 2 cores (the default)")
    mode.add_argument("--full", dest="mode", action="store_const", const="full",
                      help="the authors' schedule (see the experiment's docs page)")
    p.add_argument("--config", metavar="FILE.toml", default=None,
                   help="read settings from a TOML file (same layout as the config.toml written to the output "
                        "folder); options given on the command line win")
    for opt in options:
        kind = (lambda text, parse=opt.parse: _cli_value(parse, text))
        p.add_argument(opt.flag, dest=f"opt_{opt.key}", type=kind, default=None, metavar=opt.metavar,
                       choices=opt.choices, help=opt.help)
    p.add_argument("--backend", choices=("auto", "numba", "numpy", "numba32"), default=None,
                   help="simulation backend; auto = numba when installed; numba32 = the numba kernels in "
                        "float32, about 1.5x faster per training step, results to float32 rounding "
                        "(default: auto)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="set any setting by its dotted key, e.g. --set training.lr=3e-3 (repeatable)")
    if not single:
        p.add_argument("--seeds", type=_positive_int, default=None, metavar="N",
                       help="seeds per grid point (default: from the mode)")
        p.add_argument("--first-seed", type=_nonneg_int, default=None, metavar="S",
                       help="seeds are S, S+1, ... (default 0)")
        p.add_argument("--grid", dest="grids", action="append", default=[], metavar="KEY=V1,V2",
                       help="sweep a setting over values, e.g. --grid training.lr=1e-3,3e-3 (repeatable; "
                            "the runs are the cartesian product)")
        p.add_argument("--executor", choices=("process", "dask"), default="process",
                       help="where runs execute: local worker processes, or a dask.distributed cluster")
        p.add_argument("--jobs", type=_nonneg_int, default=None, metavar="J",
                       help="runs at a time: worker processes, or workers of a local dask cluster (default: the "
                            f"number of CPUs, here {_default_jobs()}); 0 trains in this process")
        p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="with --executor dask: address of a running dask scheduler, e.g. tcp://host:8786 "
                            "(default: start a local cluster)")
        p.add_argument("--no-figures", action="store_true", help="write metrics.json but no figures or report.md")
    p.add_argument("--resume", action="store_true",
                   help="continue the unfinished (and failed) runs of an existing output folder from their "
                        "checkpoints, with the settings stored in its config.toml")


def _cli_value(parse, text: str):
    try:
        return parse(text)
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _overrides(args: argparse.Namespace, options) -> dict:
    """Nested settings overrides from the options that were given."""
    ov: dict = {}

    def put(key: str, value) -> None:
        node = ov
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    if args.mode is not None:
        put("experiment.mode", args.mode)
    if args.backend is not None:
        put("experiment.backend", args.backend)
    for opt in options:
        value = getattr(args, f"opt_{opt.key}")
        if value is not None:
            put(opt.key, value)
    if getattr(args, "seeds", None) is not None:
        put("experiment.seeds", args.seeds)
    if getattr(args, "first_seed", None) is not None:
        put("experiment.first_seed", args.first_seed)
    return ov


def _settings_options_given(args: argparse.Namespace, options) -> list[str]:
    given = [f for f, v in (("--quick/--full", args.mode), ("--config", args.config), ("--backend", args.backend),
                            ("--seeds", getattr(args, "seeds", None)),
                            ("--first-seed", getattr(args, "first_seed", None))) if v is not None]
    given += [opt.flag for opt in options if getattr(args, f"opt_{opt.key}") is not None]
    given += ["--set"] * bool(args.sets) + ["--grid"] * bool(getattr(args, "grids", []))
    return given


def _run_experiment_command(args: argparse.Namespace, parser: argparse.ArgumentParser, exp_name: str,
                            single: bool = False) -> int:
    from .experiments.config import ConfigError
    from .experiments.runner import ExperimentError, ExperimentInterrupted, get_experiment, resolve_settings
    from .experiments.runner import run_experiment

    exp = get_experiment(exp_name)
    options = _single_run_options(exp) if single else exp.cli_options
    command = "train" if single else exp_name
    out = args.out
    if single:
        out = out or f"train-{args.model}-seed{args.seed}"
    if args.resume:
        out = out or f"{exp_name}-quick"
        given = _settings_options_given(args, options)
        if given:
            parser.error(f"{given[0]} cannot be combined with --resume: a resumed experiment keeps the "
                         f"settings of {os.path.join(out, 'config.toml')}")
        if single:
            _check_resumed_run(out, args, parser)
        settings = None
    else:
        overrides = _overrides(args, options)
        if single:
            overrides.setdefault("experiment", {}).update(models=[args.model], seeds=1, first_seed=args.seed)
        try:
            settings = resolve_settings(exp, args.mode or "quick", args.config, overrides, args.sets,
                                        getattr(args, "grids", []))
        except ConfigError as exc:
            parser.error(_cli_wording(str(exc)))
        out = out or f"{exp_name}-{settings['experiment']['mode']}"
    jobs = 1 if single else (args.jobs if args.jobs is not None else _default_jobs())
    executor = "inline" if single or jobs == 0 else args.executor
    if getattr(args, "scheduler", None) and executor != "dask":
        parser.error("--scheduler needs --executor dask")
    try:
        doc = run_experiment(exp, settings, out, executor=executor, jobs=max(jobs, 1),
                             scheduler=getattr(args, "scheduler", None), resume=args.resume,
                             figures=not (single or getattr(args, "no_figures", False)))
    except (ExperimentError, ConfigError) as exc:
        parser.error(str(exc))
    except ExperimentInterrupted as exc:
        print(f"\nInterrupted: {exc.finished} of {exc.total} runs finished and are saved in {exc.out}. "
              f"Continue with: nmrnn-np {command} --resume --out {out}"
              + (f" --model {args.model} --seed {args.seed}" if single else ""), file=sys.stderr)
        return 130
    failed = doc.get("failed_runs", [])
    if failed:
        print(f"\n{len(failed)} run{'s' if len(failed) > 1 else ''} failed (retry with: nmrnn-np {command} "
              f"--resume --out {out}):", file=sys.stderr)
        for f in failed:
            print(f"  {f['run']}: {f['reason']}", file=sys.stderr)
        return 1
    if single:
        print(f"\nSaved in {out}. Figures and the table: nmrnn-np evaluate {out}")
    elif getattr(args, "no_figures", False):
        print(f"\nResults: {os.path.join(out, 'metrics.json')}")
    else:
        print(f"\nResults, figures and report: {os.path.join(out, 'report.md')}")
    return 0


def _cli_wording(message: str) -> str:
    """A settings error in the words of the command line (``sets`` -> ``--set``, ``grid`` -> ``--grid``)."""
    message = message.replace("config file ", "--config ", 1).replace("overrides: ", "", 1)
    for api, flag in (("sets", "--set"), ("grid", "--grid")):
        if message.startswith(api + " ") or message.startswith(api + ":"):
            message = flag + message[len(api):]
    return message


def _check_resumed_run(out: str, args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """``train --resume``: the folder must hold a run of the given --model and --seed."""
    from .experiments.config import ConfigError, read_toml
    path = os.path.join(out, "config.toml")
    if not os.path.exists(path):
        return  # the runner reports the missing config.toml
    try:
        ex = read_toml(path).get("experiment", {})
    except ConfigError as exc:
        parser.error(str(exc))
    if ex.get("models") != [args.model]:
        parser.error(f"--model {args.model}: {out} holds a run of {ex.get('models')}")
    if ex.get("first_seed", 0) != args.seed:
        parser.error(f"--seed {args.seed}: {out} holds seed {ex.get('first_seed', 0)}")


def _experiment_parser(subparsers, name: str, *, help_prefix: str = "") -> argparse.ArgumentParser:
    from .experiments.runner import get_experiment
    exp = get_experiment(name)
    description = (exp.__doc__ or exp.title).strip() + "\n\n" + (
        sys.modules[type(exp).__module__].__doc__ or "").strip().split("\n\n")[0]
    p = subparsers.add_parser(name, help=help_prefix + (exp.summary or exp.title), description=description,
                              epilog=_RUN_EPILOG, formatter_class=HelpFormatter)
    _add_experiment_options(p, exp.cli_options)
    p.add_argument("--out", default=None, metavar="DIR",
                   help=f"output folder (default: {name}-quick or {name}-full); must not exist unless --resume")
    p.set_defaults(func=lambda args: _run_experiment_command(args, p, name))
    return p


def _add_experiments(subparsers) -> None:
    """``nmrnn-np NAME`` for every registered experiment, and ``nmrnn-np run NAME``."""
    from .experiments.runner import EXPERIMENTS
    run = subparsers.add_parser("run", help="run any registered experiment: nmrnn-np run NAME [options]",
                                description="Run a registered experiment on the runner (local processes or a "
                                            "dask cluster). `nmrnn-np run NAME --help` lists its options.",
                                formatter_class=HelpFormatter)
    run_sub = run.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    for name in EXPERIMENTS:
        _experiment_parser(run_sub, name)
        _experiment_parser(subparsers, name)


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
    from .experiments.runner import get_experiment
    from .models import MODELS
    p = subparsers.add_parser("train", help="train one model (one seed) on a task",
                              description=_TRAIN_DESCRIPTION, formatter_class=HelpFormatter)
    p.add_argument("--task", choices=("mwg",), default="mwg", help="task: mwg = Measure-Wait-Go")
    p.add_argument("--model", choices=tuple(MODELS), required=True,
                   help="nmrnn = NM-RNN, lrrnn = low-rank RNN, rnn = vanilla RNN, lstm = LSTM "
                        "(sizes of the parameter-matched study)")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="seed of the initial parameters")
    _add_experiment_options(p, _single_run_options(get_experiment("mwg")), single=True)
    p.add_argument("--out", default=None, metavar="DIR",
                   help="run folder (default: train-<model>-seed<seed>); must not exist unless --resume")
    p.set_defaults(func=lambda args: _run_experiment_command(args, p, "mwg", single=True))


def _single_run_options(exp) -> tuple:
    """An experiment's options without the one that selects models (``train`` picks one run itself)."""
    return tuple(o for o in exp.cli_options if o.key != "experiment.models")


# ----------------------------------------------------------------------------
# evaluate
# ----------------------------------------------------------------------------
def _evaluate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .experiments.config import ConfigError
    from .experiments.runner import ExperimentError, aggregate

    if not os.path.isdir(args.run_dir):
        parser.error(f"RUN_DIR {args.run_dir!r} is not a folder")
    overrides = {"experiment": {"clamp": args.clamp}} if args.clamp is not None else None
    try:
        aggregate(args.run_dir, figures=not args.no_figures, reevaluate=True, overrides=overrides)
    except (FileNotFoundError, ConfigError, ExperimentError, ValueError) as exc:
        parser.error(str(exc))
    print(f"\nWritten: {os.path.join(args.run_dir, 'metrics.json')}"
          + ("" if args.no_figures else f", {os.path.join(args.run_dir, 'report.md')} and the figures"))
    return 0


def _add_evaluate(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="evaluate the trained runs of an experiment folder again: table, metrics, figures",
        description="Evaluate every finished run of a folder written by an experiment (`nmrnn-np mwg`, "
                    "`nmrnn-np run NAME`, `nmrnn-np train`) again from its saved models; print the table and "
                    "(re)write metrics.json, report.md and the figures in that folder.",
        formatter_class=HelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="folder written by an experiment or `nmrnn-np train`")
    p.add_argument("--clamp", choices=("mean", "zero", "one"), default=None,
                   help="Measure-Wait-Go ablation: clamp each component of s to its trial mean, 0 or 1 "
                        "(default: the folder's setting)")
    p.add_argument("--no-figures", action="store_true", help="only the table and metrics.json")
    p.set_defaults(func=lambda args: _evaluate(args, p))


# ----------------------------------------------------------------------------
def _registrars() -> list[Callable]:
    funcs: list[Callable] = [_add_experiments, _add_train, _add_evaluate]
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
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        # what no subcommand anticipated (a file that vanished, a disk that filled up, a corrupt file read
        # late) still ends in one line; NMRNN_NP_DEBUG=1 shows the traceback
        if os.environ.get("NMRNN_NP_DEBUG"):
            raise
        prog = f"nmrnn-np {args.command}" if getattr(args, "command", None) else "nmrnn-np"
        print(f"{prog}: error: {type(exc).__name__}: {exc} (NMRNN_NP_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
