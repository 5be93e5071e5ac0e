"""exp, log and log1p that LLVM vectorizes, with exact NaN/Inf: csrc/vmath.h for Numba.

Numba >= 0.62 has no SVML, so math.exp / np.exp in a loop is a scalar libm call and the loop
stays scalar.  These functions are csrc/vmath.h's algorithm (its header comment explains it)
with the same constants, line for line: float arithmetic plus integer bit manipulation
(`np.float32(x).view(np.int32)` is a bitcast in Numba; Numba wants the np.<dtype>(...) call
right before .view), inlined into the calling kernel, which LLVM then vectorizes.

    expf(float32) -> float32    logf(float32) -> float32    log1pf(float32) -> float32
    exp(float64) -> float64     log(float64) -> float64     log1p(float64) -> float64
    expf_neg, exp_neg: e^x for x <= 0 only (the softmax), about half of exp's work
    logf_01c, log1mf_01c, log1pf_01 (and log_01c, ...): BCE's logs, for x in [0, 1]

The float32 ones compute in float32 only (float32 module-global constants, integer results
cast back to int32).  Inlined at the Numba IR level, they are compiled with the calling
kernel's fast-math flags:
  * without fast-math they return exactly the C build's bits (one exception: log1p_01 at
    x = 0.5 - 2^-53 and 0.5 - 2^-54, 1 ulp apart, see log1pf_01; tests/test_vmath.py);
  * with the project's set (_common.FASTMATH: reassoc, contract, nsz, arcp) nothing breaks
    (the algorithm has no step that reassociation can undo, see vmath.h), but LLVM reorders
    the final sums and fuses multiply-adds: max error 2.1 ulp instead of 1.5;
  * nnan/ninf would remove the NaN/Inf handling: never use them with these functions.
Division is np.divide, not '/': Numba's '/' checks for a zero divisor (error_model='python')
and that branch keeps the loop from vectorizing.
Measured errors and throughput: bench/NOTES_vmath.md.
"""
import numpy as np

from ._common import inline

_f32, _f64, _i32, _i64, _u32, _u64 = np.float32, np.float64, np.int32, np.int64, np.uint32, np.uint64

# ln2 = LN2HI + LN2LO for exp: k * LN2HI is exact (15 / 42 significant bits)
_EXP_LN2HI_F = _f32(0.69314575)
_EXP_LN2LO_F = _f32(1.4286068e-06)
_EXP_LN2HI_D = 0.6931471805598903
_EXP_LN2LO_D = 5.497923018708371e-14
_INVLN2_F = _f32(1.442695)
_INVLN2_D = 1.4426950408889634
# e * ln2 for log: (e * LN2HI_INT) * 2^-15 (2^-21) + e * LN2LO
_LOG_LN2HI_INT_F = _i32(22713)
_LOG_LN2LO_F = _f32(1.4286068e-06)
_LOG_LN2HI_INT_D = _i32(1453634)
_LOG_LN2LO_D = 4.7493250390316726e-07

# exp: e^r = 1 + r + r^2 Q(r), Q's coefficients from the constant term up
_EXPF_Q0, _EXPF_Q1, _EXPF_Q2, _EXPF_Q3, _EXPF_Q4 = (
    _f32(0.49999994), _f32(0.16666521), _f32(0.04166839), _f32(0.008368717), _f32(0.0013814599))
_EXP_Q = (0.5000000000000011, 0.16666666666666413, 0.041666666666530155, 0.008333333333494463,
          0.0013888888943630218, 0.00019841269506574313, 2.4801493098786526e-05,
          2.755758637826493e-06, 2.763024842399636e-07, 2.500006005363822e-08)
# float log: log1p(f) = f - f^2/2 + f^3 P(f)
_LOGF_P = tuple(_f32(c) for c in (0.3333345, -0.25000095, 0.19990857, -0.16647303, 0.14478458,
                                  -0.13161375, 0.10463012, -0.04507246))
# double log: log1p(f) = 2s + s R(s^2), R(z) = z S(z)
_LOG_S = (0.666666666666666, 0.4000000000005598, 0.2857142855599782, 0.22222224277247218,
          0.18181667026607562, 0.15391074431485183, 0.13174228434409913, 0.13838791653746532)

_ONE_F, _HALF_F = _f32(1.0), _f32(0.5)
_SHIFT_F = _f32(12582912.0)               # 1.5 * 2^23
_SHIFT_D = 6755399441055744.0             # 1.5 * 2^52
_INF_F, _NAN_F = _f32(np.inf), _f32(np.nan)
_TINY_F, _SUBSCALE_F = _f32(2.0 ** -126), _f32(2.0 ** 23)
_TINY_D, _SUBSCALE_D = 2.0 ** -1022, 2.0 ** 52


