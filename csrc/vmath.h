/* vmath.h -- exp, log and log1p that the compiler vectorizes, with exact IEEE special cases.
 *
 * Why: glibc's expf/logf are scalar calls that stop GCC from vectorizing a loop (we build
 * without -ffast-math, so GCC may not swap in a vector libm).  These are plain arithmetic and
 * integer bit manipulation, always inlined, so a `#pragma omp simd` loop that calls them
 * compiles to one vector body in every target_clones clone (zmm in the x86-64-v4 clone).
 * fastloss/backend/numba/vmath.py is the same algorithm with the same constants.
 *
 * exp (fl_expf, fl_exp)
 *   Reduction: x = k ln2 + r, k = round(x / ln2), |r| <= ln2/2 (+ rounding slack).  r is
 *   computed in two steps (Cody-Waite) with ln2 = LN2HI + LN2LO: LN2HI keeps only the leading
 *   15 (float) / 32 (double) bits of ln2, so k * LN2HI is exact for |k| < 2^9 / 2^21 and
 *   x - k * LN2HI is exact (Sterbenz); only the small k * LN2LO term rounds.
 *   Polynomial: e^r = 1 + r + r^2 Q(r), Q of degree 4 (float, total degree 6) or 9 (double,
 *   total degree 11); max relative error of the polynomial itself 2^-28.3 / 2^-57.9.
 *   Scaling: 2^k is applied as two exact powers of two, 2^(k/2) * 2^(k - k/2), each built
 *   from its exponent bits, so k may run from -151 to 128 (-1076 to 1024 for double): the
 *   last multiplication rounds once, which gives gradual underflow (subnormal results rounded
 *   from the full-precision p * 2^k, not flushed to 0) and overflow to +inf by itself.
 *   x is clamped to [-104, 89] ([-746, 710]) first, where e^x is already 0 / inf: this keeps k
 *   in range and sends -inf to 0, +inf to +inf; NaN is clamped to 89 and put back at the end.
 *
 * log (fl_logf, fl_log)
 *   Reduction: x = 2^e m, m in [sqrt(1/2), sqrt(2)), read from the bits: subtracting the bits
 *   of sqrt(1/2) makes the exponent field of the difference equal e and its mantissa field
 *   m's; f = m - 1 in [-0.293, 0.415] is exact.  Subnormal x is first multiplied by 2^23
 *   (2^52) and e corrected, so they are exact too.  log x = e ln2 + log1p(f), with the same
 *   LN2HI/LN2LO split (e * LN2HI exact), the small terms added first.
 *   float: log1p(f) = f - f^2/2 + f^3 P(f), P of degree 7 (total degree 10), max relative
 *   error 2^-27.4; no division (a vdivps costs more than the three extra terms here).
 *   double: s = f / (2 + f), log1p(f) = 2 atanh(s) = 2s + s R(s^2), evaluated as
 *   f - (f^2/2 - s (f^2/2 + R)) (from 2s = f - s f and s f = f^2/2 - s f^2/2), which keeps
 *   the exact f as the leading term; R(z) = z S(z), S of degree 6 in z = s^2 <= 0.0295,
 *   max error of R 2^-58.2.  A division-free polynomial in f would need degree ~25.
 *
 * log1p (fl_log1pf, fl_log1p)
 *   u = 1 + x is split as above, but f is recomputed from x itself as
 *   f = x 2^-e + (2^-e - 1): both terms are exact (power-of-two scaling; 2^-e - 1 has
 *   <= 24 / 53 bits for e <= 24 / 53), so only this sum rounds and the rounding of 1 + x is
 *   not lost; for e = 0 (x in [-0.29, 0.41]) f is x exactly.  Larger e (x >= 2^24 / 2^53)
 *   use f = m - 1: there the rounding of 1 + x is far below log(x)'s ulp.
 *
 * Coefficients: weighted minimax fits (Remez exchange, 60-digit mpmath) made for this file:
 *   exp: minimize max |(1 + r + r^2 Q(r) - e^r) / e^r| over |r| <= 1.0001 ln2/2;
 *   float log: max |(f - f^2/2 + f^3 P(f) - log1p f) / log1p f| over f in 1.0001 [sqrt(1/2)-1, sqrt(2)-1];
 *   double log: max |R(z) - (2 atanh(s)/s - 2)| over z in [0, 1.0001 ((sqrt2-1)/(sqrt2+1))^2];
 *   then rounded to float / double.  The Remez script is in bench/NOTES_vmath.md.
 *
 * Accuracy (max error against the correctly rounded result, measured by tests/test_vmath.py;
 * float: every 97th bit pattern plus every value near the range boundaries; double: 2e6
 * random and edge values against long double):
 *   fl_expf 1.0 ulp   fl_logf 1.3 ulp   fl_log1pf 1.4 ulp
 *   fl_exp  1.0 ulp   fl_log  0.8 ulp   fl_log1p  0.9 ulp
 * Subnormal results of exp are within 1 ulp of the subnormal spacing (gradual underflow).
 * The tests assert <= 2 ulp for every function (the documented bound).
 *
 * Special cases, exact: exp(-inf) = 0, exp(+inf) = +inf, exp(NaN) = NaN, exp overflows to
 * +inf for x > 88.7228 (709.7827), exp underflows gradually and is 0 below -103.97 (-745.13);
 * log(+-0) = -inf, log(x < 0) = NaN, log(+inf) = +inf, log(NaN) = NaN, log of subnormals
 * exact to the bound above; log1p(-1) = -inf, log1p(x < -1) = NaN, log1p(+inf) = +inf,
 * log1p(+-0) = +-0.  Branch-free: special cases are selects at the end, so lanes with a
 * special input compute garbage that is thrown away.
 *
 * Compiler assumptions: no -ffast-math (it would drop the NaN/Inf selects and may
 * reassociate the Cody-Waite reduction).  -ffp-contract=off (the default with -std=c11)
 * makes every clone give the same bits; with FMA contraction results stay within the bound.
 * Relies on GCC/Clang semantics for signed shifts of negative values and the modular
 * uint -> int conversion (only in lanes whose result is discarded).
 */
