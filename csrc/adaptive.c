/* adaptive.c -- Adam/AdamW, Adagrad, RMSprop (see adaptive_tmpl.h), f32 and f64.
 *
 * No FMA contraction in this file, although the project builds with -ffp-contract=fast:
 * these kernels are bound by memory and by one sqrt and one division per element, so a
 * fused multiply-add buys nothing, and without it every element is computed by exactly the
 * operations written, in torch's order: the AVX-512, AVX2 and SSE2 clones give the same
 * bits, the Numba backend gives the same bits (tests/test_adaptive.py checks it), and an
 * element's result never depends on whether it falls in a vector body or a scalar tail. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#else
#pragma STDC FP_CONTRACT OFF
#endif
#include "fl_internal.h"
#include <math.h>

#define T float
#define SFX(name) name##_f32
#define FL_SQRT sqrtf
#include "adaptive_tmpl.h"
#undef T
#undef SFX
#undef FL_SQRT

#define T double
#define SFX(name) name##_f64
#define FL_SQRT sqrt
#include "adaptive_tmpl.h"
#undef T
#undef SFX
#undef FL_SQRT
