"""Summaries over seeds that one failing seed cannot mislead, and markdown tables.

Every experiment's runs are grouped by their run fields except the seed (the
model, swept settings, ...); each number a run reports is then summarised over
the group's seeds by :func:`stats`: mean and standard deviation, but also the
median and interquartile range and, for positive numbers (errors, losses),
the geometric mean. A table shows the median with its interquartile range by
default: one diverged seed moves a mean by orders of magnitude and the median
not at all. :func:`count_better` counts the seeds for which a comparison
holds, which is what a claim such as "the NM-RNN extrapolates better than the
LR-RNN" should rest on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

__all__ = ["stats", "get_dotted", "group_runs", "summarize", "Column", "format_cell", "format_table",
           "count_better", "outlier_seeds"]


def get_dotted(record: Mapping[str, Any], dotted: str) -> Any:
    """``record["a"]["b"]`` for ``"a.b"``; None where a key is missing."""
    node: Any = record
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def stats(values: Sequence[float | None]) -> dict[str, Any] | None:
    """Summary of the finite numbers among ``values`` (None and NaN are left out and counted).

    Returns
    -------
    dict or None
        ``n``, ``mean``, ``std`` (ddof 1; 0 for one value), ``median``,
        ``q25``, ``q75`` (linear interpolation), ``min``, ``max``,
        ``gmean`` (geometric mean, only when every value is > 0) and
        ``n_missing``; None when no value is finite.
    """
    raw = [v for v in values]
    vals = np.array([float(v) for v in raw if v is not None and math.isfinite(float(v))], dtype=np.float64)
    if vals.size == 0:
        return None
    out = {
        "n": int(vals.size),
        "mean": float(vals.mean()),
        "std": float(vals.std(ddof=1)) if vals.size > 1 else 0.0,
        "median": float(np.median(vals)),
        "q25": float(np.percentile(vals, 25)),
        "q75": float(np.percentile(vals, 75)),
        "min": float(vals.min()),
        "max": float(vals.max()),
        "n_missing": len(raw) - int(vals.size),
    }
    if np.all(vals > 0):
        out["gmean"] = float(np.exp(np.mean(np.log(vals))))
    return out


def group_runs(runs: Sequence[Mapping[str, Any]], by: Sequence[str]) -> list[tuple[dict[str, Any], list]]:
    """Runs grouped by the values of the fields ``by``, in order of first appearance."""
    groups: dict[tuple, tuple[dict[str, Any], list]] = {}
    for r in runs:
        key = tuple(_hashable(r.get(f)) for f in by)
        if key not in groups:
            groups[key] = ({f: r.get(f) for f in by}, [])
        groups[key][1].append(r)
    return list(groups.values())


def _hashable(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def summarize(runs: Sequence[Mapping[str, Any]], metrics: Mapping[str, str], by: Sequence[str]) -> list[dict]:
    """One entry per group of ``runs`` (grouped by ``by``): the group's fields, seeds and :func:`stats`.

    Parameters
    ----------
    runs : list of dict
        Per-run results (the ``runs`` of an experiment's ``metrics.json``).
    metrics : dict
        Summary name -> dotted key into a run's result (``"l2.extrapolated"``).
    by : list of str
        Run fields that identify a group (everything but the seed).
    """
    out = []
    for fields, members in group_runs(runs, by):
        entry: dict[str, Any] = dict(fields)
        entry["seeds"] = [r.get("seed") for r in members]
        for name, key in metrics.items():
            entry[name] = stats([get_dotted(r, key) for r in members])
        out.append(entry)
    return out


@dataclass(frozen=True)
class Column:
    """A table column: ``header``, the summary name it shows, and the number format."""

    header: str
    metric: str
    fmt: str = ".1e"


def format_cell(stat: Mapping[str, Any] | None, fmt: str = ".1e", style: str = "median") -> str:
    """One cell: ``median [q25, q75]`` (style "median") or ``mean ± std`` (style "mean")."""
    if stat is None:
        return "n/a"
    if stat["n"] == 1:
        return format(stat["mean"], fmt)
    if style == "mean":
        return f"{format(stat['mean'], fmt)} ± {format(stat['std'], fmt)}"
    return f"{format(stat['median'], fmt)} [{format(stat['q25'], fmt)}, {format(stat['q75'], fmt)}]"


def format_table(summary: Sequence[Mapping[str, Any]], columns: Sequence[Column],
                 labels: Sequence[tuple[str, Callable[[Mapping[str, Any]], str]]], style: str = "median") -> str:
    """Markdown table of :func:`summarize`: one row per group.

    ``labels`` are the leading columns, ``(header, function of the summary
    entry)`` (e.g. the model's name and parameter count); then a ``seeds``
    column and one column per :class:`Column`.
    """
    head = [h for h, _ in labels] + ["seeds"] + [c.header for c in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for entry in summary:
        cells = [fn(entry) for _, fn in labels] + [str(len(entry["seeds"]))]
        cells += [format_cell(entry.get(c.metric), c.fmt, style) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def count_better(a: Sequence[float | None], b: Sequence[float | None]) -> dict[str, int]:
    """How many values of ``a`` are below ``min(b)`` (beat every b) and below ``median(b)``.

    Lower is better (errors). None/NaN entries of ``a`` count as not better.
    """
    bb = [float(v) for v in b if v is not None and math.isfinite(float(v))]
    aa = [None if v is None or not math.isfinite(float(v)) else float(v) for v in a]
    if not bb:
        return {"n": len(aa), "below_best": 0, "below_median": 0}
    best, med = min(bb), float(np.median(bb))
    return {"n": len(aa), "below_best": sum(v is not None and v < best for v in aa),
            "below_median": sum(v is not None and v < med for v in aa)}


def outlier_seeds(runs: Sequence[Mapping[str, Any]], key: str, factor: float = 10.0) -> list[tuple[Any, float]]:
    """Seeds whose value of ``key`` exceeds ``factor`` times the group's median: ``(seed, value)``."""
    vals = [(r.get("seed"), get_dotted(r, key)) for r in runs]
    finite = [v for _, v in vals if v is not None and math.isfinite(v)]
    if len(finite) < 3:
        return []
    med = float(np.median(finite))
    return [(s, float(v)) for s, v in vals
            if v is None or not math.isfinite(v) or (med > 0 and v > factor * med)]
