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
        s += e;
        T wj = weighted ? w[j] : (T)1;
        if (soft) {
            T qj = smooth ? ome * q[j * S1] + epsc : q[j * S1];
            a += qj * wj;
            b += qj * wj * d;
        } else if (smooth) {
            d2 += wj * d;
        }
        if (wg) g[j * S1] = e; /* after q_j is read: g may be q (out=target) */
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
/* The transposition, xt[j][k] = x[k c + j] for the block's rows (0 in the lanes past nr), and
 * back.  FL_TR_L = 8 rows at a time, with c a compile-time constant (a switch over c: every
 * index is then a constant and the loops unroll; with c at run time the same shuffles ran at
 * half the speed), by GCC's vector extension __builtin_shuffle on 8-element vectors.
 *  - c = 5..32 (tr_*_t8), float and double: 8x8 transposes, one per 8 classes, by the three
 *    interleave stages (float: unpcklps / unpckhps, shufps, 128-bit halves); 24 shuffles per
 *    8 rows and 8 classes, the shuffles of classes past c dead code.  Session 9
 *    (bench/NOTES.md): against the permute tables below, float 256x10 cross-entropy 2.15 ->
 *    1.71 us, multi_margin 1000x7 3.92 -> 3.00 us; c = 17..32 and double (plain copies
 *    before) 20-50% less time.
 *  - c = 3 (tr_*_perm), float: two-source permutes; the 8 rows of c classes are c vectors, xt's row j
 *    over them is element e = k c + j (k < 8), in vector e / 8: each pair of vectors is one
 *    table of 16 elements, permuted by e mod 16, the pair e / 16 picked per lane by a mask.
 *  - c = 1, 2, 4: plain copies with a constant c (GCC vectorizes them itself).
 * Partial groups of rows, c > 32 and the other double cases: plain copies. */
#define FL_CE_BLOCK 64
#define FL_TR_L 8
typedef T SFX(trv) __attribute__((vector_size(FL_TR_L * sizeof(T))));
typedef TU SFX(tri) __attribute__((vector_size(FL_TR_L * sizeof(T))));

/* lane i: element idx[i] of table pair[i], the tables being v[2a], v[2a + 1] (v[n]: v[n - 1]) */
#define FL_TR_PICK(out, v, n, idx, pair)                                                      \
    do {                                                                                     \
        out = __builtin_shuffle(v[0], v[(n) > 1 ? 1 : 0], idx);                              \
        _Pragma("GCC unroll 16")                                                             \
        for (int64_t a_ = 1; 2 * a_ < (n); a_++) {                                           \
            const SFX(trv) p_ = __builtin_shuffle(v[2 * a_], v[2 * a_ + 1 < (n) ? 2 * a_ + 1 : 2 * a_], idx); \
            const SFX(tri) m_ = (SFX(tri))((pair) == (TU)a_);                                \
            out = (SFX(trv))(((SFX(tri))p_ & m_) | ((SFX(tri))out & ~m_));                   \
        }                                                                                    \
    } while (0)

/* rows [0, nr) of the block, nr a multiple of FL_TR_L; C a constant after inlining */
FL_INLINE void SFX(tr_in_perm)(T *xt, const T *x, const int64_t C, int64_t nr)
{
    SFX(tri) lane;
    for (int i = 0; i < FL_TR_L; i++) lane[i] = (TU)i;
    for (int64_t k0 = 0; k0 < nr; k0 += FL_TR_L) {
        SFX(trv) v[16];
        for (int64_t s = 0; s < C; s++) memcpy(&v[s], x + k0 * C + s * FL_TR_L, sizeof v[0]);
        _Pragma("GCC unroll 16")
        for (int64_t j = 0; j < C; j++) {
            const SFX(tri) e = lane * (TU)C + (TU)j;
            SFX(trv) col;
            FL_TR_PICK(col, v, C, e % (TU)(2 * FL_TR_L), e / (TU)(2 * FL_TR_L));
            memcpy(xt + j * FL_CE_BLOCK + k0, &col, sizeof col);
        }
    }
}

FL_INLINE void SFX(tr_out_perm)(T *g, const T *xt, const int64_t C, int64_t nr)
{
    SFX(tri) lane;
    for (int i = 0; i < FL_TR_L; i++) lane[i] = (TU)i;
    for (int64_t k0 = 0; k0 < nr; k0 += FL_TR_L) {
        SFX(trv) v[16];
        for (int64_t j = 0; j < C; j++) memcpy(&v[j], xt + j * FL_CE_BLOCK + k0, sizeof v[0]);
        _Pragma("GCC unroll 16")
        for (int64_t s = 0; s < C; s++) {
            const SFX(tri) e = lane + (TU)(s * FL_TR_L), k = e / (TU)C, j = e % (TU)C;
            SFX(trv) out;
            FL_TR_PICK(out, v, C, (j & 1) * (TU)FL_TR_L + k, j >> 1);
            memcpy(g + k0 * C + s * FL_TR_L, &out, sizeof out);
        }
    }
}

/* 8x8 transposes (c = 5..32): the 8 rows' classes 8b..8b+7 in, 8 class vectors out (or back).
 * In: row k's block b is the 8 floats from k c + 8 b, which reads past the row into the
 * group's next one (harmless: c >= 4 nb keeps rows 0..6 inside the group), except the last
 * row's last block, which would leave the group: it is loaded as the group's last 8 floats
 * and shifted down.  Out: each row's blocks are stored whole, in row order, so what one
 * spills into the next row is overwritten by that row's own stores; the group's last 8
 * floats are stored last, completed from the vector that wrote their first lanes. */
