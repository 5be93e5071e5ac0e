"""Adagrad: torch.optim.Adagrad semantics (dense gradients)."""
import numpy as np

from .. import _config
from .. import _validate as V
from .._fast import entry as _E
from ._base import STEP_MAX, Optimizer, arrays_ok, check_arrays

_INF = float("inf")


def _check(lr, lr_decay, weight_decay, eps, maximize):
    """The hyperparameters as torch.optim.Adagrad checks them."""
    return (V.nonneg(lr, "lr"), V.nonneg(lr_decay, "lr_decay"), V.nonneg(weight_decay, "weight_decay"),
            V.nonneg(eps, "eps"), V.flag(maximize, "maximize"))


def adagrad_(param, grad, state_sum, *, step, lr=1e-2, lr_decay=0.0, weight_decay=0.0, eps=1e-10,
             maximize=False, grad_scale=1.0, backend=None):
    """One Adagrad update of ``param`` in place, ``torch.optim.Adagrad`` semantics.

    ``g = grad * grad_scale``, negated if maximize; ``g += weight_decay * param``;
    ``state_sum += g*g``; ``param -= clr * g / (sqrt(state_sum) + eps)`` with
    ``clr = lr / (1 + (step - 1) * lr_decay)``.  One memory pass.

    Args:
      param: float32/float64 ndarray, C-contiguous, writeable; updated in place.
      grad: ndarray of param's shape and dtype (read only).
      state_sum: state like param, updated in place; before step 1 it holds torch's
        ``initial_accumulator_value`` (zeros by default).
      step: the 1-based count of this update (keyword, required).
      lr, lr_decay, weight_decay, eps: >= 0.
      grad_scale: multiplies the gradient first.
    No two arrays may share memory; nothing is written unless every check passes.
    Reference: https://pytorch.org/docs/stable/generated/torch.optim.Adagrad.html
    """
    # the C fast path (fastloss._fast); NotImplemented: the checks below
    r = _E.adagrad(param, grad, state_sum, step, lr, lr_decay, weight_decay, eps, maximize, grad_scale, backend)
    if r is not NotImplemented:
        return r
    if not (type(step) is int and 0 < step <= STEP_MAX and type(lr) is float and lr >= 0.0
            and type(lr_decay) is float and lr_decay >= 0.0 and type(weight_decay) is float
            and weight_decay >= 0.0 and type(eps) is float and eps >= 0.0
            and type(grad_scale) is float and -_INF < grad_scale < _INF
            and (maximize is False or maximize is True)):
        step = V.step_count(step)
        lr, lr_decay, weight_decay, eps, maximize = _check(lr, lr_decay, weight_decay, eps, maximize)
        grad_scale = V.finite(grad_scale, "grad_scale")
    if not arrays_ok(param, grad, state_sum):
        check_arrays(param, grad, [(state_sum, "state_sum")])
    _config.module(backend).adagrad(param, state_sum, grad, step, lr, lr_decay, weight_decay, eps,
                                    grad_scale, maximize)
    return param


class Adagrad(Optimizer):
    """Stateful Adagrad over a list of arrays, parameter groups or a FlatParams; see
    :func:`adagrad_`.  torch.optim.Adagrad's signature, defaults and state: ``sum`` is created
    at construction, filled with ``initial_accumulator_value`` (>= 0)."""
    _hyper = {"lr": 1e-2, "lr_decay": 0.0, "weight_decay": 0.0, "initial_accumulator_value": 0.0,
              "eps": 1e-10, "maximize": False}
    _state_arrays = ("sum",)

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                 eps=1e-10, maximize=False, *, backend=None):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps,
                                      maximize=maximize), backend=backend)
        self._init_state("sum", lambda g: float(g["initial_accumulator_value"]))

    def _validate_group(self, g):
        self._check_lr(g["lr"])
        _check(0.0, g["lr_decay"], g["weight_decay"], g["eps"], g["maximize"])
        V.nonneg(g["initial_accumulator_value"], "initial_accumulator_value")

    def _prepare(self, plan):
        # only a loaded state_dict without 'sum' gets here: start it as construction does
        for group, i, p, g, st, step, lr in plan:
            if st["sum"] is None:
                st["sum"] = np.full_like(p, float(group["initial_accumulator_value"]))

    def _kernel_args(self, g):
        return float(g["lr_decay"]), float(g["weight_decay"]), float(g["eps"]), bool(g["maximize"])

    def _update(self, kernels, group, p, g, st, step, lr, gs):
        lr_decay, wd, eps, maximize = self._args(group)
        if _E.adagrad(p, g, st["sum"], step, lr, lr_decay, wd, eps, maximize, gs,
                      self.backend) is not NotImplemented:
            return  # the C fast path took it (fastloss._fast)
        kernels.adagrad(p, st["sum"], g, step, lr, lr_decay, wd, eps, gs, maximize)
