/* classification_tmpl.h -- classification losses for one floating type: softmax
 * cross-entropy (class indices or probabilities), binary cross-entropy on probabilities and
 * on logits, hinge, squared hinge, multi-class margin.  classification.c includes this file
 * once per dtype with T, SFX(name), VEXP, VEXPN, VLOG, VLOG1P defined (the vectorizable
 * exp/log of vmath.h: glibc's expf would keep these loops scalar; VEXPN is exp for x <= 0,
 * the softmax's, which flushes results below e^-86.5 to 0).
 *
 * Reductions: 0 = none (per-sample losses written to `loss`), 1 = mean, 2 = sum.  Loss sums
 * are accumulated in double; each kernel returns the reduced loss (none: the plain sum). */

typedef struct { T l, g; } SFX(clg);

/* ===================================================================== cross-entropy
 * Logits are (n, c, s): sample r = (i, k) of the n*s samples has its c logits at
 * logits[i*c*s + j*s + k], j = 0..c-1 (s = 1 for the usual (N, C) layout: a contiguous row).
 *
 * Per sample, three passes over its row while it stays in L1/L2:
 *   1. m = max_j x_j
 *   2. e_j = exp(x_j - m) stored into the gradient row, S = sum_j e_j (and, with label
 *      smoothing or probability targets, the sums the loss needs)
 *   3. grad_j = e_j * (scale * A / S) - scale * (target distribution)_j
 * log-sum-exp is m + log S: x_j - m <= 0 never overflows and S >= 1 never underflows.  The
 * row's logits are only read before its gradient is written at the same index, so `grad`
 * may be `logits`.  This is one exp per logit; an online (running max) softmax fuses passes
 * 1 and 2 but needs a second exp per logit for the gradient (bench/NOTES.md). */
typedef struct {
    T *grad, *loss;
    const T *logits, *prob, *weight;
    const int64_t *target;
    int64_t c, s, ignore_index;
    T eps;         /* label smoothing */
    T wtotal;      /* sum of the class weights (c without weights) */
    T gscale;      /* 1/denominator for a mean, else 1 */
    int64_t rows;  /* n * s */
} SFX(cectx);

/* passes 1 and 2; returns S, stores e_j in g when g != NULL; *sd = sum_j w_j (x_j - m)
 * (label smoothing), *sq = sum_j q'_j w_j, *sqd = sum_j q'_j w_j (x_j - m) (probability
 * targets, q' = (1 - eps) q + eps / c) */
FL_INLINE T SFX(ce_exp_pass)(const SFX(cectx) *cx, const T *x, T *g, const T *q, int64_t st,
                             T m, T *sd, T *sq, T *sqd,
                             const int unit, const int smooth, const int soft, const int weighted,
                             const int wg)
{
    const int64_t C = cx->c, S1 = unit ? 1 : st;
    const T *w = cx->weight;
    const T eps = cx->eps, epsc = cx->eps / (T)C, ome = (T)1 - cx->eps;
    T s = 0, a = 0, b = 0, d2 = 0;
#pragma omp simd reduction(+:s, a, b, d2)
    for (int64_t j = 0; j < C; j++) {
        T d = x[j * S1] - m;
        T e = VEXPN(d);
        if (wg) g[j * S1] = e;
        s += e;
        T wj = weighted ? w[j] : (T)1;
        if (soft) {
            T qj = smooth ? ome * q[j * S1] + epsc : q[j * S1];
            a += qj * wj;
            b += qj * wj * d;
        } else if (smooth) {
            d2 += wj * d;
        }
    }
    (void)eps;
    *sd = d2; *sq = a; *sqd = b;
    return s;
}

/* max_j x_j.  Unit stride: 64 running maxima (4 vectors of 16 floats): one accumulator
 * would chain every vmaxps on the previous one (4-cycle latency per 16 logits). */
FL_INLINE T SFX(ce_max)(const T *x, int64_t C, int64_t S1)
{
    T m = x[0];
    int64_t j = 1;
    if (S1 == 1 && C >= 128) {
        T acc[64];
        for (int k = 0; k < 64; k++) acc[k] = x[0];
        for (j = 0; j + 64 <= C; j += 64) {
#pragma omp simd
            for (int k = 0; k < 64; k++) acc[k] = x[j + k] > acc[k] ? x[j + k] : acc[k];
        }
#pragma omp simd reduction(max:m)
        for (int k = 0; k < 64; k++) m = acc[k] > m ? acc[k] : m;
    }
#pragma omp simd reduction(max:m)
    for (int64_t i = j; i < C; i++) m = x[i * S1] > m ? x[i * S1] : m;
    return m;
}