# ------------------------------------------------------------------ exp

@inline
def _expm1_poly_f(r):
    """e^r - 1 = r + r^2 Q(r), |r| <= ln2/2, float32 (csrc/vmath.h fl__expm1_poly_f)."""
    q = _EXPF_Q4
    q = q * r + _EXPF_Q3
    q = q * r + _EXPF_Q2
    q = q * r + _EXPF_Q1
    q = q * r + _EXPF_Q0
    em1 = r + (r * r) * q
    return em1


@inline
def _expm1_poly_d(r):
    """e^r - 1 = r + r^2 Q(r), |r| <= ln2/2, float64 (csrc/vmath.h fl__expm1_poly_d)."""
    q = _EXP_Q[9]
    q = q * r + _EXP_Q[8]
    q = q * r + _EXP_Q[7]
    q = q * r + _EXP_Q[6]
    q = q * r + _EXP_Q[5]
    q = q * r + _EXP_Q[4]
    q = q * r + _EXP_Q[3]
    q = q * r + _EXP_Q[2]
    q = q * r + _EXP_Q[1]
    q = q * r + _EXP_Q[0]
    em1 = r + (r * r) * q
    return em1


@inline
def expf(x):
    """e^x for a float32 x, in float32 (see csrc/vmath.h fl_expf)."""
    ux = _f32(x).view(_u32)
    ax = _u32(ux & _u32(0x7FFFFFFF))
    if ax >= _u32(0x42D00000) and ax <= _u32(0x7F800000):   # |x| >= 104, not NaN: +-104
        xc = _u32((ux & _u32(0x80000000)) | _u32(0x42D00000)).view(_f32)
    else:
        xc = x
    t = xc * _INVLN2_F + _SHIFT_F
    k = _i32(_f32(t).view(_i32) - _i32(0x4B400000))
    kf = _f32(k)
    r = xc - kf * _EXP_LN2HI_F
    c = kf * _EXP_LN2LO_F
    em1 = _expm1_poly_f(r)
    c = c * (_ONE_F - _HALF_F * c)
    p = _ONE_F + (em1 - c * (_ONE_F + em1))
    k1 = _i32(k >> 1)
    k2 = _i32(k - k1)
    y = _i32(_f32(p).view(_i32) + (k1 << 23)).view(_f32) * _i32((k2 + 127) << 23).view(_f32)
    return y if ax <= _u32(0x7F800000) else x + x


@inline
def exp(x):
    """e^x for a float64 x (see csrc/vmath.h fl_exp)."""
    ux = _f64(x).view(_u64)
    ax = ux & _u64(0x7FFFFFFFFFFFFFFF)
    if ax >= _u64(0x4087500000000000) and ax <= _u64(0x7FF0000000000000):   # |x| >= 746
        xc = _u64((ux & _u64(0x8000000000000000)) | _u64(0x4087500000000000)).view(_f64)
    else:
        xc = x
    t = xc * _INVLN2_D + _SHIFT_D
    k = _i32(_f64(t).view(_i64))                 # low word of the bits: round(t)
    kf = _f64(k)
    r = xc - kf * _EXP_LN2HI_D
    c = kf * _EXP_LN2LO_D
    em1 = _expm1_poly_d(r)
    p = 1.0 + (em1 - c * (1.0 + em1))
    k1 = _i64(k >> 1)
    k2 = _i64(k - k1)
    y = _i64(_f64(p).view(_i64) + (k1 << 52)).view(_f64) * _i64((k2 + 1023) << 52).view(_f64)
    return y if ax <= _u64(0x7FF0000000000000) else x + x


@inline
def expf_neg(x):
    """e^x for float32 x <= 0 (the softmax's x - max), flushing results below e^-86.5 to 0
    (see csrc/vmath.h fl_expf_neg)."""
    t = x * _INVLN2_F + _SHIFT_F
    k = _i32(_f32(t).view(_i32) - _i32(0x4B400000))
    kf = _f32(k)
    r = x - kf * _EXP_LN2HI_F
    c = kf * _EXP_LN2LO_F
    em1 = _expm1_poly_f(r)
    p = _ONE_F + (em1 - c * (_ONE_F + em1))
    y = _i32(_f32(p).view(_i32) + (k << 23)).view(_f32)
    y = y if x >= _f32(-86.5) else _f32(0.0)
    return y if x == x else x


