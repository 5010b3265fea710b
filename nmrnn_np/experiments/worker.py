"""Worker entry point of the process executor: ``python -m nmrnn_np.experiments.worker RUN_DIR``.

Runs one attempt at one run (:func:`~nmrnn_np.experiments.runner.execute_run`)
and writes its outcome to ``RUN_DIR/outcome.json``; the exit status is 0
whenever the outcome was written (done, failed or interrupted). A worker
killed by a signal writes nothing, which is how the runner tells a dead
worker from a failed run.
"""
from __future__ import annotations

import signal
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m nmrnn_np.experiments.worker RUN_DIR", file=sys.stderr)
        return 2
    # the parent stops runs through the experiment's STOP file, not through signals
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from .runner import _write_json, execute_run
    run_dir = Path(argv[0])
    outcome = execute_run(run_dir)
    _write_json(run_dir / "outcome.json", outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
