/* regression_tmpl.h -- the elementwise regression losses for one floating type.
 * regression.c includes this file once per dtype with T (float | double) and
 * SFX(name) (name##_f32 | name##_f64) defined.
 *
 * Each loss is two small functions, the scalar source of truth:
 *   <loss>_prep: per-call constants, hoisted out of the loop (gradient scale folded in);
 *   <loss>_elem: one element: returns {l(d), gscale * dl/dpred} by value.
 * FL_EW_LOSS builds the rest: a chunk loop in four variants (grad and/or per-element loss
 * written or not; the flags are compile-time constants after inlining, so each variant is
 * a straight loop the compiler vectorizes), cloned per ISA, and the exported kernel. */

typedef struct { T c0, c1, c2, c3, c4, c5; } SFX(ewk);
typedef struct { T *grad, *loss; const T *pred, *target; SFX(ewk) k; } SFX(ewctx);
typedef struct { T l, g; } SFX(lg);

/* mse: l = d^2, dl/dd = 2d */
FL_INLINE void SFX(mse_prep)(SFX(ewk) *k, T gscale, T h) { (void)h; k->c0 = (T)2 * gscale; }
FL_INLINE SFX(lg) SFX(mse_elem)(T d, const SFX(ewk) *k) { return (SFX(lg)){d * d, k->c0 * d}; }

/* smooth_l2: l = d^2 / 2, dl/dd = d */
FL_INLINE void SFX(smooth_l2_prep)(SFX(ewk) *k, T gscale, T h) { (void)h; k->c0 = gscale; }
FL_INLINE SFX(lg) SFX(smooth_l2_elem)(T d, const SFX(ewk) *k) { return (SFX(lg)){(T)0.5 * d * d, k->c0 * d}; }

/* mae: l = |d|, dl/dd = sign(d).  Written as two comparisons so that d == 0 and d = NaN
 * give 0, as torch's sign() does for l1_loss's backward. */
FL_INLINE void SFX(mae_prep)(SFX(ewk) *k, T gscale, T h) { (void)h; k->c0 = gscale; k->c1 = -gscale; }
FL_INLINE SFX(lg) SFX(mae_elem)(T d, const SFX(ewk) *k)
{
    return (SFX(lg)){FL_FABS(d), d > 0 ? k->c0 : (d < 0 ? k->c1 : (T)0)};
}

/* huber (torch.nn.functional.huber_loss):
 *   l = d^2/2 if |d| < delta else delta * (|d| - delta/2)
 *   dl/dd = clamp(d, -delta, delta), written as torch's backward writes it (two compares,
 *   NaN falls through to the linear branch and stays NaN). */
FL_INLINE void SFX(huber_prep)(SFX(ewk) *k, T gscale, T delta)
{
    k->c0 = delta; k->c3 = gscale;
}
FL_INLINE SFX(lg) SFX(huber_elem)(T d, const SFX(ewk) *k)
{
    T a = FL_FABS(d);
    /* the clamp as two selects that keep NaN (x86 min/max: NaN in d comes out as d) */
    T g = d < -k->c0 ? -k->c0 : d;
    g = g > k->c0 ? k->c0 : g;
    /* the loss as c (a - c/2), c = min(|d|, delta): d^2/2 below delta (a - a/2 = a/2 exactly,
     * so the same bits as (d/2) d), delta (|d| - delta/2) above, NaN for a NaN d (min gives
     * delta, a is NaN); 4 operations instead of 6 (bench/NOTES.md, session 16) */
    const T c = a < k->c0 ? a : k->c0;
    return (SFX(lg)){c * (a - (T)0.5 * c), k->c3 * g};
}

