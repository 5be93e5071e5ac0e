/* vmath.h -- exp, log and log1p that the compiler vectorizes, with exact IEEE special cases.
 *
 * Why: glibc's expf/logf are scalar calls that keep GCC from vectorizing a loop (we build
 * without -ffast-math, so GCC may not swap in a vector libm).  These are plain arithmetic and
 * integer bit manipulation, always inlined, so an `omp simd` loop that calls them compiles to
 * one vector body in every target_clones clone (zmm in the x86-64-v4 one).
 * fastloss/backend/numba/vmath.py is the same algorithm with the same constants: compiled
 * without fast-math it returns these exact bits (tests/test_vmath.py checks it).
 *
 *   float fl_expf(float)    float fl_logf(float)    float fl_log1pf(float)
 *   double fl_exp(double)   double fl_log(double)   double fl_log1p(double)
 *
 * exp
 *   x = k ln2 + r, k = round(x / ln2), |r| <= ln2/2.  k comes from the bits of
 *   x / ln2 + 1.5 * 2^23 (2^52): that sum has ulp 1, so its low mantissa bits are round(t).
 *   ln2 = LN2HI + LN2LO with LN2HI of 15 (float) / 42 (double) significant bits, so
 *   r = x - k LN2HI is exact (k LN2HI exact for |k| < 2^9 / 2^11, then Sterbenz).  The rest,
 *   c = k LN2LO (|c| < 2.2e-4 / 6e-11), enters as a factor: e^x = 2^k e^r e^-c.
 *   e^r = 1 + r + r^2 Q(r): Q of degree 4 (float; degree 6 in all) or 9 (double; 11), whose
 *   own max relative error is 2^-28.3 / 2^-57.9.  p = 1 + (em1 - c' (1 + em1)), em1 = e^r - 1,
 *   c' = 1 - e^-c (c - c^2/2 for float, c for double), adds the small terms first.
 *   2^k is applied as k1 = k >> 1 added to p's exponent field (exact, p 2^k1 stays normal)
 *   and one multiplication by 2^(k - k1): the only rounding, so results below 2^-126
 *   (2^-1022) are correctly rounded subnormals (gradual underflow) and large ones overflow to
 *   +inf by themselves.  |x| >= 104 (746) is clamped to +-104 (+-746), where e^x is already
 *   0 / inf: keeps k in the scaling's range and sends -inf to 0 and +inf to +inf.
 *
 * log
 *   x = 2^e m with m in [0.75, 1.5), read from the bits: subtracting the bits of 0.75 leaves e
 *   in the exponent field of the difference and m's mantissa below it; f = m - 1 in
 *   [-0.25, 0.5) is exact.  Subnormal x is first multiplied by 2^23 (2^52), exactly.
 *   log x = e ln2 + log1p(f), e ln2 = e LN2HI + e LN2LO with e LN2HI an exact integer
 *   product (22713 e 2^-15, 1453634 e 2^-21), the small terms added first.
 *   float: log1p(f) = f - f^2/2 + f^3 P(f), P of degree 7 (degree 10 in all), max relative
 *   error 2^-27.6; no division.
 *   double: s = f / (2 + f), log1p(f) = 2 atanh(s) = 2s + s R(s^2), evaluated as
 *   f - (f^2/2 - s (f^2/2 + R)) (2s = f - s f, and s f = f^2/2 - s f^2/2), which keeps the
 *   exact f as the leading term; R(z) = z S(z), S of degree 7 in z = s^2 <= 0.04, max error
 *   of R 2^-61.7 (a division-free polynomial in f would need a far higher degree).
 *
 * log1p
 *   u = 1 + x is split as above, but f is recomputed from x: f = x 2^-e + (2^-e - 1).  For
 *   e <= 24 (53) both terms are exact, and with m in [0.75, 1.5) (the reason for that range)
 *   so is their sum (Sterbenz: x 2^-e is within a factor 2 of 1 - 2^-e; a few x whose 1 + x
 *   rounds up to 0.75 * 2^e miss by an ulp).  So the rounding of 1 + x is not inherited, and
 *   for x in [-0.25, 0.5) f is x itself.  For larger e (x > 2^24 (2^53)) f = m - 1: there the
 *   rounding of 1 + x is far below the result's ulp.
 *
 * Coefficients: weighted minimax (Remez exchange in 60-digit mpmath) fitted for this file,
 * then rounded to float / double; the script is in bench/NOTES_vmath.md.
 *   exp: max |(1 + r + r^2 Q(r) - e^r) / e^r|, |r| <= 1.0001 ln2/2
 *   float log: max |(f - f^2/2 + f^3 P(f) - log1p f) / log1p f|, f in 1.0001 [-0.25, 0.5]
 *   double log: max |R(z) - (2 atanh(s)/s - 2)|, z in [0, 1.0001 * 0.2^2]
 *
 * Accuracy: max error in ulps of the correctly rounded result, this C build (every clone
 * gives the same bits); float32 over all 2^32 inputs, float64 over 1.6e6 random and boundary
 * inputs against long double (tests/test_vmath.py, bench/NOTES_vmath.md):
 *   fl_expf 1.10   fl_logf 0.97   fl_log1pf 1.01
 *   fl_exp  1.10   fl_log  0.84   fl_log1p  0.87
 * Bound: 1.5 ulp, subnormal results included (the tests assert it).
 *
 * Special cases, exact: exp(-inf) = 0, exp(+inf) = +inf, exp(NaN) = NaN, overflow to +inf
 * for x > 88.7228 (709.7827); exp is 0 below -103.97 (-745.13) and gradually underflows above;
 * log(+-0) = -inf, log(x < 0) = NaN, log(+inf) = +inf, log(NaN) = NaN; log1p(-1) = -inf,
 * log1p(x < -1) = NaN, log1p(+inf) = +inf, log1p(+-0) = +-0.  Branch-free: special inputs are
 * fixed by selects at the end; their lanes compute garbage that is thrown away.
 *
 * Compiler notes.
 *   No -ffast-math: it would drop the NaN/Inf selects.  Without FMA contraction (GCC's
 *   default with -std=c11) every clone gives the same bits; with -ffp-contract=fast the
 *   results change in the last bit here and there and stay within the bound (max 1.09 ulp).
 *   Written to survive a reassociating compiler (Numba inlines this with 'reassoc'): no
 *   (t + S) - S rounding, no (x - k LN2HI) - k LN2LO, no p * 2^k1 * 2^k2 (2^k1 * 2^k2 can
 *   under/overflow); only the order of the final sums can change (Numba: <= 2.1 ulp).
 *   Written so that GCC 12 vectorizes it: no float -> int conversion (GCC will not if-convert
 *   one, and it is undefined for NaN); clamps compare the bits and take their value from x
 *   (against a constant bound GCC folds the clamped lanes to constants and puts the
 *   polynomial in a branch).
 *   Relies on GCC/Clang's arithmetic >> of negative ints and modular uint -> int conversion.
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

/* ln2 = LN2HI + LN2LO for exp's reduction: k * LN2HI is exact for |k| < 2^9 (float, LN2HI
 * has 15 significant bits) and |k| < 2^11 (double, 42 bits) */