#ifndef FL_VMATH_H
#define FL_VMATH_H
#include <stdint.h>
#include <string.h>

#define FL_VM_INLINE static inline __attribute__((always_inline))

/* Bit casts.  memcpy is the defined way in C; GCC and Clang compile it to nothing. */
FL_VM_INLINE uint32_t fl__bits_f32(float x) { uint32_t u; memcpy(&u, &x, sizeof u); return u; }
FL_VM_INLINE float fl__f32_bits(uint32_t u) { float x; memcpy(&x, &u, sizeof x); return x; }
FL_VM_INLINE uint64_t fl__bits_f64(double x) { uint64_t u; memcpy(&u, &x, sizeof u); return u; }
FL_VM_INLINE double fl__f64_bits(uint64_t u) { double x; memcpy(&x, &u, sizeof x); return x; }

#define FL__INFF __builtin_inff()
#define FL__NANF __builtin_nanf("")
#define FL__INF __builtin_inf()
#define FL__NAN __builtin_nan("")

/* ln2 = LN2HI + LN2LO: LN2HI has 15 (float) / 32 (double) significant bits */
#define FL__LN2HI_F 0.69314575f          /* 0x1.62e4p-1 */
#define FL__LN2LO_F 1.4286068e-06f       /* ln2 - LN2HI, rounded */
#define FL__INVLN2_F 1.442695f
#define FL__LN2HI_D 0.6931471803691238   /* 0x1.62e42feep-1 */
#define FL__LN2LO_D 1.9082149292705877e-10
#define FL__INVLN2_D 1.4426950408889634

/* ---------------------------------------------------------------- exp */

