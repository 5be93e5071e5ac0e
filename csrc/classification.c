/* classification.c -- classification losses (see classification_tmpl.h), f32 and f64, and
 * the target check shared by both. */
#include "fl_internal.h"
#include "vmath.h"

/* ISA clones: SSE2 has no 64-bit compare, and the baseline build counted one target at a
 * time (~0.85 us per 1000 targets, 15% of a 1000x7 multi_margin call) */
FL_CLONES int64_t fl_first_bad_target(const int64_t *target, int64_t n, int64_t c, int64_t ignore_index)
{
    int64_t bad = 0; /* vectorized count first; the position only when something is wrong */
#pragma omp simd reduction(+:bad)
    for (int64_t i = 0; i < n; i++) /* unsigned: negative targets are >= c too */
        bad += ((uint64_t)target[i] >= (uint64_t)c) & (target[i] != ignore_index);
    if (!bad) return -1;
    for (int64_t i = 0; i < n; i++)
        if ((target[i] < 0 || target[i] >= c) && target[i] != ignore_index) return i;
    return -1;
}

/* multi_margin's float32 row kernel for c <= 8 (below, after the templates): AVX2 intrinsics
 * in a function compiled for x86-64-v3 and chosen at run time, as the clones are */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(FL_NO_CLONES)
#include <immintrin.h>
#define FL_MM_ROWS8 1
static int fl_have_v3(void)
{
    static int have = -1; /* a benign race: every thread stores the same value */
    if (have < 0) {
        __builtin_cpu_init();
        have = __builtin_cpu_supports("x86-64-v3") ? 1 : 0;
    }
    return have;
}
#endif

#define T float
#define TU uint32_t
#define SFX(name) name##_f32
#define VEXP fl_expf
#define VEXPN fl_expf_neg
#define VLOG fl_logf
#define VLOG1P fl_log1pf
#define VLOG01C fl_logf_01c
#define VLOG1M01C fl_log1mf_01c
#define VLOG1P01 fl_log1pf_01
#define FMAT __builtin_fmaf
#include "classification_tmpl.h"
#undef T
#undef TU
#undef SFX
#undef VEXP
#undef VEXPN
#undef VLOG
#undef VLOG1P
#undef VLOG01C
#undef VLOG1M01C
#undef VLOG1P01
#undef FMAT

#ifdef FL_MM_ROWS8
/* multi_margin, float32, 4 <= c <= 8, loss reduced (mean or sum): one row per 256-bit
 * vector, class j in lane j, no transposition (session 11, bench/NOTES.md: on Zen 4 1000x7
 * 2.56 -> 1.94 us on one thread against the transposed block; for c = 2, 3 the block is
 * faster).  Per row: z = (margin - x_y) + x_j as in mm_row, h = z where z > 0 and j != y;
 * the loss into one of four float accumulators, added into double every 16 rows; the
 * gradient's target lane gets minus the sum of the others (an in-register tree sum).
 * Session 14 made it AVX2 (it was AVX-512VL, masked by a mask register, x86-64-v4 only):
 * AVX's masked store (vmaskmovps) is slow on Zen 3, so a row that is not its chunk's last
 * loads and stores all 8 lanes: lanes c..7 are the next row's logits, read before anything
 * of that row is written, and are stored back unchanged (the blend below), so grad may be x;
 * when grad is not x the next row's store then overwrites them.  The chunk's last row
 * (whose 8 lanes would reach into another thread's rows or past the arrays) uses the masked
 * load and store.  On the AVX2 host 1e5x7 on two threads 480 -> 215 us against the block.
 *
 * One row's terms, v its 8 lanes (xr in memory): the loss term added into *acc, *ny the
 * lanes j < c, j != y, and the gradient returned without the target's lane (0 there).  x_y
 * and w_y / c are broadcast from memory and the mask is noty[y], all loads: the permutes of
 * v and of the weights by a vector of y and the compare of y with the lanes were 4 of the
 * row's ~13 vector operations (session 18: 1000x7 on one thread -21%). */
__attribute__((target("arch=x86-64-v3"), always_inline)) static inline __m256 mm_core8_f32(
    const __m256 v, const float *xr, int64_t y, const __m256 *noty, const float *fv, __m256 mg, __m256 f1,
    __m256 gs, const int p2, const int weighted, __m256 *acc, __m256 *ny)
{
    const __m256 z = _mm256_add_ps(_mm256_sub_ps(mg, _mm256_broadcast_ss(xr + y)), v);
    *ny = noty[y];
    const __m256 on = _mm256_and_ps(*ny, _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_GT_OQ));
    const __m256 h = _mm256_and_ps(on, z), f = weighted ? _mm256_broadcast_ss(fv + y) : f1;
    const __m256 hp = p2 ? _mm256_mul_ps(h, h) : h;
    *acc = _mm256_add_ps(*acc, weighted ? _mm256_mul_ps(hp, f) : hp);
    const __m256 gf = _mm256_mul_ps(f, gs); /* (p w_y / c) * gscale */
    return p2 ? _mm256_mul_ps(h, gf) : _mm256_and_ps(on, gf);
}