#define FL__EXP_LN2HI_F 0.69314575f            /* 0x1.62e4p-1 */
#define FL__EXP_LN2LO_F 1.4286068e-06f
#define FL__EXP_LN2HI_D 0.6931471805598903     /* 0x1.62e42fefa38p-1 */
#define FL__EXP_LN2LO_D 5.497923018708371e-14
#define FL__INVLN2_F 1.442695f
#define FL__INVLN2_D 1.4426950408889634
/* e * ln2 for log: e * LN2HI exact (LN2HI = 22713 * 2^-15 (1453634 * 2^-21), |e| <= 150 (1075)) */
#define FL__LOG_LN2HI_F 0x1.62e4p-1f           /* 22713 * 2^-15 */
#define FL__LOG_LN2LO_F 1.4286068e-06f         /* ln2 - 22713 * 2^-15 */
#define FL__LOG_LN2HI_D 0x1.62e42p-1           /* 1453634 * 2^-21 */
#define FL__LOG_LN2LO_D 4.7493250390316726e-07 /* ln2 - 1453634 * 2^-21 */

/* ---------------------------------------------------------------- exp */

/* e^r - 1 = r + r^2 Q(r) for |r| <= ln2/2 (Q: degree 4 float, 9 double; see above) */
FL_VM_INLINE float fl__expm1_poly_f(float r)
{
    float q = 0.0013814599f;
    q = q * r + 0.008368717f;
    q = q * r + 0.04166839f;
    q = q * r + 0.16666521f;
    q = q * r + 0.49999994f;
    float em1 = r + (r * r) * q;
    return em1;
}

