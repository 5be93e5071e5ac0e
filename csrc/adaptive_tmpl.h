/* adaptive_tmpl.h -- Adam/AdamW, Adagrad and RMSprop for one floating type, in place.
 * adaptive.c includes this file once per dtype with T, SFX(name) and FL_SQRT defined.
 *
 * The pattern of optim_tmpl.h: the exported kernel computes every per-step scalar once,
 * in double (the bias corrections 1 - beta^step, lr / bc1, 1 / sqrt(bc2), 1 - beta, the
 * decayed Adagrad rate), as torch computes them in Python, and rounds each to T once;
 * the chunk function then picks one range loop whose mode flags are compile-time
 * constants after inlining, so every mode is one straight `omp simd` loop, one memory pass.
 *
 * Numerics (no -ffast-math; see build_cffi.py):
 *   - sqrt and division are IEEE-exact: vsqrtps/vdivps (pd), never reciprocal estimates;
 *   - no FMA contraction (adaptive.c turns it off): the AVX-512, AVX2 and SSE2 clones give
 *     the same bits, and every element's result depends on that element alone, so one call
 *     over a flat block equals one call per parameter, bit for bit;
 *   - NaN and Inf propagate as in torch: a zero weight decay is skipped, not multiplied
 *     (0 * inf = NaN); amsgrad's max keeps NaN like torch.maximum; running averages use
 *     torch's lerp (m + w (g - m), or g - (g - m)(1 - w) when |w| >= 0.5), which gives NaN,
 *     not Inf, when an average is infinite, as torch does.
 *   - one deliberate difference of rounding: Adam multiplies by the hoisted 1/sqrt(bc2)
 *     where torch divides by sqrt(bc2) (at most 1 ulp in the denominator). */

/* ---- Adam / AdamW ------------------------------------------------------------------ */
typedef struct {
    T *param, *m, *v, *vmax;   /* vmax NULL unless amsgrad */
    const T *grad;
    T gscale;                  /* signed: -grad_scale if maximize ((g*s) negated == g*(-s)) */
    T wd;                      /* coupled weight decay: g += wd * param */
    T decay;                   /* decoupled weight decay: param *= 1 - lr * wd */
    T w1, omw1;                /* lerp weight 1 - beta1, and 1 - w1 for the large-weight form */
    T beta2, omb2;             /* v = beta2 * v + (1 - beta2) * g * g */
    T inv_bc2_sqrt, eps, step_size;
    int wd_mode;               /* 0 none, 1 coupled, 2 decoupled */
    int small;                 /* |w1| < 0.5 */
    int pf;                    /* prefetch ahead: >= FL_PF_MIN_BYTES of arrays */
} SFX(adamctx);

FL_INLINE void SFX(adam_range)(const SFX(adamctx) *c, int64_t lo, int64_t hi,
                               const int wdm, const int ams, const int small)
{
    T *restrict p = c->param, *restrict m = c->m, *restrict v = c->v, *restrict vm = c->vmax;
    const T *restrict gr = c->grad;
    const T gs = c->gscale, wd = c->wd, decay = c->decay, w1 = c->w1, omw1 = c->omw1,
            b2 = c->beta2, omb2 = c->omb2, k2 = c->inv_bc2_sqrt, eps = c->eps, ss = c->step_size;
    /* every load first, every store last: a store to m[i] ahead of the load of v[i] would
     * make the load wait whenever the two addresses agree modulo 4096 (4K aliasing; measured
     * 20% slower with page-aligned arrays) */
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) {
        T g = gr[i] * gs, pi = p[i], mo = m[i], vo = v[i], x = ams ? vm[i] : 0;
        if (wdm == 1) g = g + wd * pi;
        if (wdm == 2) pi = pi * decay;
        T d = g - mo;
        T mi = small ? mo + w1 * d : g - d * omw1;     /* torch: exp_avg.lerp_(g, 1 - beta1) */
        T vi = vo * b2 + omb2 * g * g;                 /* torch: mul_(beta2).addcmul_(g, g, 1 - beta2) */
        T vu = ams && (x > vi || x != x) ? x : vi;     /* amsgrad: torch.maximum, NaN wins */
        T denom = FL_SQRT(vu) * k2 + eps;              /* sqrt(v) / sqrt(bc2) + eps */
        m[i] = mi;
        v[i] = vi;
        if (ams) vm[i] = vu;
        p[i] = pi - ss * mi / denom;                   /* addcdiv_(m, denom, value=-lr/bc1) */
    }
}