/* one sample, class-index target; returns its (weighted) loss */
FL_INLINE double SFX(ce_index_row)(const SFX(cectx) *cx, int64_t r, const int unit, const int smooth,
                                   const int weighted, const int wg)
{
    const int64_t C = cx->c, st = unit ? 1 : cx->s;
    const int64_t i = unit ? r : r / st, k = unit ? 0 : r - i * st;
    const T *x = cx->logits + i * C * st + k;
    T *g = cx->grad ? cx->grad + i * C * st + k : NULL;
    const int64_t y = cx->target[r];
    if (y == cx->ignore_index) { /* zero loss, zero gradient, not in the mean's denominator */
        if (g)
            for (int64_t j = 0; j < C; j++) g[j * st] = 0;
        if (cx->loss) cx->loss[r] = 0;
        return 0.0;
    }
    const T wy = weighted ? cx->weight[y] : (T)1;
    const T m = SFX(ce_max)(x, C, st);
    const T dy = x[y * st] - m; /* read before the row's gradient overwrites it (out=logits) */
    T sd, sq, sqd;
    const T S = SFX(ce_exp_pass)(cx, x, g, NULL, st, m, &sd, &sq, &sqd, unit, smooth, 0, weighted, wg);
    const T lse = VLOG(S); /* log-sum-exp - m */
    T l, A;
    if (smooth) {
        /* torch: (1 - eps) * nll + eps/c * sum_j w_j (-log p_j) */
        const T ome = (T)1 - cx->eps, epsc = cx->eps / (T)C;
        l = ome * wy * (lse - dy) + epsc * (cx->wtotal * lse - sd);
        A = ome * wy + epsc * cx->wtotal;
    } else {
        l = wy * (lse - dy);
        A = wy;
    }
    if (cx->loss) cx->loss[r] = l;
    if (wg) {
        const T coef = cx->gscale * A / S;
        if (smooth) {
            const T ge = cx->gscale * cx->eps / (T)C;
#pragma omp simd
            for (int64_t j = 0; j < C; j++)
                g[j * st] = g[j * st] * coef - ge * (weighted ? cx->weight[j] : (T)1);
            g[y * st] -= cx->gscale * ((T)1 - cx->eps) * wy;
        } else {
#pragma omp simd
            for (int64_t j = 0; j < C; j++) g[j * st] = g[j * st] * coef;
            g[y * st] -= cx->gscale * wy;
        }
    }
    return (double)l;
}

/* Few classes (c <= 32), unit stride: 64 rows at a time, transposed into a local buffer
 * xt[j][k] (class j of the block's row k), so that every step is a vector over the rows:
 * the max is C-1 vmaxps per 16 rows, the exp is independent vectors, the sums are vaddps
 * and one vector log gives 16 log-sum-exps.  No horizontal reductions: a row-at-a-time loop
 * over 10 classes spends its time in two 16-lane shuffle reductions per row (~19 ns per
 * row) or, without padding, in its scalar remainder (~35 ns); bench/NOTES.md.  64 rows, not
 * 16: the block's fixed work (targets, log, division) spread wider (256x10: 3.8 -> 3.1 us;
 * 32 rows measured no better than 16).  The transposition is plain scalar copies (GCC emits
 * no gathers under this CPU's tuning, and its emulated gather measured slower).  The block's
 * logits are all read before any of its gradient is written, so `grad` may be `logits`;
 * lanes past the last row (a partial block) hold 0 and are never stored or summed.  soft:
 * probability targets, transposed the same way (qt), instead of class indices. */
#define FL_CE_BLOCK 64
/* xt[j][k] = x[k c + j] for the block's nr rows (0 in the other lanes), and back.  Plain
 * scalar copies, the full-block case without the lane test (about half of a 10-class
 * block's time is these copies). */
FL_INLINE void SFX(ce_transpose_in)(T *xt, const T *x, int64_t C, int64_t nr)
{
    if (nr == FL_CE_BLOCK) {
        for (int k = 0; k < FL_CE_BLOCK; k++)
            for (int64_t j = 0; j < C; j++) xt[j * FL_CE_BLOCK + k] = x[k * C + j];
    } else {
        for (int k = 0; k < FL_CE_BLOCK; k++)
            for (int64_t j = 0; j < C; j++) xt[j * FL_CE_BLOCK + k] = k < nr ? x[k * C + j] : (T)0;
    }
}

