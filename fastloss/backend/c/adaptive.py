"""C backend: Adam/AdamW, Adagrad, RMSprop (csrc/adaptive_tmpl.h) and the gradient-norm
kernels of clip_grad_norm (csrc/norm_tmpl.h)."""
from ._lib import is_f32 as _is_f32, NULL as _NULL, P32 as _P32, P64 as _P64, from_buffer as _fb, lib

_adam32, _adam64 = lib.fl_adam_f32, lib.fl_adam_f64
_adagrad32, _adagrad64 = lib.fl_adagrad_f32, lib.fl_adagrad_f64
_rmsprop32, _rmsprop64 = lib.fl_rmsprop_f32, lib.fl_rmsprop_f64
_norm32, _norm64 = lib.fl_norm_acc_f32, lib.fl_norm_acc_f64
_scale32, _scale64 = lib.fl_scale_f32, lib.fl_scale_f64


def adam(param, exp_avg, exp_avg_sq, max_exp_avg_sq, grad, step, lr, beta1, beta2, eps,
         weight_decay, grad_scale, decoupled_weight_decay, amsgrad, maximize):
    if _is_f32(param.dtype):
        f, ct = _adam32, _P32
    else:
        f, ct = _adam64, _P64
    f(_fb(ct, param), _fb(ct, exp_avg), _fb(ct, exp_avg_sq),
      _fb(ct, max_exp_avg_sq) if amsgrad else _NULL, _fb(ct, grad), param.size, step,
      lr, beta1, beta2, eps, weight_decay, grad_scale, decoupled_weight_decay, amsgrad, maximize)


def adagrad(param, state_sum, grad, step, lr, lr_decay, weight_decay, eps, grad_scale, maximize):
    if _is_f32(param.dtype):
        f, ct = _adagrad32, _P32
    else:
        f, ct = _adagrad64, _P64
    f(_fb(ct, param), _fb(ct, state_sum), _fb(ct, grad), param.size, step,
      lr, lr_decay, weight_decay, eps, grad_scale, maximize)


def rmsprop(param, square_avg, momentum_buffer, grad_avg, grad, step, lr, alpha, eps,
            weight_decay, momentum, centered, grad_scale, maximize):
    if _is_f32(param.dtype):
        f, ct = _rmsprop32, _P32
    else:
        f, ct = _rmsprop64, _P64
    f(_fb(ct, param), _fb(ct, square_avg), _fb(ct, momentum_buffer) if momentum > 0.0 else _NULL,
      _fb(ct, grad_avg) if centered else _NULL, _fb(ct, grad), param.size,
      lr, alpha, eps, weight_decay, momentum, grad_scale, centered, maximize)


def norm_acc(x, order):
    """The norm accumulator of one array (see fastloss.h: fl_norm_acc)."""
    if _is_f32(x.dtype):
        return _norm32(_fb(_P32, x), x.size, order)
    return _norm64(_fb(_P64, x), x.size, order)


def scale(x, s):
    """x *= s in place."""
    if _is_f32(x.dtype):
        _scale32(_fb(_P32, x), x.size, s)
    else:
        _scale64(_fb(_P64, x), x.size, s)