#define FL_ADAM_AMS(W, S)                                                                    \
    do {                                                                                     \
        if (c->vmax) SFX(adam_range)(c, lo, hi, W, 1, S);                                    \
        else SFX(adam_range)(c, lo, hi, W, 0, S);                                            \
    } while (0)
#define FL_ADAM_SMALL(W)                                                                     \
    do {                                                                                     \
        if (c->small) FL_ADAM_AMS(W, 1);                                                     \
        else FL_ADAM_AMS(W, 0);                                                              \
    } while (0)

FL_INLINE void SFX(adam_modes)(const SFX(adamctx) *c, int64_t lo, int64_t hi)
{
    if (c->wd_mode == 1) FL_ADAM_SMALL(1);
    else if (c->wd_mode == 2) FL_ADAM_SMALL(2);
    else FL_ADAM_SMALL(0);
}

/* Large calls (pf) run in blocks, each prefetching the lines further on (fl_internal.h,
 * fl_prefetch_ahead); Adagrad and RMSprop the same. */
FL_CLONES static double SFX(adam_chunk)(const void *ctx, int64_t lo, int64_t hi)
{
    const SFX(adamctx) *c = (const SFX(adamctx) *)ctx;
    const void *const a[] = {c->grad, c->param, c->m, c->v, c->vmax};
    for (int64_t b = lo, e; b < hi; b = e) {
        e = fl_pf_end(c->pf, b, hi, sizeof(T));
        fl_prefetch_ahead(c->pf, a, 5, sizeof(T), b, e, hi);
        SFX(adam_modes)(c, b, e);
    }
    return 0.0;
}
#undef FL_ADAM_AMS
#undef FL_ADAM_SMALL

void SFX(fl_adam)(T *param, T *exp_avg, T *exp_avg_sq, T *max_exp_avg_sq, const T *grad,
                  int64_t n, int64_t step, double lr, double beta1, double beta2, double eps,
                  double weight_decay, double grad_scale, int decoupled_weight_decay, int amsgrad,
                  int maximize)
{
    /* torch: bias_correction = 1 - beta**step in Python floats, step_size = lr / bc1 */
    double bc1 = 1.0 - pow(beta1, (double)step), bc2 = 1.0 - pow(beta2, (double)step);
    SFX(adamctx) c;
    c.param = param;
    c.m = exp_avg;
    c.v = exp_avg_sq;
    c.vmax = amsgrad ? max_exp_avg_sq : NULL;
    c.grad = grad;
    c.gscale = (T)(maximize ? -grad_scale : grad_scale);
    c.wd_mode = weight_decay == 0 ? 0 : (decoupled_weight_decay ? 2 : 1);
    c.wd = (T)weight_decay;
    c.decay = (T)(1.0 - lr * weight_decay);
    c.w1 = (T)(1.0 - beta1);
    c.omw1 = (T)1 - c.w1;           /* torch's lerp: opmath_t(1) - weight, in T */
    c.small = (c.w1 < 0 ? -c.w1 : c.w1) < (T)0.5;
    c.beta2 = (T)beta2;
    c.omb2 = (T)(1.0 - beta2);
    c.inv_bc2_sqrt = (T)(1.0 / sqrt(bc2));
    c.eps = (T)eps;
    c.step_size = (T)(lr / bc1);
    c.pf = n * (int64_t)sizeof(T) * (amsgrad ? 5 : 4) >= FL_PF_MIN_BYTES;
    fl_parallel_for(n, FL_GRAIN_SQRT, SFX(adam_chunk), &c);
}

