"""Compare Measure-Wait-Go experiment folders run different ways (e.g. two training procedures).

``nmrnn-np compare ours=mwg-full authors=mwg-full-authors`` reads the
``metrics.json`` of each folder (written by ``nmrnn-np mwg`` or
``nmrnn-np evaluate``) and prints, per model and folder, the median and
interquartile range of the trained and extrapolated L2 errors, every seed's
extrapolated error, how many NM-RNN seeds beat the best (and the median)
LR-RNN seed, and which seeds fail to hold their output after the ramp
(:func:`nmrnn_np.experiments.mwg.hold_metrics`). ``--out FILE.png`` also draws
one point per seed and folder (:func:`~nmrnn_np.experiments.mwg_figures.plot_procedures`).

Only the seeds present in every folder are compared side by side in the
figure's lines; the tables use every finished run of each folder.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Mapping, Sequence


from .mwg import MODEL_LABELS, MODEL_NAMES
from .summary import count_better, stats

__all__ = ["load_runs", "comparison_table", "compare_folders", "add_parser"]


def load_runs(folder: str | Path) -> list[dict[str, Any]]:
    """The finished runs recorded in ``folder/metrics.json`` of a Measure-Wait-Go experiment.

    Raises
    ------
    ValueError
        The folder has no readable ``metrics.json``, or it is not a
        Measure-Wait-Go experiment.
    """
    path = Path(folder) / "metrics.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{folder}: no metrics.json (run `nmrnn-np evaluate {folder}` first)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable metrics file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("experiment") != "mwg" or not isinstance(doc.get("runs"), list):
        raise ValueError(f"{path}: not the metrics of a Measure-Wait-Go experiment (nmrnn-np mwg)")
    return doc["runs"]


def _stat(values: Sequence[float | None]) -> str:
    st = stats(values)
    if st is None:
        return "n/a"
    return f"{st['median']:.2e} [{st['q25']:.1e}, {st['q75']:.1e}]"


def comparison_table(runs_by_label: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """Markdown: a row per model and folder, then the NM-RNN against the LR-RNN per folder."""
    lines = ["| model | run | seeds | L2 trained, median [IQR] | L2 extrapolated, median [IQR] | "
             "extrapolated per seed | fail to hold |",
             "|---|---|---|---|---|---|---|"]
    for m in MODEL_NAMES:
        for label, runs in runs_by_label.items():
            rs = sorted((r for r in runs if r["model"] == m), key=lambda r: r["seed"])
            if not rs:
                continue
            seeds = [r["seed"] for r in rs]
            contiguous = seeds == list(range(seeds[0], seeds[0] + len(seeds)))
            per_seed = " ".join(("" if contiguous else f"{r['seed']}:")
                                + ("n/a" if r["l2"]["extrapolated"] is None else f"{r['l2']['extrapolated']:.1e}")
                                for r in rs)
            if contiguous:
                span = f"seeds {seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else f"seed {seeds[0]}"
                per_seed = f"{span}: {per_seed}"
            held = [r for r in rs if "hold" in r]
            bad = [r["seed"] for r in held if r["hold"]["fails"]]
            fails = ("n/a" if not held else f"{len(bad)} of {len(held)}"
                     + (f" (seed{'s' if len(bad) > 1 else ''} {', '.join(map(str, bad))})" if bad else ""))
            lines.append(f"| {MODEL_LABELS[m]} | {label} | {len(rs)} | {_stat([r['l2']['trained'] for r in rs])} | "
                         f"{_stat([r['l2']['extrapolated'] for r in rs])} | {per_seed} | {fails} |")
    lines.append("")
    for label, runs in runs_by_label.items():
        nm = [r["l2"]["extrapolated"] for r in runs if r["model"] == "nmrnn"]
        lr = [r["l2"]["extrapolated"] for r in runs if r["model"] == "lrrnn"]
        if nm and lr:
            c = count_better(nm, lr)
            lines.append(f"* {label}: {c['below_best']} of {c['n']} NM-RNN seeds beat the best LR-RNN seed, "
                         f"{c['below_median']} of {c['n']} its median (extrapolated L2).")
    return "\n".join(lines) + "\n"


def compare_folders(folders: Mapping[str, str | Path], out: str | Path | None = None) -> str:
    """The table of :func:`comparison_table` for labelled folders; with ``out``, also the figure (PNG)."""
    if len(folders) < 1:
        raise ValueError("folders must name at least one experiment folder")
    runs = {label: load_runs(path) for label, path in folders.items()}
    if out is not None:
        from .mwg_figures import plot_procedures
        from .runner import _save_figure
        models = [m for m in MODEL_NAMES if any(r["model"] == m for rs in runs.values() for r in rs)]
        out = Path(out)
        if not out.parent.is_dir():
            raise ValueError(f"out: folder {str(out.parent)!r} does not exist")
        _save_figure(plot_procedures(runs, models), out)
    return comparison_table(runs)


def _labelled(text: str) -> tuple[str, str]:
    label, sep, path = text.partition("=")
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f"expected LABEL=FOLDER, got {text!r}")
    return label, path


def add_parser(subparsers) -> None:
    """Register ``nmrnn-np compare``."""
    from ..cli import HelpFormatter
    p = subparsers.add_parser(
        "compare", help="compare Measure-Wait-Go folders run different ways: tables per seed, a figure",
        description="Read the metrics.json of Measure-Wait-Go folders (nmrnn-np mwg or nmrnn-np evaluate) "
                    "and print, per model and folder: median and interquartile range of the trained and "
                    "extrapolated L2 errors, every seed's extrapolated error, how many NM-RNN seeds beat the best "
                    "and the median LR-RNN seed, and the seeds whose output fails to hold after the ramp. "
                    "--out also draws one point per seed and folder.\n\n"
                    "Example: nmrnn-np compare ours=mwg-full authors=mwg-full-authors --out procedures.png",
        formatter_class=HelpFormatter)
    p.add_argument("folders", nargs="+", type=_labelled, metavar="LABEL=FOLDER",
                   help="experiment folders written by `nmrnn-np mwg`, each with a label, e.g. ours=mwg-full")
    p.add_argument("--out", default=None, metavar="FILE.png", help="also draw one point per seed and folder")

    def run(args) -> int:
        labels = [label for label, _ in args.folders]
        if len(set(labels)) != len(labels):
            p.error(f"labels must differ, got {', '.join(labels)}")
        try:
            print(compare_folders(dict(args.folders), args.out), end="")
        except ValueError as exc:
            p.exit(2, f"nmrnn-np compare: error: {exc}\n")
        if args.out:
            print(f"figure: {args.out}")
        return 0
    p.set_defaults(func=run)