/* smooth_l1 (torch.nn.functional.smooth_l1_loss), beta > 0:
 *   l = d^2/(2 beta) if |d| < beta else |d| - beta/2,
 *   dl/dd = -1 if d <= -beta, 1 if d >= beta, else d/beta -- torch's backward, its compares
 *   included: NaN stays NaN, and with beta = inf, d = +-inf gives +-1 (not inf/inf).
 * d/beta is d * (gscale/beta), gscale/beta hoisted: within an ulp of torch's division.  The
 * selects are written one after the other, not nested (nested, GCC's code took 94 instead
 * of 67 us at 1e6; bench/NOTES.md session 7).
 * Below 2^-100, 0.5/beta and gscale/beta could overflow (a subnormal beta: inf, and NaN from
 * inf * 0 at d = 0): smooth_l1_tiny takes both of beta * 2^64 and scales d by 2^64 too
 * (powers of two: exact; d * 2^64 can overflow only where |d| >= beta, whose lanes take the
 * other branch).  A kernel of its own, so that the common case pays no multiply for it.
 * beta == 0 is plain L1 (torch routes it to l1_loss); the exported kernel does the same. */
FL_INLINE void SFX(smooth_l1_constants)(SFX(ewk) *k, T gscale, T beta, T sc)
{
    k->c0 = beta; k->c1 = (T)0.5 / (beta * sc); k->c2 = (T)0.5 * beta; k->c3 = gscale / (beta * sc);
    k->c4 = gscale; k->c5 = sc;
}
FL_INLINE SFX(lg) SFX(smooth_l1_scaled)(T d, const SFX(ewk) *k, T sc)
{
    const T a = FL_FABS(d), ds = d * sc;
    T g = k->c3 * ds;
    g = d <= -k->c0 ? -k->c4 : g;
    g = d >= k->c0 ? k->c4 : g;
    return (SFX(lg)){a < k->c0 ? k->c1 * ds * d : a - k->c2, g};
}
FL_INLINE void SFX(smooth_l1_prep)(SFX(ewk) *k, T gscale, T beta) { SFX(smooth_l1_constants)(k, gscale, beta, 1); }
FL_INLINE SFX(lg) SFX(smooth_l1_elem)(T d, const SFX(ewk) *k) { return SFX(smooth_l1_scaled)(d, k, 1); }
FL_INLINE void SFX(smooth_l1_tiny_prep)(SFX(ewk) *k, T gscale, T beta)
{
    SFX(smooth_l1_constants)(k, gscale, beta, (T)0x1p64);
}
FL_INLINE SFX(lg) SFX(smooth_l1_tiny_elem)(T d, const SFX(ewk) *k) { return SFX(smooth_l1_scaled)(d, k, k->c5); }

/* The sum: 16 lanes, each adding its 4 elements of a 64-element block in T, then into its
 * own double accumulator; the lanes are added in a fixed tree at the end.  The order is
 * written out, so the bits depend only on the chunk boundaries (the thread count), not on
 * the vector width, and the float->double conversions are one per 4 elements, not one per
 * element (they were a third of huber's instructions). */