FL_VM_INLINE float fl_expf(float x)
{
    /* |x| clamped to 104, keeping x's sign: e^x is already 0 or inf there, and k stays in
     * the range the scaling handles.  Integer compares on the bits and an x-dependent
     * clamp value: with float compares and a constant bound, GCC folds the clamped lanes to
     * constants and puts the polynomial in a branch, and the loop no longer vectorizes. */
    uint32_t ux = fl__bits_f32(x), ax = ux & 0x7fffffffu;
    float xc = ax < 0x42d00000u ? x : fl__f32_bits((ux & 0x80000000u) | 0x42d00000u);
    float t = xc * FL__INVLN2_F;
    /* round half away from 0: add 0.5 with t's sign */
    int32_t k = (int32_t)(t + fl__f32_bits((fl__bits_f32(t) & 0x80000000u) | 0x3f000000u));
    float kf = (float)k;
    /* NaN: k came from the clamp, but r takes x itself and so y is NaN.  (A select on the
     * result instead lets GCC sink the whole computation into a branch, with the float ->
     * int conversion, which it then cannot if-convert.) */
    float xr = ax <= 0x7f800000u ? xc : x;
    float r = (xr - kf * FL__LN2HI_F) - kf * FL__LN2LO_F;
    float q = 0.0013814599f;
    q = q * r + 0.008368717f;
    q = q * r + 0.04166839f;
    q = q * r + 0.16666521f;
    q = q * r + 0.49999994f;
    float p = 1.0f + (r + (r * r) * q);
    int32_t k1 = k / 2, k2 = k - k1;          /* |k| <= 151: 2^k1, 2^k2 are normal */
    float y = (p * fl__f32_bits((uint32_t)(k1 + 127) << 23))
              * fl__f32_bits((uint32_t)(k2 + 127) << 23);    /* one rounding, may be subnormal */
    return y;
}

FL_VM_INLINE double fl_exp(double x)
{
    uint64_t ux = fl__bits_f64(x), ax = ux & 0x7fffffffffffffffull;
    double xc = ax < 0x4087500000000000ull                       /* |x| clamped to 746 */
                ? x : fl__f64_bits((ux & 0x8000000000000000ull) | 0x4087500000000000ull);
    double t = xc * FL__INVLN2_D;
    int32_t k = (int32_t)(t + fl__f64_bits((fl__bits_f64(t) & 0x8000000000000000ull)
                                           | 0x3fe0000000000000ull));
    double kf = (double)k;
    double xr = ax <= 0x7ff0000000000000ull ? xc : x;             /* NaN, as in fl_expf */
    double r = (xr - kf * FL__LN2HI_D) - kf * FL__LN2LO_D;
    double q = 2.500006005363822e-08;
    q = q * r + 2.763024842399636e-07;
    q = q * r + 2.755758637826493e-06;
    q = q * r + 2.4801493098786526e-05;
    q = q * r + 0.00019841269506574313;
    q = q * r + 0.0013888888943630218;
    q = q * r + 0.008333333333494463;
    q = q * r + 0.041666666666530155;
    q = q * r + 0.16666666666666413;
    q = q * r + 0.5000000000000011;
    double p = 1.0 + (r + (r * r) * q);
    int32_t k1 = k / 2, k2 = k - k1;          /* |k| <= 1077: 2^k1, 2^k2 are normal */
    double y = (p * fl__f64_bits((uint64_t)(k1 + 1023) << 52))
               * fl__f64_bits((uint64_t)(k2 + 1023) << 52);
    return y;
}

/* ---------------------------------------------------------------- log */

/* u = 2^e m, m in [sqrt(1/2), sqrt(2)), for positive normal u; returns m. */
FL_VM_INLINE float fl__split_f32(float u, int32_t *e)
{
    uint32_t d = fl__bits_f32(u) - 0x3f3504f3u;                 /* bits of sqrt(1/2) */
    *e = (int32_t)d >> 23;
    return fl__f32_bits((d & 0x007fffffu) + 0x3f3504f3u);
}

