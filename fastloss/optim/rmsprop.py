"""RMSprop: torch.optim.RMSprop semantics."""
import numpy as np

from .. import _config
from .. import _validate as V
from .._fast import entry as _E
from ._base import STEP_MAX, Optimizer, arrays_ok, check_arrays

_INF = float("inf")


def _check(lr, alpha, eps, weight_decay, momentum, centered, maximize):
    """The hyperparameters as torch.optim.RMSprop checks them (alpha >= 0, as torch)."""
    return (V.nonneg(lr, "lr"), V.nonneg(alpha, "alpha"), V.nonneg(eps, "eps"),
            V.nonneg(weight_decay, "weight_decay"), V.nonneg(momentum, "momentum"),
            V.flag(centered, "centered"), V.flag(maximize, "maximize"))


def rmsprop_(param, grad, square_avg, momentum_buffer=None, grad_avg=None, *, step, lr=1e-2,
             alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False, maximize=False,
             grad_scale=1.0, backend=None):
    """One RMSprop update of ``param`` in place, ``torch.optim.RMSprop`` semantics.

    ``g = grad * grad_scale``, negated if maximize; ``g += weight_decay * param``;
    ``square_avg = alpha*square_avg + (1 - alpha)*g*g``; centered:
    ``grad_avg = lerp(grad_avg, g, 1 - alpha)``, ``avg = sqrt(square_avg - grad_avg**2) + eps``,
    else ``avg = sqrt(square_avg) + eps``; with momentum ``buf = momentum*buf + g/avg`` and
    ``param -= lr*buf``, else ``param -= lr*g/avg``.  One memory pass.

    Args:
      param: float32/float64 ndarray, C-contiguous, writeable; updated in place.
      grad: ndarray of param's shape and dtype (read only).
      square_avg: state like param (zeros before step 1), updated in place.
      momentum_buffer: state like param, required iff momentum > 0 (ignored otherwise).
      grad_avg: state like param, required iff centered (ignored otherwise).
      step: the 1-based count of this update (keyword, required; RMSprop's update does not
        depend on it, it is checked for the same conventions as every kernel).
      lr, alpha, eps, weight_decay, momentum: >= 0.
      grad_scale: multiplies the gradient first.
    No two arrays may share memory; nothing is written unless every check passes.
    Reference: https://pytorch.org/docs/stable/generated/torch.optim.RMSprop.html
    """
    # the C fast path (fastloss._fast); NotImplemented: the checks below
    r = _E.rmsprop(param, grad, square_avg, momentum_buffer, grad_avg, step, lr, alpha, eps,
                   weight_decay, momentum, centered, maximize, grad_scale, backend)
    if r is not NotImplemented:
        return r
    if not (type(step) is int and 0 < step <= STEP_MAX and type(lr) is float and lr >= 0.0
            and type(alpha) is float and alpha >= 0.0 and type(eps) is float and eps >= 0.0
            and type(weight_decay) is float and weight_decay >= 0.0 and type(momentum) is float
            and momentum >= 0.0 and type(grad_scale) is float and -_INF < grad_scale < _INF
            and (centered is False or centered is True) and (maximize is False or maximize is True)):
        step = V.step_count(step)
        lr, alpha, eps, weight_decay, momentum, centered, maximize = _check(
            lr, alpha, eps, weight_decay, momentum, centered, maximize)
        grad_scale = V.finite(grad_scale, "grad_scale")
    mom = momentum > 0.0
    if mom and centered:
        ok = arrays_ok(param, grad, square_avg, momentum_buffer, grad_avg)
    elif mom:
        ok = arrays_ok(param, grad, square_avg, momentum_buffer)
    elif centered:
        ok = arrays_ok(param, grad, square_avg, grad_avg)
    else:
        ok = arrays_ok(param, grad, square_avg)
    if not ok:
        states = [(square_avg, "square_avg")]
        if mom:
            states.append((momentum_buffer, "momentum_buffer"))
        if centered:
            states.append((grad_avg, "grad_avg"))
        check_arrays(param, grad, states)
    _config.module(backend).rmsprop(param, square_avg, momentum_buffer, grad_avg, grad, step, lr,
                                    alpha, eps, weight_decay, momentum, centered, grad_scale,
                                    maximize)
    return param


class RMSprop(Optimizer):
    """Stateful RMSprop over a list of arrays, parameter groups or a FlatParams; see
    :func:`rmsprop_`.  torch.optim.RMSprop's signature, defaults and state (``square_avg``,
    ``momentum_buffer`` with momentum > 0, ``grad_avg`` when centered; zeros when created)."""
    _hyper = {"lr": 1e-2, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0,
              "centered": False, "maximize": False}
    _state_arrays = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, maximize=False, *, backend=None):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize),
                         backend=backend)

    def _validate_group(self, g):
        self._check_lr(g["lr"])
        _check(0.0, g["alpha"], g["eps"], g["weight_decay"], g["momentum"], g["centered"], g["maximize"])

    def _prepare(self, plan):
        for group, i, p, g, st, step, lr in plan:
            if st["square_avg"] is None:
                st["square_avg"] = np.zeros_like(p)
            if group["momentum"] > 0 and st["momentum_buffer"] is None:
                st["momentum_buffer"] = np.zeros_like(p)
            if group["centered"] and st["grad_avg"] is None:
                st["grad_avg"] = np.zeros_like(p)

    def _kernel_args(self, g):
        return (float(g["alpha"]), float(g["eps"]), float(g["weight_decay"]), float(g["momentum"]),
                bool(g["centered"]), bool(g["maximize"]))

    def _update(self, kernels, group, p, g, st, step, lr, gs):
        alpha, eps, wd, momentum, centered, maximize = self._args(group)
        if _E.rmsprop(p, g, st["square_avg"], st["momentum_buffer"], st["grad_avg"], step, lr, alpha,
                      eps, wd, momentum, centered, maximize, gs, self.backend) is not NotImplemented:
            return  # the C fast path took it (fastloss._fast)
        kernels.rmsprop(p, st["square_avg"], st["momentum_buffer"], st["grad_avg"], g, step, lr,
                        alpha, eps, wd, momentum, centered, gs, maximize)
