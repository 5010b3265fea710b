"""Re-execute the tutorial notebooks and store them with their outputs.

Run from the repository root (numba installed, so the timings in the
notebooks are those of the fast path)::

    python docs/tutorials/execute.py                   # every notebook
    python docs/tutorials/execute.py 02 04             # some of them (a unique prefix or the file name)

Each notebook runs in a fresh kernel with ``docs/tutorials`` as its working
directory and is written back only if every cell succeeded. The kernel
imports ``nmrnn_np`` from this checkout (the repository root is put first on
``PYTHONPATH``), so the stored outputs are those of the code next to them.
``tests/test_notebooks.py`` executes the same notebooks in a temporary copy
and never writes them.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

#: seconds one cell may take before the run is abandoned (the notebooks take well under a minute)
CELL_TIMEOUT = 600


def notebooks(names=None) -> list[Path]:
    """The tutorial notebooks, in order, or those named (stem or file name)."""
    found = sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return found
    chosen = []
    for name in names:
        match = [p for p in found if p.name == name or p.stem.startswith(name)]
        if len(match) != 1:
            raise SystemExit(f"{name!r} names {len(match)} notebooks; have {[p.stem for p in found]}")
        chosen += match
    return chosen


def kernel_env() -> dict:
    """Environment of the kernel: this checkout first on PYTHONPATH; inline figures, not MPLBACKEND."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.pop("MPLBACKEND", None)
    return env


def execute(path: Path, cwd: Path, timeout: int = CELL_TIMEOUT) -> tuple[nbformat.NotebookNode, float]:
    """Execute the notebook at ``path`` in ``cwd``; returns it with outputs and the wall time in seconds.

    Raises :class:`nbclient.exceptions.CellExecutionError` at the first failing cell.
    """
    nb = nbformat.read(path, as_version=4)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(kernel_env())      # the kernel process inherits this environment
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(cwd)}})
        t0 = time.perf_counter()
        client.execute()
        elapsed = time.perf_counter() - t0
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return nb, elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebooks to run (default: all)")
    args = parser.parse_args(argv)
    for path in notebooks(args.names):
        print(f"{path.name} ...", end=" ", flush=True)
        nb, elapsed = execute(path, HERE)
        # execution timestamps change on every run and only make diffs noisy
        for cell in nb.cells:
            cell.get("metadata", {}).pop("execution", None)
        nbformat.write(nb, path)
        print(f"{elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
