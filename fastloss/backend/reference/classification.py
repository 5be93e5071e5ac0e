"""Reference: classification losses, textbook formulas in float64 (the torch definitions)."""
import numpy as np


def _f64(a):
    return None if a is None else np.asarray(a, dtype=np.float64)


def _div(a, d):
    """a / d with IEEE (torch's) division: a denominator of 0 gives NaN for 0 / 0, else +-inf."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(a) / np.float64(d))


def _reduce(l, reduction, denom):
    total = float(np.sum(l))
    return _div(total, denom) if reduction == 1 else total


def _write(grad, loss, g, l):
    if grad is not None:
        grad[...] = g.reshape(grad.shape)
    if loss is not None:
        loss[...] = l.reshape(loss.shape)


def _log_softmax(x):
    """x: (n, c, s) -> log p over axis 1, the max-subtracted log-sum-exp."""
    m = np.max(x, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", over="ignore"):
        z = x - m
        return z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))


def cross_entropy(grad, loss, logits, target, weight, n, c, s, ignore_index, label_smoothing, reduction):
    x = _f64(logits).reshape(n, c, s)
    y = np.asarray(target).reshape(n, s)
    w = np.ones(c) if weight is None else _f64(weight)
    keep = y != ignore_index
    ys = np.where(keep, y, 0)
    logp = _log_softmax(x)
    onehot = np.zeros_like(x)
    np.put_along_axis(onehot, ys[:, None, :], 1.0, axis=1)
    wy = np.where(keep, w[ys], 0.0)                     # (n, s); not w * keep: a NaN weight
    eps = label_smoothing
    denom = float(wy.sum())
    # denom = 0: 1/denom is inf, and enters each term of the gradient before they are added
    # (as torch and the kernels: each term +-inf or NaN, not their finite sum times inf)
    scale = _div(1.0, denom) if reduction == 1 else 1.0
    with np.errstate(invalid="ignore", over="ignore"):
        # ignored samples: 0 by selection, not by multiplying (a -inf or NaN logit there would
        # make 0 * inf); the smoothing term only with eps > 0 (-inf logits make it inf, and a
        # NaN or inf class weight would make it NaN)
        nll = np.where(keep, -np.take_along_axis(logp, ys[:, None, :], axis=1)[:, 0, :] * wy, 0.0)
        smooth = np.where(keep, -(logp * w[None, :, None]).sum(axis=1), 0.0) if eps else 0.0
        l = (1 - eps) * nll + eps / c * smooth
        p = np.exp(logp)
        # d l / d x_j = (1-eps) wy (p_j - [j = y]) + eps/c (p_j sum_k w_k - w_j)
        if np.isfinite(scale):
            g = (1 - eps) * wy[:, None, :] * (p - onehot)
            if eps:
                g = g + eps / c * (w.sum() * p - w[None, :, None])
            g = g * scale
        else:  # 1/0: the kernels' terms, each scaled before they are combined, as there
            a = ((1 - eps) * wy + (eps / c * w.sum() if eps else 0.0)) * scale
            g = p * a[:, None, :] - np.where(onehot != 0, ((1 - eps) * wy * scale)[:, None, :], 0.0)
            if eps:
                g = g - (eps / c * scale) * w[None, :, None]
        g = np.where(keep[:, None, :], g, 0.0)
    _write(grad, loss, g, l)
    if reduction == 1 and not denom and eps:  # torch divides its two means apart
        return (1 - eps) * _div(nll.sum(), denom) + eps / c * _div(np.sum(smooth), denom)
    return _reduce(l, reduction, denom)


def cross_entropy_prob(grad, loss, logits, target, weight, n, c, s, label_smoothing, reduction):
    x = _f64(logits).reshape(n, c, s)
    q = _f64(target).reshape(n, c, s)
    w = np.ones(c) if weight is None else _f64(weight)
    q = (1 - label_smoothing) * q + label_smoothing / c
    qw = q * w[None, :, None]
    logp = _log_softmax(x)
    with np.errstate(invalid="ignore"):
        l = -(logp * qw).sum(axis=1)
        g = np.exp(logp) * qw.sum(axis=1, keepdims=True) - qw
    scale = 1.0 / (n * s) if reduction == 1 and n * s else 1.0
    _write(grad, loss, g * scale, l)
    return _reduce(l, reduction, n * s)


def _weighted(l, g, weight):
    if weight is None:
        return l, g
    w = _f64(weight)
    return l * w, g * w


def _finish_elementwise(grad, loss, l, g, weight, reduction):
    l, g = _weighted(l, g, weight)
    n = l.size
    scale = 1.0 / n if reduction == 1 and n else 1.0
    _write(grad, loss, g * scale, l)
    return _reduce(l, reduction, n)


def binary_cross_entropy(grad, loss, prob, target, weight, reduction):
    x, t = _f64(prob), _f64(target)
    with np.errstate(divide="ignore", invalid="ignore"):
        lx = np.maximum(np.log(x), -100.0)
        l1x = np.maximum(np.log1p(-x), -100.0)
        l = -(t * lx + (1 - t) * l1x)
        g = (x - t) / np.maximum(x * (1 - x), float(np.float32(1e-12)))  # torch: a float constant
    return _finish_elementwise(grad, loss, l, g, weight, reduction)


def binary_cross_entropy_with_logits(grad, loss, logits, target, weight, pos_weight, c, reduction):
    x, t = _f64(logits), _f64(target)
    pw = np.ones(1) if pos_weight is None else _f64(pos_weight)
    pw = np.resize(pw, x.size).reshape(x.shape)  # pos_weight[i % c] at flat index i, as the kernels
    with np.errstate(over="ignore", invalid="ignore"):
        lw = 1 + (pw - 1) * t
        l = (1 - t) * x + lw * (np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0))
        sig = 0.5 * (1 + np.tanh(0.5 * x))
        g = (pw * t + 1 - t) * sig - pw * t
    return _finish_elementwise(grad, loss, l, g, weight, reduction)


def hinge(grad, loss, scores, target, weight, margin, reduction):
    x, t = _f64(scores), _f64(target)
    z = margin - t * x
    # torch's relu backward: 0 where z <= 0, else -t (a NaN z passes -t through)
    return _finish_elementwise(grad, loss, np.maximum(z, 0), np.where(z <= 0, 0.0, -t), weight, reduction)


def squared_hinge(grad, loss, scores, target, weight, margin, reduction):
    x, t = _f64(scores), _f64(target)
    h = np.maximum(margin - t * x, 0)
    return _finish_elementwise(grad, loss, h ** 2, -2 * t * h, weight, reduction)


def multi_margin(grad, loss, logits, target, weight, n, c, p, margin, reduction):
    x = _f64(logits).reshape(n, c)
    y = np.asarray(target).reshape(n)
    w = np.ones(c) if weight is None else _f64(weight)
    xy = x[np.arange(n), y][:, None]
    z = margin - xy + x
    other = np.ones((n, c), bool)
    other[np.arange(n), y] = False
    h = np.where((z > 0) & other, z, 0.0)
    f = (w[y] / c)[:, None]
    l = (h ** p * f).sum(axis=1)
    gj = np.where((z > 0) & other, (1.0 if p == 1 else 2 * h), 0.0) * f
    g = gj.copy()
    g[np.arange(n), y] = -gj.sum(axis=1)
    scale = 1.0 / n if reduction == 1 and n else 1.0
    _write(grad, loss, g * scale, l)
    return _reduce(l, reduction, n)
