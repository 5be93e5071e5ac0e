"""C backend: regression losses and SGD (csrc/regression_tmpl.h, csrc/optim_tmpl.h)."""
from ._lib import is_f32 as _is_f32, P32 as _P32, P64 as _P64, from_buffer as _from_buffer, lib, ptr as _ptr

def _pick(name):
    return getattr(lib, f"fl_{name}_f32"), getattr(lib, f"fl_{name}_f64")


def _ew(name):
    f32, f64 = _pick(name)

    def run(grad, loss, pred, target, gscale, *hyper):
        if _is_f32(pred.dtype):
            f, ct = f32, _P32
        else:
            f, ct = f64, _P64
        return f(_ptr(grad, ct), _ptr(loss, ct), _from_buffer(ct, pred), _from_buffer(ct, target),
                 pred.size, gscale, *hyper)

    run.__name__ = name
    return run


mse = _ew("mse")
smooth_l2 = _ew("smooth_l2")
mae = _ew("mae")
huber = _ew("huber")
smooth_l1 = _ew("smooth_l1")

_sgd = _pick("sgd")


def sgd(param, momentum_buffer, grad, step, lr, momentum, dampening, weight_decay, grad_scale,
        nesterov, maximize):
    if _is_f32(param.dtype):
        f, ct = _sgd[0], _P32
    else:
        f, ct = _sgd[1], _P64
    buf = momentum_buffer if momentum != 0.0 else None
    f(_from_buffer(ct, param), _ptr(buf, ct), _from_buffer(ct, grad), param.size, step,
      lr, momentum, dampening, weight_decay, grad_scale, int(nesterov), int(maximize))