FL_VM_INLINE double fl__expm1_poly_d(double r)
{
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
    double em1 = r + (r * r) * q;
    return em1;
}

FL_VM_INLINE float fl_expf(float x)
{
    /* |x| >= 104 (not NaN) is clamped to +-104: e^x is already 0 or inf there, and k stays
     * in the range the scaling handles.  Compares on the bits and a clamp value taken from
     * x: with a float compare against a constant bound GCC folds the clamped lanes to
     * constants and moves the polynomial into a branch, which stops vectorization. */
    uint32_t ux = fl__bits_f32(x), ax = ux & 0x7fffffffu;
    float xc = (ax >= 0x42d00000u && ax <= 0x7f800000u)
               ? fl__f32_bits((ux & 0x80000000u) | 0x42d00000u) : x;
    /* k = round(x / ln2) with the shifter 1.5 * 2^23: t + 1.5 * 2^23 has ulp 1, so its low
     * mantissa bits are round(t) (ties to even).  k is read from the bits and kf converted
     * from k: no float -> int conversion (GCC will not if-convert one, and it is undefined
     * for NaN) and no (t + S) - S that a reassociating compiler would fold to t. */
    float t = xc * FL__INVLN2_F + 0x1.8p23f;
    int32_t k = (int32_t)(fl__bits_f32(t) - 0x4b400000u);   /* bits of 0x1.8p23f */
    float kf = (float)k;
    /* e^x = 2^k e^r e^-c, r = x - k LN2HI exact, c = k LN2LO <= 2.2e-4: the correction is
     * a factor, not r - c, because a reassociating compiler turns (x - k HI) - k LO into
     * x - k (HI + LO) and the reduction loses its extra bits. */
    float r = xc - kf * FL__EXP_LN2HI_F;
    float c = kf * FL__EXP_LN2LO_F;
    float em1 = fl__expm1_poly_f(r);
    c = c * (1.0f - 0.5f * c);                /* 1 - e^-c to c^2 (c^3/6 < 2e-12) */
    float p = 1.0f + (em1 - c * (1.0f + em1));  /* e^r e^-c, the small terms summed first */
    /* y = p 2^k1 2^k2: the first factor is an exact add to p's exponent field (p 2^k1 is
     * normal), the second one multiplication, the only rounding, which may give a
     * subnormal or inf.  (Not p * 2^k1 * 2^k2: a reassociating compiler may form
     * 2^k1 * 2^k2 first, which under/overflows.) */
    int32_t k1 = k >> 1, k2 = k - k1;         /* |k| <= 151: k1, k2 in [-76, 76] */
    float y = fl__f32_bits(fl__bits_f32(p) + ((uint32_t)k1 << 23))
              * fl__f32_bits((uint32_t)(k2 + 127) << 23);
    return ax <= 0x7f800000u ? y : x + x;     /* NaN (the exponent add could unmake it) */
}

FL_VM_INLINE double fl_exp(double x)
{
    uint64_t ux = fl__bits_f64(x), ax = ux & 0x7fffffffffffffffull;
    double xc = (ax >= 0x4087500000000000ull && ax <= 0x7ff0000000000000ull)   /* |x| >= 746 */
                ? fl__f64_bits((ux & 0x8000000000000000ull) | 0x4087500000000000ull) : x;
    double t = xc * FL__INVLN2_D + 0x1.8p52;
    int32_t k = (int32_t)(uint32_t)fl__bits_f64(t);   /* low word: round(t) mod 2^32 */
    double kf = (double)k;
    double r = xc - kf * FL__EXP_LN2HI_D;
    double c = kf * FL__EXP_LN2LO_D;               /* |c| < 6e-11: e^-c = 1 - c to 2e-21 */
    double em1 = fl__expm1_poly_d(r);
    double p = 1.0 + (em1 - c * (1.0 + em1));
    int32_t k1 = k >> 1, k2 = k - k1;         /* |k| <= 1077: k1, k2 in [-539, 539] */
    double y = fl__f64_bits(fl__bits_f64(p) + ((uint64_t)(int64_t)k1 << 52))
               * fl__f64_bits((uint64_t)(k2 + 1023) << 52);
    return ax <= 0x7ff0000000000000ull ? y : x + x;
}

