"""``python -m nmrnn_np``: the ``nmrnn-np`` command line (see :mod:`nmrnn_np.cli`)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
