"""The kernels' scalar functions (nmrnn_np._kernels.scalar): tanh and sigmoid.

Oracles: ``numpy.tanh`` (what the NumPy path uses), tanh in extended
precision (80-bit long double on x86), the logistic function, and the same
tanh compiled first from a fastmath caller, and the tanh values the kernels store.
"""
from __future__ import annotations

import numpy as np
import pytest

import nmrnn_np as nm

pytestmark = pytest.mark.skipif(not nm.HAVE_NUMBA, reason="the kernels' scalar functions are compiled by numba")

from nmrnn_np._kernels import dense, lowrank, scalar  # noqa: E402  (after the skip marker on purpose)


def _ulps(values, truth):
    """|values - truth| in units of the float64 spacing at truth (truth in extended precision)."""
    spacing = np.spacing(np.abs(truth.astype(np.float64)).clip(np.finfo(np.float64).tiny))
    return (np.abs(values.astype(np.longdouble) - truth) / spacing).astype(float)


def _tanh(x):
    out = np.empty_like(x)
    scalar.tanh_array(x, out)
    return out


def _real_line():
    """Every range the kernels meet and the edges of the formula (0.55 switch, saturation at 20)."""
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-25, 25, 200_001), np.linspace(-40, 40, 40_001),
                        rng.normal(scale=3.0, size=100_000), np.geomspace(1e-300, 25, 20_001),
                        np.linspace(0.54, 0.56, 2_001), np.linspace(0.16, 0.19, 2_001), np.linspace(0.62, 0.63, 2_001)]
                       + [rng.standard_normal(20_000) * s for s in (1e-300, 1e-8, 1e-3, 0.3, 0.6, 1, 3, 10, 30, 1e5)]
                       + [[0.55, np.nextafter(0.55, 0.0), 19.0, 20.0, 20.000001, 710.0, 1e308,
                           5e-324, 2.2250738585072014e-308]])
    return np.concatenate([x, -x])


def test_tanh_is_accurate_to_a_few_ulp():
    x = _real_line()
    ours = _tanh(x)
    want = np.tanh(x)
    assert np.max(np.abs(ours - want) / np.maximum(np.abs(want), 1e-300)) < 1e-15
    assert np.max(_ulps(ours, want.astype(np.longdouble))) <= 4.0
    if np.finfo(np.longdouble).eps < np.finfo(np.float64).eps:   # 80-bit long double (x86)
        err = _ulps(ours, np.tanh(x.astype(np.longdouble)))
        assert np.max(err) <= 3.0
        assert np.mean(err) <= 0.5
    assert np.all(np.abs(ours) <= 1.0)


def test_tanh_is_odd_bit_for_bit():
    x = _real_line()
    np.testing.assert_array_equal(_tanh(-x), -_tanh(x))


def test_tanh_special_values():
    special = np.array([0.0, -0.0, 1e-300, -5e-324, 19.0, 20.0, 21.0, 700.0, 1e300, np.inf, -np.inf, np.nan])
    out = _tanh(special)
    np.testing.assert_array_equal(out[:4], special[:4])            # exact for tiny x
    assert np.signbit(out[1]) and not np.signbit(out[0])           # -0.0 stays -0.0
    np.testing.assert_array_equal(out[5:11], [1.0, 1.0, 1.0, 1.0, 1.0, -1.0])
    assert abs(out[4] - np.tanh(19.0)) <= np.spacing(1.0)
    assert np.isnan(out[11])


def test_tanh_array_takes_any_shape():
    x = np.linspace(-3, 3, 24).reshape(2, 3, 4)
    out = np.empty_like(x)
    scalar.tanh_array(x, out)
    np.testing.assert_allclose(out, np.tanh(x), rtol=1e-15, atol=0)