/* ---------------------------------------------------------------- exp of x <= 0
 * fl_expf_neg / fl_exp_neg: e^x for the softmax's x - max(x) <= 0, with about 0.6 of
 * fl_expf's work.  Same reduction and polynomial, e^-c taken as 1 - c (c^2/2 < 1.7e-8
 * relative for |k| <= 125, 0.14 ulp), no clamp, and 2^k as one add to the exponent field,
 * which is valid while 2^k is normal: results below e^-86.5 (e^-707.5), the whole subnormal
 * range and a little above it, are flushed to 0 (absolute error < 3e-38 / 1e-307 in a sum
 * whose largest term, the row's max, is 1; and no subnormal ever enters the arithmetic,
 * which costs a microcode assist per vector on AMD).  NaN gives NaN, -inf gives 0; x > 0 is
 * outside the domain (no overflow handling).  Error bound as fl_expf's (tests/test_vmath.py). */
FL_VM_INLINE float fl_expf_neg(float x)
{
    float t = x * FL__INVLN2_F + 0x1.8p23f;
    int32_t k = (int32_t)(fl__bits_f32(t) - 0x4b400000u);
    float kf = (float)k;
    float r = x - kf * FL__EXP_LN2HI_F;
    float c = kf * FL__EXP_LN2LO_F;
    float em1 = fl__expm1_poly_f(r);
    float p = 1.0f + (em1 - c * (1.0f + em1));
    float y = fl__f32_bits(fl__bits_f32(p) + ((uint32_t)k << 23));
    y = x >= -86.5f ? y : 0.0f;   /* also -inf; NaN fails the compare: */
    return x == x ? y : x;
}

FL_VM_INLINE double fl_exp_neg(double x)
{
    double t = x * FL__INVLN2_D + 0x1.8p52;
    int32_t k = (int32_t)(uint32_t)fl__bits_f64(t);
    double kf = (double)k;
    double r = x - kf * FL__EXP_LN2HI_D;
    double c = kf * FL__EXP_LN2LO_D;
    double em1 = fl__expm1_poly_d(r);
    double p = 1.0 + (em1 - c * (1.0 + em1));
    double y = fl__f64_bits(fl__bits_f64(p) + ((uint64_t)(int64_t)k << 52));
    y = x >= -707.5 ? y : 0.0;
    return x == x ? y : x;
}

/* ---------------------------------------------------------------- log */

/* u = 2^e m, m in [0.75, 1.5), for positive normal u; returns m.  Subtracting the bits of
 * 0.75 leaves e in the exponent field and m's mantissa below it. */
FL_VM_INLINE float fl__split_f32(float u, int32_t *e)
{
    uint32_t d = fl__bits_f32(u) - 0x3f400000u;                 /* bits of 0.75 */
    *e = (int32_t)d >> 23;
    return fl__f32_bits((d & 0x007fffffu) + 0x3f400000u);
}

FL_VM_INLINE double fl__split_f64(double u, int32_t *e)
{
    uint64_t d = fl__bits_f64(u) - 0x3fe8000000000000ull;
    *e = (int32_t)(d >> 32) >> 20;   /* from the high word: keeps e int32 for the conversions */
    return fl__f64_bits((d & 0x000fffffffffffffull) + 0x3fe8000000000000ull);
}

/* log1p(f) - f = -f^2/2 + f^3 P(f), f in [-0.25, 0.5] */
FL_VM_INLINE float fl__logf_poly(float f)
{
    float p = -0.04507246f;
    p = p * f + 0.10463012f;
    p = p * f + -0.13161375f;
    p = p * f + 0.14478458f;
    p = p * f + -0.16647303f;
    p = p * f + 0.19990857f;
    p = p * f + -0.25000095f;
    p = p * f + 0.3333345f;
    return (f * f) * (f * p - 0.5f);
}

/* e ln2 + log1p(f), f in [-0.25, 0.5].  e LN2HI = e * (22713 * 2^-15) is exact in float
 * (|e| <= 150: at most 8 + 15 significant bits), so it is a float product here; vmath.py
 * computes it as an integer product instead, the same value, because a reassociating
 * compiler (Numba's 'reassoc') may merge e LN2HI + e LN2LO into e ln2 (GCC without
 * -ffast-math never does).  The integer product cost a vpmulld and a conversion per log. */
