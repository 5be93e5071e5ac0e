"""Adam and AdamW: torch.optim.Adam / torch.optim.AdamW semantics."""
import numpy as np

from .. import _config
from .. import _validate as V
from .._fast import entry as _E
from ._base import STEP_MAX, Optimizer, arrays_ok, check_arrays

_INF = float("inf")


def _beta(x, name):
    v = V.real(x, name)
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{name}: must be in [0, 1), got {x!r}")
    return v


def _check(lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay, amsgrad, maximize,
           beta_names=("beta1", "beta2")):
    """The hyperparameters as torch.optim.Adam checks them (every error names the argument)."""
    return (V.nonneg(lr, "lr"), _beta(beta1, beta_names[0]), _beta(beta2, beta_names[1]),
            V.nonneg(eps, "eps"), V.nonneg(weight_decay, "weight_decay"),
            V.flag(decoupled_weight_decay, "decoupled_weight_decay"), V.flag(amsgrad, "amsgrad"),
            V.flag(maximize, "maximize"))


def adam_(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq=None, *, step, lr=1e-3, beta1=0.9,
          beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False, amsgrad=False,
          maximize=False, grad_scale=1.0, backend=None):
    """One Adam (or AdamW) update of ``param`` in place, ``torch.optim.Adam`` semantics.

    ``g = grad * grad_scale``, negated if maximize; weight decay: ``param *= 1 - lr*wd``
    (decoupled, AdamW) or ``g += wd * param``; ``exp_avg = lerp(exp_avg, g, 1 - beta1)``;
    ``exp_avg_sq = beta2*exp_avg_sq + (1 - beta2)*g*g``; with amsgrad,
    ``max_exp_avg_sq = max(max_exp_avg_sq, exp_avg_sq)`` is used in its place;
    ``param -= lr/bc1 * exp_avg / (sqrt(exp_avg_sq)/sqrt(bc2) + eps)``, where
    ``bc = 1 - beta**step``.  One memory pass; the per-step scalars are computed once.

    Args:
      param: float32/float64 ndarray, C-contiguous, writeable; updated in place.
      grad: ndarray of param's shape and dtype (read only).
      exp_avg, exp_avg_sq: state like param (zeros before step 1), updated in place.
      max_exp_avg_sq: state like param, required iff amsgrad (ignored otherwise).
      step: the 1-based count of this update (keyword, required).
      lr, eps, weight_decay: >= 0.  beta1, beta2: in [0, 1).
      grad_scale: multiplies the gradient first (clipping or loss scaling in the same pass).
    No two arrays may share memory; nothing is written unless every check passes.
    Reference: https://pytorch.org/docs/stable/generated/torch.optim.Adam.html
    """
    return _adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
                 weight_decay, decoupled_weight_decay, amsgrad, maximize, grad_scale, backend)


def adamw_(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq=None, *, step, lr=1e-3, beta1=0.9,
           beta2=0.999, eps=1e-8, weight_decay=0.01, amsgrad=False, maximize=False,
           grad_scale=1.0, backend=None):
    """One AdamW update in place: :func:`adam_` with decoupled weight decay
    (``param *= 1 - lr*weight_decay`` before the Adam step), weight_decay 0.01 by default.
    Reference: https://pytorch.org/docs/stable/generated/torch.optim.AdamW.html
    """
    return _adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
                 weight_decay, True, amsgrad, maximize, grad_scale, backend)


