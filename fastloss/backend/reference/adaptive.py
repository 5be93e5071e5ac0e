"""Reference: Adam/AdamW, Adagrad, RMSprop and gradient norms, written as torch.optim's
for-loop implementations (``_single_tensor_adam`` and friends, torch 2.13) are written, in
float64: the textbook formulas, nothing hoisted."""
import math

import numpy as np


def _quiet(f):
    """Overflow and NaN are results here (as in torch), not warnings."""
    def run(*args):
        with np.errstate(all="ignore"):
            return f(*args)
    run.__name__, run.__doc__ = f.__name__, f.__doc__
    return run


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _lerp(start, end, weight):
    """torch.lerp: start + w (end - start) for |w| < 0.5, else end - (end - start)(1 - w)."""
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1.0 - weight)


def _grad(grad, grad_scale, maximize):
    g = _f64(grad) * grad_scale
    return -g if maximize else g


@_quiet
def adam(param, exp_avg, exp_avg_sq, max_exp_avg_sq, grad, step, lr, beta1, beta2, eps,
         weight_decay, grad_scale, decoupled_weight_decay, amsgrad, maximize):
    """torch.optim.Adam / AdamW, ``_single_tensor_adam``."""
    p = _f64(param)
    g = _grad(grad, grad_scale, maximize)
    if weight_decay != 0.0:
        if decoupled_weight_decay:
            p = p * (1.0 - lr * weight_decay)
        else:
            g = g + weight_decay * p
    m = _lerp(_f64(exp_avg), g, 1.0 - beta1)
    v = _f64(exp_avg_sq) * beta2 + (1.0 - beta2) * g * g
    bias_correction1 = 1.0 - beta1 ** step
    bias_correction2 = 1.0 - beta2 ** step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = math.sqrt(bias_correction2)
    if amsgrad:
        vmax = np.maximum(_f64(max_exp_avg_sq), v)  # NaN propagates, as torch.maximum
        max_exp_avg_sq[...] = vmax
        denom = np.sqrt(vmax) / bias_correction2_sqrt + eps
    else:
        denom = np.sqrt(v) / bias_correction2_sqrt + eps
    param[...] = p - step_size * (m / denom)
    exp_avg[...] = m
    exp_avg_sq[...] = v


@_quiet
def adagrad(param, state_sum, grad, step, lr, lr_decay, weight_decay, eps, grad_scale, maximize):
    """torch.optim.Adagrad, ``_single_tensor_adagrad`` (dense gradients)."""
    p = _f64(param)
    g = _grad(grad, grad_scale, maximize)
    if weight_decay != 0.0:
        g = g + weight_decay * p
    clr = lr / (1.0 + (step - 1) * lr_decay)
    s = _f64(state_sum) + g * g
    std = np.sqrt(s) + eps
    param[...] = p - clr * (g / std)
    state_sum[...] = s


@_quiet
def rmsprop(param, square_avg, momentum_buffer, grad_avg, grad, step, lr, alpha, eps,
            weight_decay, momentum, centered, grad_scale, maximize):
    """torch.optim.RMSprop, ``_single_tensor_rmsprop``."""
    p = _f64(param)
    g = _grad(grad, grad_scale, maximize)
    if weight_decay != 0.0:
        g = g + weight_decay * p
    sq = _f64(square_avg) * alpha + (1.0 - alpha) * g * g
    square_avg[...] = sq
    if centered:
        ga = _lerp(_f64(grad_avg), g, 1.0 - alpha)
        grad_avg[...] = ga
        avg = np.sqrt(sq - ga * ga) + eps
    else:
        avg = np.sqrt(sq) + eps
    if momentum > 0.0:
        buf = _f64(momentum_buffer) * momentum + g / avg
        momentum_buffer[...] = buf
        param[...] = p - lr * buf
    else:
        param[...] = p - lr * (g / avg)


@_quiet
def norm_acc(x, order):
    """sum |x|^order (order 1, 2, any finite > 0) or max |x| (order inf), in float64; NaN if any
    element is NaN."""
    a = np.abs(_f64(x)).ravel()
    if math.isinf(order):
        return float(np.max(a)) if a.size else 0.0  # np.max propagates NaN
    if order == 2.0:
        return float(np.sum(a * a))
    if order == 1.0:
        return float(np.sum(a))
    return float(np.sum(a ** order))


@_quiet
def scale(x, s):
    """x *= s in place (s rounded to x's dtype first, as the compiled kernels do)."""
    np.multiply(x, x.dtype.type(s), out=x)