FL_VM_INLINE double fl__split_f64(double u, int32_t *e)
{
    uint64_t d = fl__bits_f64(u) - 0x3fe6a09e667f3bcdull;
    *e = (int32_t)(d >> 32) >> 20;   /* from the high word: keeps e int32 for the conversions */
    return fl__f64_bits((d & 0x000fffffffffffffull) + 0x3fe6a09e667f3bcdull);
}

/* e ln2 + log1p(f), f in [sqrt(1/2) - 1, sqrt(2) - 1] */
FL_VM_INLINE float fl__logf_kernel(float f, float ef)
{
    float p = -0.0763449f;
    p = p * f + 0.12761964f;
    p = p * f + -0.13160363f;
    p = p * f + 0.14201719f;
    p = p * f + -0.16623336f;
    p = p * f + 0.20001228f;
    p = p * f + -0.25000823f;
    p = p * f + 0.3333333f;
    float q = (f * f) * (f * p - 0.5f);       /* log1p(f) - f */
    return ef * FL__LN2HI_F + (f + (ef * FL__LN2LO_F + q));
}

FL_VM_INLINE double fl__log_kernel(double f, double ef)
{
    double s = f / (2.0 + f), z = s * s;
    double R = 0.14796105530267933;
    R = R * z + 0.1531403582725732;
    R = R * z + 0.18183564866934704;
    R = R * z + 0.22222198563481918;
    R = R * z + 0.2857142874247489;
    R = R * z + 0.3999999999941432;
    R = R * z + 0.6666666666666734;
    R = R * z;
    double hfsq = 0.5 * f * f;
    return ef * FL__LN2HI_D - ((hfsq - (s * (hfsq + R) + ef * FL__LN2LO_D)) - f);
}

FL_VM_INLINE float fl_logf(float x)
{
    int32_t e;
    float u = x < 0x1p-126f ? x * 0x1p23f : x;  /* subnormal: scale up exactly */
    float m = fl__split_f32(u, &e);
    e = x < 0x1p-126f ? e - 23 : e;
    float y = fl__logf_kernel(m - 1.0f, (float)e);
    y = x > 0.0f ? y : (x == 0.0f ? -FL__INFF : FL__NANF);
    return x < FL__INFF ? y : x + x;           /* +inf and NaN */
}

FL_VM_INLINE double fl_log(double x)
{
    int32_t e;
    double u = x < 0x1p-1022 ? x * 0x1p52 : x;
    double m = fl__split_f64(u, &e);
    e = x < 0x1p-1022 ? e - 52 : e;
    double y = fl__log_kernel(m - 1.0, (double)e);
    y = x > 0.0 ? y : (x == 0.0 ? -FL__INF : FL__NAN);
    return x < FL__INF ? y : x + x;
}

FL_VM_INLINE float fl_log1pf(float x)
{
    int32_t e;
    float m = fl__split_f32(1.0f + x, &e);
    int32_t ec = e < 24 ? e : 24;
    float s = fl__f32_bits((uint32_t)(127 - ec) << 23);          /* 2^-e */
    float f = e <= 24 ? x * s + (s - 1.0f) : m - 1.0f;
    float y = fl__logf_kernel(f, (float)e);
    y = x > -1.0f ? y : (x == -1.0f ? -FL__INFF : FL__NANF);
    y = x == 0.0f ? x : y;                     /* log1p(-0) = -0 */
    return x < FL__INFF ? y : x + x;
}

FL_VM_INLINE double fl_log1p(double x)
{
    int32_t e;
    double m = fl__split_f64(1.0 + x, &e);
    int32_t ec = e < 53 ? e : 53;
    double s = fl__f64_bits((uint64_t)(1023 - ec) << 52);
    double f = e <= 53 ? x * s + (s - 1.0) : m - 1.0;
    double y = fl__log_kernel(f, (double)e);
    y = x > -1.0 ? y : (x == -1.0 ? -FL__INF : FL__NAN);
    y = x == 0.0 ? x : y;
    return x < FL__INF ? y : x + x;
}

#endif /* FL_VMATH_H */