def _adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
          weight_decay, decoupled_weight_decay, amsgrad, maximize, grad_scale, backend):
    """adam_ and adamw_: validate (the common case the quick way), then dispatch."""
    # the C fast path (fastloss._fast); NotImplemented: the checks below
    r = _E.adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, lr, beta1, beta2, eps,
                weight_decay, decoupled_weight_decay, amsgrad, maximize, grad_scale, backend)
    if r is not NotImplemented:
        return r
    if not (type(step) is int and 0 < step <= STEP_MAX and type(lr) is float and lr >= 0.0
            and type(beta1) is float and 0.0 <= beta1 < 1.0 and type(beta2) is float
            and 0.0 <= beta2 < 1.0 and type(eps) is float and eps >= 0.0
            and type(weight_decay) is float and weight_decay >= 0.0
            and type(grad_scale) is float and -_INF < grad_scale < _INF
            and (amsgrad is False or amsgrad is True) and (maximize is False or maximize is True)
            and (decoupled_weight_decay is False or decoupled_weight_decay is True)):
        step = V.step_count(step)
        lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay, amsgrad, maximize = _check(
            lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay, amsgrad, maximize)
        grad_scale = V.finite(grad_scale, "grad_scale")
    if amsgrad:
        if not arrays_ok(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq):
            if max_exp_avg_sq is None:
                V.inplace(param, "param")
                raise ValueError("max_exp_avg_sq: required when amsgrad=True")
            check_arrays(param, grad, [(exp_avg, "exp_avg"), (exp_avg_sq, "exp_avg_sq"),
                                       (max_exp_avg_sq, "max_exp_avg_sq")])
    elif not arrays_ok(param, grad, exp_avg, exp_avg_sq):
        check_arrays(param, grad, [(exp_avg, "exp_avg"), (exp_avg_sq, "exp_avg_sq")])
    _config.module(backend).adam(param, exp_avg, exp_avg_sq, max_exp_avg_sq, grad, step, lr,
                                 beta1, beta2, eps, weight_decay, grad_scale,
                                 decoupled_weight_decay, amsgrad, maximize)
    return param


class Adam(Optimizer):
    """Stateful Adam over a list of arrays, parameter groups or a FlatParams; see :func:`adam_`.

    torch.optim.Adam's signature, defaults and state (``exp_avg``, ``exp_avg_sq``,
    ``max_exp_avg_sq`` with amsgrad, created as zeros at the first step).  ``opt.step(grads)``;
    hyperparameters are attributes (``opt.betas = (0.8, 0.99)``); ``lr`` may be a schedule.
    """
    _hyper = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
              "amsgrad": False, "maximize": False, "decoupled_weight_decay": False}
    _state_arrays = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, maximize=False, *, decoupled_weight_decay=False, backend=None):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize,
                                      decoupled_weight_decay=decoupled_weight_decay),
                         backend=backend)

    @staticmethod
    def _betas(betas):
        if isinstance(betas, (str, bytes, np.ndarray)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise TypeError(f"betas: must be a pair (beta1, beta2), got {betas!r}")
        return betas[0], betas[1]

    def _validate_group(self, g):
        self._check_lr(g["lr"])
        b1, b2 = self._betas(g["betas"])
        _check(0.0, b1, b2, g["eps"], g["weight_decay"], g["decoupled_weight_decay"], g["amsgrad"],
               g["maximize"], beta_names=("betas[0]", "betas[1]"))

    def _prepare(self, plan):
        for group, i, p, g, st, step, lr in plan:
            # each one on its own: a loaded state_dict may hold one and not the other
            if st["exp_avg"] is None:
                st["exp_avg"] = np.zeros_like(p)
            if st["exp_avg_sq"] is None:
                st["exp_avg_sq"] = np.zeros_like(p)
            if group["amsgrad"] and st["max_exp_avg_sq"] is None:
                st["max_exp_avg_sq"] = np.zeros_like(p)

    def _kernel_args(self, g):
        b1, b2 = g["betas"]
        return (float(b1), float(b2), float(g["eps"]), float(g["weight_decay"]),
                bool(g["decoupled_weight_decay"]), bool(g["amsgrad"]), bool(g["maximize"]))

    def _update(self, kernels, group, p, g, st, step, lr, gs):
        b1, b2, eps, wd, decoupled, amsgrad, maximize = self._args(group)
        vmax = st["max_exp_avg_sq"] if amsgrad else None
        if _E.adam(p, g, st["exp_avg"], st["exp_avg_sq"], vmax, step, lr, b1, b2, eps, wd, decoupled,
                   amsgrad, maximize, gs, self.backend) is not NotImplemented:
            return  # the C fast path took it (fastloss._fast)
        kernels.adam(p, st["exp_avg"], st["exp_avg_sq"], vmax, g, step, lr, b1, b2, eps, wd, gs, decoupled,
                     amsgrad, maximize)


class AdamW(Adam):
    """Adam with decoupled weight decay (torch.optim.AdamW): weight_decay 0.01 by default."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, maximize=False, *, backend=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True,
                         backend=backend)
