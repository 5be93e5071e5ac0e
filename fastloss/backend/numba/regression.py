"""Elementwise regression losses, Numba kernels.  Same math as csrc/regression_tmpl.h.

Layout (numba shapes it):
  * ``_<loss>_chunk(grad, loss, pred, target, gscale, h, lo, hi)``: a serial loop over
    elements [lo, hi): per-call constants (built with pred.dtype.type so a float32 kernel
    computes in float32), then the inline element function; returns the float64 loss sum.
    grad/loss are arrays or None: numba compiles a variant per combination and prunes the
    stores.  The loop runs over slices (``pred[lo:hi]``) indexed from 0: indexing with a
    possibly negative index makes numba emit wraparound selects that stop LLVM from
    vectorizing (measured 7x slower).
  * ``_ew_loss(kind, ...)``: one driver for every loss: chunks (prange in the parallel twin),
    dispatching on ``kind`` once per chunk, never per element.  numba caches no closures,
    so this switch is how one driver serves every loss.
"""
import types

import numpy as np
from numba import njit, prange

from ._common import bounds, inline, jit, kernel

MSE, SMOOTH_L2, MAE, HUBER, SMOOTH_L1 = range(5)
KIND = {"mse": MSE, "smooth_l2": SMOOTH_L2, "mae": MAE, "huber": HUBER, "smooth_l1": SMOOTH_L1}


# _part and _store are jit functions, not IR-inlined ones: numba prunes `x is None`
# branches only on a function's own arguments, so each must see grad/loss as arguments
# (LLVM still inlines them).
@jit
def _part(a, lo, hi):
    if a is None:
        return None
    return a[lo:hi]


@jit
def _store(grad, loss, i, g, l):
    if grad is not None:
        grad[i] = g
    if loss is not None:
        loss[i] = l


# Each loss is a prep (per-call constants in the array's dtype, gradient scale folded in)
# and an element function (d, k) -> (loss, gscale * dloss/dpred), as in the C template.
@inline
def _mse_prep(pred, gscale, h):
    T = pred.dtype.type
    return (T(2) * T(gscale),)


@inline
def _mse_elem(d, k):
    return d * d, k[0] * d


@inline
def _smooth_l2_prep(pred, gscale, h):
    T = pred.dtype.type
    return (T(0.5), T(gscale))


@inline
def _smooth_l2_elem(d, k):
    return k[0] * d * d, k[1] * d


@inline
def _mae_prep(pred, gscale, h):
    T = pred.dtype.type
    return (T(gscale), T(0))


@inline
def _mae_elem(d, k):
    # sign(d) as two comparisons: 0 at d == 0 and at NaN, as torch's l1_loss backward
    gs, zero = k
    g = gs if d > zero else (-gs if d < zero else zero)
    return abs(d), g


@inline
def _huber_prep(pred, gscale, h):
    T = pred.dtype.type
    delta, gs = T(h), T(gscale)
    return (delta, T(0.5), gs)


@inline
def _huber_elem(d, k):
    # torch.nn.functional.huber_loss.  The gradient is gscale * clamp(d, -delta, delta),
    # selects that keep NaN (x86 max/min: a NaN d comes out as d), as in C.
    delta, half, gs = k
    g = -delta if d < -delta else d
    g = delta if g > delta else g
    # the loss as C writes it: c (a - c/2), c = min(|d|, delta) (the same bits as d d / 2
    # below delta and delta (|d| - delta/2) above; NaN stays NaN)
    a = abs(d)
    c = a if a < delta else delta
    return c * (a - half * c), gs * g


@inline
def _smooth_l1_prep(pred, gscale, h):
    T = pred.dtype.type
    beta, gs = T(h), T(gscale)
    return (beta, T(0.5) / beta, T(0.5) * beta, gs / beta, gs, T(1))


@inline
def _smooth_l1_tiny_prep(pred, gscale, h):
    # as C's smooth_l1_tiny: below 2^-100, 0.5/beta and gscale/beta are taken of beta * 2^64
    # (a subnormal beta would overflow them) and d is scaled by 2^64 too.  Run by
    # smooth_l1_tiny, without fast-math: 'reassoc' would regroup (c (d sc)) d as (c sc) (d d)
    # with c sc hoisted out of the loop, and 'arcp' a / (beta sc) as a (1/beta) (1/sc).
    T = pred.dtype.type
    beta, gs, sc = T(h), T(gscale), T(2.0 ** 64)
    return (beta, T(0.5) / (beta * sc), T(0.5) * beta, gs / (beta * sc), gs, sc)