def test_sigmoid_is_the_logistic_function_and_never_overflows():
    from numba import njit

    @njit
    def sig(q, out):
        for i in range(q.size):
            out[i] = scalar.sigmoid(q[i])

    q = np.concatenate([np.linspace(-40, 40, 8001), [-1e308, 1e308, -np.inf, np.inf]])
    out = np.empty_like(q)
    sig(q, out)
    with np.errstate(over="ignore"):
        want = 1.0 / (1.0 + np.exp(-q))
    np.testing.assert_allclose(out, want, rtol=1e-15, atol=1e-16)
    np.testing.assert_array_equal(out[-4:], [0.0, 1.0, 0.0, 1.0])
    assert np.all((out >= 0.0) & (out <= 1.0))
    # the same formula as the NumPy path, to rounding
    np.testing.assert_allclose(out[:-4], nm.models.base.sigmoid(q[:-4]), rtol=1e-15, atol=1e-16)


def test_both_kernel_modules_use_this_tanh():
    # one implementation: the low-rank and the dense kernels import it, neither has its own copy
    assert lowrank.tanh is scalar.tanh and lowrank.sigmoid is scalar.sigmoid
    assert dense.tanh is scalar.tanh
    for module in (lowrank, dense):
        assert not any(hasattr(module, name) for name in ("tanh_array", "tanh_into", "_sigmoid", "_bits_to_float"))


def test_the_kernels_compute_this_tanh_bit_for_bit():
    # phi(x_0) as the low-rank forward kernel stores it (compiled with fastmath), phi(x[0]) of the
    # vanilla RNN kernel and tanh(c_t) of the LSTM kernel must be the bits of tanh_array. This also
    # catches kernels loaded from a stale numba cache after an edit of scalar.py (numba keys a
    # cached kernel on its own file only): then clear nmrnn_np/_kernels/__pycache__.
    rng = np.random.default_rng(3)
    B, N = 8, 500
    x0 = np.concatenate([rng.normal(scale=3.0, size=B * N - 6), [0.55, -0.549, 1e-9, -0.0, 19.5, -25.0]])
    x0 = x0.reshape(B, N)
    inputs = rng.normal(size=(B, 3, 2))

    model = nm.NMRNN(N=N, K=2, M=3, U=2, O=1)
    p = model.prepare(model.init_params(0))
    fwd = model._numba_forward(p, inputs, {"x0": x0, "z0": np.zeros((B, 3))})
    np.testing.assert_array_equal(fwd["phi"][0], _tanh(x0))

    rnn = nm.VanillaRNN(N=N, U=2, O=1)
    fwd = rnn._numba_forward(rnn.init_params(0), inputs, {"x0": x0})
    np.testing.assert_array_equal(fwd["_r"][0], _tanh(x0))

    lstm = nm.LSTM(N=N, U=2, O=1)
    fwd = lstm._numba_forward(lstm.init_params(0), inputs, {"c0": x0, "h0": np.zeros((B, N))})
    np.testing.assert_array_equal(fwd["_tc"], _tanh(np.ascontiguousarray(fwd["_c"][1:])))


def test_tanh_is_the_same_whichever_caller_compiles_it_first(tmp_path):
    # numba compiles a function with the fastmath flags of the caller that compiles it first, unless
    # the function sets its own (the low-rank kernels use reassoc, which would undo the Cody-Waite
    # reduction); in a fresh process with an empty cache, let a fully fastmath loop compile tanh
    # first, then compare with this process's tanh bit for bit
    import os
    import subprocess
    import sys
    from pathlib import Path

    x = _real_line()
    np.save(tmp_path / "x.npy", x)
    code = ("import sys\n"
            "import numpy as np\n"
            "from numba import njit\n"
            "from nmrnn_np._kernels import scalar\n"
            "@njit(fastmath=True)\n"
            "def loop(x, out):\n"
            "    for i in range(x.size):\n"
            "        out[i] = scalar.tanh(x[i])\n"
            "x = np.load(sys.argv[1]); out = np.empty_like(x); loop(x, out); np.save(sys.argv[2], out)\n")
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(root))
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.npy"), str(tmp_path / "out.npy")],
                   env=env, check=True, cwd=tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), _tanh(x))
