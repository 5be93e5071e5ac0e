"""The Numba backend: the same functions, signatures and semantics as fastloss.backend.c.

Numba's default "workqueue" threading layer aborts when two Python threads launch parallel
kernels at once; fastloss asks for a thread-safe layer (OpenMP, else TBB) before any kernel
is compiled.  If the process already launched numba parallel code with another layer, that
layer stays (numba cannot switch) and `python -m fastloss info` shows it.
"""
import numba

if numba.config.THREADING_LAYER == "default":
    numba.config.THREADING_LAYER = "threadsafe"

from . import optim as _optim  # noqa: E402
from . import regression as _regression  # noqa: E402
from .classification import (  # noqa: E402,F401
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, cross_entropy_prob, hinge,
    multi_margin, squared_hinge)
from ._common import plan, set_num_threads  # noqa: E402,F401
from .adaptive import adagrad, adam, norm_acc, rmsprop, scale  # noqa: E402,F401

NAME = "numba"


def _ew(name):
    kind = _regression.KIND[name]
    serial, parallel = _regression.ew_loss

    def run(grad, loss, pred, target, gscale, h=0.0):
        if pred.ndim != 1:  # the kernels take 1-D views (the API checked: one shape, contiguous)
            pred, target = pred.reshape(-1), target.reshape(-1)
            grad = None if grad is None else grad.reshape(-1)
            loss = None if loss is None else loss.reshape(-1)
        nch = plan(pred.size)
        return (serial if nch == 1 else parallel)(kind, grad, loss, pred, target, gscale, h, nch)

    run.__name__ = name
    return run


mse = _ew("mse")
smooth_l2 = _ew("smooth_l2")
mae = _ew("mae")
huber = _ew("huber")
_smooth_l1 = _ew("smooth_l1")


def smooth_l1(grad, loss, pred, target, gscale, beta):
    if pred.dtype.type(beta) == 0:  # also a float32 beta below ~7e-46, which rounds to 0 (as C)
        return mae(grad, loss, pred, target, gscale)
    if beta < 2.0 ** -100:
        # its constants scaled, in a chunk compiled without fast-math (regression.py), called
        # from here: inside the fast-math driver its arithmetic would get the flags again
        flat = lambda a: None if a is None else a.reshape(-1)  # noqa: E731
        return _regression.smooth_l1_tiny(flat(grad), flat(loss), pred.reshape(-1), target.reshape(-1),
                                          gscale, beta)
    return _smooth_l1(grad, loss, pred, target, gscale, beta)


_sgd_serial, _sgd_parallel = _optim.KERNELS["sgd"]


def sgd(param, momentum_buffer, grad, step, lr, momentum, dampening, weight_decay, grad_scale,
        nesterov, maximize):
    buf = momentum_buffer if momentum != 0.0 else None
    if param.ndim != 1:
        param, grad = param.reshape(-1), grad.reshape(-1)
        buf = None if buf is None else buf.reshape(-1)
    nch = plan(param.size)
    (_sgd_serial if nch == 1 else _sgd_parallel)(
        param, buf, grad, step <= 1, lr, momentum, dampening, weight_decay,
        -grad_scale if maximize else grad_scale, bool(nesterov), nch)


def threading_layer():
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        return f"{numba.config.THREADING_LAYER} (not started yet)"


def info():
    return {"numba": numba.__version__, "threading layer": threading_layer(),
            "fastmath flags": "nsz, arcp, contract, reassoc (NaN/Inf kept)"}

