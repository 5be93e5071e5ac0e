"""Classification losses, fused: one call returns the loss and writes its gradient.

Same common semantics as the regression losses (see fastloss.losses): array-likes in, the
computation dtype rules, ``reduction``, ``grad=``, ``out=`` (may be the logits/scores),
``backend=``, empty inputs, errors that name the argument and touch nothing.
"""
import math

import numpy as np

from . import _config
from . import _validate as V
from ._fast import entry as _E

_I64 = np.dtype(np.int64)


def _loss_array(shape, dt, mode):
    return np.empty(shape, dt) if mode == 0 else None


def _result(total, loss, g, dt, mode, want_grad):
    value = loss if mode == 0 else dt.type(total)
    return (value, g) if want_grad else value


def _grad_out(out, want_grad, x, dt, inputs, apart=()):
    """The gradient buffer: out validated against the elementwise inputs (it may be one of
    them) and the arrays in `apart` ((array or None, name): per-class weights, read while
    the gradient is written, so out must not share memory with them at all)."""
    if not want_grad:
        if out is not None:
            raise ValueError("out: given with grad=False (no gradient is computed)")
        return None
    if out is None:
        return np.empty(x.shape, dt)
    g = V.out_array(out, x.shape, dt, "out", tuple((a, n) for a, n in inputs if a is not None))
    for a, name in apart:
        if a is None or (g.base is None and a.base is None and g is not a):
            continue  # two arrays that each own their memory cannot overlap
        if np.may_share_memory(g, a):
            raise ValueError(f"out: shares memory with {name}")
    return g


def _weight_vec(weight, c, dt, name="weight"):
    if weight is None:
        return None
    w = V.asarray(weight, name)
    V._kind_dtype(w.dtype, name)
    if w.shape != (c,):
        raise ValueError(f"{name}: must have shape ({c},) (one value per class), got {w.shape}")
    return V.as_input(w, dt)


_U64_BIG = np.uint64(V.INT64_MAX)


def _class_indices(t, c, ignore_index):
    """Integer class indices t (an integer ndarray) as C-contiguous int64, each in [0, c) or
    equal to ignore_index (None: no ignore_index); else ValueError naming the first bad one as
    given.  uint64 values above 2**63 - 1 are checked before the cast, which would wrap them
    to negative indices (even to ignore_index)."""
    if t.dtype.kind == "u" and t.dtype.itemsize == 8:
        flat = t.reshape(-1)
        if flat.size and flat.max() > _U64_BIG:  # rare: the check in NumPy, on the uint64 values
            bad = flat >= c
            if ignore_index is not None and ignore_index >= 0:
                bad &= flat != np.uint64(ignore_index)
            _bad_index(t, int(np.flatnonzero(bad)[0]), c, ignore_index)
    t = V.as_input(t, _I64)
    bad = V.first_bad_target(t, c, ignore_index)
    if bad >= 0:
        _bad_index(t, bad, c, ignore_index)
    return t


def _bad_index(t, bad, c, ignore_index):
    pos = tuple(int(i) for i in np.unravel_index(bad, t.shape)) if t.ndim else ()
    tail = "" if ignore_index is None else f" and is not ignore_index ({ignore_index})"
    raise ValueError(f"target: class index {int(t.reshape(-1)[bad])} at position {pos} "
                     f"is outside [0, {c}){tail}")


def _targets_apart(t0, t):
    """The index targets as `apart` arrays of _grad_out: a float gradient written over int64
    indices the kernel has yet to read (or over the caller's own target array, when t is a
    converted copy) is never allowed."""
    return ((t, "target"),) if t0 is t else ((t, "target"), (t0, "target"))


