"""SGD with momentum, dampening, Nesterov, weight decay: torch.optim.SGD semantics."""
import numpy as np

from .. import _config
from .. import _validate as V
from .._fast import entry as _E
from ._base import STEP_MAX, Optimizer, arrays_ok, check_arrays

_INF = float("inf")


def _check(lr, momentum, dampening, weight_decay, nesterov, maximize):
    lr = V.nonneg(lr, "lr")
    momentum = V.nonneg(momentum, "momentum")
    dampening = V.finite(dampening, "dampening")
    weight_decay = V.nonneg(weight_decay, "weight_decay")
    nesterov = V.flag(nesterov, "nesterov")
    maximize = V.flag(maximize, "maximize")
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError(f"nesterov: requires momentum > 0 and dampening == 0 "
                         f"(got momentum={momentum}, dampening={dampening})")
    return lr, momentum, dampening, weight_decay, nesterov, maximize


def sgd_(param, grad, momentum_buffer=None, *, step, lr, momentum=0.0, dampening=0.0,
         nesterov=False, weight_decay=0.0, maximize=False, grad_scale=1.0, backend=None):
    """One SGD update of ``param`` in place (``torch.optim.SGD`` semantics exactly).

    ``g = grad * grad_scale``; ``g = -g`` if maximize; ``g += weight_decay * param``; with
    momentum: ``buf = g`` at ``step == 1``, later ``buf = momentum*buf + (1 - dampening)*g``,
    and ``g = g + momentum*buf`` (Nesterov) or ``g = buf``; then ``param -= lr * g``.

    Args:
      param: float32/float64 ndarray, C-contiguous, writeable; updated in place.
      grad: ndarray of param's shape and dtype.
      momentum_buffer: like param, updated in place; required when momentum != 0.
      step: the 1-based count of this update (keyword, required).
      lr, momentum, weight_decay: >= 0.  nesterov needs momentum > 0 and dampening == 0.
      grad_scale: multiplies the gradient first (clipping/loss scaling in the same pass).
    Reference: https://pytorch.org/docs/stable/generated/torch.optim.SGD.html
    """
    # the C fast path (fastloss._fast); NotImplemented: the checks below
    r = _E.sgd(param, grad, momentum_buffer, step, lr, momentum, dampening, nesterov, weight_decay,
               maximize, grad_scale, backend)
    if r is not NotImplemented:
        return r
    if not (type(step) is int and 0 < step <= STEP_MAX and type(lr) is float and lr >= 0.0
            and type(momentum) is float and momentum >= 0.0 and type(dampening) is float
            and -_INF < dampening < _INF and type(weight_decay) is float and weight_decay >= 0.0
            and type(grad_scale) is float and -_INF < grad_scale < _INF
            and nesterov is False and (maximize is False or maximize is True)):
        # not the common case (ints, numpy scalars, Nesterov, bad values): full checks
        step = V.step_count(step)
        lr, momentum, dampening, weight_decay, nesterov, maximize = _check(
            lr, momentum, dampening, weight_decay, nesterov, maximize)
        grad_scale = V.finite(grad_scale, "grad_scale")
    if momentum != 0.0:
        if momentum_buffer is None:
            V.inplace(param, "param")
            raise ValueError("momentum_buffer: required when momentum != 0")
        if not arrays_ok(param, grad, momentum_buffer):
            check_arrays(param, grad, [(momentum_buffer, "momentum_buffer")])
    elif not arrays_ok(param, grad):
        check_arrays(param, grad, [])
    _config.module(backend).sgd(param, momentum_buffer, grad, step, lr, momentum, dampening,
                                weight_decay, grad_scale, nesterov, maximize)
    return param


class SGD(Optimizer):
    """Stateful SGD over a list of arrays or parameter groups; see :func:`sgd_`.

    ``opt.step(grads)`` updates the parameters in place; hyperparameters are attributes
    (``opt.lr = 0.05``); ``lr`` may be a schedule (a callable step -> lr, see
    fastloss.schedules).  ``state_dict()``/``load_state_dict()`` round-trip bit-exactly.
    """
    _hyper = {"lr": None, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0,
              "nesterov": False, "maximize": False}
    _state_arrays = ("momentum_buffer",)

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                 maximize=False, *, backend=None):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize), backend=backend)

    def _validate_group(self, g):
        self._check_lr(g["lr"])
        _check(0.0, g["momentum"], g["dampening"], g["weight_decay"], g["nesterov"], g["maximize"])

    def _prepare(self, plan):
        for group, i, p, g, st, step, lr in plan:
            if group["momentum"] != 0.0 and st["momentum_buffer"] is None:
                st["momentum_buffer"] = np.zeros_like(p)
                st["fresh"] = True

    def _update(self, kernels, group, p, g, st, step, lr, gs):
        # a buffer created by this step starts as g, as torch's `buf = clone(d_p)`
        first = st.pop("fresh", False)
        args = (1 if first else step, lr, float(group["momentum"]), float(group["dampening"]),
                bool(group["nesterov"]), float(group["weight_decay"]), bool(group["maximize"]), gs)
        if _E.sgd(p, g, st["momentum_buffer"], *args, self.backend) is not NotImplemented:
            return  # the C fast path took it (fastloss._fast)
        kernels.sgd(p, st["momentum_buffer"], g, args[0], lr, args[2], args[3], args[5], gs, args[4], args[6])