FL_VM_INLINE float fl__logf_kernel(float f, int32_t e)
{
    float q = fl__logf_poly(f);               /* log1p(f) - f */
    float ef = (float)e;
    return ef * FL__LOG_LN2HI_F + (f + (ef * FL__LOG_LN2LO_F + q));
}

/* log1p(f) = f - (f^2/2 - s (f^2/2 + R)), f in [-0.25, 0.5] (see above); returns the
 * parenthesis, hfsq - s (hfsq + R), split as *a - *b so that the caller adds its e LN2LO
 * term to *b first, as fl__log_kernel does */
FL_VM_INLINE void fl__log_poly(double f, double *hfsq_out, double *sr_out)
{
    double s = f / (2.0 + f), z = s * s;
    double R = 0.13838791653746532;
    R = R * z + 0.13174228434409913;
    R = R * z + 0.15391074431485183;
    R = R * z + 0.18181667026607562;
    R = R * z + 0.22222224277247218;
    R = R * z + 0.2857142855599782;
    R = R * z + 0.4000000000005598;
    R = R * z + 0.666666666666666;
    R = R * z;
    double hfsq = 0.5 * f * f;
    *hfsq_out = hfsq;
    *sr_out = s * (hfsq + R);
}

FL_VM_INLINE double fl__log_kernel(double f, int32_t e)
{
    double hfsq, sr, ed = (double)e;
    fl__log_poly(f, &hfsq, &sr);
    return ed * FL__LOG_LN2HI_D - ((hfsq - (sr + ed * FL__LOG_LN2LO_D)) - f);
}

FL_VM_INLINE float fl_logf(float x)
{
    int32_t e;
    float u = x < 0x1p-126f ? x * 0x1p23f : x;  /* subnormal: scale up exactly */
    float m = fl__split_f32(u, &e);
    e = x < 0x1p-126f ? e - 23 : e;
    float y = fl__logf_kernel(m - 1.0f, e);
    y = x > 0.0f ? y : (x == 0.0f ? -FL__INFF : FL__NANF);
    return x < FL__INFF ? y : x + x;           /* +inf and NaN */
}

FL_VM_INLINE double fl_log(double x)
{
    int32_t e;
    double u = x < 0x1p-1022 ? x * 0x1p52 : x;
    double m = fl__split_f64(u, &e);
    e = x < 0x1p-1022 ? e - 52 : e;
    double y = fl__log_kernel(m - 1.0, e);
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
    float y = fl__logf_kernel(f, e);
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
    double y = fl__log_kernel(f, e);
    y = x > -1.0 ? y : (x == -1.0 ? -FL__INF : FL__NAN);
    y = x == 0.0 ? x : y;
    return x < FL__INF ? y : x + x;
}

/* ---------------------------------------------------------------- logs of a probability
 * For binary cross-entropy, whose x is a probability (the API checks 0 <= x <= 1), with
 * less work than fl_logf / fl_log1pf because the domain is known:
 *
 *   fl_logf_01c(x)   = max(log x, -100)        0 <= x <= 1 (valid up to 2^104), NaN for x < 0 or NaN
 *   fl_log1mf_01c(x) = max(log1p(-x), -100)    -2^24 <= x <= 1, NaN for x > 1 or NaN
 *   fl_log1pf_01(x)  = log1p(x)                0 <= x <= 1, NaN for NaN
 *   (double: fl_log_01c, fl_log1m_01c, fl_log1p_01; 2^104 -> 2^971, 2^24 -> 2^53)
 *
 * _01c: the argument is split after a multiplication by 2^23 (2^52), exact for every x in
 * the domain and normal for every nonzero one, subnormals included, so no subnormal branch;
 * the split's bias is 0.75 * 2^23 (2^52), which takes the 23 (52) off e.  +0 comes out of
 * the split as e = -150 (-1075), m = 1: the result is -150 ln2 = -103.97 (-745.1), below
 * the clamp, so log(0) = -inf needs no select either (nor does log1p(-1)).  -0 is made +0
 * by adding +0 to the product.  What is left is the clamp and one select for the domain.
 * log1p(-x): the split is that of 1 - x, and f is recomputed from x exactly as in
 * fl_log1pf (so the rounding of 1 - x is not inherited); e <= 24 (53) always here.
 *
 * _01: for x in [0, 1], 1 + x = 2^e m with e = 1 exactly when x >= 0.5 (m = (1 + x)/2, and
 * f = m - 1 = x/2 - 1/2, exact), else e = 0 and f = x.  e ln2 is a select of the constants.
 * (fl_log1pf splits the rounded 1 + x instead: 1 + x rounds up to 1.5 for a few x just below
 * 0.5, where these two may differ in the last bit; both are within the kernel's range.)
 *
 * Same polynomial as fl_logf, same error bounds in their domains (checked over every float32
 * input in [0, 1], bench/NOTES_vmath.md). */