#define FL_T8_STAGES(r, col)                                                                  \
    do {                                                                                     \
        const SFX(tri) lo_ = {0, 8, 1, 9, 4, 12, 5, 13}, hi_ = {2, 10, 3, 11, 6, 14, 7, 15};  \
        const SFX(tri) ql_ = {0, 1, 8, 9, 4, 5, 12, 13}, qh_ = {2, 3, 10, 11, 6, 7, 14, 15};  \
        const SFX(tri) hl_ = {0, 1, 2, 3, 8, 9, 10, 11}, hh_ = {4, 5, 6, 7, 12, 13, 14, 15};  \
        SFX(trv) t_[8], u_[8];                                                               \
        for (int p_ = 0; p_ < 4; p_++) {                                                     \
            t_[2 * p_] = __builtin_shuffle(r[2 * p_], r[2 * p_ + 1], lo_);                   \
            t_[2 * p_ + 1] = __builtin_shuffle(r[2 * p_], r[2 * p_ + 1], hi_);               \
        }                                                                                    \
        for (int h_ = 0; h_ < 2; h_++) {                                                     \
            u_[4 * h_ + 0] = __builtin_shuffle(t_[4 * h_ + 0], t_[4 * h_ + 2], ql_);         \
            u_[4 * h_ + 1] = __builtin_shuffle(t_[4 * h_ + 0], t_[4 * h_ + 2], qh_);         \
            u_[4 * h_ + 2] = __builtin_shuffle(t_[4 * h_ + 1], t_[4 * h_ + 3], ql_);         \
            u_[4 * h_ + 3] = __builtin_shuffle(t_[4 * h_ + 1], t_[4 * h_ + 3], qh_);         \
        }                                                                                    \
        for (int q_ = 0; q_ < 4; q_++) {                                                     \
            col[q_] = __builtin_shuffle(u_[q_], u_[q_ + 4], hl_);                            \
            col[q_ + 4] = __builtin_shuffle(u_[q_], u_[q_ + 4], hh_);                        \
        }                                                                                    \
    } while (0)

FL_INLINE void SFX(tr_in_t8)(T *xt, const T *x, const int64_t C, int64_t nr)
{
    const int64_t nb = (C + 7) / 8, sh = 8 * nb - C; /* the last block of the last row: shift */
    SFX(tri) shi;
    for (int i = 0; i < FL_TR_L; i++) shi[i] = (TU)(i + sh < 8 ? i + sh : 7);
    for (int64_t k0 = 0; k0 < nr; k0 += FL_TR_L) {
        const T *xg = x + k0 * C;
        _Pragma("GCC unroll 4")
        for (int64_t b = 0; b < nb; b++) {
            SFX(trv) r[8], col[8];
            /* unrolled, each row one vector load: as a loop GCC copied the rows to the stack in
             * 16-byte halves and read them back whole, a failed store forwarding per row */
            _Pragma("GCC unroll 8")
            for (int k = 0; k < 7; k++) memcpy(&r[k], xg + k * C + 8 * b, sizeof r[0]);
            if (b < nb - 1) memcpy(&r[7], xg + 7 * C + 8 * b, sizeof r[0]);
            else {
                memcpy(&r[7], xg + 8 * C - 8, sizeof r[0]);
                r[7] = __builtin_shuffle(r[7], shi);
            }
            FL_T8_STAGES(r, col);
            for (int j = 0; j < 8; j++)
                if (8 * b + j < C) memcpy(xt + (8 * b + j) * FL_CE_BLOCK + k0, &col[j], sizeof col[0]);
        }
    }
}

FL_INLINE void SFX(tr_out_t8)(T *g, const T *xt, const int64_t C, int64_t nr)
{
    const int64_t nb = (C + 7) / 8;
    /* the group's last 8 floats, stored last (the group's only store that must not leave it):
     * those before row 7's last block come from the vector that stored them before, row 6's
     * last block (one block a row) or row 7's next-to-last */
    const int64_t pa = nb == 1 ? 6 * C : 7 * C + 8 * (nb - 2), pb = 7 * C + 8 * (nb - 1);
    SFX(tri) fin;
    for (int i = 0; i < FL_TR_L; i++) {
        const int64_t pos = 8 * C - 8 + i;
        fin[i] = pos < pb ? (TU)(pos - pa) : (TU)(8 + pos - pb);
    }
    for (int64_t k0 = 0; k0 < nr; k0 += FL_TR_L) {
        T *gg = g + k0 * C;
        SFX(trv) rows[4][8];
        _Pragma("GCC unroll 4")
        for (int64_t b = 0; b < nb; b++) {
            SFX(trv) cl[8];
            for (int j = 0; j < 8; j++) {
                if (8 * b + j < C) memcpy(&cl[j], xt + (8 * b + j) * FL_CE_BLOCK + k0, sizeof cl[0]);
                else cl[j] = (SFX(trv)){0};
            }
            FL_T8_STAGES(cl, rows[b]);
        }
        _Pragma("GCC unroll 8") /* as tr_in_t8's loads: each row's store one vector store */
        for (int k = 0; k < 7; k++)
            for (int64_t b = 0; b < nb; b++) memcpy(gg + k * C + 8 * b, &rows[b][k], sizeof rows[0][0]);
        for (int64_t b = 0; b < nb - 1; b++) memcpy(gg + 7 * C + 8 * b, &rows[b][7], sizeof rows[0][0]);
        const SFX(trv) last = __builtin_shuffle(nb == 1 ? rows[0][6] : rows[nb - 2][7], rows[nb - 1][7], fin);
        memcpy(gg + 8 * C - 8, &last, sizeof last);
    }
}

FL_INLINE void SFX(tr_in_copy)(T *xt, const T *x, const int64_t C, int64_t k0, int64_t nr)
{
    for (int64_t k = k0; k < nr; k++)
        for (int64_t j = 0; j < C; j++) xt[j * FL_CE_BLOCK + k] = x[k * C + j];
}

FL_INLINE void SFX(tr_out_copy)(T *g, const T *xt, const int64_t C, int64_t k0, int64_t nr)
{
    for (int64_t k = k0; k < nr; k++)
        for (int64_t j = 0; j < C; j++) g[k * C + j] = xt[j * FL_CE_BLOCK + k];
}