/* ---- Adagrad ------------------------------------------------------------------------ */
typedef struct {
    T *param, *sum;
    const T *grad;
    T gscale, wd, clr, eps;
    int pf;                    /* as adamctx's */
} SFX(adagradctx);

FL_INLINE void SFX(adagrad_range)(const SFX(adagradctx) *c, int64_t lo, int64_t hi, const int wdc)
{
    T *restrict p = c->param, *restrict sm = c->sum;
    const T *restrict gr = c->grad;
    const T gs = c->gscale, wd = c->wd, clr = c->clr, eps = c->eps;
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) {
        T g = gr[i] * gs, pi = p[i], so = sm[i];
        if (wdc) g = g + wd * pi;
        T s = so + g * g;                             /* torch: state_sum.addcmul_(g, g, value=1) */
        sm[i] = s;
        p[i] = pi - clr * g / (FL_SQRT(s) + eps);     /* addcdiv_(g, sqrt(sum) + eps, value=-clr) */
    }
}

FL_INLINE void SFX(adagrad_modes)(const SFX(adagradctx) *c, int64_t lo, int64_t hi)
{
    if (c->wd != 0) SFX(adagrad_range)(c, lo, hi, 1);
    else SFX(adagrad_range)(c, lo, hi, 0);
}

FL_CLONES static double SFX(adagrad_chunk)(const void *ctx, int64_t lo, int64_t hi)
{
    const SFX(adagradctx) *c = (const SFX(adagradctx) *)ctx;
    const void *const a[] = {c->grad, c->param, c->sum};
    for (int64_t b = lo, e; b < hi; b = e) {
        e = fl_pf_end(c->pf, b, hi, sizeof(T));
        fl_prefetch_ahead(c->pf, a, 3, sizeof(T), b, e, hi);
        SFX(adagrad_modes)(c, b, e);
    }
    return 0.0;
}

void SFX(fl_adagrad)(T *param, T *state_sum, const T *grad, int64_t n, int64_t step,
                     double lr, double lr_decay, double weight_decay, double eps, double grad_scale,
                     int maximize)
{
    SFX(adagradctx) c;
    c.param = param;
    c.sum = state_sum;
    c.grad = grad;
    c.gscale = (T)(maximize ? -grad_scale : grad_scale);
    c.wd = (T)weight_decay;
    c.clr = (T)(lr / (1.0 + (double)(step - 1) * lr_decay));   /* torch's clr, in double */
    c.eps = (T)eps;
    c.pf = n * (int64_t)sizeof(T) * 3 >= FL_PF_MIN_BYTES;
    fl_parallel_for(n, FL_GRAIN_SQRT, SFX(adagrad_chunk), &c);
}

/* ---- RMSprop ------------------------------------------------------------------------ */
typedef struct {
    T *param, *sq, *buf, *gavg;     /* buf NULL unless momentum > 0, gavg NULL unless centered */
    const T *grad;
    T gscale, wd, alpha, w, omw, eps, lr, momentum;  /* w = 1 - alpha, omw = 1 - w (lerp) */
    int small;                                       /* |w| < 0.5 */
    int pf;                                          /* as adamctx's */
} SFX(rmspropctx);

