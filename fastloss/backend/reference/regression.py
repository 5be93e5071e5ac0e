"""Reference: regression losses and SGD."""
import numpy as np


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _finish(grad, loss, l, g, gscale):
    if loss is not None:
        loss[...] = l.reshape(loss.shape)
    if grad is not None:
        grad[...] = (g * gscale).reshape(grad.shape)
    return float(np.sum(l))


def mse(grad, loss, pred, target, gscale):
    d = _f64(pred) - _f64(target)
    return _finish(grad, loss, d ** 2, 2.0 * d, gscale)


def smooth_l2(grad, loss, pred, target, gscale):
    d = _f64(pred) - _f64(target)
    return _finish(grad, loss, 0.5 * d ** 2, d, gscale)


def mae(grad, loss, pred, target, gscale):
    d = _f64(pred) - _f64(target)
    # torch: sign(NaN) = 0 in l1_loss's backward
    return _finish(grad, loss, np.abs(d), np.where(np.isnan(d), 0.0, np.sign(d)), gscale)


def huber(grad, loss, pred, target, gscale, delta):
    d = _f64(pred) - _f64(target)
    a = np.abs(d)
    with np.errstate(invalid="ignore"):
        l = np.where(a < delta, 0.5 * d ** 2, delta * (a - 0.5 * delta))
        g = np.where(d < -delta, -delta, np.where(d > delta, delta, d))
    return _finish(grad, loss, l, g, gscale)


def smooth_l1(grad, loss, pred, target, gscale, beta):
    if beta == 0.0:
        return mae(grad, loss, pred, target, gscale)
    d = _f64(pred) - _f64(target)
    a = np.abs(d)
    with np.errstate(invalid="ignore", over="ignore"):   # in the branch np.where drops
        l = np.where(a < beta, 0.5 * d ** 2 / beta, a - 0.5 * beta)
        g = np.where(d <= -beta, -1.0, np.where(d >= beta, 1.0, d / beta))   # torch's compares
    return _finish(grad, loss, l, g, gscale)


def sgd(param, momentum_buffer, grad, step, lr, momentum, dampening, weight_decay, grad_scale,
        nesterov, maximize):
    """torch.optim.SGD's for-loop, in float64."""
    p = _f64(param)
    g = _f64(grad) * grad_scale
    if maximize:
        g = -g
    if weight_decay != 0.0:
        g = g + weight_decay * p
    if momentum != 0.0:
        if step <= 1:
            buf = g.copy()
        else:
            buf = momentum * _f64(momentum_buffer) + (1.0 - dampening) * g
        momentum_buffer[...] = buf
        g = g + momentum * buf if nesterov else buf
    param[...] = p - lr * g

