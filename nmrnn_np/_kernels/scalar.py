r"""Scalar functions of the numba kernels: a tanh that LLVM can vectorise, and the sigmoid, in float64 and float32.

numba on these machines has no SVML, so ``math.tanh`` in a kernel is a scalar
call into libm (~11 ns per value) and stops the loop around it from being
vectorised. :func:`tanh` below is branch-free and calls no libm function:
loops over it vectorise (AVX2 is enough: there is no float-to-int
conversion in it), 1.3-2 ns per value depending on the machine and its load
(``docs/performance.md``), and
it is accurate to ~1 ulp (against extended precision over the sample of
``tests/test_kernel_scalar.py``: max 2.6 ulp, mean 0.24 ulp; ``numpy.tanh``:
1.2 and 0.22).

The kernels call :func:`tanh` and :func:`sigmoid`, which numba resolves by the
argument's type (``numba.extending.overload``): :func:`tanh64` and
:func:`sigmoid64` for float64, :func:`tanh32` and :func:`sigmoid32` for the
float32 kernels of ``backend="numba32"`` (the same construction with float32
constants and a Taylor polynomial for expm1 on the reduced interval: ~2 ulp
of float32, 8 values per AVX2 instruction, 0.26 instead of 0.71 ms for the
440,000 values of a timing-task forward pass).

Every kernel module (:mod:`~nmrnn_np._kernels.lowrank` for the NM-RNN and the
LR-RNN, :mod:`~nmrnn_np._kernels.dense` for the vanilla RNN and the LSTM)
imports its tanh from here (the LSTM kernels write their sigmoid gates with
it inline), so all models share one implementation, tested in
``tests/test_kernel_scalar.py``.

Compile options. :func:`tanh` and :func:`sigmoid` set theirs explicitly:
``error_model="numpy"`` (a division is a plain IEEE division, with no
``ZeroDivisionError`` branch that would block vectorisation) and
``fastmath={"contract"}`` (multiply-adds may become FMA instructions: 1.3
instead of 1.9 ns per value, same accuracy) but no ``reassoc``, under which
LLVM may fold the Cody-Waite reduction ``(y - k ln2_hi) - k ln2_lo`` back into
``y - k ln2`` and lose its accuracy (full ``fastmath`` changes 7% of the
values and raises the mean error). Explicitly, because numba compiles a
function called from a kernel with the *caller's* fastmath and error model
unless the function sets its own (``Flags.inherit_if_not_set``), and keeps
that compilation for every later caller. The low-rank tanh used to set no
fastmath: when a kernel compiled it first it got the kernels' ``reassoc``
(harmless by luck: on a 520 000-value sample, the same bits as ``contract``
alone), and with one tanh for all kernels the dense kernels' bits would
depend on whether a low-rank kernel had been compiled first in the process
(seen: 13 of 12 000 tanh values of the LSTM kernel 1 ulp apart).

They are ordinary ``@njit`` functions, not ``inline="always"`` (numba would
then inline their bytecode into the caller and compile it with the caller's
flags, ``reassoc`` included in the low-rank kernels); LLVM inlines them
instead, each instruction keeping its own flags, and vectorises the caller's
loop. numba keys a cached kernel on the text of the kernel's own file only,
so after an edit of this file clear ``nmrnn_np/_kernels/__pycache__``: a
stale kernel would keep the old tanh (``tests/test_kernel_scalar.py``
compares the kernels' tanh with this one bit for bit).
"""
from __future__ import annotations

import math

import numpy as np

from .._backend import HAVE_NUMBA, njit


def _bitcast(float_name: str, to_float: bool):
    """A function that reinterprets the bits of an int of the width of ``float_name`` as that float
    (``to_float``), or those of the float as the int.

    No conversion: ``builder.bitcast`` in a kernel (a numba intrinsic), the
    same bytes through :mod:`struct` when called from Python without numba.
    """
    bits = 64 if float_name == "float64" else 32
    int_name = f"int{bits}"
    src, dst = (int_name, float_name) if to_float else (float_name, int_name)
    doc = f"Reinterpret the {bits} bits of an {src} as an {dst} (no conversion)."
    if HAVE_NUMBA:
        from llvmlite import ir
        from numba import types
        from numba.extending import intrinsic

        llvm_dst = {"float64": ir.DoubleType(), "float32": ir.FloatType()}[dst] if to_float else ir.IntType(bits)

        def typer(typingctx, value):
            def codegen(context, builder, signature, args):
                return builder.bitcast(args[0], llvm_dst)
            return getattr(types, dst)(getattr(types, src)), codegen

        typer.__doc__ = doc
        return intrinsic(typer)
    import struct

    formats = {"float64": "<d", "int64": "<q", "float32": "<f", "int32": "<i"}
    cast_in = float if src.startswith("float") else int

    def cast(value):   # pragma: no cover - the kernels only run under numba
        return getattr(np, dst)(struct.unpack(formats[dst], struct.pack(formats[src], cast_in(value)))[0])

    cast.__doc__ = doc
    return cast


