"""Gradient-norm clipping: torch.nn.utils.clip_grad_norm_ semantics.

``clip_grad_norm(grads, max_norm)`` reads every gradient once (float64 accumulation) and
returns ``(total_norm, scale)`` without writing anything; pass ``grad_scale=scale`` to an
optimizer's ``step`` and the clipping costs no second pass.  ``clip_grad_norm_`` is torch's
in-place form: it multiplies the gradients by ``scale`` and returns the total norm.
"""
import math

import numpy as np

from . import _config
from . import _validate as V
from .flat import FlatParams

_INF = float("inf")


def _norm_type(norm_type):
    if isinstance(norm_type, str) and norm_type.lower() == "inf":
        return _INF
    v = V.real(norm_type, "norm_type")
    if not v > 0.0:
        raise ValueError(f"norm_type: must be > 0 or inf, got {norm_type!r}")
    return v


def _arrays(grads, writeable):
    """The gradient arrays: a FlatParams' grad block, one array, or a sequence of arrays."""
    if isinstance(grads, FlatParams):  # its block as bound, checked again (dtype, shape and flags
        name = "grads (the FlatParams' grad block)"  # can change in place)
        g = grads._block(grads.grad, name)
        return [V.inplace(g, name) if writeable else g]
    if isinstance(grads, np.ndarray):
        grads = [grads]
    elif isinstance(grads, (str, bytes)) or not hasattr(grads, "__iter__"):
        raise TypeError(f"grads: must be an array, a sequence of arrays or a FlatParams, got "
                        f"{type(grads).__name__}")
    out = []
    for i, g in enumerate(grads):
        name = f"grads[{i}]"
        if writeable:
            out.append(V.inplace(g, name))
            continue
        if type(g) is not np.ndarray:
            if not isinstance(g, np.ndarray):
                raise TypeError(f"{name}: must be a numpy.ndarray, got {type(g).__name__}")
            g = np.asarray(V.subclass(g, name))  # an np.memmap: its base-class view
        if g.dtype != V.F32 and g.dtype != V.F64:
            raise TypeError(f"{name}: dtype must be float32 or float64, got {g.dtype}")
        out.append(g if g.flags.c_contiguous else np.ascontiguousarray(g))  # read only: a copy is harmless
    if writeable:
        for i in range(len(out)):
            for j in range(i):
                if np.may_share_memory(out[i], out[j]):
                    raise ValueError(f"grads[{j}] and grads[{i}] share memory; each would be scaled twice")
    return out


def _total(arrays, order, backend):
    kernels = _config.module(backend)
    if order == _INF:
        total = 0.0
        for a in arrays:
            m = kernels.norm_acc(a, order)
            if m != m:
                return math.nan
            total = max(total, m)
        return total
    acc = 0.0
    for a in arrays:
        acc += kernels.norm_acc(a, order)
    if order == 2.0:
        return math.sqrt(acc)
    if order == 1.0:
        return acc
    return acc ** (1.0 / order)


def _scale(total_norm, max_norm):
    # torch: clip_coef = max_norm / (total_norm + 1e-6), clamped to at most 1.  NaN stays NaN
    # (min(1, nan) would be 1), and an infinite norm gives 0.
    coef = max_norm / (total_norm + 1e-6)
    return 1.0 if coef > 1.0 else coef


def clip_grad_norm(grads, max_norm, norm_type=2.0, *, backend=None):
    """The total norm of the gradients and the factor that clips it; nothing is written.

    ``total_norm`` is the vector norm of order ``norm_type`` of all gradients together
    (as if concatenated), accumulated in float64 in one pass over each array;
    ``scale = min(1, max_norm / (total_norm + 1e-6))`` as torch computes it (NaN when the
    norm is NaN, 0 when it is infinite).

    Args:
      grads: a sequence of float32/float64 arrays, one array, or a FlatParams (its grad block,
        read in one call).
      max_norm: >= 0.
      norm_type: a real > 0 or inf (``float("inf")`` or ``"inf"``): 2 (default), 1, inf, 3, ...
    Returns:
      (total_norm, scale), two Python floats.
    Reference: https://pytorch.org/docs/stable/generated/torch.nn.utils.clip_grad_norm_.html
    """
    max_norm = V.nonneg(max_norm, "max_norm")
    order = _norm_type(norm_type)
    arrays = _arrays(grads, writeable=False)
    total = _total(arrays, order, backend)
    return total, _scale(total, max_norm)


def clip_grad_norm_(grads, max_norm, norm_type=2.0, error_if_nonfinite=False, *, backend=None):
    """Clip the gradients in place, as ``torch.nn.utils.clip_grad_norm_``: compute the total
    norm (see :func:`clip_grad_norm`) and multiply every gradient by
    ``min(1, max_norm / (total_norm + 1e-6))``.  Returns the total norm (a Python float).

    A NaN or infinite norm scales by NaN or 0, as torch does (finite entries become 0 or
    NaN), unless ``error_if_nonfinite``: then ValueError, and nothing is written (torch
    raises RuntimeError there).  The gradients must be writeable, C-contiguous
    float32/float64 arrays that do not overlap.
    """
    max_norm = V.nonneg(max_norm, "max_norm")
    order = _norm_type(norm_type)
    error_if_nonfinite = V.flag(error_if_nonfinite, "error_if_nonfinite")
    arrays = _arrays(grads, writeable=True)
    total = _total(arrays, order, backend)
    if error_if_nonfinite and not math.isfinite(total):
        raise ValueError(f"grads: the total norm of order {order} is {total}, so they cannot be clipped "
                         "(error_if_nonfinite=True)")
    scale = _scale(total, max_norm)
    if scale != 1.0:  # a factor of 1 changes no bit: skip the pass
        kernels = _config.module(backend)
        for a in arrays:
            kernels.scale(a, scale)
    return total