def cross_entropy(logits, target, *, weight=None, ignore_index=-100, label_smoothing=0.0,
                  reduction="mean", grad=True, out=None, backend=None):
    """Softmax cross-entropy, ``torch.nn.functional.cross_entropy`` semantics, with its
    gradient in the same call.

    With ``p = softmax(logits)`` over the class axis (axis 1, or 0 for unbatched (C,)):
    index targets ``y``: ``l = -w[y] * log p[y]``, mixed with the uniform distribution by
    ``label_smoothing`` eps: ``(1 - eps) * l + eps / C * sum_c -w[c] log p[c]``;
    probability targets ``q`` (floating, logits' shape): ``l = -sum_c w[c] q'[c] log p[c]``,
    ``q' = (1 - eps) q + eps / C``.  ``dl/dlogits = (A p - w * target distribution) * scale``.

    Args:
      logits: (N, C), (C,) unbatched, or (N, C, d1, ..., dk).
      target: integer class indices of shape (N,), () or (N, d1, ..., dk); or floating class
        probabilities of the logits' shape.
      weight: (C,) class weights.  ignore_index: index targets equal to it contribute zero
        loss and gradient and leave the mean's denominator (an int64; with probability
        targets it must be negative, as torch requires).  label_smoothing: in [0, 1].
      reduction: "mean" (index targets: divided by the sum of the targets' weights;
        probabilities: by the number of samples), "sum", or "none" (one loss per sample).
      grad, out, backend: as for every fastloss loss.
    Returns:
      ``(loss, grad)`` or ``loss``.
    Reference: https://pytorch.org/docs/stable/generated/torch.nn.functional.cross_entropy.html
    """
    # the C fast path, for (N, C) logits and index or probability targets (fastloss._fast)
    r = _E.cross_entropy(logits, target, weight, ignore_index, label_smoothing, reduction, grad, out, backend)
    if r is not NotImplemented:
        return r
    mode = V.reduction_mode(reduction)
    want_grad = V.flag(grad, "grad")
    eps = V.closed_unit(label_smoothing, "label_smoothing")
    x = V.asarray(logits, "logits")
    t = V.asarray(target, "target")
    if x.ndim == 0:
        raise ValueError("logits: must have a class axis: shape (C,), (N, C) or (N, C, d1, ...)")
    if x.ndim == 1:
        n, c, s, sample_shape = 1, x.shape[0], 1, ()
    else:
        n, c = x.shape[0], x.shape[1]
        s = math.prod(x.shape[2:])
        sample_shape = (n,) + x.shape[2:]
    if c == 0:
        raise ValueError(f"logits: has no classes (shape {x.shape})")
    ignore_index = V.int64(ignore_index, "ignore_index")
    soft = t.dtype.kind == "f"
    if soft:
        if t.shape != x.shape:
            raise ValueError(f"target: class probabilities must have the logits' shape {x.shape}, got {t.shape}")
        if ignore_index >= 0:  # torch: "ignore_index is not supported for floating point target"
            raise ValueError(f"ignore_index: not supported with class-probability (floating) targets; "
                             f"got {ignore_index} (only a negative value such as the default -100)")
        dt = V.compute_dtype(x.dtype, t.dtype, "logits", "target")
        t = V.as_input(t, dt)
        x = V.as_input(x, dt)
        w = _weight_vec(weight, c, dt)
        # out may be the target itself (same dtype and shape): each element is read before written
        g = _grad_out(out, want_grad, x, dt, ((x, "logits"), (t, "target")), ((w, "weight"),))
    else:
        if t.dtype.kind not in "iu":
            raise TypeError(f"target: must hold integer class indices or floating probabilities, got {t.dtype}")
        if t.shape != sample_shape:
            raise ValueError(f"target: class indices must have shape {sample_shape} for logits of shape "
                             f"{x.shape}, got {t.shape}")
        dt = V.compute_dtype(x.dtype, x.dtype, "logits", "logits")
        t0, t = t, _class_indices(t, c, ignore_index)
        x = V.as_input(x, dt)
        w = _weight_vec(weight, c, dt)
        g = _grad_out(out, want_grad, x, dt, ((x, "logits"),), ((w, "weight"),) + _targets_apart(t0, t))
    loss = _loss_array(sample_shape, dt, mode)
    k = _config.module(backend)
    if soft:
        total = k.cross_entropy_prob(g, loss, x, t, w, n, c, s, eps, mode)
    else:
        total = k.cross_entropy(g, loss, x, t, w, n, c, s, ignore_index, eps, mode)
    return _result(total, loss, g, dt, mode, want_grad)


def _elementwise_pair(x, target, xname):
    x = V.asarray(x, xname)
    t = V.asarray(target, "target")
    if x.shape != t.shape:
        raise ValueError(f"{xname} and target must have the same shape (no broadcasting): "
                         f"{xname} {x.shape} vs target {t.shape}")
    dt = V.compute_dtype(x.dtype, t.dtype, xname, "target")
    return V.as_input(x, dt), V.as_input(t, dt), dt


def _broadcast_weight(weight, shape, dt, name="weight"):
    """weight broadcast to the input's shape by NumPy's rules (the one broadcast allowed)."""
    if weight is None:
        return None
    w = V.asarray(weight, name)
    V._kind_dtype(w.dtype, name)
    try:
        b = np.broadcast_to(w, shape)
    except ValueError:
        raise ValueError(f"{name}: shape {w.shape} does not broadcast to the input's shape {shape}") from None
    return b if (b.dtype == dt and b.flags.c_contiguous) else np.ascontiguousarray(b, dtype=dt)