_bits_to_float = _bitcast("float64", to_float=True)
_float_to_bits = _bitcast("float64", to_float=False)
_bits_to_float32 = _bitcast("float32", to_float=True)
_float32_to_bits = _bitcast("float32", to_float=False)

# Cody-Waite split of ln 2: LN2_HI has 32 trailing zero bits, so k * LN2_HI is
# exact for |k| < 2**20 and r = y - k ln2 is accurate to ~1e-17.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LOG2E = 1.44269504088896338700e+00
# 1.5 * 2**52: v + _SHIFT rounds v (|v| < 2**51) to the nearest integer k, which then sits
# in the low mantissa bits of the sum (so k needs no float -> int conversion, an
# instruction AVX2 does not have for vectors of float64: LLVM would go scalar for it)
_SHIFT = 6755399441055744.0
# exp(r) = (2 + r + d(r)) / (2 - r + d(r)) with d(r) = r^2 P(r^2) on |r| <= ln2/2:
# the minimax coefficients of the classic fdlibm / Cephes exp (public domain).
_E1 = 1.66666666666666019037e-01
_E2 = -2.77777777770155933842e-03
_E3 = 6.61375632143793436117e-05
_E4 = -1.65339022054652515390e-06
_E5 = 4.13813679705723846039e-08
#: above this |x|, tanh(x) rounds to +-1 in float64 (tanh(20) = 1 - 8.5e-18)
_TANH_SATURATION = 20.0


@njit(error_model="numpy", fastmath={"contract"})
def tanh64(x: float) -> float:
    r"""tanh(x) to ~1 ulp (max 2.6 ulp, mean 0.24 ulp), branch-free so loops over it vectorise.

    With ``a = min(|x|, 20)``, ``y = 2 a = k ln2 + r`` (``|r| <= ln2 / 2``),
    ``e_r - 1 = 2 r / D`` where ``D = 2 - r + d(r)`` (the fdlibm rational form
    of exp on the reduced interval) and

    .. math::

        E = \mathrm{expm1}(y) = 2^k (e^r - 1) + (2^k - 1) = \frac{2^{k+1} r + (2^k - 1) D}{D},
        \qquad \tanh a = \frac{E}{E + 2} = 1 - \frac{2}{E + 2}.

    The first form is used below |x| = 0.55 (no cancellation: for k = 0 it is
    ``r / (2 + d)``, exact to rounding even for tiny x), the second above (the
    small term ``2/(E+2)`` carries all the error). Both are computed and one
    is selected, and ``2^k`` is built from the exponent bits (k is rounded
    with the 1.5 * 2^52 shift, not converted from float to int, so the whole
    loop stays in AVX2 vectors), so there is no branch and no call to libm. Odd bit for bit (the sign is copied from x,
    so -0.0 stays -0.0); NaN gives NaN; +-inf gives +-1. Compiled without
    ``reassoc``, which would undo the Cody-Waite reduction (see the module
    docstring).
    """
    a = min(abs(x), _TANH_SATURATION)
    y = 2.0 * a
    shifted = y * _LOG2E + _SHIFT                 # k = round(y / ln2) in the low mantissa bits
    kf = shifted - _SHIFT
    r = (y - kf * _LN2_HI) - kf * _LN2_LO
    # 2^k: the low bits of `shifted` are 2^51 + k; shifting left by 52 drops the 2^51 and
    # puts k + 1023 (0 <= k <= 58) in the exponent field
    two_k = _bits_to_float((_float_to_bits(shifted) + 1023) << 52)
    t = r * r
    dr = t * (_E1 + t * (_E2 + t * (_E3 + t * (_E4 + t * _E5))))
    D = (2.0 - r) + dr
    num = 2.0 * two_k * r + (two_k - 1.0) * D      # = D * expm1(y)
    den = num + 2.0 * D                           # = D * (expm1(y) + 2)
    small = a < 0.55
    q = (num if small else 2.0 * D) / den
    return math.copysign(q if small else 1.0 - q, x)


@njit(error_model="numpy", fastmath={"contract"})
def sigmoid64(q: float) -> float:
    """Logistic sigmoid ``1 / (1 + exp(-q))`` as ``(1 + tanh(q/2)) / 2``: the formula of the NumPy path
    (:func:`nmrnn_np.models.base.sigmoid`), which never overflows."""
    return 0.5 * (tanh64(0.5 * q) + 1.0)