#define FL_EW_ONE(NAME, WG, WL, e, out)                                                      \
    do {                                                                                     \
        SFX(lg) r_ = SFX(NAME##_elem)(pred[e] - target[e], &k);                              \
        if (WL) loss[e] = r_.l;                                                              \
        if (WG) grad[e] = r_.g;                                                              \
        out = r_.l;                                                                          \
    } while (0)
#define FL_EW_RANGE(NAME, WG, WL)                                                            \
    do {                                                                                     \
        double acc[16];                                                                      \
        for (int l = 0; l < 16; l++) acc[l] = 0; /* not = {0}: csrc/build_cffi.py */     \
        int64_t i = lo;                                                                      \
        for (; i + 64 <= hi; i += 64) {                                                      \
            _Pragma("omp simd")                                                              \
            for (int l = 0; l < 16; l++) {                                                   \
                T a0, a1, a2, a3;                                                            \
                FL_EW_ONE(NAME, WG, WL, i + l, a0);                                          \
                FL_EW_ONE(NAME, WG, WL, i + 16 + l, a1);                                     \
                FL_EW_ONE(NAME, WG, WL, i + 32 + l, a2);                                     \
                FL_EW_ONE(NAME, WG, WL, i + 48 + l, a3);                                     \
                acc[l] += (double)((a0 + a1) + (a2 + a3));                                   \
            }                                                                                \
        }                                                                                    \
        for (int l = 0; i < hi; i++, l = (l + 1) & 15) {                                             \
            T a0;                                                                            \
            FL_EW_ONE(NAME, WG, WL, i, a0);                                                  \
            acc[l] += (double)a0;                                                            \
        }                                                                                    \
        for (int w = 8; w >= 1; w /= 2)                                                      \
            for (int l = 0; l < w; l++) acc[l] += acc[l + w];                                \
        s = acc[0];                                                                          \
    } while (0)

/* The loop reads pred[i], target[i] before writing grad[i], loss[i] at the same i, so an
 * output may be the same buffer as an input ("omp simd" asserts exactly that: no
 * dependence between different i). */
#define FL_EW_LOSS(NAME)                                                                     \
    FL_CLONES static double SFX(NAME##_chunk)(const void *ctx, int64_t lo, int64_t hi)       \
    {                                                                                        \
        const SFX(ewctx) *c = (const SFX(ewctx) *)ctx;                                       \
        /* locals: the stores below must not make the compiler reload the context */         \
        T *grad = c->grad, *loss = c->loss;                                                  \
        const T *pred = c->pred, *target = c->target;                                        \
        const SFX(ewk) k = c->k;                                                             \
        double s = 0.0;                                                                      \
        if (grad && loss) FL_EW_RANGE(NAME, 1, 1);                                           \
        else if (grad) FL_EW_RANGE(NAME, 1, 0);                                              \
        else if (loss) FL_EW_RANGE(NAME, 0, 1);                                              \
        else FL_EW_RANGE(NAME, 0, 0);                                                        \
        return s;                                                                            \
    }                                                                                        \
    static double SFX(NAME##_run)(T *grad, T *loss, const T *pred, const T *target,          \
                                  int64_t n, T gscale, T h)                                  \
    {                                                                                        \
        SFX(ewctx) c = {grad, loss, pred, target, {0, 0, 0, 0, 0}};                             \
        SFX(NAME##_prep)(&c.k, gscale, h);                                                   \
        return fl_parallel_sum(n, FL_GRAIN_STREAM, SFX(NAME##_chunk), &c);                   \
    }

FL_EW_LOSS(mse)
FL_EW_LOSS(smooth_l2)
FL_EW_LOSS(mae)
FL_EW_LOSS(huber)
FL_EW_LOSS(smooth_l1)
FL_EW_LOSS(smooth_l1_tiny)

double SFX(fl_mse)(T *grad, T *loss, const T *pred, const T *target, int64_t n, T gscale)
{
    return SFX(mse_run)(grad, loss, pred, target, n, gscale, 0);
}
double SFX(fl_smooth_l2)(T *grad, T *loss, const T *pred, const T *target, int64_t n, T gscale)
{
    return SFX(smooth_l2_run)(grad, loss, pred, target, n, gscale, 0);
}
double SFX(fl_mae)(T *grad, T *loss, const T *pred, const T *target, int64_t n, T gscale)
{
    return SFX(mae_run)(grad, loss, pred, target, n, gscale, 0);
}
double SFX(fl_huber)(T *grad, T *loss, const T *pred, const T *target, int64_t n, T gscale, T delta)
{
    return SFX(huber_run)(grad, loss, pred, target, n, gscale, delta);
}
double SFX(fl_smooth_l1)(T *grad, T *loss, const T *pred, const T *target, int64_t n, T gscale, T beta)
{
    if (beta == 0) return SFX(mae_run)(grad, loss, pred, target, n, gscale, 0);
    if (beta < (T)0x1p-100) return SFX(smooth_l1_tiny_run)(grad, loss, pred, target, n, gscale, beta);
    return SFX(smooth_l1_run)(grad, loss, pred, target, n, gscale, beta);
}

#undef FL_EW_RANGE
#undef FL_EW_ONE
#undef FL_EW_LOSS