@inline
def _smooth_l1_elem(d, k):
    # torch.nn.functional.smooth_l1_loss for beta > 0 (beta == 0 is routed to mae); the
    # gradient -1 / 1 where d <= -beta / d >= beta, else d * gscale/beta, as torch's backward
    # compares (NaN stays NaN; beta = inf, d = +-inf: +-1); selects one after the other, as C.
    # sc: 1, or 2^64 for a tiny beta (_smooth_l1_tiny_prep); the multiply by 1 measured free.
    beta, half_over_beta, half_beta, gs_over_beta, gs, sc = k
    ds = d * sc
    g = gs_over_beta * ds
    g = -gs if d <= -beta else g
    g = gs if d >= beta else g
    a = abs(d)
    l = half_over_beta * ds * d if a < beta else a - half_beta
    return l, g


_smooth_l1_tiny_elem = _smooth_l1_elem


def _chunk(grad, loss, pred, target, gscale, h, lo, hi):
    """Elements [lo, hi) of one loss (_prep/_elem are bound per loss below).  The loss sum:
    each 64-element block is added in the array's dtype, then into the float64 total, as
    C does: one float->double conversion per block, not per element."""
    k = _prep(pred, gscale, h)
    zero = pred.dtype.type(0)
    p, t, gr, ls = pred[lo:hi], target[lo:hi], _part(grad, lo, hi), _part(loss, lo, hi)
    n = p.size
    nb = n - n % 64
    s = 0.0
    for b in range(0, nb, 64):
        bs = zero
        for i in range(b, b + 64):
            l, g = _elem(p[i] - t[i], k)
            _store(gr, ls, i, g, l)
            bs += l
        s += bs
    for i in range(nb, n):
        l, g = _elem(p[i] - t[i], k)
        _store(gr, ls, i, g, l)
        s += l
    return s


def _bind(name, strict=False):
    """_chunk compiled for one loss: a copy of its code whose globals name that loss's
    prep and element function (numba caches it under its own name, like kernel's twins);
    strict: without fast-math."""
    g = dict(globals(), _prep=globals()[f"_{name}_prep"], _elem=globals()[f"_{name}_elem"])
    qual = f"_{name}_chunk"
    f = types.FunctionType(_chunk.__code__, g, qual)
    f.__qualname__ = qual
    return njit(nogil=True, cache=True)(f) if strict else jit(f)


_mse_chunk, _smooth_l2_chunk, _mae_chunk, _huber_chunk, _smooth_l1_chunk = (
    _bind(name) for name in KIND)
_smooth_l1_tiny_chunk = _bind("smooth_l1_tiny", strict=True)


def smooth_l1_tiny(grad, loss, pred, target, gscale, beta):
    """smooth_l1 for beta < 2^-100 (see _smooth_l1_prep), 1-D arrays: one serial call of the
    chunk without fast-math (a degenerate beta: not worth a parallel twin)."""
    return _smooth_l1_tiny_chunk(grad, loss, pred, target, gscale, beta, 0, pred.size)


def _ew_loss(kind, grad, loss, pred, target, gscale, h, nchunks):
    parts = np.empty(nchunks)
    for c in prange(nchunks):
        lo, hi = bounds(pred.size, c, nchunks)
        if kind == MSE:
            parts[c] = _mse_chunk(grad, loss, pred, target, gscale, h, lo, hi)
        elif kind == SMOOTH_L2:
            parts[c] = _smooth_l2_chunk(grad, loss, pred, target, gscale, h, lo, hi)
        elif kind == MAE:
            parts[c] = _mae_chunk(grad, loss, pred, target, gscale, h, lo, hi)
        elif kind == HUBER:
            parts[c] = _huber_chunk(grad, loss, pred, target, gscale, h, lo, hi)
        else:
            parts[c] = _smooth_l1_chunk(grad, loss, pred, target, gscale, h, lo, hi)
    s = 0.0
    for c in range(nchunks):  # in chunk order: the same bits for the same thread count
        s += parts[c]
    return s


ew_loss = kernel(_ew_loss)
