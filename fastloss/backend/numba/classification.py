"""Classification losses, Numba kernels.  Same algorithms as csrc/classification_tmpl.h
(see its comments): per row the max, then exp-and-sum storing e_j in the gradient row, then
the gradient scaled in place; few classes (c <= 32) 64 rows at a time, transposed (CE with
class indices or probabilities, multi_margin); the elementwise binary losses as one loop over
an inline element function, the loss summed in 64-element blocks.

exp/log come from vmath.py (vectorizable; np.exp in a numba loop is a scalar libm call),
picked by dtype through the vexp/vexpn/vlog/vlog1p overloads so that every kernel stays
dtype-stable.  Class rows are contiguous 1-D views: K-dimensional logits are handed over
with the class axis moved last (the wrapper at the end of this file copies).

What LLVM needs to vectorize these loops (each checked in the asm: zmm bodies):
  * no '/' in a loop: Numba's '/' tests the divisor for ZeroDivisionError (the default
    error_model='python') and that branch keeps the loop scalar; np.divide is the IEEE
    division (x/0 = inf or NaN, as torch);
  * a max reduction as llvm.maxnum (_maxnum): the compare-and-select form vectorizes only
    with the 'nnan' flag, which we never set;
  * no index lo + i: the chunk loops run over slices indexed from 0;
  * scratch arrays on the stack (_local): LLVM then knows they alias neither each other nor
    the caller's arrays, as the C kernel's local arrays (np.empty's pointer is opaque to it,
    and the lane loops stayed scalar);
  * and, the other way round, strided copies kept scalar (gathers and scatters are slow on
    this CPU): see the few-classes section.
"""
import numpy as np
from llvmlite import ir
from numba import literally, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from . import vmath
from ._common import bounds, inline, jit, kernel


def _dtype_dispatched(name):
    """A function that exists only to be overloaded below (by dtype): callable in jit code."""
    def f(x):
        raise NotImplementedError  # resolved by the overload inside jit code
    f.__name__ = f.__qualname__ = name
    return f


vexp, vexpn, vlog, vlog1p, vlog01c, vlog1m01c, vlog1p01 = map(
    _dtype_dispatched, ("vexp", "vexpn", "vlog", "vlog1p", "vlog01c", "vlog1m01c", "vlog1p01"))


def _by_dtype(f32, f64):
    def typer(x):
        if x == types.float32:
            return lambda x: f32(x)
        return lambda x: f64(x)
    return typer


# Each overload is a small function that LLVM inlines into the calling loop (checked in the
# final IR: no calls left in the kernels).  Not inline="always": inlining an overload at the
# Numba IR level trips Numba's SSA checks (NumbaIRAssumptionWarning on vmath's selects); nor
# isinstance(x, np.float32) in an @inline function: Numba prunes the other branch only at the
# first level of inlining, deeper (vlog1p inside _bce_logits_elem) it types both branches
# and unifies float32 with float64.  (NUMBA_ENABLE_PROFILING turns debug info on, which
# keeps these calls: profile with NUMBA_DEBUGINFO=0.)
overload(vexp)(_by_dtype(vmath.expf, vmath.exp))
overload(vexpn)(_by_dtype(vmath.expf_neg, vmath.exp_neg))   # e^x for x <= 0: the softmax's
overload(vlog)(_by_dtype(vmath.logf, vmath.log))
overload(vlog1p)(_by_dtype(vmath.log1pf, vmath.log1p))
overload(vlog01c)(_by_dtype(vmath.logf_01c, vmath.log_01c))        # BCE: max(log x, -100), x in [0, 1]
overload(vlog1m01c)(_by_dtype(vmath.log1mf_01c, vmath.log1m_01c))  # max(log1p(-x), -100)
overload(vlog1p01)(_by_dtype(vmath.log1pf_01, vmath.log1p_01))     # log1p(x), x in [0, 1]


@intrinsic
def _maxnum(typingctx, a, b):
    """llvm.maxnum(a, b): max, a NaN operand ignored.  LLVM vectorizes a maxnum reduction
    without fast-math flags (it leaves the vector loop for a scalar one when it meets a NaN);
    `m = v if v > m else m` needs 'nnan'.  Ignoring a NaN logit in the row max is harmless:
    its own exp(x - m) is NaN, so the row's loss and gradient are NaN either way (C keeps a
    NaN only in x[0], with the same outcome)."""
    if not (isinstance(a, types.Float) and a == b):
        return None

    def codegen(context, builder, sig, args):
        t = args[0].type
        name = "llvm.maxnum.f32" if t == ir.FloatType() else "llvm.maxnum.f64"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(t, [t, t]), name)
        return builder.call(fn, args)
    return a(a, b), codegen


@intrinsic(prefer_literal=True)
def _local(typingctx, like, rows, cols):
    """A (rows, cols) C-contiguous scratch array of like's dtype in the calling function's
    stack frame (an alloca in its entry block, 64-byte aligned), for compile-time constant
    rows and cols.  Valid until that function returns: never return it or store it."""
    if not (isinstance(like, types.Array) and isinstance(rows, types.IntegerLiteral)
            and isinstance(cols, types.IntegerLiteral)):
        return None
    nr, nc = rows.literal_value, cols.literal_value
    arrty = types.Array(like.dtype, 2, "C")

    def codegen(context, builder, sig, args):
        elt = context.get_data_type(like.dtype)
        size = context.get_abi_sizeof(elt)
        buf = cgutils.alloca_once(builder, ir.ArrayType(elt, nr * nc))
        buf.align = 64
        intp = context.get_value_type(types.intp)
        ary = context.make_array(arrty)(context, builder)
        context.populate_array(ary, data=builder.bitcast(buf, elt.as_pointer()),
                               shape=[intp(nr), intp(nc)], strides=[intp(nc * size), intp(size)],
                               itemsize=intp(size), meminfo=None)
        return ary._getvalue()
    return arrty(like, rows, cols), codegen