FL_INLINE void SFX(ce_transpose_out)(T *g, const T *xt, int64_t C, int64_t nr)
{
    for (int64_t k = 0; k < nr; k++)
        for (int64_t j = 0; j < C; j++) g[k * C + j] = xt[j * FL_CE_BLOCK + k];
}
FL_INLINE double SFX(ce_small_block)(const SFX(cectx) *cx, int64_t r0, int64_t nr, const int soft,
                                     const int smooth, const int weighted, const int wg)
{
    enum { K = FL_CE_BLOCK };
    const int64_t C = cx->c;
    const T *x = cx->logits + r0 * C;
    const T *w = cx->weight;
    T xt[32][K], qt[soft ? 32 : 1][K], m[K], S[K], sd[K], dy[K], wy[K], l[K], live[K];
    T qa[K], qb[K]; /* probability targets: sum_j q'_j w_j and sum_j q'_j w_j (x_j - m) */
    int64_t y[K];
    const T ome = (T)1 - cx->eps, epsc = cx->eps / (T)C, gs = cx->gscale;
    for (int k = 0; k < K; k++) {
        const int64_t t = soft ? 0 : k < nr ? cx->target[r0 + k] : cx->ignore_index;
        live[k] = soft ? k < nr : t != cx->ignore_index;
        y[k] = live[k] ? t : 0;
        wy[k] = weighted ? w[y[k]] : (T)1;
        qa[k] = 0;
        qb[k] = 0;
    }
    if (soft) { /* q'_j = (1 - eps) q_j + eps / C, transposed like the logits */
        const T *q = cx->prob + r0 * C;
        for (int k = 0; k < K; k++)
            for (int64_t j = 0; j < C; j++)
                qt[j][k] = k < nr ? (smooth ? ome * q[k * C + j] + epsc : q[k * C + j]) : (T)0;
    }
    SFX(ce_transpose_in)(&xt[0][0], x, C, nr);
#pragma omp simd
    for (int k = 0; k < K; k++) {
        m[k] = xt[0][k];
        S[k] = 0;
        sd[k] = 0;
        dy[k] = k < nr && !soft ? x[k * C + y[k]] : (T)0;
    }
    for (int64_t j = 1; j < C; j++) {
#pragma omp simd
        for (int k = 0; k < K; k++) m[k] = xt[j][k] > m[k] ? xt[j][k] : m[k];
    }
    for (int64_t j = 0; j < C; j++) {
        const T wj = weighted ? w[j] : (T)1;
#pragma omp simd
        for (int k = 0; k < K; k++) {
            const T d = xt[j][k] - m[k];
            if (soft) {
                qa[k] += qt[j][k] * wj;
                qb[k] += qt[j][k] * wj * d;
            } else if (smooth) {
                sd[k] += wj * d;
            }
            const T e = VEXPN(d);
            S[k] += e;
            xt[j][k] = e;
        }
    }
    T coef[K], gy[K];
#pragma omp simd
    for (int k = 0; k < K; k++) {
        const T lse = VLOG(S[k]), d = dy[k] - m[k];
        T A;
        if (soft) {
            l[k] = qa[k] * lse - qb[k]; /* -sum_j q'_j w_j log p_j */
            A = qa[k];
        } else if (smooth) {
            l[k] = ome * wy[k] * (lse - d) + epsc * (cx->wtotal * lse - sd[k]);
            A = ome * wy[k] + epsc * cx->wtotal;
        } else {
            l[k] = wy[k] * (lse - d);
            A = wy[k];
        }
        l[k] = live[k] != 0 ? l[k] : (T)0;
        coef[k] = live[k] != 0 ? gs * A / S[k] : (T)0;
        gy[k] = live[k] != 0 && !soft ? gs * (smooth ? ome : (T)1) * wy[k] : (T)0;
    }
    double total = 0.0; /* dead lanes hold 0; a vector sum in a fixed order, not a K-add chain */
#pragma omp simd reduction(+:total)
    for (int k = 0; k < K; k++) total += (double)l[k];
    if (cx->loss)
        for (int k = 0; k < nr; k++) cx->loss[r0 + k] = l[k];
    if (wg) {
        T *g = cx->grad + r0 * C;
        for (int64_t j = 0; j < C; j++) {
            const T wj = weighted ? w[j] : (T)1, gej = smooth && !soft ? gs * epsc * wj : (T)0;
#pragma omp simd
            for (int k = 0; k < K; k++) {
                const T tgt = soft ? gs * qt[j][k] * wj : gej + (y[k] == j ? gy[k] : (T)0);
                xt[j][k] = live[k] != 0 ? xt[j][k] * coef[k] - tgt : (T)0;
            }
        }
        SFX(ce_transpose_out)(g, &xt[0][0], C, nr);
    }
    return total;
}

