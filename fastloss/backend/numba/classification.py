"""Classification losses, Numba kernels.  Same algorithms as csrc/classification_tmpl.h
(see its comments): max, then exp-and-sum storing e_j in the gradient row, then the
gradient scaled in place; the elementwise binary losses as prep + inline element function.

exp/log come from vmath.py (vectorizable; np.exp in a numba loop is a scalar libm call),
picked by dtype through the vexp/vlog/vlog1p overloads so that every kernel stays
dtype-stable.  Class rows are contiguous 1-D views: K-dimensional logits are handed over
with the class axis moved last (the wrapper in __init__ copies; documented there).
"""
import numpy as np
from numba import prange, types
from numba.extending import overload

from . import vmath
from ._common import bounds, inline, jit, kernel


def vexp(x):
    raise NotImplementedError  # resolved by the overload inside jit code


def vlog(x):
    raise NotImplementedError


def vlog1p(x):
    raise NotImplementedError


def _by_dtype(f32, f64):
    def typer(x):
        if x == types.float32:
            return lambda x: f32(x)
        return lambda x: f64(x)
    return typer


overload(vexp)(_by_dtype(vmath.expf, vmath.exp))
overload(vlog)(_by_dtype(vmath.logf, vmath.log))
overload(vlog1p)(_by_dtype(vmath.log1pf, vmath.log1p))


@jit
def _row(a, r):
    if a is None:
        return None
    return a[r]


@jit
def _put(a, r, v):
    if a is not None:
        a[r] = v


@jit
def _wj(w, j, one):
    if w is None:
        return one
    return w[j]


@jit
def _rowmax(x):
    m = x[0]
    for j in range(1, x.size):
        v = x[j]
        m = v if v > m else m
    return m


@jit
def _exp_pass(g, x, m):
    """e_j = exp(x_j - m) into g (when given); returns sum_j e_j."""
    s = x.dtype.type(0)
    for j in range(x.size):
        e = vexp(x[j] - m)
        if g is not None:
            g[j] = e
        s += e
    return s


@jit
def _ce_index_row(g, x, y, w, ignore_index, eps, wtotal, gscale):
    T = x.dtype.type
    C = x.size
    if y == ignore_index:
        if g is not None:
            g[:] = 0
        return 0.0
    one = T(1)
    wy = _wj(w, y, one)
    m = _rowmax(x)
    dy = x[y] - m  # read before the gradient row overwrites it (out=logits)
    sd = T(0)
    if eps != 0:
        for j in range(C):
            sd += _wj(w, j, one) * (x[j] - m)
    S = _exp_pass(g, x, m)
    lse = vlog(S)
    ome, epsc = one - T(eps), T(eps) / T(C)
    if eps != 0:
        l = ome * wy * (lse - dy) + epsc * (T(wtotal) * lse - sd)
        A = ome * wy + epsc * T(wtotal)
    else:
        l = wy * (lse - dy)
        A = wy
    if g is not None:
        gs = T(gscale)
        coef = gs * A / S
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
    T = x.dtype.type
    C = x.size
    one = T(1)
    ome, epsc = one - T(eps), T(eps) / T(C)
    m = _rowmax(x)
    Q = T(0)
    L = T(0)
    for j in range(C):
        qw = (ome * q[j] + epsc) * _wj(w, j, one)
        Q += qw
        L += qw * (x[j] - m)
    S = _exp_pass(g, x, m)
    l = Q * vlog(S) - L
    if g is not None:
        gs = T(gscale)
        coef = gs * Q / S
        for j in range(C):
            g[j] = g[j] * coef - gs * (ome * q[j] + epsc) * _wj(w, j, one)
    return float(l)


def _cross_entropy(grad, loss, x, target, weight, ignore_index, eps, wtotal, gscale, nchunks):
    """x (R, C) rows; target (R,) int64 class indices or (R, C) probabilities."""
    R = x.shape[0]
    parts = np.zeros(nchunks)
    for c in prange(nchunks):
        lo, hi = bounds(R, c, nchunks)
        s = 0.0
        for r in range(lo, hi):
            if target.ndim == 1:
                l = _ce_index_row(_row(grad, r), x[r], target[r], weight, ignore_index, eps, wtotal, gscale)
            else:
                l = _ce_prob_row(_row(grad, r), x[r], target[r], weight, eps, gscale)
            _put(loss, r, l)
            s += l
        parts[c] = s
    total = 0.0
    for c in range(nchunks):
        total += parts[c]
    return total


cross_entropy_rows = kernel(_cross_entropy)


# ---- elementwise binary losses ------------------------------------------------------------

@inline
def _bce_elem(x, t, a, k0, one):
    lo, tiny = one * -100, one * _TINY_F32  # torch's 1e-12 is a float constant, in double too
    lx = vlog(x)
    l1x = vlog1p(-x)
    lx = lo if lx < lo else lx          # torch clamps each log at -100; NaN stays NaN
    l1x = lo if l1x < lo else l1x
    den = x * (one - x)
    den = tiny if den < tiny else den
    return (t - one) * l1x - t * lx, (x - t) / den


@inline
def _bce_logits_elem(x, t, pw, k0, one):
    zero = one - one
    ax = -x if x < zero else x
    e = vexp(-ax)
    sp = vlog1p(e) + (-x if x < zero else zero)
    lw = one + (pw - one) * t
    sig = (e if x < zero else one) / (one + e)
    pt = pw * t
    return (one - t) * x + lw * sp, (pt + one - t) * sig - pt


@inline
def _hinge_elem(s, t, a, margin, one):
    zero = one - one
    z = margin - t * s
    return (zero if z < zero else z), (-t if z > zero else zero)   # relu: NaN stays NaN


@inline
def _squared_hinge_elem(s, t, a, margin, one):
    zero = one - one
    z = margin - t * s
    h = zero if z < zero else z
    return h * h, -(t + t) * h


BCE, BCE_LOGITS, HINGE, SQUARED_HINGE = range(4)
_TINY_F32 = np.float32(1e-12)


@jit
def _aux(aux, i, period, one):
    if aux is None:
        return one
    return aux[i % period]


@jit
def _bin_chunk(kind, grad, loss, x, t, weight, aux, period, k0, gscale, lo, hi):
    T = x.dtype.type
    one, gs, k0 = T(1), T(gscale), T(k0)
    s = 0.0
    for i in range(lo, hi):
        a = _aux(aux, i, period, one)
        if kind == BCE:
            l, g = _bce_elem(x[i], t[i], a, k0, one)
        elif kind == BCE_LOGITS:
            l, g = _bce_logits_elem(x[i], t[i], a, k0, one)
        elif kind == HINGE:
            l, g = _hinge_elem(x[i], t[i], a, k0, one)
        else:
            l, g = _squared_hinge_elem(x[i], t[i], a, k0, one)
        wi = _wj(weight, i, one)
        l = l * wi
        _put(grad, i, g * wi * gs)
        _put(loss, i, l)
        s += l
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
    T = x.dtype.type
    C = x.size
    one, zero = T(1), T(0)
    f = _wj(w, y, one) / T(C)
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


def _multi_margin(grad, loss, x, target, weight, p, margin, gscale, nchunks):
    R = x.shape[0]
    parts = np.zeros(nchunks)
    for c in prange(nchunks):
        lo, hi = bounds(R, c, nchunks)
        s = 0.0
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


def _reduced(total, denom, reduction):
    if reduction == 1:
        return total / denom if denom else float("nan")  # empty or all ignored: nan, as torch
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