def _tr_vector(builder, L, srcs, src_of):
    """One vector of L lanes from the source vectors srcs (LLVM values), lane i being lane
    src_of[i][1] of srcs[src_of[i][0]]: one two-source shufflevector per pair of sources it
    draws from, merged by shuffles with constant masks (LLVM makes them permutes and blends)."""
    mask = ir.VectorType(ir.IntType(32), L)
    by_pair = {}   # pair a of sources -> {lane i: its lane in the pair's 2 L elements}
    for i, (vec, lane) in enumerate(src_of):
        by_pair.setdefault(vec // 2, {})[i] = (vec % 2) * L + lane
    acc = None
    for a, lanes in sorted(by_pair.items()):
        lo, hi = srcs[2 * a], srcs[min(2 * a + 1, len(srcs) - 1)]
        part = builder.shuffle_vector(lo, hi, ir.Constant(mask, [lanes.get(i, 0) for i in range(L)]))
        acc = part if acc is None else builder.shuffle_vector(
            acc, part, ir.Constant(mask, [L + i if i in lanes else i for i in range(L)]))
    return acc


def _tr_ptr(context, builder, arrty, arr, off):
    data = context.make_array(arrty)(context, builder, arr).data
    return builder.gep(data, [off])


TR_MAX = 16   # the most classes _tr_groups transposes (float64; float32: TR_MAX32)
TR_MAX32 = 32


def _t8_stages(builder, r):
    """The 8 columns of the 8x8 block whose rows are the 8 float vectors r, by the three
    interleave stages of csrc's FL_T8_STAGES (unpcklps / unpckhps, shufps, 128-bit halves);
    the shuffles of columns never used are dead code to LLVM."""
    m = ir.VectorType(ir.IntType(32), 8)
    lo, hi = ir.Constant(m, [0, 8, 1, 9, 4, 12, 5, 13]), ir.Constant(m, [2, 10, 3, 11, 6, 14, 7, 15])
    ql, qh = ir.Constant(m, [0, 1, 8, 9, 4, 5, 12, 13]), ir.Constant(m, [2, 3, 10, 11, 6, 7, 14, 15])
    hl, hh = ir.Constant(m, [0, 1, 2, 3, 8, 9, 10, 11]), ir.Constant(m, [4, 5, 6, 7, 12, 13, 14, 15])
    sv = builder.shuffle_vector
    t = []
    for p in range(4):
        t += [sv(r[2 * p], r[2 * p + 1], lo), sv(r[2 * p], r[2 * p + 1], hi)]
    u = []
    for h in range(2):
        u += [sv(t[4 * h], t[4 * h + 2], ql), sv(t[4 * h], t[4 * h + 2], qh),
              sv(t[4 * h + 1], t[4 * h + 3], ql), sv(t[4 * h + 1], t[4 * h + 3], qh)]
    return [sv(u[q % 4], u[q % 4 + 4], hl if q < 4 else hh) for q in range(8)]


def _t8_group(builder, C, OUT, rows, col_vec, vptr, al):
    """One group of 8 float rows by 8x8 transposes (c = 5..32), as csrc's tr_in_t8 /
    tr_out_t8: row k's block b is the 8 floats from k c + 8 b, which runs into the next row
    of the group (c >= 4 nb keeps rows 0..6 inside it); the last row's last block is the
    group's last 8 floats, shifted (in) or completed from the vector that stored their first
    lanes and stored last (out), so nothing outside the group is touched."""
    m = ir.VectorType(ir.IntType(32), 8)
    nb = (C + 7) // 8
    intp = ir.IntType(64)

    def at(e):
        return builder.bitcast(builder.gep(rows, [intp(e)]), vptr)

    if not OUT:
        sh = 8 * nb - C
        for b in range(nb):
            r = [builder.load(at(k * C + 8 * b), align=al) for k in range(7)]
            if b < nb - 1:
                r.append(builder.load(at(7 * C + 8 * b), align=al))
            else:
                last = builder.load(at(8 * C - 8), align=al)
                r.append(builder.shuffle_vector(last, last, ir.Constant(m, [min(i + sh, 7) for i in range(8)])))
            for j, v in enumerate(_t8_stages(builder, r)):
                if 8 * b + j < C:
                    builder.store(v, col_vec(8 * b + j), align=al)
        return
    zero = ir.Constant(vptr.pointee, None)
    out = [_t8_stages(builder, [builder.load(col_vec(8 * b + j), align=al) if 8 * b + j < C else zero
                                for j in range(8)]) for b in range(nb)]
    for k in range(8):
        for b in range(nb if k < 7 else nb - 1):
            builder.store(out[b][k], at(k * C + 8 * b), align=al)
    pa, pb = (6 * C if nb == 1 else 7 * C + 8 * (nb - 2)), 7 * C + 8 * (nb - 1)
    fin = [pos - pa if pos < pb else 8 + pos - pb for pos in range(8 * C - 8, 8 * C)]
    a = out[0][6] if nb == 1 else out[nb - 2][7]
    builder.store(builder.shuffle_vector(a, out[nb - 1][7], ir.Constant(m, fin)), at(8 * C - 8), align=al)


@intrinsic(prefer_literal=True)
def _tr_groups(typingctx, dst, src, row_off, n, stride, c, out):
    """The first n groups of L rows of a block (L = 32 bytes of a row: 8 float32, 4 float64)
    between its c classes in row-major order from row_off and the transposed block xt
    (class j of row k at xt[j * stride + k]), for k < n L, j < c:
      out False:  xt[j * stride + k] = x[row_off + k c + j]   (dst xt, src x)
      out True:   g[row_off + k c + j] = xt[j * stride + k]   (dst g, src xt)
    out a literal, arrays C-contiguous.  As csrc/classification_tmpl.h's ce_transpose_in/out,
    written as LLVM shufflevectors (Numba has no vector types): float32 with c = 5..32 by
    8x8 transposes (_t8_group), the rest by permute tables (LLVM picks vpermt2ps and blends).
    Every mask is a constant: a switch on c (at run time) picks one of TR_MAX32 (float32) or
    TR_MAX loops, each a straight-line group; a larger c does nothing.  The switch is
    outside the loops: one per group (a jump table; LLVM did not unswitch it) made the
    transposition up to 2x as slow (float32 c = 3; 1.1x at c = 16), whole calls 2-7%."""
    if not (isinstance(out, (types.BooleanLiteral, types.IntegerLiteral))
            and isinstance(dst, types.Array) and isinstance(src, types.Array)
            and dst.layout == "C" and src.layout == "C" and dst.dtype == src.dtype
            and all(isinstance(a, types.Integer) for a in (row_off, n, stride, c))):
        return None
    OUT = bool(out.literal_value)
    rowty, colty = (dst, src) if OUT else (src, dst)   # x or g; xt
    sig = types.none(dst, src, types.intp, types.intp, types.intp, types.intp, out)

    def codegen(context, builder, sig, args):
        dst_, src_, row_off_, n_, stride_, c_, _ = args
        rowa, cola = (dst_, src_) if OUT else (src_, dst_)
        elt = context.get_data_type(rowty.dtype)
        al = context.get_abi_sizeof(elt)
        L = 32 // al
        vptr = ir.VectorType(elt, L).as_pointer()
        intp = row_off_.type
        rows0 = _tr_ptr(context, builder, rowty, rowa, row_off_)
        cols0 = _tr_ptr(context, builder, colty, cola, intp(0))
        done = builder.append_basic_block("tr_done")
        switch = builder.switch(c_, done)
        for C in range(1, (TR_MAX32 if L == 8 else TR_MAX) + 1):   # per group of L rows
            case = builder.append_basic_block(f"tr_c{C}")
            switch.add_case(c_.type(C), case)
            builder.position_at_end(case)
            with cgutils.for_range(builder, n_) as loop:
                rows = builder.gep(rows0, [builder.mul(loop.index, intp(C * L))])
                cols = builder.gep(cols0, [builder.mul(loop.index, intp(L))])

                def row_vec(s):
                    return builder.bitcast(builder.gep(rows, [intp(s * L)]), vptr)

                def col_vec(j):
                    return builder.bitcast(builder.gep(cols, [builder.mul(stride_, intp(j))]), vptr)

                if L == 8 and C >= 5:
                    _t8_group(builder, C, OUT, rows, col_vec, vptr, al)
                elif OUT:
                    vs = [builder.load(col_vec(j), align=al) for j in range(C)]
                    for s in range(C):
                        v = _tr_vector(builder, L, vs, [((s * L + i) % C, (s * L + i) // C) for i in range(L)])
                        builder.store(v, row_vec(s), align=al)
                else:
                    vs = [builder.load(row_vec(s), align=al) for s in range(C)]
                    for j in range(C):
                        v = _tr_vector(builder, L, vs, [divmod(k * C + j, L) for k in range(L)])
                        builder.store(v, col_vec(j), align=al)
            builder.branch(done)
        builder.position_at_end(done)
        return context.get_dummy_value()
    return sig, codegen


# Row r / rows [lo, hi) of an optional output, chosen when typing (overloads): as @jit
# functions with an `if a is None` they returned Optional(array) for an array, and every
# kernel that took the result as its gradient row tested it at run time; LLVM vectorized
# none of those loops (cross_entropy_prob 1024x32000: 1.9x C's time; bench/NOTES.md,
# session 17).
def _row(a, r):
    pass


def _sl(a, lo, hi):
    pass


@overload(_row, jit_options={"nogil": True})
def _row_typed(a, r):
    if isinstance(a, types.NoneType):
        return lambda a, r: None
    return lambda a, r: a[r]


@overload(_sl, jit_options={"nogil": True})
def _sl_typed(a, lo, hi):
    if isinstance(a, types.NoneType):
        return lambda a, lo, hi: None
    return lambda a, lo, hi: a[lo:hi]


@jit
def _put(a, r, v):
    if a is not None:
        a[r] = v


@jit
def _wj(w, j, one):
    if w is None:
        return one
    return w[j]


# ---- cross-entropy: one row at a time (c > 32) ----------------------------------------------

@jit
def _rowmax(x):
    m = x[0]
    for j in range(1, x.size):
        m = _maxnum(m, x[j])
    return m


@jit
def _exp_pass(g, x, m, w, smooth):
    """Pass 2 of csrc/classification_tmpl.h: e_j = exp(x_j - m) into g (when given);
    returns (S = sum_j e_j, sum_j w_j (x_j - m) when smooth, else 0).  x_j is read before
    g_j is written: g may be x.  smooth is a compile-time constant (one loop each)."""
    literally(smooth)
    T = x.dtype.type
    one = T(1)
    s, sd = T(0), T(0)
    for j in range(x.size):
        d = x[j] - m
        e = vexpn(d)
        if g is not None:
            g[j] = e
        s += e
        if smooth:
            sd += _wj(w, j, one) * d
    return s, sd


@jit
def _ce_index_row(g, x, y, w, ignore_index, eps, wtotal, gscale):
    T = x.dtype.type
    C = x.size
    if y == ignore_index:  # zero loss, zero gradient, not in the mean's denominator
        if g is not None:
            g[:] = 0
        return 0.0
    one = T(1)
    wy = _wj(w, y, one)
    m = _rowmax(x)
    dy = x[y] - m  # read before the gradient row overwrites it (out=logits)
    if eps != 0:
        S, sd = _exp_pass(g, x, m, w, True)
    else:
        S, sd = _exp_pass(g, x, m, w, False)
    lse = vlog(S)  # log-sum-exp - m: S >= 1
    ome, epsc = one - T(eps), np.divide(T(eps), T(C))
    if eps != 0:  # torch: (1 - eps) * nll + eps/c * sum_j w_j (-log p_j)
        l = ome * wy * (lse - dy) + epsc * (T(wtotal) * lse - sd)
        A = ome * wy + epsc * T(wtotal)
    else:
        l = wy * (lse - dy)
        A = wy
    if g is not None:
        gs = T(gscale)
        coef = np.divide(gs * A, S)
        if eps != 0:
            ge = gs * epsc
            for j in range(C):
                g[j] = g[j] * coef - ge * _wj(w, j, one)
            g[y] -= gs * ome * wy
        else:
            for j in range(C):
                g[j] = g[j] * coef
            g[y] -= gs * wy
    return float(l)


@jit
def _ce_prob_row(g, x, q, w, eps, gscale):
    """Probability target q: l = -sum_j q'_j w_j log p_j, q' = (1 - eps) q + eps / c (with
    eps = 0, q' = 1 * q + 0 = q exactly); its sums fused into the exp pass.  g may be q
    (out=target): then e_j is not parked in g (q_j is still needed) but taken again."""
    keep_q = False
    if g is not None:   # a branch numba prunes for g = None (an `and` would still type g.ctypes)
        keep_q = g.ctypes.data == q.ctypes.data
    # keep_q a compile-time constant in each loop: as a run-time flag inside them, LLVM
    # vectorized neither, and 1024x32000 took 1.9x C's time (bench/NOTES.md, session 17)
    if keep_q:
        return _ce_prob_pass(g, x, q, w, eps, gscale, True)
    return _ce_prob_pass(g, x, q, w, eps, gscale, False)


@jit
def _ce_prob_pass(g, x, q, w, eps, gscale, keep_q):
    literally(keep_q)
    T = x.dtype.type
    C = x.size
    one = T(1)
    ome, epsc = one - T(eps), np.divide(T(eps), T(C))
    m = _rowmax(x)
    S, Q, L = T(0), T(0), T(0)
    for j in range(C):
        d = x[j] - m
        e = vexpn(d)
        S += e
        qw = (ome * q[j] + epsc) * _wj(w, j, one)
        Q += qw
        L += qw * d
        if g is not None and not keep_q:
            g[j] = e
    l = Q * vlog(S) - L
    if g is not None:
        gs = T(gscale)
        coef = np.divide(gs * Q, S)
        for j in range(C):
            e = vexpn(x[j] - m) if keep_q else g[j]
            g[j] = e * coef - gs * (ome * q[j] + epsc) * _wj(w, j, one)
    return float(l)


@jit
def _ce_rows(grad, loss, x, target, w, ignore_index, eps, wtotal, gscale, lo, hi):
    s = 0.0
    for r in range(lo, hi):
        if target.ndim == 1:
            l = _ce_index_row(_row(grad, r), x[r], target[r], w, ignore_index, eps, wtotal, gscale)
        else:
            l = _ce_prob_row(_row(grad, r), x[r], target[r], w, eps, gscale)
        _put(loss, r, l)
        s += l
    return s


# ---- cross-entropy: few classes (c <= 32), CE_BLOCK rows at a time ---------------------------
# ce_small_block in csrc/classification_tmpl.h: the block's rows transposed into xt[j, k]
# (class j of row k) so that every step is a vector over the block's rows: no horizontal
# reduction per row.  The lane vectors (max, sums, ...) are the rows of v; xt, qt, v and the
# class weights wv live on the stack (_local), allocated once per chunk.  Lanes past the last
# row of a partial block hold 0; they are dead (live = 0): never stored or summed.  The
# block's logits are all read before any of its gradient is written: grad may be x.
#
# Measured on this machine (Zen 4, bench/NOTES.md), what makes these blocks fast in Numba:
#   * the lane loops run to the constant K = CE_BLOCK: LLVM makes each one 4 zmm vectors
#     with no remainder.  (Until session 11 K was passed at run time, after an earlier
#     version of these loops had been left scalar when fully unrolled; with today's loops
#     the constant measured 0.71-0.93x the time for c = 5..32 and 1.07x for c = 2,
#     cross-entropy and multi_margin, float32 and float64: bench/NOTES.md, session 11);
#   * no gathers or scatters: LLVM vectorizes a strided copy over the rows (k inner) with
#     vgatherqps, over the classes (j inner) with vscatterqps, and both are slow here (the
#     transposition was ~40% of a multi_margin block).  The copies are scalar, as C's: the
#     class loop runs to the constant CE_SMALL with an exit at c, which the loop vectorizer
#     does not take (two exits) and LLVM unrolls into straight copies;
#   * x_y and w_y are picked by selects over the classes during the max, not gathered;
#   * block-level helpers are inlined at the Numba IR level: as a call LLVM kept the
#     transposition out of line, away from the stack buffer;
#   * no row views (x[r]) in the per-row loops: with the early exit Numba left an NRT
#     incref/decref call per row (~2x the block's time).
# 64 rows, not 16 (as C; the block's fixed work spread wider).

CE_SMALL, CE_BLOCK = 32, 64
_M, _S, _SD, _DY, _WY, _Y, _LIVE, _L, _COEF, _GY, _QA, _QB = range(12)   # the rows of v
_LANES = 12


@jit
def _tr_perm(dst, src, r0, nr, K, C, out):
    """Rows [0, nr - nr % L) of the block (x's or g's rows r0 + k) by _tr_groups, L rows of
    32 bytes at a time, out (a literal) its direction; returns the number of rows done
    (0 for c > TR_MAX)."""
    literally(out)
    L = 32 // src.itemsize
    if C > (TR_MAX32 if L == 8 else TR_MAX):
        return 0
    _tr_groups(dst, src, r0 * C, nr // L, K, C, out)
    return nr - nr % L


@inline
def _transpose_in(xt, x, r0, nr, K):
    """xt[j, k] = x[r0 + k, j] for the block's nr rows, 0 in the lanes past them: whole
    groups of rows by permutes, the rest by scalar copies."""
    C = x.shape[1]
    k1 = _tr_perm(xt, x, r0, nr, K, C, False)
    for k in range(k1, nr):
        for j in range(CE_SMALL):   # to c: the exit keeps the loop scalar (see above)
            if j == C:
                break
            xt[j, k] = x[r0 + k, j]
    if nr < K:
        for j in range(C):
            xj = xt[j]
            for k in range(nr, K):
                xj[k] = 0


@inline
def _transpose_out(g, xt, r0, nr, K):
    """g[r0 + k, j] = xt[j, k] for the block's nr rows."""
    C = g.shape[1]
    k1 = _tr_perm(g, xt, r0, nr, K, C, True)
    for k in range(k1, nr):
        for j in range(CE_SMALL):
            if j == C:
                break
            g[r0 + k, j] = xt[j, k]


@jit
def _ce_small(grad, loss, x, target, w, ignore_index, eps, wtotal, gscale, lo, hi):
    """target (R,) class indices or (R, C) probabilities (soft: transposed into qt like the
    logits; q'_j = (1 - eps) q_j + eps / c as in _ce_prob_row)."""
    T = x.dtype.type
    C = x.shape[1]
    K = CE_BLOCK
    zero, one = T(0), T(1)
    xt = _local(x, CE_SMALL, CE_BLOCK)
    qt = _local(x, CE_SMALL, CE_BLOCK)   # probability targets only
    v = _local(x, _LANES, CE_BLOCK)
    wv = _local(x, 1, CE_SMALL)[0]   # the class weights, or ones
    for j in range(C):
        wv[j] = _wj(w, j, one)
    m, S, sd, dy, wy, yf, live = v[_M], v[_S], v[_SD], v[_DY], v[_WY], v[_Y], v[_LIVE]
    l, coef, gy, qa, qb = v[_L], v[_COEF], v[_GY], v[_QA], v[_QB]
    ome, epsc, gs, wt = one - T(eps), np.divide(T(eps), T(C)), T(gscale), T(wtotal)
    total = 0.0
    for r0 in range(lo, hi, CE_BLOCK):
        nr = min(hi - r0, CE_BLOCK)
        for k in range(K):
            if target.ndim == 1:
                t = target[r0 + k] if k < nr else ignore_index
                on = t != ignore_index
                yf[k] = T(t) if on else -one   # class indices < 32: exact in T; -1: no class
            else:
                on = k < nr
                yf[k] = -one
            live[k] = one if on else zero
            dy[k] = zero
            wy[k] = zero
            S[k] = zero
            sd[k] = zero
            qa[k] = zero
            qb[k] = zero
        _transpose_in(xt, x, r0, nr, K)
        if target.ndim == 2:
            _transpose_in(qt, target, r0, nr, K)
        for k in range(K):
            m[k] = xt[0, k]
        for j in range(1, C):
            xj = xt[j]
            for k in range(K):
                m[k] = xj[k] if xj[k] > m[k] else m[k]
        for j in range(C):   # e = exp(x - m) in place, the sums the loss needs, and
            wj = wv[j]       # x_y - m, w_y by selects (not gathers)
            tj = T(j)
            xj = xt[j]
            qj = qt[j]
            for k in range(K):
                d = xj[k] - m[k]
                hit = yf[k] == tj
                dy[k] = d if hit else dy[k]   # x_y - m as the exp's: under 'reassoc' LLVM
                wy[k] = wj if hit else wy[k]  # turned lse - (x_y - m) into lse - x_y + m
                if target.ndim == 2:
                    qw = (ome * qj[k] + epsc) * wj
                    qa[k] += qw
                    qb[k] += qw * d
                else:
                    sd[k] += wj * d   # used with label smoothing
                e = vexpn(d)
                S[k] += e
                xj[k] = e
        for k in range(K):
            lse = vlog(S[k])   # log-sum-exp - m: S >= 1
            if target.ndim == 2:   # -sum_j q'_j w_j log p_j
                lk = qa[k] * lse - qb[k]
                A = qa[k]
            elif eps != 0:   # torch: (1 - eps) * nll + eps/c * sum_j w_j (-log p_j)
                lk = ome * wy[k] * (lse - dy[k]) + epsc * (wt * lse - sd[k])
                A = ome * wy[k] + epsc * wt
            else:
                lk = wy[k] * (lse - dy[k])
                A = wy[k]
            on = live[k] != zero
            l[k] = lk if on else zero
            coef[k] = np.divide(gs * A, S[k]) if on else zero
            gy[k] = gs * ome * wy[k] if on else zero   # ome = 1 without smoothing
        for k in range(K):   # dead lanes hold 0
            total += float(l[k])
        if loss is not None:
            for k in range(nr):
                loss[r0 + k] = l[k]
        if grad is not None:
            for j in range(C):
                wj = wv[j]
                gej = gs * epsc * wj if eps != 0 else zero   # a NaN / inf w_j: 0 * w_j is not 0
                tj = T(j)
                xj = xt[j]
                qj = qt[j]
                for k in range(K):
                    if target.ndim == 2:
                        gk = xj[k] * coef[k] - gs * (ome * qj[k] + epsc) * wj
                    else:
                        gk = xj[k] * coef[k] - gej - (gy[k] if yf[k] == tj else zero)
                    xj[k] = gk if live[k] != zero else zero
            _transpose_out(grad, xt, r0, nr, K)
    return total


def _cross_entropy(grad, loss, x, target, weight, ignore_index, eps, wtotal, gscale, nchunks):
    """x (R, C) rows; target (R,) int64 class indices or (R, C) probabilities."""
    R, C = x.shape
    parts = np.zeros(nchunks)
    for c in prange(nchunks):
        lo, hi = bounds(R, c, nchunks)
        if C <= CE_SMALL:
            parts[c] = _ce_small(grad, loss, x, target, weight, ignore_index, eps, wtotal, gscale, lo, hi)
        else:
            parts[c] = _ce_rows(grad, loss, x, target, weight, ignore_index, eps, wtotal, gscale, lo, hi)
    total = 0.0
    for c in range(nchunks):
        total += parts[c]
    return total


cross_entropy_rows = kernel(_cross_entropy)


# ---- elementwise binary losses ------------------------------------------------------------

_TINY_F32 = np.float32(1e-12)


@inline
def _bce_elem(x, t, a, k0, one):
    """binary cross-entropy on probabilities: l = -(t log x + (1 - t) log(1 - x)), each log
    clamped to >= -100 (torch); dl/dx = (x - t) / max(x (1 - x), 1e-12) (torch's backward,
    whose 1e-12 is a float constant even in double).  x is a probability (the API checks):
    the logs are vmath's [0, 1] ones, clamp included (csrc/classification_tmpl.h)."""
    tiny = one * _TINY_F32   # a float32 constant: T stays T
    lx = vlog01c(x)
    l1x = vlog1m01c(x)
    den = x * (one - x)
    den = tiny if den < tiny else den
    return (t - one) * l1x - t * lx, np.divide(x - t, den)


@inline
def _bce_logits_elem(x, t, pw, k0, one):
    """BCE with logits, stable for any finite x: with lw = 1 + (pw - 1) t,
    l = (1 - t) x + lw (log1p(exp(-|x|)) + max(-x, 0))   (never exp of a positive number);
    dl/dx = (pw t + 1 - t) sigmoid(x) - pw t, sigmoid(x) = exp(min(x, 0)) / (1 + exp(-|x|)).
    exp(-|x|) is the exp of x <= 0 (flushes below e^-86.5, as C), log1p's argument is in
    [0, 1]."""
    zero = one - one
    e = vexpn(-abs(x))
    sp = vlog1p01(e) + (-x if x < zero else zero)
    lw = one + (pw - one) * t
    sig = np.divide(e if x < zero else one, one + e)
    pt = pw * t
    return (one - t) * x + lw * sp, (pt + one - t) * sig - pt


@inline
def _bce_logits_nopw_elem(x, t, a, k0, one):
    """_bce_logits_elem without pos_weight, in torch's form for that case:
    l = (1 - t) x + log1p(exp(-|x|)) + max(-x, 0), dl/dx = sigmoid(x) - t."""
    zero = one - one
    e = vexpn(-abs(x))
    sp = vlog1p01(e) + (-x if x < zero else zero)
    sig = np.divide(e if x < zero else one, one + e)
    return (one - t) * x + sp, sig - t


@inline
def _hinge_elem(s, t, a, margin, one):
    """l = relu(margin - t s) (NaN stays NaN, as torch's relu), dl/ds = 0 where margin - t s
    <= 0, else -t: torch's relu backward (0 at the kink; a NaN z passes -t through)."""
    zero = one - one
    z = margin - t * s
    return (zero if z < zero else z), (zero if z <= zero else -t)


@inline
def _squared_hinge_elem(s, t, a, margin, one):
    """l = max(0, margin - t s)^2, dl/ds = -2 t max(0, margin - t s)."""
    zero = one - one
    z = margin - t * s
    h = zero if z < zero else z
    return h * h, -(t + t) * h


BCE, BCE_LOGITS, HINGE, SQUARED_HINGE = range(4)


@jit
def _bin_one(kind, x, t, weight, aux, i, k0, one):
    """Element i: (loss, gradient), weighted.  A jit function, not an inline one: Numba prunes
    the `aux is None` and kind branches on a function's own arguments (LLVM inlines it)."""
    literally(kind)
    if kind == BCE:
        l, g = _bce_elem(x[i], t[i], one, k0, one)
    elif kind == BCE_LOGITS:
        if aux is None:
            l, g = _bce_logits_nopw_elem(x[i], t[i], one, k0, one)
        else:
            l, g = _bce_logits_elem(x[i], t[i], aux[i], k0, one)
    elif kind == HINGE:
        l, g = _hinge_elem(x[i], t[i], one, k0, one)
    else:
        l, g = _squared_hinge_elem(x[i], t[i], one, k0, one)
    if weight is not None:
        wi = weight[i]
        l = l * wi
        g = g * wi
    return l, g


@jit
def _bin_loop(kind, grad, loss, x, t, weight, aux, k0, gs, one):
    """One loop over slices indexed from 0 (aux, when given, aligned with them), compiled
    once per kind (a compile-time constant: every loss gets its own vector loop).  The loss
    sum as csrc's: each 64-element block added in the array's dtype, then into the float64
    total (one conversion per block, not per element)."""
    literally(kind)
    zero = one - one
    n = x.size
    nb = n - n % 64
    s = 0.0
    for b in range(0, nb, 64):
        bs = zero
        for i in range(b, b + 64):
            l, g = _bin_one(kind, x, t, weight, aux, i, k0, one)
            if grad is not None:
                grad[i] = g * gs
            if loss is not None:
                loss[i] = l
            bs += l
        s += bs
    for i in range(nb, n):   # the tail apart: one loop of min(b + 64, n) did not vectorize (2.5x slower)
        l, g = _bin_one(kind, x, t, weight, aux, i, k0, one)
        if grad is not None:
            grad[i] = g * gs
        if loss is not None:
            loss[i] = l
        s += l
    return s


@jit
def _run(aux, i, hi, period):
    """The end of the run that starts at i, and aux's slice for it."""
    if aux is None:
        return hi, None
    j0 = i % period
    e = min(hi, i + period - j0)
    return e, aux[j0:j0 + (e - i)]


@jit
def _bin_chunk(kind, grad, loss, x, t, weight, aux, period, k0, gscale, lo, hi):
    """Elements [lo, hi), in runs that do not cross a multiple of period (aux, BCE's
    pos_weight along the last axis, is then a plain slice: no i % period per element)."""
    T = x.dtype.type
    one, gs, k0 = T(1), T(gscale), T(k0)
    s = 0.0
    i = lo
    while i < hi:
        e, ap = _run(aux, i, hi, period)
        g, lv, xs, ts, ws = _sl(grad, i, e), _sl(loss, i, e), x[i:e], t[i:e], _sl(weight, i, e)
        if kind == BCE:
            s += _bin_loop(BCE, g, lv, xs, ts, ws, ap, k0, gs, one)
        elif kind == BCE_LOGITS:
            s += _bin_loop(BCE_LOGITS, g, lv, xs, ts, ws, ap, k0, gs, one)
        elif kind == HINGE:
            s += _bin_loop(HINGE, g, lv, xs, ts, ws, ap, k0, gs, one)
        else:
            s += _bin_loop(SQUARED_HINGE, g, lv, xs, ts, ws, ap, k0, gs, one)
        i = e
    return s


def _binary(kind, grad, loss, x, t, weight, aux, period, k0, gscale, nchunks):
    parts = np.zeros(nchunks)
    for c in prange(nchunks):
        lo, hi = bounds(x.size, c, nchunks)
        parts[c] = _bin_chunk(kind, grad, loss, x, t, weight, aux, period, k0, gscale, lo, hi)
    total = 0.0
    for c in range(nchunks):
        total += parts[c]
    return total


binary = kernel(_binary)


# ---- multi-class margin -----------------------------------------------------------------

@jit
def _mm_row(g, x, y, w, p, margin, gscale):
    """torch's multi_margin_loss: l = w_y / c * sum_{j != y} max(0, margin - x_y + x_j)^p,
    dl/dx_j = w_y / c * p z_j^(p-1) [z_j > 0] (j != y), dl/dx_y = -sum_{j != y} dl/dx_j."""
    T = x.dtype.type
    C = x.size
    one, zero = T(1), T(0)
    f = np.divide(_wj(w, y, one), T(C))
    gf = f * T(gscale)
    mg = T(margin)
    xy = x[y]
    s = zero
    gsum = zero
    for j in range(C):
        z = mg - xy + x[j]
        on = z > zero and j != y
        h = z if on else zero
        s += h * h if p == 2 else h
        gj = ((h + h) if p == 2 else one) * gf if on else zero
        if g is not None:
            g[j] = gj
        gsum += gj
    if g is not None:
        g[y] = -gsum
    return float(s * f)


# Few classes (c <= 32): as mm_block in csrc/classification_tmpl.h, CE_BLOCK rows at a time
# transposed as in _ce_small (a row-at-a-time loop over 7 classes runs in its scalar
# remainder).  The lanes past the last row of a partial block hold 0 and have f = 0 and
# l = 0 (a select, not 0 * s: s may be inf); they are never stored.  All of the block's
# logits are read before its gradient is written: grad may be x.

_XY, _F, _GF, _MS, _GSUM, _YI = range(6)   # the rows of v
_MM_LANES = 6


@jit
def _mm_small(grad, loss, x, target, w, p2, margin, gscale, lo, hi):
    """p2: p == 2, a compile-time constant (one lane loop each)."""
    literally(p2)
    T = x.dtype.type
    C = x.shape[1]
    K = CE_BLOCK
    zero, one, mg, gs = T(0), T(1), T(margin), T(gscale)
    xt = _local(x, CE_SMALL, CE_BLOCK)
    v = _local(x, _MM_LANES, CE_BLOCK)
    fv = _local(x, 1, CE_SMALL)[0]   # w_j / c
    for j in range(C):
        fv[j] = np.divide(_wj(w, j, one), T(C))
    xy, f, gf, s, gsum, yf = v[_XY], v[_F], v[_GF], v[_MS], v[_GSUM], v[_YI]
    acc = np.zeros(CE_BLOCK)   # the loss per lane, added across lanes once (as C's mm_chunk)
    g2 = gs + gs if p2 else gs
    for r0 in range(lo, hi, CE_BLOCK):
        nr = min(hi - r0, CE_BLOCK)
        for k in range(nr):   # class indices < 32: exact in T
            yf[k] = T(target[r0 + k])
        for k in range(nr, K):   # dead lanes: no class (f = 0 below)
            yf[k] = -one
        _transpose_in(xt, x, r0, nr, K)
        for k in range(K):
            xy[k] = zero
            f[k] = zero
        # x_y and w_y / c by selects over the classes, not by loads of x[r, y] and fv[y] per
        # row as in C: LLVM vectorizes that row loop with gathers (vgatherqps), and it took
        # ~40% of a 200000x7 call, one thread (1160 -> 956 us with the selects)
        for j in range(C):
            tj = T(j)
            xj = xt[j]
            fj = fv[j]
            for k in range(K):
                on = yf[k] == tj
                xy[k] = xj[k] if on else xy[k]
                f[k] = fj if on else f[k]
        for k in range(K):
            xy[k] = mg - xy[k]
            gf[k] = f[k] * g2
            s[k] = zero
            gsum[k] = zero
        for j in range(C):
            tj = T(j)
            xj = xt[j]
            for k in range(K):
                z = xy[k] + xj[k]
                on = z > zero and yf[k] != tj
                # h = z if on else 0, as max(z, 0) (a NaN z gives 0, as z > 0 does) times 0
                # in the target's lane: LLVM made s + (z if on else 0) a masked store of
                # s + z, and the next class's load of s waited for it (no store forwarding
                # from a masked store); 1e5x7, one thread: 375 -> 338 us.  Same values:
                # the target lane's max(z, 0) is finite (margin - x_y + x_y), so h is +0 there
                h = _maxnum(z, zero) * (zero if yf[k] == tj else one)
                s[k] += h * h if p2 else h
                gj = (h * gf[k] if p2 else gf[k]) if on else zero
                gsum[k] += gj
                xj[k] = gj
        for k in range(K):
            lk = s[k] * f[k] if k < nr else zero
            s[k] = lk
            acc[k] += float(lk)
        if loss is not None:
            for k in range(nr):
                loss[r0 + k] = s[k]
        if grad is not None:
            for j in range(C):   # dl/dx_y = -sum_{j != y} dl/dx_j, into the target's lane (0)
                tj = T(j)
                xj = xt[j]
                for k in range(K):
                    xj[k] += -gsum[k] if yf[k] == tj else zero
            _transpose_out(grad, xt, r0, nr, K)
    total = 0.0
    for k in range(CE_BLOCK):
        total += acc[k]
    return total


# 4 <= c <= 8, loss reduced (mean / sum): as mm_rows8_chunk_f32 in csrc/classification.c,
# one row per 8-lane vector, no transposition, emitted as LLVM IR.  Each chunk's last row is a
# masked load and store of its c lanes (nothing past the chunk is read or written); the rows
# before it load and store all 8 lanes, putting the next row's logits back as they were read
# (session 14: AVX's masked store is slow on Zen 3).  A row's loads come before its store,
# so grad may be x.  Session 11 (bench/NOTES.md): 1e5x7 on one thread 334 -> ~225 us, the
# same as C's row kernel.  The loss sums per lane in T over 16 rows, then in double, as C's.

@intrinsic(prefer_literal=True)
def _mm_rows8(typingctx, grad, x, target, fv, lo, hi, margin, gscale, p2):
    """Rows [lo, hi) of x (R, c), c <= 8: writes grad's rows (grad None: loss only) and
    returns the sum over rows of w_y / c * sum_{j != y} max(0, margin - x_y + x_j)^p.
    fv[y] = w_y / c; p2 (a literal): p == 2."""
    if not (isinstance(x, types.Array) and isinstance(p2, types.BooleanLiteral)):
        return None
    P2, has_g = p2.literal_value, not isinstance(grad, types.NoneType)

    def codegen(context, builder, sig, args):
        g_arr, x_arr, t_arr, fv_arr, lo_v, hi_v, mg_v, gs_v, _ = args
        T = context.get_value_type(x.dtype)
        i1, i32 = ir.IntType(1), ir.IntType(32)
        V, VI, VB, VD = (ir.VectorType(T, 8), ir.VectorType(i32, 8), ir.VectorType(i1, 8),
                         ir.VectorType(ir.DoubleType(), 8))
        sfx = "v8f32" if x.dtype == types.float32 else "v8f64"
        load = cgutils.get_or_insert_function(builder.module, ir.FunctionType(
            V, [V.as_pointer(), i32, VB, V]), f"llvm.masked.load.{sfx}.p0{sfx}")
        store = cgutils.get_or_insert_function(builder.module, ir.FunctionType(
            ir.VoidType(), [V, V.as_pointer(), i32, VB]), f"llvm.masked.store.{sfx}.p0{sfx}")
        xa = context.make_array(sig.args[1])(context, builder, x_arr)
        C = builder.extract_value(xa.shape, 1)
        td = context.make_array(sig.args[2])(context, builder, t_arr).data
        fd = context.make_array(sig.args[3])(context, builder, fv_arr).data
        gd = context.make_array(sig.args[0])(context, builder, g_arr).data if has_g else None
        al = i32(context.get_abi_sizeof(T))

        def splat(val, vt):
            one = builder.insert_element(ir.Constant(vt, ir.Undefined), val, i32(0))
            return builder.shuffle_vector(one, one, ir.Constant(VI, [0] * 8))

        def shuf(v, lanes):
            return builder.shuffle_vector(v, v, ir.Constant(VI, lanes))

        lane, zero = ir.Constant(VI, list(range(8))), ir.Constant(V, [0.0] * 8)
        live = builder.icmp_signed("<", lane, splat(builder.trunc(C, i32), VI))
        mg = splat(context.cast(builder, mg_v, types.float64, x.dtype), V)
        gs = splat(context.cast(builder, gs_v, types.float64, x.dtype), V)
        total = cgutils.alloca_once_value(builder, ir.Constant(VD, [0.0] * 8))
        part = cgutils.alloca_once_value(builder, zero)
        ali = context.get_abi_sizeof(T)
        # noty[y]: all ones in the lanes j < c, j != y (as C's table: one load a row instead of
        # y's broadcast, a compare and an and-not)
        VM = ir.VectorType(ir.IntType(8 * ali), 8)
        noty = cgutils.alloca_once(builder, VM, size=8)
        for k in range(8):
            builder.store(builder.sext(builder.and_(live, builder.icmp_signed("!=", lane, ir.Constant(VI, [k] * 8))),
                                       VM), builder.gep(noty, [i32(k)]))

        def keep(a, m):
            """a where m is all ones, else +0.0 (a select spelled as the and it is)"""
            return builder.bitcast(builder.and_(builder.bitcast(a, VM), m), V)

        def row(i, last, grouped=False):
            """One row; last: the chunk's last row (masked load and store), else all 8 lanes.
            grouped: the gradient's target lane is left 0 and (gj, y) returned (group8)."""
            base = builder.mul(i, C)
            xp = builder.bitcast(builder.gep(xa.data, [base]), V.as_pointer())
            v = builder.call(load, [xp, al, live, zero]) if last else builder.load(xp, align=ali)
            y = builder.load(builder.gep(td, [i]))
            xy = splat(builder.load(builder.gep(xa.data, [builder.add(base, y)])), V)
            z = builder.fadd(builder.fsub(mg, xy), v)   # (margin - x_y) + x_j, as C
            on = builder.and_(builder.load(builder.gep(noty, [y])),
                              builder.sext(builder.fcmp_ordered(">", z, zero), VM))
            h = keep(z, on)
            f = splat(builder.load(builder.gep(fd, [y])), V)
            hp = builder.fmul(h, h) if P2 else h
            builder.store(builder.fadd(builder.load(part), builder.fmul(hp, f)), part)
            if has_g:
                gf = builder.fmul(f, gs)   # gscale arrives times p
                gj = builder.fmul(h, gf) if P2 else keep(gf, on)
                if grouped:
                    gp = builder.bitcast(builder.gep(gd, [base]), V.as_pointer())
                    builder.store(builder.select(live, gj, v), gp, align=ali)
                    return gj, builder.add(base, y)
                sj = builder.fadd(gj, shuf(gj, [1, 0, 3, 2, 5, 4, 7, 6]))
                sj = builder.fadd(sj, shuf(sj, [2, 3, 0, 1, 6, 7, 4, 5]))
                sj = builder.fadd(sj, shuf(sj, [4, 5, 6, 7, 0, 1, 2, 3]))
                yv = splat(builder.trunc(y, i32), VI)
                out = builder.select(builder.icmp_signed("==", lane, yv), builder.fsub(zero, sj), gj)
                gp = builder.bitcast(builder.gep(gd, [base]), V.as_pointer())
                if last:
                    builder.call(store, [out, gp, al, live])
                else:   # lanes c..7: the next row's logits as read, so grad may be x
                    builder.store(builder.select(live, out, v), gp, align=ali)

        def group8(i):
            """Rows i..i+7, none the chunk's last, with the gradient: as C's 8-row group, the
            target lanes' sums for all 8 rows at once (the per-row tree's order: lane r of
            the result is ((0 + 1) + (2 + 3)) + ((4 + 5) + (6 + 7)) of row r), then stored
            one scalar each after the 8 rows' vector stores."""
            rows = [row(builder.add(i, i.type(r)), False, True) for r in range(8)]
            gj = [r[0] for r in rows]

            def hadd(a, b):   # vhaddps: [a0+a1, a2+a3, b0+b1, b2+b3, a4+a5, a6+a7, b4+b5, b6+b7]
                return builder.fadd(builder.shuffle_vector(a, b, ir.Constant(VI, [0, 2, 8, 10, 4, 6, 12, 14])),
                                    builder.shuffle_vector(a, b, ir.Constant(VI, [1, 3, 9, 11, 5, 7, 13, 15])))
            q0 = hadd(hadd(gj[0], gj[1]), hadd(gj[2], gj[3]))
            q1 = hadd(hadd(gj[4], gj[5]), hadd(gj[6], gj[7]))
            s8 = builder.fadd(builder.shuffle_vector(q0, q1, ir.Constant(VI, [0, 1, 2, 3, 8, 9, 10, 11])),
                              builder.shuffle_vector(q0, q1, ir.Constant(VI, [4, 5, 6, 7, 12, 13, 14, 15])))
            ns = builder.fsub(zero, s8)
            for r in range(8):
                builder.store(builder.extract_element(ns, i32(r)), builder.gep(gd, [rows[r][1]]))

        # rows before the chunk's last read and write 8 lanes (C's mm_rows8_chunk_f32: the
        # masked store is slow on Zen 3); the last row's 8 lanes would reach past the chunk
        one = lo_v.type(1)
        whole = builder.select(builder.icmp_signed("<", C, C.type(8)), builder.sub(hi_v, one), hi_v)
        sixteen = lo_v.type(16)
        with cgutils.for_range_slice(builder, lo_v, hi_v, sixteen, inc=True) as (i0, _):
            builder.store(zero, part)
            end = builder.select(builder.icmp_signed("<", builder.sub(hi_v, i0), sixteen), hi_v,
                                 builder.add(i0, sixteen))
            mid = builder.select(builder.icmp_signed("<", whole, end), whole, end)
            start = i0
            if has_g:
                start = builder.add(i0, builder.and_(builder.sub(mid, i0), lo_v.type(-8)))
                with cgutils.for_range_slice(builder, i0, start, lo_v.type(8), inc=True) as (i, _):
                    group8(i)
            with cgutils.for_range_slice(builder, start, mid, one, inc=True) as (i, _):
                row(i, False)
            with cgutils.for_range_slice(builder, mid, end, one, inc=True) as (i, _):
                row(i, True)
            pv = builder.load(part)
            if T != ir.DoubleType():
                pv = builder.fpext(pv, VD)
            builder.store(builder.fadd(builder.load(total), pv), total)
        acc = builder.load(total)
        s = builder.extract_element(acc, i32(0))
        for k in range(1, 8):
            s = builder.fadd(s, builder.extract_element(acc, i32(k)))
        return s
    return types.float64(grad, x, target, fv, lo, hi, margin, gscale, p2), codegen


@jit
def _mm_rows(grad, x, target, w, p2, margin, gscale, lo, hi):
    """_mm_rows8 over [lo, hi), p2 a literal."""
    literally(p2)
    T = x.dtype.type
    C = x.shape[1]
    fv = _local(x, 1, 8)[0]   # w_j / c
    for j in range(C):
        fv[j] = np.divide(_wj(w, j, T(1)), T(C))
    return _mm_rows8(grad, x, target, fv, lo, hi, margin, gscale + gscale if p2 else gscale, p2)


def _multi_margin(grad, loss, x, target, weight, p, margin, gscale, nchunks):
    R, C = x.shape
    parts = np.zeros(nchunks)
    for c in prange(nchunks):
        lo, hi = bounds(R, c, nchunks)
        s = 0.0
        if loss is None and 4 <= C <= 8:
            if p == 2:
                s = _mm_rows(grad, x, target, weight, True, margin, gscale, lo, hi)
            else:
                s = _mm_rows(grad, x, target, weight, False, margin, gscale, lo, hi)
        elif C <= CE_SMALL:
            if p == 2:
                s = _mm_small(grad, loss, x, target, weight, True, margin, gscale, lo, hi)
            else:
                s = _mm_small(grad, loss, x, target, weight, False, margin, gscale, lo, hi)
        else:
            for r in range(lo, hi):
                l = _mm_row(_row(grad, r), x[r], target[r], weight, p, margin, gscale)
                _put(loss, r, l)
                s += l
        parts[c] = s
    total = 0.0
    for c in range(nchunks):
        total += parts[c]
    return total


multi_margin_rows = kernel(_multi_margin)


# ---- the backend interface (same signatures as fastloss.backend.c.classification) ----------

from ._common import plan  # noqa: E402

_ce_serial, _ce_parallel = cross_entropy_rows
_bin_serial, _bin_parallel = binary
_mm_serial, _mm_parallel = multi_margin_rows


@jit
def _ce_denominator(t, w, ignore_index):
    d = 0.0
    for r in range(t.size):
        if t[r] != ignore_index:
            d += 1.0 if w is None else float(w[t[r]])
    return d


def _div0(a, d):
    """a / d for d == 0 as IEEE (and torch) divide: NaN for 0 / 0, else +-inf."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(a) / np.float64(d))


def _reduced(total, denom, reduction):
    if reduction == 1:  # empty or all ignored: 0 / 0, NaN, as torch
        return total / denom if denom else _div0(total, denom)
    return total


def _rows(a, n, c, s):
    """(n, c, s) -> (n*s, c) rows: a view when s == 1, else a copy with the class axis last
    (numba's strided rows would not vectorize; K-dimensional inputs pay one copy)."""
    if s == 1:
        return a.reshape(n, c)
    return np.ascontiguousarray(a.reshape(n, c, s).transpose(0, 2, 1)).reshape(n * s, c)


def _unrows(rows, out, n, c, s):
    if s != 1:
        out.reshape(n, c, s)[...] = rows.reshape(n, s, c).transpose(0, 2, 1)


def _rows_plan(rows, c):
    return plan(rows * c) if rows > 1 else 1


def _ce(grad, loss, logits, target, weight, n, c, s, ignore_index, label_smoothing, reduction, denom):
    x = _rows(logits, n, c, s)
    g = None if grad is None else (grad.reshape(n, c) if s == 1 else np.empty_like(x))
    lv = None if loss is None else loss.reshape(-1)
    wtotal = float(weight.sum(dtype=np.float64)) if weight is not None else float(c)
    gscale = (1.0 / denom if denom else float("inf")) if reduction == 1 else 1.0
    nch = _rows_plan(n * s, c)
    f = _ce_serial if nch == 1 else _ce_parallel
    total = f(g, lv, x, target, weight, ignore_index, label_smoothing, wtotal, gscale, nch)
    if g is not None:
        _unrows(g, grad, n, c, s)
    if reduction == 1 and not denom and label_smoothing and target.ndim == 1:
        # targets' weights summing to 0: torch's two means divided apart (as the C kernel)
        nll = f(None, None, x, target, weight, ignore_index, 0.0, wtotal, 1.0, nch)
        smooth = f(None, None, x, target, weight, ignore_index, 1.0, wtotal, 1.0, nch)
        return (1.0 - label_smoothing) * _div0(nll, denom) + label_smoothing * _div0(smooth, denom)
    return _reduced(total, denom, reduction)


def cross_entropy(grad, loss, logits, target, weight, n, c, s, ignore_index, label_smoothing, reduction):
    t = target.reshape(-1)
    denom = _ce_denominator(t, weight, ignore_index) if reduction == 1 else 1.0
    return _ce(grad, loss, logits, t, weight, n, c, s, ignore_index, label_smoothing, reduction, denom)


def cross_entropy_prob(grad, loss, logits, target, weight, n, c, s, label_smoothing, reduction):
    q = _rows(target, n, c, s)
    return _ce(grad, loss, logits, q, weight, n, c, s, -1, label_smoothing, reduction, float(n * s))


def _bin(kind, grad, loss, x, t, weight, aux, period, k0, reduction):
    n = x.size
    gscale = 1.0 / n if (reduction == 1 and n) else 1.0
    nch = plan(n)
    f = _bin_serial if nch == 1 else _bin_parallel
    flat = lambda a: None if a is None else a.reshape(-1)  # noqa: E731
    total = f(kind, flat(grad), flat(loss), x.reshape(-1), t.reshape(-1), flat(weight), aux, max(period, 1),
              k0, gscale, nch)
    return _reduced(total, n, reduction)


def binary_cross_entropy(grad, loss, prob, target, weight, reduction):
    return _bin(BCE, grad, loss, prob, target, weight, None, 1, 0.0, reduction)


def binary_cross_entropy_with_logits(grad, loss, logits, target, weight, pos_weight, c, reduction):
    return _bin(BCE_LOGITS, grad, loss, logits, target, weight, pos_weight, c, 0.0, reduction)


def hinge(grad, loss, scores, target, weight, margin, reduction):
    return _bin(HINGE, grad, loss, scores, target, weight, None, 1, margin, reduction)


def squared_hinge(grad, loss, scores, target, weight, margin, reduction):
    return _bin(SQUARED_HINGE, grad, loss, scores, target, weight, None, 1, margin, reduction)


def multi_margin(grad, loss, logits, target, weight, n, c, p, margin, reduction):
    g = None if grad is None else grad.reshape(n, c)
    lv = None if loss is None else loss.reshape(-1)
    gscale = 1.0 / n if (reduction == 1 and n) else 1.0
    nch = _rows_plan(n, c)
    f = _mm_serial if nch == 1 else _mm_parallel
    total = f(g, lv, logits.reshape(n, c), target.reshape(-1), weight, p, margin, gscale, nch)
    return _reduced(total, n, reduction)
