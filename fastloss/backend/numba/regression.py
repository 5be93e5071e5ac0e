"""Elementwise regression losses, Numba kernels.  Same math as csrc/regression_tmpl.h.

Each kernel: (grad, loss, pred, target, gscale, h, nchunks) -> sum of the loss, float64.
grad/loss are arrays or None (numba compiles a variant per combination and prunes the
stores).  Constants are built with pred.dtype.type so that a float32 kernel computes in
float32; only the loss sum is float64.  Numba caches no closures, so each loss is a
top-level loop around its inline element function.
"""
import numpy as np
from numba import prange

from ._common import bounds, inline, kernel


@inline
def _store(grad, loss, i, g, l):
    if grad is not None:
        grad[i] = g
    if loss is not None:
        loss[i] = l


@inline
def _mse_elem(d, c0):
    return d * d, c0 * d


def _mse(grad, loss, pred, target, gscale, h, nchunks):
    T = pred.dtype.type
    c0 = T(2) * T(gscale)
    parts = np.empty(nchunks)
    for c in prange(nchunks):
        lo, hi = bounds(pred.size, c, nchunks)
        s = 0.0
        for i in range(lo, hi):
            l, g = _mse_elem(pred[i] - target[i], c0)
            _store(grad, loss, i, g, l)
            s += l
        parts[c] = s
    return parts.sum()


@inline
def _smooth_l2_elem(d, half, c0):
    return half * d * d, c0 * d


def _smooth_l2(grad, loss, pred, target, gscale, h, nchunks):
    T = pred.dtype.type
    half, c0 = T(0.5), T(gscale)
    parts = np.empty(nchunks)
    for c in prange(nchunks):
        lo, hi = bounds(pred.size, c, nchunks)
        s = 0.0
        for i in range(lo, hi):
            l, g = _smooth_l2_elem(pred[i] - target[i], half, c0)
            _store(grad, loss, i, g, l)
            s += l
        parts[c] = s
    return parts.sum()


@inline
def _mae_elem(d, gs, zero):
    # sign(d) as two comparisons: 0 at d == 0 and at NaN, as torch's l1_loss backward
    g = gs if d > zero else (-gs if d < zero else zero)
    return (-d if d < zero else d), g


def _mae(grad, loss, pred, target, gscale, h, nchunks):
    T = pred.dtype.type
    gs, zero = T(gscale), T(0)
    parts = np.empty(nchunks)
    for c in prange(nchunks):
        lo, hi = bounds(pred.size, c, nchunks)
        s = 0.0
        for i in range(lo, hi):
            l, g = _mae_elem(pred[i] - target[i], gs, zero)
            _store(grad, loss, i, g, l)
            s += l
        parts[c] = s
    return parts.sum()


@inline
def _huber_elem(d, delta, half, half_delta, gs_delta, gs):
    # torch.nn.functional.huber_loss; NaN falls through to the linear branch and stays NaN
    a = -d if d < 0 else d
    g = -gs_delta if d < -delta else (gs_delta if d > delta else gs * d)
    l = half * d * d if a < delta else delta * (a - half_delta)
    return l, g


def _huber(grad, loss, pred, target, gscale, h, nchunks):
    T = pred.dtype.type
    delta, half, gs = T(h), T(0.5), T(gscale)
    half_delta, gs_delta = half * delta, gs * delta
    parts = np.empty(nchunks)
    for c in prange(nchunks):
        lo, hi = bounds(pred.size, c, nchunks)
        s = 0.0
        for i in range(lo, hi):
            l, g = _huber_elem(pred[i] - target[i], delta, half, half_delta, gs_delta, gs)
            _store(grad, loss, i, g, l)
            s += l
        parts[c] = s
    return parts.sum()


@inline
def _smooth_l1_elem(d, beta, half_over_beta, half_beta, gs_over_beta, gs):
    # torch.nn.functional.smooth_l1_loss for beta > 0 (beta == 0 is routed to mae)
    a = -d if d < 0 else d
    g = -gs if d < -beta else (gs if d > beta else gs_over_beta * d)
    l = half_over_beta * d * d if a < beta else a - half_beta
    return l, g


def _smooth_l1(grad, loss, pred, target, gscale, h, nchunks):
    T = pred.dtype.type
    beta, gs = T(h), T(gscale)
    half_over_beta, half_beta, gs_over_beta = T(0.5) / beta, T(0.5) * beta, gs / beta
    parts = np.empty(nchunks)
    for c in prange(nchunks):
        lo, hi = bounds(pred.size, c, nchunks)
        s = 0.0
        for i in range(lo, hi):
            l, g = _smooth_l1_elem(pred[i] - target[i], beta, half_over_beta, half_beta, gs_over_beta, gs)
            _store(grad, loss, i, g, l)
            s += l
        parts[c] = s
    return parts.sum()


KERNELS = {
    "mse": kernel(_mse),
    "smooth_l2": kernel(_smooth_l2),
    "mae": kernel(_mae),
    "huber": kernel(_huber),
    "smooth_l1": kernel(_smooth_l1),
}