/* one sample, probability target q (the logits' layout) */
FL_INLINE double SFX(ce_prob_row)(const SFX(cectx) *cx, int64_t r, const int unit, const int smooth,
                                  const int weighted, const int wg)
{
    const int64_t C = cx->c, st = unit ? 1 : cx->s;
    const int64_t i = unit ? r : r / st, k = unit ? 0 : r - i * st;
    const T *x = cx->logits + i * C * st + k;
    const T *q = cx->prob + i * C * st + k;
    T *g = cx->grad ? cx->grad + i * C * st + k : NULL;
    const T m = SFX(ce_max)(x, C, st);
    T sd, Q, L;
    const T S = SFX(ce_exp_pass)(cx, x, g, q, st, m, &sd, &Q, &L, unit, smooth, 1, weighted, wg);
    const T lse = VLOG(S);
    const T l = Q * lse - L; /* -sum_j q'_j w_j log p_j */
    if (cx->loss) cx->loss[r] = l;
    if (wg) {
        const T coef = cx->gscale * Q / S, ome = (T)1 - cx->eps, epsc = cx->eps / (T)C;
        const T gs = cx->gscale;
#pragma omp simd
        for (int64_t j = 0; j < C; j++) {
            T qj = smooth ? ome * q[j * st] + epsc : q[j * st];
            g[j * st] = g[j * st] * coef - gs * qj * (weighted ? cx->weight[j] : (T)1);
        }
    }
    return (double)l;
}

#define FL_CE_ROWS(ROW, U, SM, W)                                                            \
    do {                                                                                     \
        if (cx->grad)                                                                        \
            for (int64_t r = lo; r < hi; r++) s += SFX(ROW)(cx, r, U, SM, W, 1);             \
        else                                                                                 \
            for (int64_t r = lo; r < hi; r++) s += SFX(ROW)(cx, r, U, SM, W, 0);             \
    } while (0)
#define FL_CE_BLOCKS(SOFT, SM, W)                                                            \
    do {                                                                                     \
        for (int64_t r = lo; r < hi; r += FL_CE_BLOCK) {                                     \
            const int64_t nr = hi - r < FL_CE_BLOCK ? hi - r : FL_CE_BLOCK;                   \
            s += cx->grad ? SFX(ce_small_block)(cx, r, nr, SOFT, SM, W, 1)                   \
                          : SFX(ce_small_block)(cx, r, nr, SOFT, SM, W, 0);                  \
        }                                                                                    \
    } while (0)
#define FL_CE_SMALL(SOFT)                                                                    \
    do {                                                                                     \
        const int sm = cx->eps != 0, w = cx->weight != NULL;                                 \
        if (sm) { if (w) FL_CE_BLOCKS(SOFT, 1, 1); else FL_CE_BLOCKS(SOFT, 1, 0); }          \
        else    { if (w) FL_CE_BLOCKS(SOFT, 0, 1); else FL_CE_BLOCKS(SOFT, 0, 0); }          \
    } while (0)
#define FL_CE_VARIANTS(ROW, U)                                                               \
    do {                                                                                     \
        const int sm = cx->eps != 0, w = cx->weight != NULL;                                 \
        if (sm) { if (w) FL_CE_ROWS(ROW, U, 1, 1); else FL_CE_ROWS(ROW, U, 1, 0); }          \
        else    { if (w) FL_CE_ROWS(ROW, U, 0, 1); else FL_CE_ROWS(ROW, U, 0, 0); }          \
    } while (0)

FL_CLONES static double SFX(ce_index_chunk)(const void *ctx, int64_t lo, int64_t hi)
{
    const SFX(cectx) *cx = (const SFX(cectx) *)ctx;
    double s = 0.0;
    if (cx->s != 1) FL_CE_VARIANTS(ce_index_row, 0);
    else if (cx->c <= 32) FL_CE_SMALL(0);
    else FL_CE_VARIANTS(ce_index_row, 1);
    return s;
}