@inline
def exp_neg(x):
    """e^x for float64 x <= 0, flushing results below e^-707.5 to 0 (csrc/vmath.h fl_exp_neg)."""
    t = x * _INVLN2_D + _SHIFT_D
    k = _i32(_f64(t).view(_i64))
    kf = _f64(k)
    r = x - kf * _EXP_LN2HI_D
    c = kf * _EXP_LN2LO_D
    em1 = _expm1_poly_d(r)
    p = 1.0 + (em1 - c * (1.0 + em1))
    y = _i64(_f64(p).view(_i64) + (_i64(k) << 52)).view(_f64)
    y = y if x >= -707.5 else 0.0
    return y if x == x else x


# ------------------------------------------------------------------ log

@inline
def _split_f32(u):
    """u = 2^e m, m in [0.75, 1.5): returns (m, e) for a positive normal float32 u."""
    d = _i32(_f32(u).view(_i32) - _i32(0x3F400000))
    return _i32((d & _i32(0x007FFFFF)) + _i32(0x3F400000)).view(_f32), _i32(d >> 23)


@inline
def _split_f64(u):
    d = _i64(_f64(u).view(_i64) - _i64(0x3FE8000000000000))
    return _i64((d & _i64(0x000FFFFFFFFFFFFF)) + _i64(0x3FE8000000000000)).view(_f64), _i32(d >> 52)


@inline
def _logf_kernel(f, e):
    """e ln2 + log1p(f), float32, f in [-0.25, 0.5]."""
    p = _LOGF_P[7]
    p = p * f + _LOGF_P[6]
    p = p * f + _LOGF_P[5]
    p = p * f + _LOGF_P[4]
    p = p * f + _LOGF_P[3]
    p = p * f + _LOGF_P[2]
    p = p * f + _LOGF_P[1]
    p = p * f + _LOGF_P[0]
    q = (f * f) * (f * p - _HALF_F)
    ehi = _f32(_i32(e * _LOG_LN2HI_INT_F)) * _f32(2.0 ** -15)
    return ehi + (f + (_f32(e) * _LOG_LN2LO_F + q))


@inline
def _log_kernel(f, e):
    s = np.divide(f, 2.0 + f)   # not "/": numba would add a ZeroDivisionError branch
    z = s * s
    R = _LOG_S[7]
    R = R * z + _LOG_S[6]
    R = R * z + _LOG_S[5]
    R = R * z + _LOG_S[4]
    R = R * z + _LOG_S[3]
    R = R * z + _LOG_S[2]
    R = R * z + _LOG_S[1]
    R = R * z + _LOG_S[0]
    R = R * z
    hfsq = 0.5 * f * f
    ehi = _f64(_i32(e * _LOG_LN2HI_INT_D)) * 2.0 ** -21
    return ehi - ((hfsq - (s * (hfsq + R) + _f64(e) * _LOG_LN2LO_D)) - f)


@inline
def logf(x):
    """Natural log of a float32 x, in float32 (see csrc/vmath.h fl_logf)."""
    sub = x < _TINY_F
    m, e = _split_f32(x * _SUBSCALE_F if sub else x)
    if sub:
        e = _i32(e - 23)
    y = _logf_kernel(m - _ONE_F, e)
    if not x > 0:
        y = -_INF_F if x == 0 else _NAN_F
    return y if x < _INF_F else x + x


@inline
def log(x):
    """Natural log of a float64 x (see csrc/vmath.h fl_log)."""
    sub = x < _TINY_D
    m, e = _split_f64(x * _SUBSCALE_D if sub else x)
    if sub:
        e = _i32(e - 52)
    y = _log_kernel(m - 1.0, e)
    if not x > 0:
        y = -np.inf if x == 0 else np.nan
    return y if x < np.inf else x + x


@inline
def log1pf(x):
    """log(1 + x) for a float32 x, in float32 (see csrc/vmath.h fl_log1pf)."""
    m, e = _split_f32(_ONE_F + x)
    ec = e if e < 24 else _i32(24)
    s = _i32((127 - ec) << 23).view(_f32)                    # 2^-e
    f = x * s + (s - _ONE_F) if e <= 24 else m - _ONE_F
    y = _logf_kernel(f, e)
    if not x > -_ONE_F:
        y = -_INF_F if x == -_ONE_F else _NAN_F
    if x == 0:
        y = x
    return y if x < _INF_F else x + x


