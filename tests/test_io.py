"""Saving and loading trained models: round trip, and clear errors for bad files."""
from __future__ import annotations

import numpy as np
import pytest

import nmrnn_np as nm
from nmrnn_np.io import atomic_savez, load_model, read_npz, save_model

MODELS = [
    lambda: nm.NMRNN(N=5, K=2, M=3, U=3, O=2, tau_x=5.0, feedback=True, U_x=2, signal_dim=1),
    lambda: nm.LowRankRNN(N=5, K=2, U=3, O=2, tied=True),
    lambda: nm.VanillaRNN(N=4, U=3, O=2, readout_bias=False),
    lambda: nm.LSTM(N=3, U=3, O=2),
]


@pytest.mark.parametrize("make", MODELS)
def test_round_trip(tmp_path, make):
    model = make()
    params = model.init_params(4)
    meta = {"task": "mwg", "seed": np.int64(3), "losses": np.array([0.5, 0.25]), "note": None}
    path = save_model(tmp_path / "m.npz", model, params, metadata=meta)
    loaded, p, m = load_model(path)
    assert type(loaded) is type(model) and loaded.config() == model.config()
    assert p.keys() == params.keys()
    for k in params:
        assert p[k].dtype == np.float64 and p[k].tobytes() == params[k].tobytes()
    assert m == {"task": "mwg", "seed": 3, "losses": [0.5, 0.25], "note": None}
    # nothing in the file needs pickle, and no temporary file is left behind
    assert all(a.dtype.kind in "fiU" for a in np.load(path, allow_pickle=False).values())
    assert [f.name for f in tmp_path.iterdir()] == ["m.npz"]


def test_save_overwrites_atomically_and_checks_arguments(tmp_path):
    model = nm.LSTM(N=3, U=2, O=1)
    params = model.init_params(0)
    path = tmp_path / "m.npz"
    save_model(path, model, params)
    save_model(path, model, {k: 2 * v for k, v in params.items()})
    np.testing.assert_array_equal(load_model(path)[1]["C"], 2 * params["C"])
    assert load_model(path)[2] == {}
    with pytest.raises(ValueError, match="shape"):
        save_model(path, model, {**params, "C": np.zeros((2, 3))})
    with pytest.raises(ValueError, match="metadata must be JSON-serialisable"):
        save_model(path, model, params, metadata={"f": object()})
    with pytest.raises(ValueError, match="does not exist"):
        save_model(tmp_path / "no" / "m.npz", model, params)
    # a failed write leaves the previous file intact
    np.testing.assert_array_equal(load_model(path)[1]["C"], 2 * params["C"])


def test_unregistered_model_type_is_refused(tmp_path):
    class MyRNN(nm.VanillaRNN):
        pass

    model = MyRNN(N=3, U=2, O=1)
    with pytest.raises(ValueError, match="registry"):
        save_model(tmp_path / "m.npz", model, model.init_params(0))


def saved(tmp_path):
    model = nm.NMRNN(N=4, K=2, M=3, U=2, O=1)
    path = save_model(tmp_path / "m.npz", model, model.init_params(0))
    return model, path, dict(np.load(path, allow_pickle=False))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        load_model(tmp_path / "nothing.npz")


@pytest.mark.parametrize("content", [b"", b"not a zip file at all", b"PK\x03\x04 truncated"])
def test_corrupt_file(tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"bad\.npz is not a readable \.npz"):
        load_model(path)


def test_truncated_archive(tmp_path):
    _, path, _ = saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_model(path)


def test_plain_npy_is_refused(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(ValueError, match="single .npy"):
        load_model(path)


def rewrite(path, arrays):
    atomic_savez(path, arrays)
    return path


def test_missing_and_extra_parameter_keys(tmp_path):
    _, path, arrays = saved(tmp_path)
    del arrays["params/W_z"]
    with pytest.raises(ValueError, match=r"m\.npz.*missing keys \['W_z'\]"):
        load_model(rewrite(path, arrays))
    arrays["params/W_z"] = np.zeros((3, 3))
    arrays["params/extra"] = np.zeros(2)
    with pytest.raises(ValueError, match=r"unexpected keys \['extra'\]"):
        load_model(rewrite(path, arrays))


def test_wrong_shape_names_the_key(tmp_path):
    _, path, arrays = saved(tmp_path)
    arrays["params/L"] = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"params\['L'\] must have shape \(4, 2\), got \(3, 2\)"):
        load_model(rewrite(path, arrays))


def test_unknown_kind_bad_config_and_format(tmp_path):
    _, path, arrays = saved(tmp_path)
    with pytest.raises(ValueError, match="unknown model kind 'gru'"):
        load_model(rewrite(path, {**arrays, "kind": np.array("gru")}))
    with pytest.raises(ValueError, match="does not fit model 'nmrnn'"):
        load_model(rewrite(path, {**arrays, "config": np.array('{"N": 4}')}))
    with pytest.raises(ValueError, match="'config' is not valid JSON"):
        load_model(rewrite(path, {**arrays, "config": np.array("{N: 4")}))
    with pytest.raises(ValueError, match="format_version 99"):
        load_model(rewrite(path, {**arrays, "format_version": np.array(99)}))
    no_format = {k: v for k, v in arrays.items() if k != "format"}
    with pytest.raises(ValueError, match="not an nmrnn_np model file"):
        load_model(rewrite(path, no_format))


def test_read_npz_never_unpickles(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a readable .npz"):
        read_npz(path)
    with pytest.raises(ValueError, match="object array"):
        atomic_savez(tmp_path / "o.npz", {"a": np.array([None], dtype=object)})
