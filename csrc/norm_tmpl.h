/* norm_tmpl.h -- gradient norms and in-place scaling for one floating type.
 * norm.c includes this file once per dtype with T, SFX(name) and FL_FABS defined.
 *
 * fl_norm_acc returns the accumulator of a vector norm, always in double (f32 inputs are
 * widened element by element, so x^2 of a float is exact): sum |x| (ord 1), sum x^2 (ord 2),
 * sum |x|^ord (other finite ord > 0, through pow), max |x| (ord inf).  The caller adds the
 * accumulators of several arrays and finishes the norm once (acc^(1/ord)), so a list of
 * gradients is read in one pass.  The sums are vectorized (`omp simd reduction`: partial
 * sums per lane, then per thread in thread order): a given ISA and thread count always
 * gives the same bits.  NaN anywhere makes every accumulator NaN (the max is tracked with a
 * separate NaN flag, because a vector max drops NaN operands); Inf gives Inf. */

typedef struct {
    const T *x;
    double ord;
    int kind;             /* FL_NORM_L1, _L2, _LP, _INF */
    T max;                /* ord inf: the running max of the chunks (merged under a lock) */
    int nan;
} SFX(normctx);

FL_CLONES static double SFX(norm_chunk)(const void *ctx, int64_t lo, int64_t hi)
{
    SFX(normctx) *c = (SFX(normctx) *)ctx;  /* only the ord-inf merge below writes to it */
    const T *restrict x = c->x;
    double s = 0.0;
    if (c->kind == FL_NORM_L2) {
#pragma omp simd reduction(+:s)
        for (int64_t i = lo; i < hi; i++) s += (double)x[i] * (double)x[i];
    } else if (c->kind == FL_NORM_L1) {
#pragma omp simd reduction(+:s)
        for (int64_t i = lo; i < hi; i++) s += (double)FL_FABS(x[i]);
    } else if (c->kind == FL_NORM_LP) {
        const double ord = c->ord;  /* pow is a scalar libm call: rare norm orders only */
        for (int64_t i = lo; i < hi; i++) s += pow(fabs((double)x[i]), ord);
    } else {
        T mx = 0;
        int nan = 0;
#pragma omp simd reduction(max:mx) reduction(|:nan)
        for (int64_t i = lo; i < hi; i++) {
            T a = FL_FABS(x[i]);
            mx = a > mx ? a : mx;
            nan |= a != a;
        }
#pragma omp critical(fl_norm_max)
        {
            if (mx > c->max) c->max = mx;
            c->nan |= nan;
        }
    }
    return s;
}

double SFX(fl_norm_acc)(const T *x, int64_t n, double ord)
{
    SFX(normctx) c;
    c.x = x;
    c.ord = ord;
    c.kind = ord == 2.0 ? FL_NORM_L2 : ord == 1.0 ? FL_NORM_L1 : isinf(ord) ? FL_NORM_INF : FL_NORM_LP;
    c.max = 0;
    c.nan = 0;
    double s = fl_parallel_sum(n, FL_GRAIN_STREAM, SFX(norm_chunk), &c);
    if (c.kind != FL_NORM_INF) return s;
    return c.nan ? (double)NAN : (double)c.max;
}

typedef struct {
    T *x;
    T scale;
} SFX(scalectx);

FL_CLONES static double SFX(scale_chunk)(const void *ctx, int64_t lo, int64_t hi)
{
    const SFX(scalectx) *c = (const SFX(scalectx) *)ctx;
    T *restrict x = c->x;
    const T s = c->scale;
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) x[i] = x[i] * s;
    return 0.0;
}

void SFX(fl_scale)(T *x, int64_t n, double scale)
{
    SFX(scalectx) c = {x, (T)scale};
    fl_parallel_for(n, FL_GRAIN_STREAM, SFX(scale_chunk), &c);
}