@inline
def log1p(x):
    """log(1 + x) for a float64 x (see csrc/vmath.h fl_log1p)."""
    m, e = _split_f64(1.0 + x)
    ec = e if e < 53 else _i32(53)
    s = _i64(_i64(1023 - ec) << 52).view(_f64)
    f = x * s + (s - 1.0) if e <= 53 else m - 1.0
    y = _log_kernel(f, e)
    if not x > -1.0:
        y = -np.inf if x == -1.0 else np.nan
    if x == 0:
        y = x
    return y if x < np.inf else x + x


# ------------------------------------------------------------------ logs of a probability
# csrc/vmath.h's fl_logf_01c, fl_log1mf_01c, fl_log1pf_01 (and the double ones): BCE's logs,
# for x in [0, 1] (see the C header for the algorithm).  Two differences, both for LLVM's
# fast-math flags: C turns -0 into +0 by adding +0 to x 2^23, which 'nsz' drops, so here it
# is abs(x); and log1pf_01 reads e from the bits of 1 + x (see there).

_BIAS23_F, _BIAS52_D = _i32(0x4AC00000), _i64(0x4328000000000000)   # bits of 0.75 * 2^23 (2^52)
_NEG100_F = _f32(-100.0)


@inline
def logf_01c(x):
    """max(log x, -100) for a float32 x in [0, 1] (valid up to 2^104); NaN for x < 0 or NaN."""
    d = _i32(_f32(abs(x) * _SUBSCALE_F).view(_i32) - _BIAS23_F)
    m = _i32((d & _i32(0x007FFFFF)) + _i32(0x3F400000)).view(_f32)
    y = _logf_kernel(m - _ONE_F, _i32(d >> 23))     # +0: e = -150, m = 1: -103.97
    y = _NEG100_F if y < _NEG100_F else y
    return y if x >= _f32(0.0) else _NAN_F


@inline
def log1mf_01c(x):
    """max(log1p(-x), -100) for a float32 x in [-2^24, 1]; NaN for x > 1 or NaN."""
    d = _i32(_f32((_ONE_F - x) * _SUBSCALE_F).view(_i32) - _BIAS23_F)
    e = _i32(d >> 23)                                # e(1 - x); -150 for x = 1
    ec = e if e > _i32(-126) else _i32(-126)
    s = _i32((127 - ec) << 23).view(_f32)           # 2^-e
    y = _logf_kernel(-x * s + (s - _ONE_F), e)
    y = _NEG100_F if y < _NEG100_F else y
    return y if x <= _ONE_F else _NAN_F


@inline
def log1pf_01(x):
    """log1p(x) for a float32 x in [0, 1] (NaN gives NaN).  e is read from the bits of 1 + x,
    as in log1pf, not from x >= 0.5 as in C: LLVM turns e ln2 with e a 0/1 select into a
    select of constants and, under 'reassoc', merges its two parts (measured 2.9 ulp)."""
    m, e = _split_f32(_ONE_F + x)
    s = _i32((127 - e) << 23).view(_f32)            # 2^-e, e in {0, 1}
    return _logf_kernel(x * s + (s - _ONE_F), e)


@inline
def log_01c(x):
    """max(log x, -100) for a float64 x in [0, 1]; NaN for x < 0 or NaN."""
    d = _i64(_f64(abs(x) * _SUBSCALE_D).view(_i64) - _BIAS52_D)
    m = _i64((d & _i64(0x000FFFFFFFFFFFFF)) + _i64(0x3FE8000000000000)).view(_f64)
    y = _log_kernel(m - 1.0, _i32(d >> 52))
    y = -100.0 if y < -100.0 else y
    return y if x >= 0.0 else np.nan


@inline
def log1m_01c(x):
    """max(log1p(-x), -100) for a float64 x in [-2^53, 1]; NaN for x > 1 or NaN."""
    d = _i64(_f64((1.0 - x) * _SUBSCALE_D).view(_i64) - _BIAS52_D)
    e = _i32(d >> 52)
    ec = e if e > _i32(-1022) else _i32(-1022)
    s = _i64(_i64(1023 - ec) << 52).view(_f64)
    y = _log_kernel(-x * s + (s - 1.0), e)
    y = -100.0 if y < -100.0 else y
    return y if x <= 1.0 else np.nan


@inline
def log1p_01(x):
    """log1p(x) for a float64 x in [0, 1] (see log1pf_01)."""
    m, e = _split_f64(1.0 + x)
    s = _i64(_i64(1023 - e) << 52).view(_f64)
    return _log_kernel(x * s + (s - 1.0), e)
