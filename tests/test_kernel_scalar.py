"""The kernels' scalar functions (nmrnn_np._kernels.scalar): tanh and sigmoid.

Oracles: ``numpy.tanh`` (what the NumPy path uses), tanh in extended
precision (80-bit long double on x86), the logistic function, and the same
tanh called from a loop compiled with the low-rank kernels' fastmath flags.
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


def test_fastmath_caller_does_not_reassociate_tanh():
    # the low-rank kernels are compiled with fastmath={"reassoc", "contract"}; tanh must keep its
    # strict Cody-Waite reduction when inlined into such a loop, so the bits are those of tanh_array
    from numba import njit

    @njit(error_model="numpy", fastmath={"reassoc", "contract"})
    def fast_loop(x, out):
        for i in range(x.size):
            out[i] = scalar.tanh(x[i])

    x = _real_line()
    out = np.empty_like(x)
    fast_loop(x, out)
    np.testing.assert_array_equal(out, _tanh(x))


def test_both_kernel_modules_use_this_tanh():
    # one implementation: the low-rank and the dense kernels import it, neither has its own copy
    assert lowrank.tanh is scalar.tanh and lowrank.sigmoid is scalar.sigmoid
    assert dense.tanh is scalar.tanh
    for module in (lowrank, dense):
        assert not any(hasattr(module, name) for name in ("tanh_array", "tanh_into", "_sigmoid", "_bits_to_float"))