def binary_cross_entropy(prob, target, *, weight=None, reduction="mean", grad=True, out=None, backend=None):
    """Binary cross-entropy on probabilities, ``torch.nn.functional.binary_cross_entropy``:
    ``l = -w (t log p + (1 - t) log(1 - p))`` with each log clamped to >= -100;
    ``dl/dp = w (p - t) / max(p (1 - p), 1e-12)``.

    ``prob`` and ``target`` must lie in [0, 1], NaN not included (ValueError naming the
    argument and the first bad position, where torch raises RuntimeError); ``target`` has
    prob's shape; ``weight`` broadcasts to it (NumPy rules).
    Other arguments as every fastloss loss.
    """
    if weight is None:  # the C fast path (fastloss._fast)
        r = _E.binary(11, prob, target, reduction, grad, out, None, backend)
        if r is not NotImplemented:
            return r
    mode = V.reduction_mode(reduction)
    want_grad = V.flag(grad, "grad")
    p, t, dt = _elementwise_pair(prob, target, "prob")
    bad = V.first_outside(p, 0.0, 1.0)
    if bad >= 0:
        pos = np.unravel_index(bad, p.shape) if p.ndim else ()
        raise ValueError(f"prob: must lie in [0, 1]; {p.reshape(-1)[bad]!r} at position "
                         f"{tuple(int(i) for i in pos)}")
    bad = V.first_outside(t, 0.0, 1.0)  # as torch: "all elements of target should be between 0 and 1"
    if bad >= 0:
        pos = np.unravel_index(bad, t.shape) if t.ndim else ()
        raise ValueError(f"target: must lie in [0, 1]; {t.reshape(-1)[bad]!r} at position "
                         f"{tuple(int(i) for i in pos)}")
    w = _broadcast_weight(weight, p.shape, dt)
    g = _grad_out(out, want_grad, p, dt, ((p, "prob"), (t, "target"), (w, "weight")))
    loss = _loss_array(p.shape, dt, mode)
    total = _config.module(backend).binary_cross_entropy(g, loss, p, t, w, mode)
    return _result(total, loss, g, dt, mode, want_grad)


log_loss = binary_cross_entropy


def _pos_weight(pos_weight, shape, dt):
    """(period, array) for the kernels, which read pos_weight[i % period] at flat index i:
    (C, the last axis's weights) when pos_weight varies along the last axis only, else
    (size, pos_weight expanded to the logits' shape).  Scalar logits count as shape (1,)."""
    c = shape[-1] if shape else 1
    if pos_weight is None:
        return c, None
    pw = V.asarray(pos_weight, "pos_weight")
    V._kind_dtype(pw.dtype, "pos_weight")
    full = shape if shape else (1,)
    try:
        fits = np.broadcast_shapes(pw.shape, full) == full
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"pos_weight: shape {pw.shape} does not broadcast to the logits' shape {shape}")
    if all(d == 1 for d in pw.shape[:-1]):
        return c, _broadcast_weight(pw.reshape(pw.shape[-1:]), (c,), dt, "pos_weight")
    return max(int(np.prod(full)), 1), _broadcast_weight(pw, full, dt, "pos_weight").reshape(-1)


def binary_cross_entropy_with_logits(logits, target, *, weight=None, pos_weight=None, reduction="mean",
                                     grad=True, out=None, backend=None):
    """Binary cross-entropy on logits, ``torch.nn.functional.binary_cross_entropy_with_logits``,
    in the stable form (no overflow for any finite logit):
    ``l = w ((1 - t) x + (1 + (pw - 1) t) (log1p(exp(-|x|)) + max(-x, 0)))``,
    ``dl/dx = w ((pw t + 1 - t) sigmoid(x) - pw t)``.

    ``pos_weight`` and ``weight`` broadcast to the logits' shape (NumPy rules; torch
    broadcasts pos_weight the same way).  A pos_weight that varies along the last axis only
    (shape (C,), (1, C), ...: the usual per-class weights) is used as it is; any other shape,
    such as (C, 1, 1) per channel of (N, C, H, W) logits, is first expanded to the logits'
    size (one temporary array, as ``weight`` is).
    """
    if weight is None and pos_weight is None:  # the C fast path
        r = _E.binary(12, logits, target, reduction, grad, out, None, backend)
        if r is not NotImplemented:
            return r
    mode = V.reduction_mode(reduction)
    want_grad = V.flag(grad, "grad")
    x, t, dt = _elementwise_pair(logits, target, "logits")
    w = _broadcast_weight(weight, x.shape, dt)
    c, pw = _pos_weight(pos_weight, x.shape, dt)
    g = _grad_out(out, want_grad, x, dt, ((x, "logits"), (t, "target"), (w, "weight")),
                  ((pw, "pos_weight"),))
    loss = _loss_array(x.shape, dt, mode)
    total = _config.module(backend).binary_cross_entropy_with_logits(g, loss, x, t, w, pw, c, mode)
    return _result(total, loss, g, dt, mode, want_grad)


