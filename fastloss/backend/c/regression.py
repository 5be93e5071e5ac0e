"""The C backend: thin calls into the cffi extension built from csrc/ (fastloss._fastloss_c).

Arrays reach C as pointers from ffi.from_buffer (no copy); cffi releases the GIL around
every call.  Same functions and signatures as the other backends."""
from .. import _validate
from .._fastloss_c import ffi, lib

NAME = "c"
_F32 = _validate.F32
_NULL = ffi.NULL
_from_buffer = ffi.from_buffer


def _ptr(a, ctype):
    return _NULL if a is None else _from_buffer(ctype, a)


def _pick(name):
    return getattr(lib, f"fl_{name}_f32"), getattr(lib, f"fl_{name}_f64")


def _ew(name):
    f32, f64 = _pick(name)

    def run(grad, loss, pred, target, gscale, *hyper):
        if pred.dtype is _F32:
            f, ct = f32, "float[]"
        else:
            f, ct = f64, "double[]"
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
    if param.dtype is _F32:
        f, ct = _sgd[0], "float[]"
    else:
        f, ct = _sgd[1], "double[]"
    buf = momentum_buffer if momentum != 0.0 else None
    f(_from_buffer(ct, param), _ptr(buf, ct), _from_buffer(ct, grad), param.size, step,
      lr, momentum, dampening, weight_decay, grad_scale, int(nesterov), int(maximize))


def set_num_threads(n):
    lib.fl_set_num_threads(int(n))


def info():
    return {"simd path": ffi.string(lib.fl_simd_path()).decode(), "abi version": lib.fl_abi_version(),
            "threads": lib.fl_get_num_threads()}
