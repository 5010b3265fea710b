"""Save and load trained models: one ``.npz`` file, no pickle.

A model file holds the parameter arrays, the model's registry name
(``model.kind``) and its configuration (``model.config()``, as JSON), a
caller-chosen JSON metadata dict, and a format version. It is read with
``numpy.load(..., allow_pickle=False)``, so loading a file never runs code.

Files are written atomically: to a temporary file in the same directory, then
moved over the destination with :func:`os.replace`, so a crash or Ctrl-C never
leaves a half-written file under the final name. The training checkpoints of
:mod:`nmrnn_np.training` are written the same way.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import _validation as V
from .models import MODELS, RecurrentModel, make_model

#: written into every model file; :func:`load_model` refuses newer versions
FORMAT_VERSION = 1
MODEL_FORMAT = "nmrnn_np.model"
PARAM_PREFIX = "params/"


# ----------------------------------------------------------------------------
# Helpers shared with the trainer's checkpoints
# ----------------------------------------------------------------------------
def _json_default(obj):
    # numpy scalars and small arrays are common in metadata; store them as plain JSON
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def to_json(obj: Any, name: str) -> str:
    """``json.dumps`` with numpy scalars/arrays converted; ValueError naming ``name`` otherwise."""
    try:
        return json.dumps(obj, default=_json_default, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be JSON-serialisable (no pickle is used): {err}") from None


def json_array(obj: Any, name: str) -> np.ndarray:
    """A 0-d unicode array holding ``obj`` as JSON (loadable with ``allow_pickle=False``)."""
    return np.array(to_json(obj, name))


def from_json_array(arrays: Mapping[str, np.ndarray], key: str, path) -> Any:
    """Parse the JSON string stored under ``key``; ValueError naming the file and key otherwise."""
    if key not in arrays:
        raise ValueError(f"{path}: missing entry {key!r}")
    value = arrays[key]
    if value.dtype.kind != "U" or value.ndim != 0:
        raise ValueError(f"{path}: entry {key!r} should be a JSON string, got a {value.dtype} array "
                         f"of shape {value.shape}")
    try:
        return json.loads(str(value))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: entry {key!r} is not valid JSON: {err}") from None


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) at ``path`` atomically: a temporary file beside it, then :func:`os.replace`.

    A reader never sees a half-written file, and an interrupted write leaves
    the previous content in place.
    """
    path = Path(path)
    # a unique temporary name: two writers of the same file never share (and truncate) one temp file
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def atomic_savez(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``arrays`` as an uncompressed ``.npz`` at exactly ``path``, atomically.

    The data go to a temporary file in the destination directory (so the final
    :func:`os.replace` is a rename within one file system, which is atomic),
    are flushed to disk, and only then replace ``path``. On any error,
    including KeyboardInterrupt, the temporary file is removed and ``path`` is
    left as it was. No ``.npz`` suffix is appended.
    """
    path = V.output_path(path, "path")
    directory = path.parent
    for key, value in arrays.items():
        if np.asarray(value).dtype.hasobject:
            raise ValueError(f"cannot write {path}: entry {key!r} is an object array (would need pickle)")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a saved model is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def read_npz(path: str | os.PathLike, what: str = "file") -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read with ``allow_pickle=False``.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is not a readable ``.npz`` archive (corrupt, truncated, a
        plain ``.npy``, or holding pickled objects); the message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    if path.is_dir():
        raise ValueError(f"{what} {path} is a directory, not an .npz file")
    try:
        # check the signature first: np.load would otherwise take any non-zip, non-.npy bytes
        # for a pickle and blame allow_pickle, which misleads for a merely corrupt file
        with open(path, "rb") as fh:
            head = fh.read(6)
        if head.startswith(b"\x93NUMPY"):
            raise ValueError("it holds a single .npy array, not an .npz archive")
        if not head.startswith(b"PK"):
            raise ValueError(f"it does not start with the zip signature (first bytes {head!r})")
        loaded = np.load(path, allow_pickle=False)
        with loaded:
            return {key: loaded[key] for key in loaded.files}
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError) as err:
        raise ValueError(f"{what} {path} is not a readable .npz archive (corrupt or truncated?): "
                         f"{type(err).__name__}: {err}") from err


# ----------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------
def save_model(path: str | os.PathLike, model: RecurrentModel, params: Mapping[str, np.ndarray],
               metadata: Mapping[str, Any] | None = None) -> Path:
    """Save a model and its parameters to one ``.npz`` file (atomic write, no pickle).

    Parameters
    ----------
    path : str or Path
        Destination, used as given (no suffix is added; ``.npz`` is the
        convention). Its directory must exist.
    model : RecurrentModel
        A model of a registered kind (:data:`nmrnn_np.models.MODELS`).
    params : dict of arrays
        Checked with ``model.check_params`` (keys, shapes, finiteness).
    metadata : dict, optional
        Anything JSON-serialisable (task, seed, losses as lists...); numpy
        scalars and arrays are converted to plain JSON numbers and lists.

    Returns
    -------
    Path
        ``path``.

    Notes
    -----
    Entries of the archive: ``format`` ("nmrnn_np.model"), ``format_version``,
    ``kind`` (registry name), ``config`` (JSON of ``model.config()``),
    ``metadata`` (JSON) and ``params/<key>`` for every parameter array.
    """
    path = V.output_path(path, "path")
    if not isinstance(model, RecurrentModel):
        raise TypeError(f"model must be a RecurrentModel, got {type(model).__name__}")
    kind = model.kind
    if MODELS.get(kind) is not type(model):
        raise ValueError(f"model of type {type(model).__name__} (kind {kind!r}) is not in the model registry "
                         f"{sorted(MODELS)}: load_model could not rebuild it")
    params = model.check_params(params)
    if metadata is not None and not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a dict or None, got {type(metadata).__name__}")
    arrays = {
        "format": np.array(MODEL_FORMAT),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "kind": np.array(kind),
        "config": json_array(model.config(), "the model config"),
        "metadata": json_array(dict(metadata or {}), "metadata"),
    }
    arrays.update({PARAM_PREFIX + k: v for k, v in params.items()})
    return atomic_savez(path, arrays)


def model_from_config(kind: str, config: Mapping[str, Any], source: str = "config") -> RecurrentModel:
    """``make_model(kind, **config)`` with errors that name ``source`` and what is wrong."""
    if not isinstance(kind, str) or kind not in MODELS:
        raise ValueError(f"{source}: unknown model kind {kind!r}; expected one of {sorted(MODELS)}")
    if not isinstance(config, Mapping):
        raise ValueError(f"{source}: the model config should be a JSON object, got {type(config).__name__}")
    try:
        return make_model(kind, **config)
    except TypeError as err:  # unexpected or missing constructor arguments
        raise ValueError(f"{source}: config {dict(config)} does not fit model {kind!r}: {err}") from None
    except ValueError as err:
        raise ValueError(f"{source}: invalid config for model {kind!r}: {err}") from None


def load_model(path: str | os.PathLike) -> tuple[RecurrentModel, dict[str, np.ndarray], dict[str, Any]]:
    """Load a model saved by :func:`save_model`.

    Returns
    -------
    model : RecurrentModel
        Rebuilt with ``make_model(kind, **config)``.
    params : dict of float64 arrays
        Checked with ``model.check_params``.
    metadata : dict

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    ValueError
        The file is not a readable ``.npz`` archive (corrupt or truncated), is
        not a model file, was written by a newer format version, names an
        unknown model kind or a config that does not fit it, or its parameters
        have missing or unexpected keys, wrong shapes or non-finite values. The
        message names the file and what is wrong.
    """
    path = V.input_path(path, "path")
    arrays = read_npz(path, "model file")
    fmt = str(arrays["format"]) if "format" in arrays and arrays["format"].dtype.kind == "U" else None
    if fmt != MODEL_FORMAT:
        hint = " (it looks like a training checkpoint: use nmrnn_np.training.load_checkpoint)" \
            if fmt == "nmrnn_np.checkpoint" else ""
        raise ValueError(f"{path} is not an nmrnn_np model file: its 'format' entry is {fmt!r}, "
                         f"expected {MODEL_FORMAT!r}{hint}")
    version = int(arrays["format_version"]) if "format_version" in arrays else None
    if version is None or version > FORMAT_VERSION or version < 1:
        raise ValueError(f"{path}: unsupported format_version {version}; this nmrnn_np reads versions "
                         f"1 to {FORMAT_VERSION}")
    if "kind" not in arrays or arrays["kind"].dtype.kind != "U":
        raise ValueError(f"{path}: missing entry 'kind' (the model's registry name)")
    model = model_from_config(str(arrays["kind"]), from_json_array(arrays, "config", path), str(path))
    metadata = from_json_array(arrays, "metadata", path)
    params = {k[len(PARAM_PREFIX):]: v for k, v in arrays.items() if k.startswith(PARAM_PREFIX)}
    try:
        params = model.check_params(params, name="params")
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return model, params, metadata


__all__ = ["save_model", "load_model", "FORMAT_VERSION", "atomic_savez", "read_npz"]