def _hinge(name, scores, target, margin, weight, reduction, grad, out, backend):
    if weight is None:  # the C fast path (fastloss._fast)
        r = _E.binary(13 if name == "hinge" else 14, scores, target, reduction, grad, out, margin, backend)
        if r is not NotImplemented:
            return r
    mode = V.reduction_mode(reduction)
    want_grad = V.flag(grad, "grad")
    margin = V.finite(margin, "margin")
    x, t, dt = _elementwise_pair(scores, target, "scores")
    bad = V.first_not_sign(t)
    if bad >= 0:
        pos = np.unravel_index(bad, t.shape) if t.ndim else ()
        raise ValueError(f"target: must be -1 or +1; {t.reshape(-1)[bad]!r} at position "
                         f"{tuple(int(i) for i in pos)}")
    w = _broadcast_weight(weight, x.shape, dt)
    g = _grad_out(out, want_grad, x, dt, ((x, "scores"), (t, "target"), (w, "weight")))
    loss = _loss_array(x.shape, dt, mode)
    total = getattr(_config.module(backend), name)(g, loss, x, t, w, margin, mode)
    return _result(total, loss, g, dt, mode, want_grad)


def hinge(scores, target, *, margin=1.0, weight=None, reduction="mean", grad=True, out=None, backend=None):
    """Hinge loss ``l = w max(0, margin - t s)`` for targets t in {-1, +1} (anything else is a
    ValueError); ``dl/ds = -w t`` where ``margin - t s > 0``, 0 elsewhere (0 at the kink, as
    torch's relu).  ``weight`` broadcasts to the scores' shape."""
    return _hinge("hinge", scores, target, margin, weight, reduction, grad, out, backend)


def squared_hinge(scores, target, *, margin=1.0, weight=None, reduction="mean", grad=True, out=None,
                  backend=None):
    """Squared hinge ``l = w max(0, margin - t s)**2``, t in {-1, +1};
    ``dl/ds = -2 w t max(0, margin - t s)``."""
    return _hinge("squared_hinge", scores, target, margin, weight, reduction, grad, out, backend)


def multi_margin(logits, target, *, p=1, margin=1.0, weight=None, reduction="mean", grad=True, out=None,
                 backend=None):
    """Multi-class margin loss, ``torch.nn.functional.multi_margin_loss``: per sample with
    target y, ``l = w[y] / C * sum_{j != y} max(0, margin - x[y] + x[j])**p``, p in {1, 2}.

    logits (N, C) or (C,); target integer (N,) or () in [0, C); weight (C,).
    """
    # the C fast path, for (N, C) logits (fastloss._fast)
    r = _E.multi_margin(logits, target, p, margin, weight, reduction, grad, out, backend)
    if r is not NotImplemented:
        return r
    mode = V.reduction_mode(reduction)
    want_grad = V.flag(grad, "grad")
    if isinstance(p, (bool, np.bool_)) or p not in (1, 2):
        raise ValueError(f"p: must be 1 or 2, got {p!r}")
    margin = V.finite(margin, "margin")
    x = V.asarray(logits, "logits")
    t = V.asarray(target, "target")
    if x.ndim not in (1, 2):
        raise ValueError(f"logits: must have shape (N, C) or (C,), got {x.shape}")
    n, c = (1, x.shape[0]) if x.ndim == 1 else x.shape
    if c == 0:
        raise ValueError(f"logits: has no classes (shape {x.shape})")
    sample_shape = x.shape[:-1]
    if t.dtype.kind not in "iu":
        raise TypeError(f"target: must hold integer class indices, got {t.dtype}")
    if t.shape != sample_shape:
        raise ValueError(f"target: must have shape {sample_shape} for logits of shape {x.shape}, got {t.shape}")
    t0, t = t, _class_indices(t, c, None)
    dt = V.compute_dtype(x.dtype, x.dtype, "logits", "logits")
    x = V.as_input(x, dt)
    w = _weight_vec(weight, c, dt)
    g = _grad_out(out, want_grad, x, dt, ((x, "logits"),), ((w, "weight"),) + _targets_apart(t0, t))
    loss = _loss_array(sample_shape, dt, mode)
    total = _config.module(backend).multi_margin(g, loss, x, t, w, n, c, int(p), margin, mode)
    return _result(total, loss, g, dt, mode, want_grad)