FL_CLONES static double SFX(ce_prob_chunk)(const void *ctx, int64_t lo, int64_t hi)
{
    const SFX(cectx) *cx = (const SFX(cectx) *)ctx;
    double s = 0.0;
    if (cx->s != 1) FL_CE_VARIANTS(ce_prob_row, 0);
    else if (cx->c <= 32) FL_CE_SMALL(1);
    else FL_CE_VARIANTS(ce_prob_row, 1);
    return s;
}
#undef FL_CE_ROWS
#undef FL_CE_VARIANTS
#undef FL_CE_BLOCKS
#undef FL_CE_SMALL

/* samples per thread before going parallel: ~32k logits of work each */
static int64_t SFX(ce_grain)(int64_t c) { return c >= FL_GRAIN_STREAM ? 1 : FL_GRAIN_STREAM / c; }

static T SFX(ce_wtotal)(const T *weight, int64_t c)
{
    double w = 0;
    if (!weight) return (T)c;
    for (int64_t j = 0; j < c; j++) w += weight[j];
    return (T)w;
}

double SFX(fl_cross_entropy)(T *grad, T *loss, const T *logits, const int64_t *target, const T *weight,
                             int64_t n, int64_t c, int64_t s, int64_t ignore_index, T label_smoothing,
                             int reduction)
{
    const int64_t rows = n * s;
    double denom = 1.0;
    if (reduction == 1) { /* torch: sum of the targets' weights over the samples not ignored */
        denom = 0.0;
        if (weight) {
#pragma omp simd reduction(+:denom)
            for (int64_t r = 0; r < rows; r++)
                denom += target[r] != ignore_index ? (double)weight[target[r] != ignore_index ? target[r] : 0] : 0.0;
        } else {
            int64_t live = 0;
#pragma omp simd reduction(+:live)
            for (int64_t r = 0; r < rows; r++) live += target[r] != ignore_index;
            denom = (double)live;
        }
    }
    SFX(cectx) cx = {grad, reduction == 0 ? loss : NULL, logits, NULL, weight, target, c, s,
                     ignore_index, label_smoothing, SFX(ce_wtotal)(weight, c),
                     (T)(reduction == 1 ? 1.0 / denom : 1.0), rows};
    const double total = fl_parallel_sum(rows, SFX(ce_grain)(c), SFX(ce_index_chunk), &cx);
    return reduction == 1 ? total / denom : total;
}

double SFX(fl_cross_entropy_prob)(T *grad, T *loss, const T *logits, const T *target, const T *weight,
                                  int64_t n, int64_t c, int64_t s, T label_smoothing, int reduction)
{
    const int64_t rows = n * s;
    const double denom = reduction == 1 ? (double)rows : 1.0; /* torch: number of samples */
    SFX(cectx) cx = {grad, reduction == 0 ? loss : NULL, logits, target, weight, NULL, c, s, -1,
                     label_smoothing, SFX(ce_wtotal)(weight, c), (T)(1.0 / denom), rows};
    const double total = fl_parallel_sum(rows, SFX(ce_grain)(c), SFX(ce_prob_chunk), &cx);
    return reduction == 1 ? total / denom : total;
}

/* ======================================================== elementwise binary losses
 * x[n] (probabilities, logits or scores), t[n] (targets), weight[n] (optional, already
 * broadcast by the caller), aux[period] (optional, indexed by position % period: BCE's
 * pos_weight along the last axis).  Each loss is prep + elem as in regression_tmpl.h. */
typedef struct { T c0, c1; } SFX(bk);
typedef struct {
    T *grad, *loss;
    const T *x, *t, *weight, *aux;
    int64_t period;
    T gscale;
    SFX(bk) k;
} SFX(binctx);

/* binary cross-entropy on probabilities (torch.nn.functional.binary_cross_entropy):
 *   l = -(t log x + (1 - t) log(1 - x)), each log clamped to >= -100 (so x = 0 or 1 gives a
 *   finite loss, as torch); dl/dx = (x - t) / max(x (1 - x), 1e-12) (torch's backward; its
 *   1e-12 is a float constant even in double, so is ours: 1e-12f). */
FL_INLINE SFX(clg) SFX(bce_elem)(T x, T t, T a, const SFX(bk) *k)
{
    (void)a; (void)k;
    T lx = VLOG(x), l1x = VLOG1P(-x);
    lx = lx < (T)-100 ? (T)-100 : lx; /* NaN stays NaN, as std::max(log, -100) */
    l1x = l1x < (T)-100 ? (T)-100 : l1x;
    T den = x * ((T)1 - x);
    den = den < (T)1e-12f ? (T)1e-12f : den;
    return (SFX(clg)){(t - (T)1) * l1x - t * lx, (x - t) / den};
}

