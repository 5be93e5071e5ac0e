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
import numpy as np
from numba import prange

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


@inline
def _mse_elem(d, c0):
    return d * d, c0 * d


@jit
def _mse_chunk(grad, loss, pred, target, gscale, h, lo, hi):
    T = pred.dtype.type
    c0 = T(2) * T(gscale)
    p, t, gr, ls = pred[lo:hi], target[lo:hi], _part(grad, lo, hi), _part(loss, lo, hi)
    s = 0.0
    for i in range(p.size):
        l, g = _mse_elem(p[i] - t[i], c0)
        _store(gr, ls, i, g, l)
        s += l
    return s


@inline
def _smooth_l2_elem(d, half, c0):
    return half * d * d, c0 * d


@jit
def _smooth_l2_chunk(grad, loss, pred, target, gscale, h, lo, hi):
    T = pred.dtype.type
    half, c0 = T(0.5), T(gscale)
    p, t, gr, ls = pred[lo:hi], target[lo:hi], _part(grad, lo, hi), _part(loss, lo, hi)
    s = 0.0
    for i in range(p.size):
        l, g = _smooth_l2_elem(p[i] - t[i], half, c0)
        _store(gr, ls, i, g, l)
        s += l
    return s


@inline
def _mae_elem(d, gs, zero):
    # sign(d) as two comparisons: 0 at d == 0 and at NaN, as torch's l1_loss backward
    g = gs if d > zero else (-gs if d < zero else zero)
    return (-d if d < zero else d), g


@jit
def _mae_chunk(grad, loss, pred, target, gscale, h, lo, hi):
    T = pred.dtype.type
    gs, zero = T(gscale), T(0)
    p, t, gr, ls = pred[lo:hi], target[lo:hi], _part(grad, lo, hi), _part(loss, lo, hi)
    s = 0.0
    for i in range(p.size):
        l, g = _mae_elem(p[i] - t[i], gs, zero)
        _store(gr, ls, i, g, l)
        s += l
    return s


@inline
def _huber_elem(d, delta, half, half_delta, gs_delta, gs):
    # torch.nn.functional.huber_loss; NaN falls through to the linear branch and stays NaN
    a = -d if d < 0 else d
    g = -gs_delta if d < -delta else (gs_delta if d > delta else gs * d)
    l = half * d * d if a < delta else delta * (a - half_delta)
    return l, g


@jit
def _huber_chunk(grad, loss, pred, target, gscale, h, lo, hi):
    T = pred.dtype.type
    delta, half, gs = T(h), T(0.5), T(gscale)
    half_delta, gs_delta = half * delta, gs * delta
    p, t, gr, ls = pred[lo:hi], target[lo:hi], _part(grad, lo, hi), _part(loss, lo, hi)
    s = 0.0
    for i in range(p.size):
        l, g = _huber_elem(p[i] - t[i], delta, half, half_delta, gs_delta, gs)
        _store(gr, ls, i, g, l)
        s += l
    return s


@inline
def _smooth_l1_elem(d, beta, half_over_beta, half_beta, gs_over_beta, gs):
    # torch.nn.functional.smooth_l1_loss for beta > 0 (beta == 0 is routed to mae)
    a = -d if d < 0 else d
    g = -gs if d < -beta else (gs if d > beta else gs_over_beta * d)
    l = half_over_beta * d * d if a < beta else a - half_beta
    return l, g


@jit
def _smooth_l1_chunk(grad, loss, pred, target, gscale, h, lo, hi):
    T = pred.dtype.type
    beta, gs = T(h), T(gscale)
    half_over_beta, half_beta, gs_over_beta = T(0.5) / beta, T(0.5) * beta, gs / beta
    p, t, gr, ls = pred[lo:hi], target[lo:hi], _part(grad, lo, hi), _part(loss, lo, hi)
    s = 0.0
    for i in range(p.size):
        l, g = _smooth_l1_elem(p[i] - t[i], beta, half_over_beta, half_beta, gs_over_beta, gs)
        _store(gr, ls, i, g, l)
        s += l
    return s


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