# float32 (the opt-in ``backend="numba32"``): the same construction with float32 constants.
# tanh(9) = 1 - 3.0e-8 rounds to 1 in float32 (half the spacing below 1 is 3.0e-8).
_F32_SATURATION = np.float32(9.0)
_F32_LOG2E = np.float32(1.4426950408889634)
_F32_SHIFT = np.float32(12582912.0)            # 1.5 * 2**23
# ln 2 = _F32_LN2_HI + _F32_LN2_LO with _F32_LN2_HI = 355/512 (9 significant bits: k * hi is exact for k < 2**15)
_F32_LN2_HI = np.float32(0.693359375)
_F32_LN2_LO = np.float32(0.6931471805599453 - 0.693359375)
# Taylor coefficients 1/n! of expm1(r) = r + r^2/2 + ... + r^7/5040: on |r| <= ln2/2 the remainder
# r^8/8! < 5e-9 relative to expm1(r), below half a float32 ulp
_F32_C = tuple(np.float32(1.0 / math.factorial(n)) for n in range(2, 8))
_F32_ONE = np.float32(1.0)
_F32_TWO = np.float32(2.0)
_F32_HALF = np.float32(0.5)


@njit(error_model="numpy", fastmath={"contract"})
def tanh32(x):
    r"""float32 tanh to ~2 ulp of float32 (max 2.3, mean 0.21 over ``tests/test_kernel_scalar.py``), branch-free.

    With ``a = min(|x|, 9)``, ``y = 2 a = k ln2 + r`` (``|r| <= ln2 / 2``), ``expm1(r)``
    by its Taylor polynomial of degree 7, :math:`E = \mathrm{expm1}(y) = 2^k \mathrm{expm1}(r) + (2^k - 1)`
    and ``tanh a = E / (E + 2)``, sign copied from x. Every operation in float32,
    so a loop over it runs 8 values per AVX2 instruction (2.8x faster than
    :func:`tanh64` per value; ``docs/performance.md``).
    """
    a = min(abs(x), _F32_SATURATION)
    y = a + a
    shifted = y * _F32_LOG2E + _F32_SHIFT          # k = round(y / ln2) in the low mantissa bits
    kf = shifted - _F32_SHIFT
    r = (y - kf * _F32_LN2_HI) - kf * _F32_LN2_LO
    two_k = _bits_to_float32((_float32_to_bits(shifted) + np.int32(127)) << np.int32(23))
    c2, c3, c4, c5, c6, c7 = _F32_C
    em1 = r + r * r * (c2 + r * (c3 + r * (c4 + r * (c5 + r * (c6 + r * c7)))))
    E = two_k * em1 + (two_k - _F32_ONE)
    return math.copysign(E / (E + _F32_TWO), x)


@njit(error_model="numpy", fastmath={"contract"})
def sigmoid32(q):
    """float32 logistic sigmoid, ``(1 + tanh32(q/2)) / 2``."""
    return _F32_HALF * (tanh32(_F32_HALF * q) + _F32_ONE)


def tanh(x):
    """tanh of a float64 (:func:`tanh64`) or a float32 (:func:`tanh32`), chosen by numba at compile time.

    The kernels call this name; numba picks the implementation from the type
    of ``x``, so one kernel source runs in both precisions. Called from Python
    (not from a kernel), it returns :func:`tanh64` of ``x``.
    """
    return tanh64(float(x))


def sigmoid(q):
    """Sigmoid of a float64 (:func:`sigmoid64`) or a float32 (:func:`sigmoid32`); see :func:`tanh`."""
    return sigmoid64(float(q))


if HAVE_NUMBA:
    from numba import types as _types
    from numba.extending import overload as _overload

    def _by_precision(f64, f32):
        def typer(x):
            if x == _types.float32:
                return lambda x: f32(x)
            if isinstance(x, _types.Float):
                return lambda x: f64(x)
            return None
        return typer

    _overload(tanh)(_by_precision(tanh64, tanh32))
    _overload(sigmoid)(_by_precision(sigmoid64, sigmoid32))


@njit
def rate_constants(like, alpha_x, alpha_z, scale):
    """``(0, 1, alpha_x, alpha_z, scale)`` as scalars of the precision of the array ``like``.

    The low-rank and modulation kernels open with this: a Python float literal
    or argument is a float64 to numba and would promote every float32
    expression it touches (``backend="numba32"``), so each constant is made in
    the arrays' dtype once.
    """
    f = like.dtype.type
    return f(0.0), f(1.0), f(alpha_x), f(alpha_z), f(scale)


@njit(error_model="numpy")
def tanh_array(x, out):
    """``out[i] = tanh(x[i])`` element-wise, any shape, float64 or float32 (for tests and benchmarks)."""
    for i in range(x.size):
        out.flat[i] = tanh(x.flat[i])