FL_VM_INLINE float fl_logf_01c(float x)
{
    float u = x * 0x1p23f + 0.0f;             /* + 0: -0 -> +0 */
    uint32_t d = fl__bits_f32(u) - 0x4ac00000u;                 /* bits of 0.75 * 2^23 */
    int32_t e = (int32_t)d >> 23;
    float m = fl__f32_bits((d & 0x007fffffu) + 0x3f400000u);
    float y = fl__logf_kernel(m - 1.0f, e);
    y = y < -100.0f ? -100.0f : y;
    return x >= 0.0f ? y : FL__NANF;
}

FL_VM_INLINE float fl_log1mf_01c(float x)
{
    float u = (1.0f - x) * 0x1p23f;
    uint32_t d = fl__bits_f32(u) - 0x4ac00000u;
    int32_t e = (int32_t)d >> 23;             /* e(1 - x); -150 for x = 1 */
    int32_t ec = e > -126 ? e : -126;         /* x = 1: s = 2^126, f = 0 */
    float s = fl__f32_bits((uint32_t)(127 - ec) << 23);         /* 2^-e */
    float f = -x * s + (s - 1.0f);
    float y = fl__logf_kernel(f, e);
    y = y < -100.0f ? -100.0f : y;
    return x <= 1.0f ? y : FL__NANF;
}

FL_VM_INLINE float fl_log1pf_01(float x)
{
    /* s = 2^-e and e as arithmetic on one compare: testing it twice (f, then e ln2) made GCC
     * thread the second test through the polynomial and compute it twice */
    uint32_t hi = x >= 0.5f;                  /* NaN: f = NaN */
    float s = fl__f32_bits(0x3f800000u - (hi << 23));           /* 1 or 1/2 */
    float f = x * s + (s - 1.0f);
    float q = fl__logf_poly(f);
    float ef = 2.0f - 2.0f * s;               /* e: 0 or 1 */
    return ef * FL__LOG_LN2HI_F + (f + (ef * FL__LOG_LN2LO_F + q));
}

FL_VM_INLINE double fl_log_01c(double x)
{
    double u = x * 0x1p52 + 0.0;
    uint64_t d = fl__bits_f64(u) - 0x4328000000000000ull;       /* bits of 0.75 * 2^52 */
    int32_t e = (int32_t)(d >> 32) >> 20;
    double m = fl__f64_bits((d & 0x000fffffffffffffull) + 0x3fe8000000000000ull);
    double y = fl__log_kernel(m - 1.0, e);
    y = y < -100.0 ? -100.0 : y;
    return x >= 0.0 ? y : FL__NAN;
}

FL_VM_INLINE double fl_log1m_01c(double x)
{
    double u = (1.0 - x) * 0x1p52;
    uint64_t d = fl__bits_f64(u) - 0x4328000000000000ull;
    int32_t e = (int32_t)(d >> 32) >> 20;     /* e(1 - x); -1075 for x = 1 */
    int32_t ec = e > -1022 ? e : -1022;
    double s = fl__f64_bits((uint64_t)(1023 - ec) << 52);
    double f = -x * s + (s - 1.0);
    double y = fl__log_kernel(f, e);
    y = y < -100.0 ? -100.0 : y;
    return x <= 1.0 ? y : FL__NAN;
}

FL_VM_INLINE double fl_log1p_01(double x)
{
    uint64_t hi = x >= 0.5;
    double s = fl__f64_bits(0x3ff0000000000000ull - (hi << 52));
    double f = x * s + (s - 1.0);
    double hfsq, sr;
    fl__log_poly(f, &hfsq, &sr);
    double ef = 2.0 - 2.0 * s;
    return ef * FL__LOG_LN2HI_D - ((hfsq - (sr + ef * FL__LOG_LN2LO_D)) - f);
}

#endif /* FL_VMATH_H */