/* One row on its own: the target's lane gets minus the sum of the others by an in-register tree. */
__attribute__((target("arch=x86-64-v3"), always_inline)) static inline __m256 mm_row8_f32(
    const float *xr, int64_t y, float *gr, const int last, __m256 live, const __m256 *noty, const float *fv,
    __m256 mg, __m256 f1, __m256 gs, const int p2, const int weighted, __m256 acc)
{
    const __m256 v = last ? _mm256_maskload_ps(xr, _mm256_castps_si256(live)) : _mm256_loadu_ps(xr);
    __m256 ny;
    const __m256 gj = mm_core8_f32(v, xr, y, noty, fv, mg, f1, gs, p2, weighted, &acc, &ny);
    if (gr) {
        const __m256 isy = _mm256_andnot_ps(ny, live);
        __m256 t = _mm256_add_ps(gj, _mm256_permute_ps(gj, 0xB1));
        t = _mm256_add_ps(t, _mm256_permute_ps(t, 0x4E));
        t = _mm256_add_ps(t, _mm256_permute2f128_ps(t, t, 1));
        const __m256 out = _mm256_sub_ps(gj, _mm256_and_ps(isy, t));
        if (last) _mm256_maskstore_ps(gr, _mm256_castps_si256(live), out);
        else _mm256_storeu_ps(gr, _mm256_blendv_ps(v, out, live));
    }
    return acc;
}

/* lane r: the sum of g[r]'s lanes, ((0 + 1) + (2 + 3)) + ((4 + 5) + (6 + 7)) */
__attribute__((target("arch=x86-64-v3"), always_inline)) static inline __m256 mm_hsum8_f32(const __m256 *g)
{
    const __m256 q0 = _mm256_hadd_ps(_mm256_hadd_ps(g[0], g[1]), _mm256_hadd_ps(g[2], g[3]));
    const __m256 q1 = _mm256_hadd_ps(_mm256_hadd_ps(g[4], g[5]), _mm256_hadd_ps(g[6], g[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(q0, q1, 0x20), _mm256_permute2f128_ps(q0, q1, 0x31));
}

__attribute__((target("arch=x86-64-v3"), always_inline)) static inline double mm_rows8_f32(
    const mmctx_f32 *m, int64_t lo, int64_t hi, const int64_t C, const int p2, const int weighted, const int hasg)
{
    float fv[8] = {0}; /* w_j / c */
    for (int64_t j = 0; j < C; j++) fv[j] = (weighted ? m->weight[j] : 1.0f) / (float)C;
    const __m256 live = _mm256_castsi256_ps(
        _mm256_cmpgt_epi32(_mm256_set1_epi32((int)C), _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0)));
    __m256 noty[8]; /* noty[y]: the lanes j < c, j != y */
    for (int y = 0; y < 8; y++)
        noty[y] = _mm256_andnot_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_set1_epi32(y),
                  _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0))), live);
    const __m256 f1 = _mm256_set1_ps(fv[0]), mg = _mm256_set1_ps(m->margin);
    const __m256 gs = _mm256_set1_ps((p2 ? 2.0f : 1.0f) * m->gscale);
    const float *x = m->x;
    const int64_t *t = m->target;
    float *g = hasg ? m->grad : NULL;
    const int64_t whole = C < 8 && hi > lo ? hi - 1 : hi; /* rows before it load and store 8 lanes */
    __m256d tlo = _mm256_setzero_pd(), thi = tlo;
    for (int64_t i = lo; i < hi;) {
        const int64_t stop = hi - i < 16 ? hi : i + 16;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        /* groups of 8 rows: their target lanes summed together (mm_hsum8_f32) and stored last,
         * one scalar store each -- the same sums in the same order as mm_row8_f32's per-row
         * tree, for 9 instead of 48 shuffles and adds */
        if (g)
            for (; i + 8 <= stop && i + 8 <= whole; i += 8) {
                __m256 gj[8];
                for (int r = 0; r < 8; r++) { /* unrolled by GCC: r is a constant in each copy */
                    __m256 *ar = r % 4 == 0 ? &a0 : r % 4 == 1 ? &a1 : r % 4 == 2 ? &a2 : &a3;
                    const __m256 v = _mm256_loadu_ps(x + (i + r) * C);
                    __m256 keep; /* the target lane's gj is 0: its value is stored below */
                    gj[r] = mm_core8_f32(v, x + (i + r) * C, t[i + r], noty, fv, mg, f1, gs, p2, weighted, ar, &keep);
                    _mm256_storeu_ps(g + (i + r) * C, _mm256_blendv_ps(v, gj[r], live));
                }
                const __m256 s8 = mm_hsum8_f32(gj);
                float ny[8];
                _mm256_storeu_ps(ny, _mm256_sub_ps(_mm256_setzero_ps(), s8));
                for (int r = 0; r < 8; r++) g[(i + r) * C + t[i + r]] = ny[r];
            }
        for (; i + 4 <= stop && i + 4 <= whole; i += 4) {
            a0 = mm_row8_f32(x + i * C, t[i], g ? g + i * C : NULL, 0, live, noty, fv, mg, f1, gs, p2, weighted, a0);
            a1 = mm_row8_f32(x + (i + 1) * C, t[i + 1], g ? g + (i + 1) * C : NULL, 0, live, noty, fv, mg, f1, gs, p2,
                             weighted, a1);
            a2 = mm_row8_f32(x + (i + 2) * C, t[i + 2], g ? g + (i + 2) * C : NULL, 0, live, noty, fv, mg, f1, gs, p2,
                             weighted, a2);
            a3 = mm_row8_f32(x + (i + 3) * C, t[i + 3], g ? g + (i + 3) * C : NULL, 0, live, noty, fv, mg, f1, gs, p2,
                             weighted, a3);
        }
        for (; i < stop; i++)
            a0 = mm_row8_f32(x + i * C, t[i], g ? g + i * C : NULL, i >= whole, live, noty, fv, mg, f1, gs, p2,
                             weighted, a0);
        const __m256 a = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
        tlo = _mm256_add_pd(tlo, _mm256_cvtps_pd(_mm256_castps256_ps128(a)));
        thi = _mm256_add_pd(thi, _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)));
    }
    double d[8];
    _mm256_storeu_pd(d, tlo);
    _mm256_storeu_pd(d + 4, thi);
    /* the lanes in a fixed tree: halves, then pairs (as _mm512_reduce_add_pd, session 11) */
    const double s = ((d[0] + d[4]) + (d[2] + d[6])) + ((d[1] + d[5]) + (d[3] + d[7]));
    return weighted ? s : s * (double)fv[0];
}