/* BCE with logits (torch.nn.functional.binary_cross_entropy_with_logits), stable for any
 * finite x: with lw = 1 + (pw - 1) t,
 *   l = (1 - t) x + lw (log1p(exp(-|x|)) + max(-x, 0))      (never exp of a positive number)
 *   dl/dx = (pw t + 1 - t) sigmoid(x) - pw t,  sigmoid(x) = exp(min(x,0)) / (1 + exp(-|x|)). */
FL_INLINE SFX(clg) SFX(bce_logits_elem)(T x, T t, T pw, const SFX(bk) *k)
{
    (void)k;
    T ax = x < 0 ? -x : x;
    T e = VEXP(-ax);
    T sp = VLOG1P(e) + (x < 0 ? -x : (T)0);
    T lw = (T)1 + (pw - (T)1) * t;
    T sig = (x < 0 ? e : (T)1) / ((T)1 + e);
    T pt = pw * t;
    return (SFX(clg)){((T)1 - t) * x + lw * sp, (pt + (T)1 - t) * sig - pt};
}

/* hinge: l = relu(margin - t s), dl/ds = -t where margin - t s > 0, else 0 (0 at the kink,
 * as torch's relu backward).  relu as torch computes it: NaN stays NaN. */
FL_INLINE SFX(clg) SFX(hinge_elem)(T s, T t, T a, const SFX(bk) *k)
{
    (void)a;
    T z = k->c0 - t * s;
    return (SFX(clg)){z < 0 ? (T)0 : z, z > 0 ? -t : (T)0};
}

/* squared hinge: l = max(0, margin - t s)^2, dl/ds = -2 t max(0, margin - t s) */
FL_INLINE SFX(clg) SFX(squared_hinge_elem)(T s, T t, T a, const SFX(bk) *k)
{
    (void)a;
    T z = k->c0 - t * s;
    T h = z < 0 ? (T)0 : z;
    return (SFX(clg)){h * h, (T)-2 * t * h};
}

