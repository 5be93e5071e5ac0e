/* optim_tmpl.h -- in-place optimizer kernels for one floating type.  optim.c includes this
 * file once per dtype with T and SFX(name) defined.
 *
 * Every per-step scalar (1 - dampening, signed gradient scale, ...) is computed once per
 * call, outside the loop; inside, each mode is a separate straight loop: the mode flags are
 * compile-time constants after inlining. */

typedef struct {
    T *param, *buf;
    const T *grad;
    T lr, momentum, one_minus_dampening, weight_decay, gscale; /* gscale signed: -s if maximize */
    int64_t step;
    int nesterov;
} SFX(sgdctx);

FL_INLINE void SFX(sgd_range)(const SFX(sgdctx) *c, int64_t lo, int64_t hi,
                              const int wd, const int mom, const int first, const int nesterov)
{
    T *restrict p = c->param, *restrict b = c->buf;
    const T *restrict gr = c->grad;
    const T lr = c->lr, m = c->momentum, omd = c->one_minus_dampening, w = c->weight_decay,
            gs = c->gscale;
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) {
        T g = gr[i] * gs;
        if (wd) g = g + w * p[i];
        if (mom) {
            T v = first ? g : m * b[i] + omd * g;
            b[i] = v;
            g = nesterov ? g + m * v : v;
        }
        p[i] = p[i] - lr * g;
    }
}

#define FL_SGD_MODES(WD)                                                                     \
    do {                                                                                     \
        if (!c->buf) SFX(sgd_range)(c, lo, hi, WD, 0, 0, 0);                                 \
        else if (c->step <= 1) {                                                             \
            if (c->nesterov) SFX(sgd_range)(c, lo, hi, WD, 1, 1, 1);                         \
            else SFX(sgd_range)(c, lo, hi, WD, 1, 1, 0);                                     \
        } else {                                                                             \
            if (c->nesterov) SFX(sgd_range)(c, lo, hi, WD, 1, 0, 1);                         \
            else SFX(sgd_range)(c, lo, hi, WD, 1, 0, 0);                                     \
        }                                                                                    \
    } while (0)

FL_CLONES static double SFX(sgd_chunk)(const void *ctx, int64_t lo, int64_t hi)
{
    const SFX(sgdctx) *c = (const SFX(sgdctx) *)ctx;
    /* weight_decay == 0 is skipped, not multiplied: 0 * inf would turn an infinite param
     * into NaN, and torch skips it too */
    if (c->weight_decay != 0) FL_SGD_MODES(1);
    else FL_SGD_MODES(0);
    return 0.0;
}
#undef FL_SGD_MODES

void SFX(fl_sgd)(T *param, T *momentum_buffer, const T *grad, int64_t n, int64_t step,
                 T lr, T momentum, T dampening, T weight_decay, T grad_scale,
                 int nesterov, int maximize)
{
    SFX(sgdctx) c;
    c.param = param;
    c.buf = momentum != 0 ? momentum_buffer : NULL;
    c.grad = grad;
    c.lr = lr;
    c.momentum = momentum;
    c.one_minus_dampening = (T)(1.0 - (double)dampening); /* as torch: alpha = 1 - dampening */
    c.weight_decay = weight_decay;
    c.gscale = maximize ? -grad_scale : grad_scale; /* (g*s) negated == g*(-s), exactly */
    c.step = step;
    c.nesterov = nesterov;
    fl_parallel_for(n, FL_GRAIN_STREAM, SFX(sgd_chunk), &c);
}