/* c, p, the weights and the gradient as constants: one tight loop each (with c a variable,
 * GCC kept a pointer per row of the 8-row group and spilled them) */
__attribute__((target("arch=x86-64-v3"), always_inline)) static inline double mm_rows8_c_f32(
    const mmctx_f32 *m, int64_t lo, int64_t hi, const int64_t C)
{
    const int p2 = m->p == 2, w = m->weight != NULL;
    if (m->grad) {
        if (p2) return w ? mm_rows8_f32(m, lo, hi, C, 1, 1, 1) : mm_rows8_f32(m, lo, hi, C, 1, 0, 1);
        return w ? mm_rows8_f32(m, lo, hi, C, 0, 1, 1) : mm_rows8_f32(m, lo, hi, C, 0, 0, 1);
    }
    if (p2) return w ? mm_rows8_f32(m, lo, hi, C, 1, 1, 0) : mm_rows8_f32(m, lo, hi, C, 1, 0, 0);
    return w ? mm_rows8_f32(m, lo, hi, C, 0, 1, 0) : mm_rows8_f32(m, lo, hi, C, 0, 0, 0);
}
__attribute__((target("arch=x86-64-v3"))) static double mm_rows8_chunk_f32(const void *ctx, int64_t lo, int64_t hi)
{
    const mmctx_f32 *m = (const mmctx_f32 *)ctx;
    switch (m->c) {
    case 4: return mm_rows8_c_f32(m, lo, hi, 4);
    case 5: return mm_rows8_c_f32(m, lo, hi, 5);
    case 6: return mm_rows8_c_f32(m, lo, hi, 6);
    case 7: return mm_rows8_c_f32(m, lo, hi, 7);
    default: return mm_rows8_c_f32(m, lo, hi, 8);
    }
}
#endif

#define T double
#define TU uint64_t
#define SFX(name) name##_f64
#define VEXP fl_exp
#define VEXPN fl_exp_neg
#define VLOG fl_log
#define VLOG1P fl_log1p
#define VLOG01C fl_log_01c
#define VLOG1M01C fl_log1m_01c
#define VLOG1P01 fl_log1p_01
#define FMAT __builtin_fma
#include "classification_tmpl.h"
#undef T
#undef TU
#undef SFX
#undef VEXP
#undef VEXPN
#undef VLOG
#undef VLOG1P
#undef VLOG01C
#undef VLOG1M01C
#undef VLOG1P01
#undef FMAT