FL_INLINE void SFX(rmsprop_range)(const SFX(rmspropctx) *c, int64_t lo, int64_t hi,
                                  const int wdc, const int mom, const int cen, const int small)
{
    T *restrict p = c->param, *restrict sq = c->sq, *restrict b = c->buf, *restrict ga = c->gavg;
    const T *restrict gr = c->grad;
    const T gs = c->gscale, wd = c->wd, al = c->alpha, w = c->w, omw = c->omw, eps = c->eps,
            lr = c->lr, mo = c->momentum;
    /* loads first, stores last (see adam_range) */
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) {
        T g = gr[i] * gs, pi = p[i], so = sq[i], ao = cen ? ga[i] : 0, bo = mom ? b[i] : 0;
        if (wdc) g = g + wd * pi;
        T s = so * al + w * g * g;                    /* mul_(alpha).addcmul_(g, g, 1 - alpha) */
        T d = g - ao;
        T a = small ? ao + w * d : g - d * omw;       /* centered: grad_avg.lerp_(g, 1 - alpha) */
        T avg = FL_SQRT(cen ? s - a * a : s) + eps;   /* square_avg.addcmul(a, a, value=-1) */
        T bi = bo * mo + g / avg;                     /* buf.mul_(momentum).addcdiv_(g, avg) */
        sq[i] = s;
        if (cen) ga[i] = a;
        if (mom) b[i] = bi;
        p[i] = mom ? pi - lr * bi : pi - lr * g / avg;  /* add_(buf, -lr) / addcdiv_(g, avg, -lr) */
    }
}

#define FL_RMS_SMALL(W, M, C)                                                                \
    do {                                                                                     \
        if (c->small) SFX(rmsprop_range)(c, lo, hi, W, M, C, 1);                             \
        else SFX(rmsprop_range)(c, lo, hi, W, M, C, 0);                                      \
    } while (0)
#define FL_RMS_MODES(W)                                                                      \
    do {                                                                                     \
        if (c->buf) {                                                                        \
            if (c->gavg) FL_RMS_SMALL(W, 1, 1);                                              \
            else SFX(rmsprop_range)(c, lo, hi, W, 1, 0, 1);                                  \
        } else {                                                                             \
            if (c->gavg) FL_RMS_SMALL(W, 0, 1);                                              \
            else SFX(rmsprop_range)(c, lo, hi, W, 0, 0, 1);                                  \
        }                                                                                    \
    } while (0)

FL_INLINE void SFX(rmsprop_modes)(const SFX(rmspropctx) *c, int64_t lo, int64_t hi)
{
    /* `small` only matters for the lerp of the centered average */
    if (c->wd != 0) FL_RMS_MODES(1);
    else FL_RMS_MODES(0);
}

FL_CLONES static double SFX(rmsprop_chunk)(const void *ctx, int64_t lo, int64_t hi)
{
    const SFX(rmspropctx) *c = (const SFX(rmspropctx) *)ctx;
    const void *const a[] = {c->grad, c->param, c->sq, c->buf, c->gavg};
    for (int64_t b = lo, e; b < hi; b = e) {
        e = fl_pf_end(c->pf, b, hi, sizeof(T));
        fl_prefetch_ahead(c->pf, a, 5, sizeof(T), b, e, hi);
        SFX(rmsprop_modes)(c, b, e);
    }
    return 0.0;
}
#undef FL_RMS_SMALL
#undef FL_RMS_MODES

void SFX(fl_rmsprop)(T *param, T *square_avg, T *momentum_buffer, T *grad_avg, const T *grad,
                     int64_t n, double lr, double alpha, double eps, double weight_decay,
                     double momentum, double grad_scale, int centered, int maximize)
{
    SFX(rmspropctx) c;
    c.param = param;
    c.sq = square_avg;
    c.buf = momentum > 0 ? momentum_buffer : NULL;
    c.gavg = centered ? grad_avg : NULL;
    c.grad = grad;
    c.gscale = (T)(maximize ? -grad_scale : grad_scale);
    c.wd = (T)weight_decay;
    c.alpha = (T)alpha;
    c.w = (T)(1.0 - alpha);
    c.omw = (T)1 - c.w;
    c.small = (c.w < 0 ? -c.w : c.w) < (T)0.5;
    c.eps = (T)eps;
    c.lr = (T)lr;
    c.momentum = (T)momentum;
    c.pf = n * (int64_t)sizeof(T) * (3 + (c.buf != NULL) + (c.gavg != NULL)) >= FL_PF_MIN_BYTES;
    fl_parallel_for(n, FL_GRAIN_SQRT, SFX(rmsprop_chunk), &c);
}
