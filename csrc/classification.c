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