/* the switch over c: copies for 1, 2, 4, 8, 16, permutes for the rest */
#define FL_TR_CASES(DIR, A, B)                                                               \
    case 1: SFX(tr_##DIR##_copy)(A, B, 1, 0, full); break;                                   \
    case 2: SFX(tr_##DIR##_copy)(A, B, 2, 0, full); break;                                   \
    case 3: SFX(tr_##DIR##_perm)(A, B, 3, full); break;                                      \
    case 4: SFX(tr_##DIR##_copy)(A, B, 4, 0, full); break;                                   \
    case 5: SFX(tr_##DIR##_t8)(A, B, 5, full); break;                                        \
    case 6: SFX(tr_##DIR##_t8)(A, B, 6, full); break;                                        \
    case 7: SFX(tr_##DIR##_t8)(A, B, 7, full); break;                                        \
    case 8: SFX(tr_##DIR##_t8)(A, B, 8, full); break;                                        \
    case 9: SFX(tr_##DIR##_t8)(A, B, 9, full); break;                                        \
    case 10: SFX(tr_##DIR##_t8)(A, B, 10, full); break;                                      \
    case 11: SFX(tr_##DIR##_t8)(A, B, 11, full); break;                                      \
    case 12: SFX(tr_##DIR##_t8)(A, B, 12, full); break;                                      \
    case 13: SFX(tr_##DIR##_t8)(A, B, 13, full); break;                                      \
    case 14: SFX(tr_##DIR##_t8)(A, B, 14, full); break;                                      \
    case 15: SFX(tr_##DIR##_t8)(A, B, 15, full); break;                                      \
    case 16: SFX(tr_##DIR##_t8)(A, B, 16, full); break;                                      \
    case 17: SFX(tr_##DIR##_t8)(A, B, 17, full); break;                                      \
    case 18: SFX(tr_##DIR##_t8)(A, B, 18, full); break;                                      \
    case 19: SFX(tr_##DIR##_t8)(A, B, 19, full); break;                                      \
    case 20: SFX(tr_##DIR##_t8)(A, B, 20, full); break;                                      \
    case 21: SFX(tr_##DIR##_t8)(A, B, 21, full); break;                                      \
    case 22: SFX(tr_##DIR##_t8)(A, B, 22, full); break;                                      \
    case 23: SFX(tr_##DIR##_t8)(A, B, 23, full); break;                                      \
    case 24: SFX(tr_##DIR##_t8)(A, B, 24, full); break;                                      \
    case 25: SFX(tr_##DIR##_t8)(A, B, 25, full); break;                                      \
    case 26: SFX(tr_##DIR##_t8)(A, B, 26, full); break;                                      \
    case 27: SFX(tr_##DIR##_t8)(A, B, 27, full); break;                                      \
    case 28: SFX(tr_##DIR##_t8)(A, B, 28, full); break;                                      \
    case 29: SFX(tr_##DIR##_t8)(A, B, 29, full); break;                                      \
    case 30: SFX(tr_##DIR##_t8)(A, B, 30, full); break;                                      \
    case 31: SFX(tr_##DIR##_t8)(A, B, 31, full); break;                                      \
    case 32: SFX(tr_##DIR##_t8)(A, B, 32, full); break;                                      \
    default: full = 0;

/* xt[j][k] = x[k c + j], k < nr; 0 for nr <= k < FL_CE_BLOCK */
FL_CLONES __attribute__((noinline)) static void SFX(ce_transpose_in)(T *xt, const T *x, int64_t C, int64_t nr)
{
    int64_t full = sizeof(T) == 4 || (C >= 5 && C <= 32) ? nr / FL_TR_L * FL_TR_L : 0;
    if (full) switch (C) { FL_TR_CASES(in, xt, x) }
    SFX(tr_in_copy)(xt, x, C, full, nr);
    for (int64_t j = 0; j < C; j++)
        for (int64_t k = nr; k < FL_CE_BLOCK; k++) xt[j * FL_CE_BLOCK + k] = 0;
}

/* g[k c + j] = xt[j][k], k < nr */
FL_CLONES __attribute__((noinline)) static void SFX(ce_transpose_out)(T *g, const T *xt, int64_t C, int64_t nr)
{
    int64_t full = sizeof(T) == 4 || (C >= 5 && C <= 32) ? nr / FL_TR_L * FL_TR_L : 0;
    if (full) switch (C) { FL_TR_CASES(out, g, xt) }
    SFX(tr_out_copy)(g, xt, C, full, nr);
}
#undef FL_TR_CASES

FL_INLINE void SFX(ce_small_block)(const SFX(cectx) *cx, int64_t r0, int64_t nr, const int soft,
                                     const int smooth, const int weighted, const int wg, double *acc)
{
    enum { K = FL_CE_BLOCK };
    const int64_t C = cx->c;
    const T *x = cx->logits + r0 * C;
    const T *w = cx->weight;
    T xt[32][K], qt[soft ? 32 : 1][K], m[K], S[K], sd[K], dy[K], wy[K], l[K], live[K];
    T qa[K], qb[K]; /* probability targets: sum_j q'_j w_j and sum_j q'_j w_j (x_j - m) */
    int32_t y[K];   /* class-index targets: the class, -1 for an ignored row or a lane past nr */
    const T ome = (T)1 - cx->eps, epsc = cx->eps / (T)C, gs = cx->gscale;
    /* per row: its target as a 32-bit lane (c <= 32), so that x_y is picked in the max
     * loop below (a compare and a blend per vector) rather than by a scalar load per row */
    if (!soft) {
        const int64_t *t = cx->target + r0, ign = cx->ignore_index;
#pragma omp simd
        for (int k = 0; k < K; k++) {
            const int64_t tk = k < nr ? t[k] : ign;
            y[k] = tk != ign ? (int32_t)tk : -1;
        }
    }
#pragma omp simd
    for (int k = 0; k < K; k++) {
        live[k] = soft ? k < nr : y[k] >= 0;
        dy[k] = 0;
        wy[k] = 1;
    }
    if (weighted && !soft)
        for (int k = 0; k < K; k++) wy[k] = y[k] >= 0 ? w[y[k]] : (T)1;
    if (soft) { /* q'_j = (1 - eps) q_j + eps / C, transposed like the logits */
        SFX(ce_transpose_in)(&qt[0][0], cx->prob + r0 * C, C, nr);
        if (smooth)
            for (int64_t j = 0; j < C; j++) {
#pragma omp simd
                for (int k = 0; k < K; k++) qt[j][k] = k < nr ? ome * qt[j][k] + epsc : (T)0;
            }
    }
    SFX(ce_transpose_in)(&xt[0][0], x, C, nr);
#pragma omp simd
    for (int k = 0; k < K; k++) {
        m[k] = xt[0][k];
        S[k] = 0;
        sd[k] = 0;
        qa[k] = 0;
        qb[k] = 0;
    }
    for (int64_t j = 0; j < C; j++) {
#pragma omp simd
        for (int k = 0; k < K; k++) {
            m[k] = xt[j][k] > m[k] ? xt[j][k] : m[k];
            if (!soft) dy[k] = y[k] == (int32_t)j ? xt[j][k] : dy[k];
        }
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
    /* the loss into the chunk's per-lane sums (dead lanes hold 0), added across lanes once per
     * chunk: a horizontal sum per block was a chain of 16 scalar adds (session 10, 256x10
     * 1.60 -> 1.55 us; multi_margin 1000x7 2.72 -> 2.56 us) */
#pragma omp simd
    for (int k = 0; k < K; k++) acc[k] += (double)l[k];
    if (cx->loss)
        for (int k = 0; k < nr; k++) cx->loss[r0 + k] = l[k];
    if (wg) {
        T *g = cx->grad + r0 * C;
        for (int64_t j = 0; j < C; j++) {
            const T wj = weighted ? w[j] : (T)1, gej = smooth && !soft ? gs * epsc * wj : (T)0;
#pragma omp simd
            for (int k = 0; k < K; k++) {
                const T tgt = soft ? gs * qt[j][k] * wj : gej + (y[k] == (int32_t)j ? gy[k] : (T)0);
                xt[j][k] = live[k] != 0 ? xt[j][k] * coef[k] - tgt : (T)0;
            }
        }
        SFX(ce_transpose_out)(g, &xt[0][0], C, nr);
    }
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
    /* out=target: the exp pass cannot park e_j in g (it is q_j, still needed below); the
     * gradient loop then takes the exp again (this case only) */
    const int keep_q = wg && (const T *)cx->grad == cx->prob;
    T sd, Q, L;
    const T S = keep_q ? SFX(ce_exp_pass)(cx, x, g, q, st, m, &sd, &Q, &L, unit, smooth, 1, weighted, 0)
                       : SFX(ce_exp_pass)(cx, x, g, q, st, m, &sd, &Q, &L, unit, smooth, 1, weighted, wg);
    const T lse = VLOG(S);
    const T l = Q * lse - L; /* -sum_j q'_j w_j log p_j */
    if (cx->loss) cx->loss[r] = l;
    if (wg) {
        const T coef = cx->gscale * Q / S, ome = (T)1 - cx->eps, epsc = cx->eps / (T)C;
        const T gs = cx->gscale;
#pragma omp simd
        for (int64_t j = 0; j < C; j++) {
            T qj = smooth ? ome * q[j * st] + epsc : q[j * st];
            T e = keep_q ? VEXPN(x[j * st] - m) : g[j * st];
            g[j * st] = e * coef - gs * qj * (weighted ? cx->weight[j] : (T)1);
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
        double acc_[FL_CE_BLOCK];                                                            \
        for (int k_ = 0; k_ < FL_CE_BLOCK; k_++) acc_[k_] = 0; /* not = {0}: csrc/build_cffi.py */   \
        for (int64_t r = lo; r < hi; r += FL_CE_BLOCK) {                                     \
            const int64_t nr = hi - r < FL_CE_BLOCK ? hi - r : FL_CE_BLOCK;                   \
            if (cx->grad) SFX(ce_small_block)(cx, r, nr, SOFT, SM, W, 1, acc_);              \
            else SFX(ce_small_block)(cx, r, nr, SOFT, SM, W, 0, acc_);                       \
        }                                                                                    \
        _Pragma("omp simd reduction(+:s)")                                                   \
        for (int k_ = 0; k_ < FL_CE_BLOCK; k_++) s += acc_[k_];                              \
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

/* samples per thread before going parallel: ~FL_GRAIN_LOGITS logits of work each, and at
 * least the 16 rows fl_parallel_sum hands out at a time (else the second thread gets none) */
static int64_t SFX(ce_grain)(int64_t c) { return c >= FL_GRAIN_LOGITS / 16 || c < 1 ? 16 : FL_GRAIN_LOGITS / c; }

static T SFX(ce_wtotal)(const T *weight, int64_t c)
{
    double w = 0;
    if (!weight) return (T)c;
    for (int64_t j = 0; j < c; j++) w += weight[j];
    return (T)w;
}

/* torch's mean denominator for class-index targets: the sum of the targets' weights over the
 * samples not ignored (their count when unweighted).  Cloned like the kernels: the baseline
 * build's scalar count was 8% of a 256x10 call (perf, session 9). */
FL_CLONES static double SFX(ce_denominator)(const int64_t *target, const T *weight, int64_t rows,
                                           int64_t ignore_index)
{
    double denom = 0.0;
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
    return denom;
}

double SFX(fl_cross_entropy)(T *grad, T *loss, const T *logits, const int64_t *target, const T *weight,
                             int64_t n, int64_t c, int64_t s, int64_t ignore_index, T label_smoothing,
                             int reduction)
{
    if (c < 1) return FL__NAN; /* no class to index (the API refuses it first) */
    const int64_t rows = n * s;
    const double denom = reduction == 1 ? SFX(ce_denominator)(target, weight, rows, ignore_index) : 1.0;
    SFX(cectx) cx = {grad, reduction == 0 ? loss : NULL, logits, NULL, weight, target, c, s,
                     ignore_index, label_smoothing, SFX(ce_wtotal)(weight, c),
                     (T)(reduction == 1 ? 1.0 / denom : 1.0), rows};
    const double total = fl_parallel_sum(rows, SFX(ce_grain)(c), SFX(ce_index_chunk), &cx);
    if (reduction == 1 && denom == 0.0 && label_smoothing != 0) {
        /* targets' weights summing to 0 (all zero, or cancelling): torch divides its two
         * means by it apart, (1 - eps) nll / 0 + eps/c smooth / 0, which is NaN when either sum
         * is 0 or they have opposite signs, where the one division of their sum would be
         * +-inf.  Each sum again on its own (eps = 0: the nll; eps = 1: smooth / c), loss only. */
        SFX(cectx) part = cx;
        part.grad = part.loss = NULL;
        part.gscale = 1;
        part.eps = 0;
        const double nll = fl_parallel_sum(rows, SFX(ce_grain)(c), SFX(ce_index_chunk), &part);
        part.eps = 1;
        const double smooth = fl_parallel_sum(rows, SFX(ce_grain)(c), SFX(ce_index_chunk), &part);
        return (1.0 - (double)label_smoothing) * (nll / denom) + (double)label_smoothing * (smooth / denom);
    }
    return reduction == 1 ? total / denom : total;
}

double SFX(fl_cross_entropy_prob)(T *grad, T *loss, const T *logits, const T *target, const T *weight,
                                  int64_t n, int64_t c, int64_t s, T label_smoothing, int reduction)
{
    if (c < 1) return FL__NAN;
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
 *   1e-12 is a float constant even in double, so is ours: 1e-12f).
 * x is a probability (the API rejects anything outside [0, 1]), so the logs are vmath's
 * VLOG01C / VLOG1M01C, with the clamp inside and no special-case selects but one (NaN for x
 * outside [0, 1], where torch's log or log1p gives NaN): ~0.7 of fl_logf + fl_log1pf. */
FL_INLINE SFX(clg) SFX(bce_elem)(T x, T t, T a, const int wa, const SFX(bk) *k)
{
    (void)a; (void)wa; (void)k;
    T lx = VLOG01C(x), l1x = VLOG1M01C(x);
    T den = x * ((T)1 - x);
    den = den < (T)1e-12f ? (T)1e-12f : den;
    return (SFX(clg)){(t - (T)1) * l1x - t * lx, (x - t) / den};
}

/* BCE with logits (torch.nn.functional.binary_cross_entropy_with_logits), stable for any
 * finite x: with lw = 1 + (pw - 1) t (lw = 1 without pos_weight: wa = 0),
 *   l = (1 - t) x + lw (log1p(exp(-|x|)) + max(-x, 0))      (never exp of a positive number)
 *   dl/dx = (pw t + 1 - t) sigmoid(x) - pw t (sigmoid(x) - t without pos_weight, torch's
 *   two forms), sigmoid(x) = exp(min(x,0)) / (1 + exp(-|x|)).
 * e = exp(-|x|) is VEXPN's, the exp of x <= 0, which flushes results below e^-86.5 (e^-707.5)
 * to 0: for |x| > 86.5 log1p(e) and the sigmoid of -|x| are then 0 instead of < 3e-38 (torch's
 * own log(1 + e) is 0 there too), and no subnormal enters the arithmetic.  e is in [0, 1], so
 * log1p(e) is VLOG1P01's (no special cases).  NaN x: e = NaN, and so are l and dl/dx; x = -inf
 * gives l = NaN, dl/dx = -t; x = +inf gives (1 - t) inf and 1 - t, as torch. */
FL_INLINE SFX(clg) SFX(bce_logits_elem)(T x, T t, T pw, const int wa, const SFX(bk) *k)
{
    (void)k;
    const int neg = x < 0;
    T e = VEXPN(neg ? x : -x);
    T sp = VLOG1P01(e) + (neg ? -x : (T)0);
    T sig = (neg ? e : (T)1) / ((T)1 + e);
    if (!wa) return (SFX(clg)){((T)1 - t) * x + sp, sig - t};
    T lw = (T)1 + (pw - (T)1) * t;
    T pt = pw * t;
    return (SFX(clg)){((T)1 - t) * x + lw * sp, (pt + (T)1 - t) * sig - pt};
}

/* hinge: l = relu(margin - t s), dl/ds = 0 where margin - t s <= 0, else -t: torch's relu
 * backward (threshold_backward: 0 at the kink, and a NaN z passes -t through).  relu as
 * torch computes it: NaN stays NaN. */
FL_INLINE SFX(clg) SFX(hinge_elem)(T s, T t, T a, const int wa, const SFX(bk) *k)
{
    (void)a; (void)wa;
    T z = k->c0 - t * s;
    return (SFX(clg)){z < 0 ? (T)0 : z, z <= 0 ? (T)0 : -t};
}

/* squared hinge: l = max(0, margin - t s)^2, dl/ds = -2 t max(0, margin - t s) */
FL_INLINE SFX(clg) SFX(squared_hinge_elem)(T s, T t, T a, const int wa, const SFX(bk) *k)
{
    (void)a; (void)wa;
    T z = k->c0 - t * s;
    T h = z < 0 ? (T)0 : z;
    return (SFX(clg)){h * h, (T)-2 * t * h};
}

/* The loop over [lo, hi), in runs that do not cross a multiple of period (aux is then a
 * plain slice), 64 elements at a time.  The loss sum as regression_tmpl.h's: 16 lanes, each
 * adding its 4 elements of a 64-element block in T and then into its own double, the lanes
 * added in a fixed tree at the end (one float->double conversion per 4 elements, not per
 * element: with a conversion and a double add per element BCE's loop spent ~10% of its time
 * there).  A run's last < 64 elements go through local arrays padded with harmless values
 * (x = t = 1/2, pos_weight 1, weight 0) to a multiple of 16, through the same vector body,
 * their sum lanes masked: a scalar remainder of up to 63 elements of two logs each cost
 * ~40% of a 1000-element call.  No vector epilogues, and the per-element losses (reduction
 * none) go through lsum and a copy instead of a variant of their own.  Each element is read before its outputs
 * are written, so an output may be an input. */
#define FL_BIN_ONE(NAME, WG, WW, WA, X, TT, A, W, G, e, out)                                \
    do {                                                                                     \
        SFX(clg) r_ = SFX(NAME##_elem)(X[e], TT[e], WA ? A[e] : (T)1, WA, &k);               \
        const T w_ = WW ? W[e] : (T)1;                                                       \
        out = WW ? r_.l * w_ : r_.l;                                                         \
        if (WG) G[e] = (WW ? r_.g * w_ : r_.g) * gs;                                         \
    } while (0)
#define FL_BIN_RANGE(NAME, WG, WW, WA)                                                       \
    do {                                                                                     \
        double acc[16];                                                                      \
        for (int l = 0; l < 16; l++) acc[l] = 0; /* not = {0}: csrc/build_cffi.py */     \
        T lsum[64], xb[64], tb[64], ab[64], wb[64], gb[64];                                  \
        int64_t i = lo;                                                                      \
        while (i < hi) {                                                                     \
            const int64_t j0 = WA ? i % period : 0;                                          \
            const int64_t end = WA ? (period - j0 < hi - i ? i + period - j0 : hi) : hi;     \
            const T *ap = WA ? aux + j0 - i : NULL;                                          \
            int64_t q = i;                                                                   \
            for (; q + 64 <= end; q += 64) {                                                 \
                const T *X = x + q, *TT = t + q, *A = WA ? ap + q : NULL, *W = WW ? weight + q : NULL; \
                T *G = WG ? grad + q : NULL;                                                 \
                _Pragma("omp simd")                                                          \
                for (int l = 0; l < 16; l++) {                                               \
                    T a0, a1, a2, a3;                                                        \
                    FL_BIN_ONE(NAME, WG, WW, WA, X, TT, A, W, G, l, a0);                     \
                    FL_BIN_ONE(NAME, WG, WW, WA, X, TT, A, W, G, l + 16, a1);                \
                    FL_BIN_ONE(NAME, WG, WW, WA, X, TT, A, W, G, l + 32, a2);                \
                    FL_BIN_ONE(NAME, WG, WW, WA, X, TT, A, W, G, l + 48, a3);                \
                    lsum[l] = a0; lsum[l + 16] = a1; lsum[l + 32] = a2; lsum[l + 48] = a3;   \
                    acc[l] += (double)((a0 + a1) + (a2 + a3));                               \
                }                                                                            \
                if (loss) memcpy(loss + q, lsum, sizeof lsum);                               \
            }                                                                                \
            if (q < end) { /* the last < 64 elements, through the padded local arrays */    \
                const int nv = (int)(end - q), nb = (nv + 15) & ~15;                         \
                for (int m = 0; m < nb; m++) {                                               \
                    xb[m] = m < nv ? x[q + m] : (T)0.5;                                      \
                    tb[m] = m < nv ? t[q + m] : (T)0.5;                                      \
                    if (WA) ab[m] = m < nv ? ap[q + m] : (T)1;                               \
                    if (WW) wb[m] = m < nv ? weight[q + m] : (T)0;                           \
                }                                                                            \
                for (int b = 0; b < nb; b += 16) {                                           \
                    _Pragma("omp simd")                                                      \
                    for (int l = 0; l < 16; l++) {                                           \
                        T a0;                                                                \
                        FL_BIN_ONE(NAME, WG, WW, WA, xb, tb, ab, wb, gb, b + l, a0);         \
                        lsum[b + l] = a0;                                                    \
                        acc[l] += (double)(b + l < nv ? a0 : (T)0);                          \
                    }                                                                        \
                }                                                                            \
                if (WG) memcpy(grad + q, gb, (size_t)nv * sizeof(T));                       \
                if (loss) memcpy(loss + q, lsum, (size_t)nv * sizeof(T));                    \
            }                                                                                \
            i = end;                                                                         \
        }                                                                                    \
        for (int w = 8; w >= 1; w /= 2)                                                      \
            for (int l = 0; l < w; l++) acc[l] += acc[l + w];                                \
        s = acc[0];                                                                          \
    } while (0)

/* pos_weight (aux) exists for BCE with logits only: the other losses get no aux variant */
#define FL_BIN_W(NAME, WG, HASAUX)                                                           \
    do {                                                                                     \
        if (HASAUX && aux) {                                                                 \
            if (weight) FL_BIN_RANGE(NAME, WG, 1, HASAUX); else FL_BIN_RANGE(NAME, WG, 0, HASAUX); \
        } else {                                                                             \
            if (weight) FL_BIN_RANGE(NAME, WG, 1, 0); else FL_BIN_RANGE(NAME, WG, 0, 0);     \
        }                                                                                    \
    } while (0)

#define FL_BIN_LOSS(NAME, HASAUX)                                                            \
    FL_CLONES static double SFX(NAME##_chunk)(const void *ctx, int64_t lo, int64_t hi)       \
    {                                                                                        \
        const SFX(binctx) *c = (const SFX(binctx) *)ctx;                                     \
        T *grad = c->grad, *loss = c->loss;                                                  \
        const T *x = c->x, *t = c->t, *weight = c->weight, *aux = c->aux;                    \
        const int64_t period = c->period;                                                    \
        const T gs = c->gscale;                                                              \
        const SFX(bk) k = c->k;                                                              \
        double s = 0.0;                                                                      \
        if (grad) FL_BIN_W(NAME, 1, HASAUX);                                                 \
        else FL_BIN_W(NAME, 0, HASAUX);                                                      \
        return s;                                                                            \
    }

FL_BIN_LOSS(bce, 0)
FL_BIN_LOSS(bce_logits, 1)
FL_BIN_LOSS(hinge, 0)
FL_BIN_LOSS(squared_hinge, 0)
#undef FL_BIN_ONE
#undef FL_BIN_RANGE
#undef FL_BIN_W
#undef FL_BIN_LOSS

/* grain: a quarter of FL_GRAIN_LOGITS for the two with two logs (or an exp and a log) per
 * element, ~1.6 ns each on one thread (BCE 512 elements 0.77 -> 0.66-0.96 us on 2 threads,
 * 768 1.2 -> 0.9); half the streaming grain for the hinge losses (hinge 4096 0.8 -> 0.6-0.85,
 * 8192 1.5 -> 1.3) */
static double SFX(bin_run)(fl_chunk_fn fn, int64_t grain, T *grad, T *loss, const T *x, const T *t,
                           const T *weight, const T *aux, int64_t n, int64_t period, T c0, int reduction)
{
    SFX(binctx) c = {grad, reduction == 0 ? loss : NULL, x, t, weight, aux, period > 0 ? period : 1,
                     (T)(reduction == 1 && n > 0 ? 1.0 / (double)n : 1.0), {c0, 0}};
    const double total = fl_parallel_sum(n, grain, fn, &c);
    return reduction == 1 ? total / (double)n : total;
}

double SFX(fl_binary_cross_entropy)(T *grad, T *loss, const T *prob, const T *target, const T *weight,
                                    int64_t n, int reduction)
{
    return SFX(bin_run)(SFX(bce_chunk), FL_GRAIN_LOGITS / 4, grad, loss, prob, target, weight, NULL, n, 1, 0, reduction);
}

double SFX(fl_binary_cross_entropy_with_logits)(T *grad, T *loss, const T *logits, const T *target,
                                                const T *weight, const T *pos_weight, int64_t n,
                                                int64_t c, int reduction)
{
    return SFX(bin_run)(SFX(bce_logits_chunk), FL_GRAIN_LOGITS / 4, grad, loss, logits, target, weight, pos_weight,
                        n, c, 0, reduction);
}

double SFX(fl_hinge)(T *grad, T *loss, const T *scores, const T *target, const T *weight, int64_t n,
                     T margin, int reduction)
{
    return SFX(bin_run)(SFX(hinge_chunk), FL_GRAIN_STREAM / 2, grad, loss, scores, target, weight, NULL, n, 1,
                        margin, reduction);
}

double SFX(fl_squared_hinge)(T *grad, T *loss, const T *scores, const T *target, const T *weight,
                             int64_t n, T margin, int reduction)
{
    return SFX(bin_run)(SFX(squared_hinge_chunk), FL_GRAIN_STREAM / 2, grad, loss, scores, target, weight, NULL,
                        n, 1, margin, reduction);
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

FL_INLINE double SFX(mm_row)(const SFX(mmctx) *m, int64_t i, const int p2, const int wg)
{
    /* class j adds into lane j % 16 of sl and gl, in order, the lanes added in a fixed tree,
     * and h^2 is added by an explicit fma: the loss's bits do not depend on wg (with an
     * `if (g)` in one loop, and GCC contracting h * h + s into an fma in one variant and not
     * in the other, they differed between grad=True and grad=False) */
    enum { L = 16 };
    const int64_t C = m->c;
    const T *x = m->x + i * C;
    T *g = wg ? m->grad + i * C : NULL;
    const int64_t y = m->target[i];
    const T a = m->margin - x[y], wy = m->weight ? m->weight[y] : (T)1, f = wy / (T)C;
    const T gf = (p2 ? (T)2 : (T)1) * (f * m->gscale);
    T sl[L], gl[L];
    for (int l = 0; l < L; l++) sl[l] = gl[l] = 0; /* not = {0}: csrc/build_cffi.py */
    for (int64_t j0 = 0; j0 < C; j0 += L) {
        const int nl = C - j0 < L ? (int)(C - j0) : L;
#pragma omp simd
        for (int l = 0; l < nl; l++) {
            const T z = a + x[j0 + l];
            const int on = z > 0 && j0 + l != y;
            const T h = on ? z : (T)0;
            sl[l] = p2 ? FMAT(h, h, sl[l]) : sl[l] + h;
            const T gj = on ? (p2 ? h * gf : gf) : (T)0;
            if (wg) g[j0 + l] = gj;
            gl[l] += gj;
        }
    }
    for (int w = L / 2; w >= 1; w /= 2)
        for (int l = 0; l < w; l++) {
            sl[l] += sl[l + w];
            gl[l] += gl[l + w];
        }
    if (wg) g[y] = -gl[0];
    const T l = sl[0] * f;
    if (m->loss) m->loss[i] = l;
    return (double)l;
}

/* Few classes (c <= 32): FL_CE_BLOCK rows at a time, transposed as in ce_small_block (every
 * step a vector over the rows; a row-at-a-time loop over 7 classes runs in its scalar
 * remainder).  The row's target is a 32-bit lane of y (-1 past the block's rows, which
 * matches no class); w_y / c comes from fv (fv[j] = w_j / c, one division per class per
 * chunk, not one per row), and is the constant 1 / c unweighted (session 9: with the
 * targets' int-to-float conversion gone, 1000x7 3.07 -> 2.73 us on one thread).  All of
 * the block's logits are read before its gradient is written. */
FL_INLINE void SFX(mm_block)(const SFX(mmctx) *m, const T *fv, int64_t r0, int64_t nr, const int p2,
                               const int weighted, double *acc)
{
    enum { K = FL_CE_BLOCK };
    const int64_t C = m->c;
    const T *x = m->x + r0 * C;
    const T mg = m->margin, gs = m->gscale;
    T xt[32][K], l[K], xy[K], f[K], gf[K], s[K], gsum[K];
    int32_t y[K]; /* the row's target as a 32-bit lane (c <= 32); -1 past the block's rows */
    const int64_t *t = m->target + r0;
#pragma omp simd
    for (int k = 0; k < K; k++) {
        y[k] = k < nr ? (int32_t)t[k] : -1;
        xy[k] = 0;
        f[k] = weighted || k >= nr ? (T)0 : fv[0]; /* unweighted: fv[j] = 1 / c for every j */
    }
    /* x_y (and w_y / c): scalar loads (GCC emits no gathers here), before the transposition,
     * so that these scalar stores have reached the cache when the vector loops below read them */
    for (int k = 0; k < nr; k++) {
        xy[k] = x[k * C + t[k]];
        if (weighted) f[k] = fv[t[k]];
    }
    SFX(ce_transpose_in)(&xt[0][0], x, C, nr);
#pragma omp simd
    for (int k = 0; k < K; k++) {
        xy[k] = mg - xy[k]; /* z_j = (margin - x_y) + x_j */
        gf[k] = (p2 ? (T)2 : (T)1) * (f[k] * gs);
        s[k] = gsum[k] = 0;
    }
    for (int64_t j = 0; j < C; j++) {
        const int32_t tj = (int32_t)j;
#pragma omp simd
        for (int k = 0; k < K; k++) {
            const T z = xy[k] + xt[j][k];
            const int on = z > 0 && y[k] != tj;
            const T h = on ? z : (T)0;
            s[k] += p2 ? h * h : h;
            const T gj = on ? (p2 ? h * gf[k] : gf[k]) : (T)0;
            gsum[k] += gj;
            xt[j][k] = gj;
        }
    }
    if (m->grad) /* dl/dx_y = -sum_{j != y} dl/dx_j, into the target's lane (which holds 0) */
        for (int64_t j = 0; j < C; j++) {
            const int32_t tj = (int32_t)j;
#pragma omp simd
            for (int k = 0; k < K; k++) xt[j][k] += y[k] == tj ? -gsum[k] : (T)0;
        }
    /* lanes past the block's rows: 0 by a select, not by f = 0 (their s is C margin or
     * margin^2 and may be inf: inf * 0 would be a NaN in the total) */
#pragma omp simd
    for (int k = 0; k < K; k++) l[k] = k < nr ? s[k] * f[k] : (T)0;
#pragma omp simd /* per-lane sums, as in ce_small_block */
    for (int k = 0; k < K; k++) acc[k] += (double)l[k];
    if (m->loss) {
#pragma omp simd
        for (int k = 0; k < nr; k++) m->loss[r0 + k] = l[k];
    }
    if (m->grad) SFX(ce_transpose_out)(m->grad + r0 * C, &xt[0][0], C, nr);
}

FL_CLONES static double SFX(mm_chunk)(const void *ctx, int64_t lo, int64_t hi)
{
    const SFX(mmctx) *m = (const SFX(mmctx) *)ctx;
    double s = 0.0;
    if (m->c <= 32) {
        T fv[32];
        double acc[FL_CE_BLOCK];
        for (int k = 0; k < FL_CE_BLOCK; k++) acc[k] = 0; /* not = {0}: csrc/build_cffi.py */
        for (int64_t j = 0; j < m->c; j++) fv[j] = (m->weight ? m->weight[j] : (T)1) / (T)m->c;
        for (int64_t r = lo; r < hi; r += FL_CE_BLOCK) {
            const int64_t nr = hi - r < FL_CE_BLOCK ? hi - r : FL_CE_BLOCK;
            if (m->weight && m->p == 2) SFX(mm_block)(m, fv, r, nr, 1, 1, acc);
            else if (m->weight) SFX(mm_block)(m, fv, r, nr, 0, 1, acc);
            else if (m->p == 2) SFX(mm_block)(m, fv, r, nr, 1, 0, acc);
            else SFX(mm_block)(m, fv, r, nr, 0, 0, acc);
        }
#pragma omp simd reduction(+:s)
        for (int k = 0; k < FL_CE_BLOCK; k++) s += acc[k];
    } else if (m->grad) {
        if (m->p == 2) for (int64_t i = lo; i < hi; i++) s += SFX(mm_row)(m, i, 1, 1);
        else for (int64_t i = lo; i < hi; i++) s += SFX(mm_row)(m, i, 0, 1);
    } else {
        if (m->p == 2) for (int64_t i = lo; i < hi; i++) s += SFX(mm_row)(m, i, 1, 0);
        else for (int64_t i = lo; i < hi; i++) s += SFX(mm_row)(m, i, 0, 0);
    }
    return s;
}

#ifdef FL_MM_ROWS8
static double mm_rows8_chunk_f32(const void *ctx, int64_t lo, int64_t hi);
#endif
double SFX(fl_multi_margin)(T *grad, T *loss, const T *logits, const int64_t *target, const T *weight,
                            int64_t n, int64_t c, int p, T margin, int reduction)
{
    if (c < 1) return FL__NAN;
    SFX(mmctx) m = {grad, reduction == 0 ? loss : NULL, logits, weight, target, c, p, margin,
                    (T)(reduction == 1 && n > 0 ? 1.0 / (double)n : 1.0)};
    fl_chunk_fn fn = SFX(mm_chunk);
#ifdef FL_MM_ROWS8 /* classification.c: float32, 4 <= c <= 8, on x86-64-v3 and up */
    if (sizeof(T) == 4 && c >= 4 && c <= 8 && reduction != 0 && fl_have_v3()) fn = mm_rows8_chunk_f32;
#endif
    const double total = fl_parallel_sum(n, SFX(ce_grain)(c), fn, &m);
    return reduction == 1 ? total / (double)n : total;
}

/* ========================================================== validation helpers
 * Called by the validation layer before any kernel runs (kernels never check). */
/* A vectorized count first (no early exit, so the loop vectorizes); the scalar search for
 * the position runs only when something is wrong.  ISA clones as the kernels: the baseline
 * (SSE2) build of the count took ~0.8 us per 1000 elements, a third of a small call. */
FL_CLONES int64_t SFX(fl_first_outside)(const T *x, int64_t n, T lo, T hi)
{
    int64_t bad = 0;
#pragma omp simd reduction(+:bad)
    for (int64_t i = 0; i < n; i++) bad += !(x[i] >= lo && x[i] <= hi); /* NaN is outside */
    if (!bad) return -1;
    for (int64_t i = 0; i < n; i++)
        if (!(x[i] >= lo && x[i] <= hi)) return i;
    return -1;
}

FL_CLONES int64_t SFX(fl_first_not_sign)(const T *x, int64_t n)
{
    int64_t bad = 0;
#pragma omp simd reduction(+:bad)
    for (int64_t i = 0; i < n; i++) bad += (x[i] != (T)1) & (x[i] != (T)-1);
    if (!bad) return -1;
    for (int64_t i = 0; i < n; i++)
        if (x[i] != (T)1 && x[i] != (T)-1) return i;
    return -1;
}
