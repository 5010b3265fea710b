"""Every tutorial notebook in docs/tutorials runs without error (as neurogym does for its notebooks).

Each notebook is executed by nbclient in a fresh kernel, in a temporary copy of
``docs/tutorials``: the stored notebooks (with their outputs) are never
rewritten. ``python docs/tutorials/execute.py`` re-executes and stores them.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the test extra installs nbformat, nbclient and ipykernel")
nbclient = pytest.importorskip("nbclient")

TUTORIALS = Path(__file__).resolve().parents[1] / "docs" / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("[0-9][0-9]_*.ipynb"))

#: seconds a single cell may take; the notebooks take well under a minute each on 2 idle cores,
#: the margin is for a loaded CI machine and the first numba compilation
CELL_TIMEOUT = 600


def test_the_tutorials_exist():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    work = tmp_path / "tutorials"
    shutil.copytree(TUTORIALS, work)
    # the kernel (a child process) imports nmrnn_np and theory from this checkout, installed or not
    root = str(TUTORIALS.parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    monkeypatch.delenv("MPLBACKEND", raising=False)
    nb = nbformat.read(work / path.name, as_version=4)
    # the kernel runs this interpreter (the test venv), whatever kernels Jupyter knows about
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(work)}})
    client.execute()     # raises CellExecutionError, naming the cell, on the first error
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    # the stored notebook is untouched
    assert nbformat.read(path, as_version=4).cells[0].source == nb.cells[0].source