#define FL_BIN_RANGE(NAME, WG, WL, WW, WA)                                                   \
    do {                                                                                     \
        int64_t i = lo;                                                                      \
        while (i < hi) {                                                                     \
            const int64_t j0 = WA ? i % period : 0;                                          \
            const int64_t len = WA ? (period - j0 < hi - i ? period - j0 : hi - i) : hi - i; \
            const T *ap = WA ? aux + j0 - i : NULL;                                          \
            _Pragma("omp simd reduction(+:s)")                                               \
            for (int64_t q = i; q < i + len; q++) {                                          \
                SFX(clg) r = SFX(NAME##_elem)(x[q], t[q], WA ? ap[q] : (T)1, &k);            \
                T wq = WW ? weight[q] : (T)1;                                                \
                T l = WW ? r.l * wq : r.l;                                                   \
                if (WL) loss[q] = l;                                                         \
                if (WG) grad[q] = (WW ? r.g * wq : r.g) * gs;                                \
                s += (double)l;                                                              \
            }                                                                                \
            i += len;                                                                        \
        }                                                                                    \
    } while (0)

#define FL_BIN_W(NAME, WG, WL)                                                               \
    do {                                                                                     \
        if (weight) { if (aux) FL_BIN_RANGE(NAME, WG, WL, 1, 1); else FL_BIN_RANGE(NAME, WG, WL, 1, 0); } \
        else        { if (aux) FL_BIN_RANGE(NAME, WG, WL, 0, 1); else FL_BIN_RANGE(NAME, WG, WL, 0, 0); } \
    } while (0)

#define FL_BIN_LOSS(NAME)                                                                    \
    FL_CLONES static double SFX(NAME##_chunk)(const void *ctx, int64_t lo, int64_t hi)       \
    {                                                                                        \
        const SFX(binctx) *c = (const SFX(binctx) *)ctx;                                     \
        T *grad = c->grad, *loss = c->loss;                                                  \
        const T *x = c->x, *t = c->t, *weight = c->weight, *aux = c->aux;                    \
        const int64_t period = c->period;                                                    \
        const T gs = c->gscale;                                                              \
        const SFX(bk) k = c->k;                                                              \
        double s = 0.0;                                                                      \
        if (grad && loss) FL_BIN_W(NAME, 1, 1);                                              \
        else if (grad) FL_BIN_W(NAME, 1, 0);                                                 \
        else if (loss) FL_BIN_W(NAME, 0, 1);                                                 \
        else FL_BIN_W(NAME, 0, 0);                                                           \
        return s;                                                                            \
    }

FL_BIN_LOSS(bce)
FL_BIN_LOSS(bce_logits)
FL_BIN_LOSS(hinge)
FL_BIN_LOSS(squared_hinge)
#undef FL_BIN_RANGE
#undef FL_BIN_W
#undef FL_BIN_LOSS

static double SFX(bin_run)(fl_chunk_fn fn, T *grad, T *loss, const T *x, const T *t, const T *weight,
                           const T *aux, int64_t n, int64_t period, T c0, int reduction)
{
    SFX(binctx) c = {grad, reduction == 0 ? loss : NULL, x, t, weight, aux, period > 0 ? period : 1,
                     (T)(reduction == 1 && n > 0 ? 1.0 / (double)n : 1.0), {c0, 0}};
    const double total = fl_parallel_sum(n, FL_GRAIN_STREAM / 4, fn, &c);
    return reduction == 1 ? total / (double)n : total;
}

double SFX(fl_binary_cross_entropy)(T *grad, T *loss, const T *prob, const T *target, const T *weight,
                                    int64_t n, int reduction)
{
    return SFX(bin_run)(SFX(bce_chunk), grad, loss, prob, target, weight, NULL, n, 1, 0, reduction);
}

double SFX(fl_binary_cross_entropy_with_logits)(T *grad, T *loss, const T *logits, const T *target,
                                                const T *weight, const T *pos_weight, int64_t n,
                                                int64_t c, int reduction)
{
    return SFX(bin_run)(SFX(bce_logits_chunk), grad, loss, logits, target, weight, pos_weight, n, c, 0,
                        reduction);
}

double SFX(fl_hinge)(T *grad, T *loss, const T *scores, const T *target, const T *weight, int64_t n,
                     T margin, int reduction)
{
    return SFX(bin_run)(SFX(hinge_chunk), grad, loss, scores, target, weight, NULL, n, 1, margin, reduction);
}

double SFX(fl_squared_hinge)(T *grad, T *loss, const T *scores, const T *target, const T *weight,
                             int64_t n, T margin, int reduction)
{
    return SFX(bin_run)(SFX(squared_hinge_chunk), grad, loss, scores, target, weight, NULL, n, 1, margin,
                        reduction);
}

/* ============================================================= multi-class margin
 * torch.nn.functional.multi_margin_loss: per sample i with target y,
 *   l_i = w_y / c * sum_{j != y} max(0, margin - x_y + x_j)^p,  p in {1, 2}
 *   dl/dx_j = w_y / c * p z_j^(p-1) [z_j > 0] (j != y),  dl/dx_y = -sum_{j != y} dl/dx_j. */
typedef struct {
    T *grad, *loss;
    const T *x, *weight;
    const int64_t *target;
    int64_t c;
    int p;
    T margin, gscale;
} SFX(mmctx);

FL_INLINE double SFX(mm_row)(const SFX(mmctx) *m, int64_t i, const int p2)
{
    const int64_t C = m->c;
    const T *x = m->x + i * C;
    T *g = m->grad ? m->grad + i * C : NULL;
    const int64_t y = m->target[i];
    const T xy = x[y], wy = m->weight ? m->weight[y] : (T)1, f = wy / (T)C;
    const T gf = f * m->gscale;
    T s = 0, gsum = 0;
#pragma omp simd reduction(+:s, gsum)
    for (int64_t j = 0; j < C; j++) {
        T z = m->margin - xy + x[j];
        T h = (z > 0 && j != y) ? z : (T)0;
        s += p2 ? h * h : h;
        T gj = (z > 0 && j != y) ? (p2 ? (T)2 * h : (T)1) * gf : (T)0;
        if (g) g[j] = gj;
        gsum += gj;
    }
    if (g) g[y] = -gsum;
    const T l = s * f;
    if (m->loss) m->loss[i] = l;
    return (double)l;
}

/* Few classes (c <= 32): FL_CE_BLOCK rows at a time, transposed as in ce_small_block (every
 * step a vector over the rows; a row-at-a-time loop over 7 classes runs in its scalar
 * remainder).  All of the block's logits are read before its gradient is written. */
FL_INLINE double SFX(mm_block)(const SFX(mmctx) *m, int64_t r0, int64_t nr, const int p2)
{
    enum { K = FL_CE_BLOCK };
    const int64_t C = m->c;
    const T *x = m->x + r0 * C;
    T xt[32][K], xy[K], f[K], gf[K], s[K], gsum[K], l[K];
    int64_t y[K];
    for (int k = 0; k < K; k++) {
        y[k] = k < nr ? m->target[r0 + k] : 0;
        f[k] = k < nr ? (m->weight ? m->weight[y[k]] : (T)1) / (T)C : (T)0;
        gf[k] = f[k] * m->gscale;
        xy[k] = k < nr ? x[k * C + y[k]] : (T)0;
        s[k] = 0;
        gsum[k] = 0;
    }
    SFX(ce_transpose_in)(&xt[0][0], x, C, nr);
    for (int64_t j = 0; j < C; j++) {
#pragma omp simd
        for (int k = 0; k < K; k++) {
            const T z = m->margin - xy[k] + xt[j][k];
            const int on = z > 0 && j != y[k];
            const T h = on ? z : (T)0;
            s[k] += p2 ? h * h : h;
            const T gj = on ? (p2 ? (T)2 * h : (T)1) * gf[k] : (T)0;
            gsum[k] += gj;
            xt[j][k] = gj;
        }
    }
    double total = 0.0; /* f = 0 in the lanes past the block's rows */
#pragma omp simd reduction(+:total)
    for (int k = 0; k < K; k++) {
        l[k] = s[k] * f[k];
        total += (double)l[k];
    }
    if (m->loss)
        for (int k = 0; k < nr; k++) m->loss[r0 + k] = l[k];
    if (m->grad) {
        T *g = m->grad + r0 * C;
        for (int k = 0; k < nr; k++) xt[y[k]][k] = -gsum[k];
        SFX(ce_transpose_out)(g, &xt[0][0], C, nr);
    }
    return total;
}

FL_CLONES static double SFX(mm_chunk)(const void *ctx, int64_t lo, int64_t hi)
{
    const SFX(mmctx) *m = (const SFX(mmctx) *)ctx;
    double s = 0.0;
    if (m->c <= 32) {
        for (int64_t r = lo; r < hi; r += FL_CE_BLOCK) {
            const int64_t nr = hi - r < FL_CE_BLOCK ? hi - r : FL_CE_BLOCK;
            s += m->p == 2 ? SFX(mm_block)(m, r, nr, 1) : SFX(mm_block)(m, r, nr, 0);
        }
    } else if (m->p == 2) {
        for (int64_t i = lo; i < hi; i++) s += SFX(mm_row)(m, i, 1);
    } else {
        for (int64_t i = lo; i < hi; i++) s += SFX(mm_row)(m, i, 0);
    }
    return s;
}

double SFX(fl_multi_margin)(T *grad, T *loss, const T *logits, const int64_t *target, const T *weight,
                            int64_t n, int64_t c, int p, T margin, int reduction)
{
    SFX(mmctx) m = {grad, reduction == 0 ? loss : NULL, logits, weight, target, c, p, margin,
                    (T)(reduction == 1 && n > 0 ? 1.0 / (double)n : 1.0)};
    const double total = fl_parallel_sum(n, SFX(ce_grain)(c), SFX(mm_chunk), &m);
    return reduction == 1 ? total / (double)n : total;
}

/* ========================================================== validation helpers
 * Called by the validation layer before any kernel runs (kernels never check). */
/* A vectorized count first (no early exit, so the loop vectorizes); the scalar search for
 * the position runs only when something is wrong. */
int64_t SFX(fl_first_outside)(const T *x, int64_t n, T lo, T hi)
{
    int64_t bad = 0;
#pragma omp simd reduction(+:bad)
    for (int64_t i = 0; i < n; i++) bad += !(x[i] >= lo && x[i] <= hi); /* NaN is outside */
    if (!bad) return -1;
    for (int64_t i = 0; i < n; i++)
        if (!(x[i] >= lo && x[i] <= hi)) return i;
    return -1;
}

int64_t SFX(fl_first_not_sign)(const T *x, int64_t n)
{
    int64_t bad = 0;
#pragma omp simd reduction(+:bad)
    for (int64_t i = 0; i < n; i++) bad += (x[i] != (T)1) & (x[i] != (T)-1);
    if (!bad) return -1;
    for (int64_t i = 0; i < n; i++)
        if (x[i] != (T)1 && x[i] != (T)-1) return i;
    return -1;
}
