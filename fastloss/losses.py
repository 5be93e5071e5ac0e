"""Regression losses, fused: one call returns the loss and writes d(loss)/d(pred).

Common semantics (shared by every loss in fastloss):
  * pred, target: array-likes of the same shape, any ndim; no broadcasting.
  * computation dtype: float64 if either input is float64 or not floating, else float32
    (float16 computes in float32); inputs of another dtype or layout are converted, the
    caller's arrays are never modified (except ``out``).
  * returns ``(loss, grad)``, or ``loss`` alone with ``grad=False`` (nothing is written).
    reduction "mean"/"sum": ``loss`` is a NumPy scalar of the computation dtype, accumulated
    in float64; "none": an array of pred's shape, and ``grad`` is the gradient of its sum.
  * ``out``: a writeable C-contiguous array of pred's shape and the computation dtype that
    receives the gradient; it may be ``pred`` itself.
  * arrays are plain ndarrays (or np.memmap); other ndarray subclasses (np.matrix,
    np.ma.MaskedArray, ...) are a TypeError, never silently unwrapped: pass
    ``x.view(numpy.ndarray)`` (the same memory) or ``x.filled(...)``.
  * empty inputs: "sum" -> 0, "mean" -> nan (as torch), empty gradient.

With the default backend "c", each function first offers its arguments to the C fast path
(fastloss._fast): the common valid case runs there without the Python checks; anything else
comes back NotImplemented and takes the checked path below.
"""
import numpy as np

from . import _config
from . import _validate as V
from ._fast import entry as _E

_nan = float("nan")


def _ew_loss(name, pred, target, reduction, grad, out, backend, *hyper):
    mode = V.REDUCTIONS.get(reduction) if type(reduction) is str else None
    if mode is None:
        mode = V.reduction_mode(reduction)
    want_grad = grad if (grad is True or grad is False) else V.flag(grad, "grad")
    p, t, dt = V.loss_pair(pred, target)
    kern = getattr(_config.module(backend), name)
    n = p.size
    if want_grad:
        if out is None:
            g = np.empty(p.shape, dt)
        else:
            g = V.out_array(out, p.shape, dt, "out", ((p, "pred"), (t, "target")))
    else:
        if out is not None:
            raise ValueError("out: given with grad=False (no gradient is computed)")
        g = None
    if mode == 0:
        loss = np.empty(p.shape, dt)
        kern(g, loss, p, t, 1.0, *hyper)
    else:
        gscale = (1.0 / n if n else 0.0) if mode == 1 else 1.0
        s = kern(g, None, p, t, gscale, *hyper)
        if mode == 1:
            s = s / n if n else _nan
        loss = dt.type(s)
    return (loss, g) if want_grad else loss


def mse(pred, target, *, reduction="mean", grad=True, out=None, backend=None):
    """Mean squared error: ``l = (pred - target)**2``, ``dl/dpred = 2 (pred - target)``.

    Args:
      pred, target: array-likes of the same shape.
      reduction: "mean" (default), "sum" or "none".
      grad: also compute the gradient (default True).
      out: optional buffer for the gradient (may be ``pred``).
      backend: "c", "numba", "numpy" or None (the default backend).
    Returns:
      ``(loss, grad)``, or ``loss`` when ``grad=False``.
    Matches ``torch.nn.functional.mse_loss`` and its autograd gradient.
    """
    r = _E.ew(0, pred, target, reduction, grad, out, None, backend)
    if r is not NotImplemented:
        return r
    return _ew_loss("mse", pred, target, reduction, grad, out, backend)


def smooth_l2(pred, target, *, reduction="mean", grad=True, out=None, backend=None):
    """"Smooth L2": half the squared error, ``l = (pred - target)**2 / 2``, ``dl/dpred =
    pred - target`` (= 0.5 * mse).  Arguments and returns as :func:`mse`."""
    r = _E.ew(1, pred, target, reduction, grad, out, None, backend)
    if r is not NotImplemented:
        return r
    return _ew_loss("smooth_l2", pred, target, reduction, grad, out, backend)


def mae(pred, target, *, reduction="mean", grad=True, out=None, backend=None):
    """Mean absolute error (L1): ``l = |pred - target|``, ``dl/dpred = sign(pred - target)``,
    0 where the error is 0 (and where it is NaN), as ``torch.nn.functional.l1_loss``.
    Arguments and returns as :func:`mse`."""
    r = _E.ew(2, pred, target, reduction, grad, out, None, backend)
    if r is not NotImplemented:
        return r
    return _ew_loss("mae", pred, target, reduction, grad, out, backend)


l1 = mae


def huber(pred, target, *, delta=1.0, reduction="mean", grad=True, out=None, backend=None):
    """Huber loss, ``torch.nn.functional.huber_loss``: with ``d = pred - target``,
    ``l = d**2 / 2`` where ``|d| < delta``, else ``delta * (|d| - delta / 2)``;
    ``dl/dpred = clip(d, -delta, delta)``.  ``delta > 0``.  Other arguments as :func:`mse`.
    Reference: Huber, "Robust Estimation of a Location Parameter" (1964)."""
    r = _E.ew(3, pred, target, reduction, grad, out, delta, backend)
    if r is not NotImplemented:
        return r
    delta = V.positive(delta, "delta")
    return _ew_loss("huber", pred, target, reduction, grad, out, backend, delta)


def smooth_l1(pred, target, *, beta=1.0, reduction="mean", grad=True, out=None, backend=None):
    """Smooth L1, ``torch.nn.functional.smooth_l1_loss``: ``l = d**2 / (2 beta)`` where
    ``|d| < beta``, else ``|d| - beta / 2``; ``dl/dpred = clip(d / beta, -1, 1)``.
    ``beta >= 0``; ``beta = 0`` is exactly L1 (:func:`mae`).  Other arguments as :func:`mse`.
    Reference: Girshick, "Fast R-CNN" (2015)."""
    r = _E.ew(4, pred, target, reduction, grad, out, beta, backend)
    if r is not NotImplemented:
        return r
    beta = V.nonneg(beta, "beta")
    return _ew_loss("smooth_l1", pred, target, reduction, grad, out, backend, beta)
