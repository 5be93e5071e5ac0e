"""Adam/AdamW, Adagrad, RMSprop and the gradient-norm kernels, Numba.  Same math as
csrc/adaptive_tmpl.h and csrc/norm_tmpl.h.

Layout (as in regression.py):
  * per-step scalars are computed once per call in float64 (bias corrections, step sizes,
    1 - beta), as torch computes them in Python, then rounded to the arrays' dtype with
    ``param.dtype.type`` so a float32 kernel computes in float32;
  * ``_<opt>_chunk``: a serial loop over elements [lo, hi) of slices indexed from 0 (an
    index lo + i blocks vectorization); optional state arrays (max_exp_avg_sq, the RMSprop
    momentum buffer and centered average) arrive as None or an array *argument*, so numba
    compiles a variant per combination and prunes the `is None` branches;
  * ``_<opt>``: the driver, chunks (prange in the parallel twin, see _common.kernel).

The optimizer loops are plain IEEE arithmetic (see `ieee` below): the same operations in the
same order as the C kernels, so the two backends agree bit for bit, and every element's
result depends on that element alone (a flat block and the same arrays one by one give the
same bits).  The norm reduction is the one loop with fast-math flags (a float64 sum).
"""
import numpy as np
from numba import njit, prange

from ._common import FASTMATH, bounds, kernel, plan


def _1d(a):
    """a as 1-D (kernels index elements); no new view object when it already is."""
    return a if a.ndim == 1 else a.reshape(-1)

# The optimizer loops and their per-step scalars are compiled as plain IEEE arithmetic:
#  - error_model="numpy": numba's default checks every float division for a zero divisor to
#    raise ZeroDivisionError, a branch per element that stops LLVM from vectorizing the loop
#    (measured 4-15x slower) and the wrong answer besides (torch gives inf or NaN, e.g.
#    Adagrad with eps=0 and a zero gradient);
#  - no fast-math flags: 'contract' fuses multiply-adds differently in the vector body and in
#    the scalar remainder loop, so an element's bits would depend on where it sits (a flat
#    block and the same arrays one by one differed in the last bit), and 'reassoc' may reorder
#    the formulas.  An elementwise loop vectorizes without them, and the results are then
#    the C kernels' bits (csrc/adaptive.c turns FMA contraction off too).
#    fastmath=False is spelled out: a callee that leaves it unset inherits the fast-math
#    flags of its caller, here the _common.kernel drivers.
ieee = njit(nogil=True, cache=True, fastmath=False, error_model="numpy")
# The norm's float64 sum needs 'reassoc' to vectorize (partial sums per lane).
reduction = njit(nogil=True, cache=True, fastmath=FASTMATH, error_model="numpy")


# ---- Adam / AdamW ---------------------------------------------------------------------------
@ieee
def _moments(g, m, v, small, w1, omw1, b2, omb2):
    """The new (exp_avg, exp_avg_sq) of one element."""
    d = g - m
    return (m + w1 * d if small else g - d * omw1,   # torch: exp_avg.lerp_(g, 1 - beta1)
            v * b2 + omb2 * g * g)                   # mul_(beta2).addcmul_(g, g, 1 - beta2)


# LLVM vectorizes a loop over arrays it cannot prove distinct only behind run-time overlap
# checks, at most 8 of them (one per pair of a written array and any other): with amsgrad,
# param, exp_avg, exp_avg_sq and max_exp_avg_sq written and grad read make 10, and one loop
# doing it all stays scalar (measured 4x slower).  So amsgrad updates each block of BLOCK
# elements with two loops of <= 8 checks, the second reading from L1 what the first wrote:
# still one pass over memory, each element seeing the C kernel's operations in its order.
BLOCK = 512  # 5 arrays x 512 x 8 bytes = 20 KiB: stays in L1


@ieee
def _adam_block_moments(p, m, v, gr, gs, coupled, wd, small, w1, omw1, b2, omb2):
    for i in range(p.size):
        g = gr[i] * gs
        if coupled:
            g = g + wd * p[i]
        m[i], v[i] = _moments(g, m[i], v[i], small, w1, omw1, b2, omb2)


@ieee
def _adam_block_amsgrad(p, m, v, vm, decoupled, decay, k2, eps, ss):
    for i in range(p.size):
        x, vi = vm[i], v[i]
        vi = x if (x > vi or x != x) else vi        # torch.maximum: NaN wins
        vm[i] = vi
        pi = p[i] * decay if decoupled else p[i]
        p[i] = pi - ss * m[i] / (np.sqrt(vi) * k2 + eps)


@ieee
def _adam_chunk(param, exp_avg, exp_avg_sq, vmax, grad, lo, hi, gs, wd_mode, wd, decay, small,
                w1, omw1, b2, omb2, k2, eps, ss):
    coupled, decoupled = wd_mode == 1, wd_mode == 2
    if vmax is not None:
        for b in range(lo, hi, BLOCK):
            e = min(b + BLOCK, hi)
            p, m, v = param[b:e], exp_avg[b:e], exp_avg_sq[b:e]
            _adam_block_moments(p, m, v, grad[b:e], gs, coupled, wd, small, w1, omw1, b2, omb2)
            _adam_block_amsgrad(p, m, v, vmax[b:e], decoupled, decay, k2, eps, ss)
        return
    p, m, v, gr = param[lo:hi], exp_avg[lo:hi], exp_avg_sq[lo:hi], grad[lo:hi]
    for i in range(p.size):
        g = gr[i] * gs
        pi = p[i]
        if coupled:
            g = g + wd * pi
        if decoupled:
            pi = pi * decay
        mi, vi = _moments(g, m[i], v[i], small, w1, omw1, b2, omb2)
        m[i] = mi
        v[i] = vi
        p[i] = pi - ss * mi / (np.sqrt(vi) * k2 + eps)  # sqrt(v)/sqrt(bc2) + eps, 1/sqrt hoisted


@ieee
def _adam_scalars(param, step, lr, beta1, beta2, eps, weight_decay, grad_scale, decoupled):
    """The per-step scalars, in float64 (torch: 1 - beta**step, lr / bc1 in Python floats),
    each rounded to param's dtype once."""
    T = param.dtype.type
    bc1 = 1.0 - beta1 ** float(step)
    bc2 = 1.0 - beta2 ** float(step)
    wd_mode = 0 if weight_decay == 0.0 else (2 if decoupled else 1)
    w1 = T(1.0 - beta1)
    omw1 = T(1) - w1   # torch's lerp: opmath_t(1) - weight, in T
    return (T(grad_scale), wd_mode, T(weight_decay), T(1.0 - lr * weight_decay), abs(w1) < T(0.5),
            w1, omw1, T(beta2), T(1.0 - beta2), T(1.0 / np.sqrt(bc2)), T(eps), T(lr / bc1))


def _adam(param, exp_avg, exp_avg_sq, vmax, grad, step, lr, beta1, beta2, eps, weight_decay,
          grad_scale, decoupled, nchunks):
    args = _adam_scalars(param, step, lr, beta1, beta2, eps, weight_decay, grad_scale, decoupled)
    for c in prange(nchunks):
        lo, hi = bounds(param.size, c, nchunks)
        _adam_chunk(param, exp_avg, exp_avg_sq, vmax, grad, lo, hi, *args)


_adam_serial, _adam_parallel = kernel(_adam)


def adam(param, exp_avg, exp_avg_sq, max_exp_avg_sq, grad, step, lr, beta1, beta2, eps,
         weight_decay, grad_scale, decoupled_weight_decay, amsgrad, maximize):
    nch = plan(param.size)
    f = _adam_serial if nch == 1 else _adam_parallel
    f(_1d(param), _1d(exp_avg), _1d(exp_avg_sq), _1d(max_exp_avg_sq) if amsgrad else None,
      _1d(grad), step, lr, beta1, beta2,
      eps, weight_decay, -grad_scale if maximize else grad_scale, bool(decoupled_weight_decay), nch)


# ---- Adagrad --------------------------------------------------------------------------------
@ieee
def _adagrad_chunk(param, state_sum, grad, lo, hi, gs, wd, clr, eps):
    p, sm, gr = param[lo:hi], state_sum[lo:hi], grad[lo:hi]
    if wd != 0:
        for i in range(p.size):
            g = gr[i] * gs + wd * p[i]
            s = sm[i] + g * g
            sm[i] = s
            p[i] = p[i] - clr * g / (np.sqrt(s) + eps)
    else:
        for i in range(p.size):
            g = gr[i] * gs
            s = sm[i] + g * g
            sm[i] = s
            p[i] = p[i] - clr * g / (np.sqrt(s) + eps)


@ieee
def _adagrad_scalars(param, step, lr, lr_decay, weight_decay, eps, grad_scale):
    T = param.dtype.type
    clr = lr / (1.0 + float(step - 1) * lr_decay)  # torch's clr, in float64
    return T(grad_scale), T(weight_decay), T(clr), T(eps)


def _adagrad(param, state_sum, grad, step, lr, lr_decay, weight_decay, eps, grad_scale, nchunks):
    args = _adagrad_scalars(param, step, lr, lr_decay, weight_decay, eps, grad_scale)
    for c in prange(nchunks):
        lo, hi = bounds(param.size, c, nchunks)
        _adagrad_chunk(param, state_sum, grad, lo, hi, *args)


_adagrad_serial, _adagrad_parallel = kernel(_adagrad)


def adagrad(param, state_sum, grad, step, lr, lr_decay, weight_decay, eps, grad_scale, maximize):
    nch = plan(param.size)
    f = _adagrad_serial if nch == 1 else _adagrad_parallel
    f(_1d(param), _1d(state_sum), _1d(grad), step, lr, lr_decay,
      weight_decay, eps, -grad_scale if maximize else grad_scale, nch)


# ---- RMSprop --------------------------------------------------------------------------------
@ieee
def _rms_avg(s, g, ga, i, small, w, omw):
    """sqrt of the (centered) square average; grad_avg updated when given."""
    if ga is None:
        return np.sqrt(s)
    d = g - ga[i]
    a = ga[i] + w * d if small else g - d * omw   # grad_avg.lerp_(g, 1 - alpha)
    ga[i] = a
    return np.sqrt(s - a * a)                     # square_avg.addcmul(a, a, value=-1)


@ieee
def _rms_step(b, i, g, avg, mom, lr):
    """What param loses: lr * g / avg, or with momentum (b an array) lr * buf after
    buf = momentum * buf + g / avg (torch: buf.mul_(momentum).addcdiv_(g, avg))."""
    if b is None:
        return lr * g / avg
    bi = b[i] * mom + g / avg
    b[i] = bi
    return lr * bi


@ieee
def _rmsprop_chunk(param, square_avg, buf, grad_avg, grad, lo, hi, gs, wdc, wd, alpha, w, omw,
                   small, eps, lr, mom):
    p, sq, gr = param[lo:hi], square_avg[lo:hi], grad[lo:hi]
    ga = None if grad_avg is None else grad_avg[lo:hi]
    b = None if buf is None else buf[lo:hi]
    for i in range(p.size):
        g = gr[i] * gs
        if wdc:
            g = g + wd * p[i]
        s = sq[i] * alpha + w * g * g                 # mul_(alpha).addcmul_(g, g, 1 - alpha)
        sq[i] = s
        avg = _rms_avg(s, g, ga, i, small, w, omw) + eps
        p[i] = p[i] - _rms_step(b, i, g, avg, mom, lr)


@ieee
def _rmsprop_scalars(param, lr, alpha, eps, weight_decay, momentum, grad_scale):
    T = param.dtype.type
    w = T(1.0 - alpha)
    return (T(grad_scale), weight_decay != 0.0, T(weight_decay), T(alpha), w, T(1) - w,
            abs(w) < T(0.5), T(eps), T(lr), T(momentum))


def _rmsprop(param, square_avg, buf, grad_avg, grad, lr, alpha, eps, weight_decay, momentum,
             grad_scale, nchunks):
    args = _rmsprop_scalars(param, lr, alpha, eps, weight_decay, momentum, grad_scale)
    for c in prange(nchunks):
        lo, hi = bounds(param.size, c, nchunks)
        _rmsprop_chunk(param, square_avg, buf, grad_avg, grad, lo, hi, *args)


_rmsprop_serial, _rmsprop_parallel = kernel(_rmsprop)


def rmsprop(param, square_avg, momentum_buffer, grad_avg, grad, step, lr, alpha, eps,
            weight_decay, momentum, centered, grad_scale, maximize):
    nch = plan(param.size)
    f = _rmsprop_serial if nch == 1 else _rmsprop_parallel
    f(_1d(param), _1d(square_avg), _1d(momentum_buffer) if momentum > 0.0 else None,
      _1d(grad_avg) if centered else None, _1d(grad), lr, alpha, eps,
      weight_decay, momentum, -grad_scale if maximize else grad_scale, nch)


# ---- gradient norms -------------------------------------------------------------------------
L1, L2, LP, LINF = range(4)


@reduction
def _norm_chunk(x, lo, hi, kind, order):
    """(sum, max |x|, any NaN) over x[lo:hi], accumulated in float64."""
    a = x[lo:hi]
    s = 0.0
    mx = 0.0
    nan = False
    if kind == L2:
        for i in range(a.size):
            xi = np.float64(a[i])
            s += xi * xi
    elif kind == L1:
        for i in range(a.size):
            s += abs(np.float64(a[i]))
    elif kind == LP:
        for i in range(a.size):
            s += abs(np.float64(a[i])) ** order
    else:
        for i in range(a.size):
            v = abs(np.float64(a[i]))
            mx = v if v > mx else mx
            nan = nan or v != v
    return s, mx, nan


def _norm(x, kind, order, nchunks):
    sums = np.zeros(nchunks)
    maxs = np.zeros(nchunks)
    nans = np.zeros(nchunks, np.bool_)
    for c in prange(nchunks):
        lo, hi = bounds(x.size, c, nchunks)
        sums[c], maxs[c], nans[c] = _norm_chunk(x, lo, hi, kind, order)
    if kind == LINF:
        mx = 0.0
        for c in range(nchunks):
            if nans[c]:
                return np.nan
            mx = max(mx, maxs[c])
        return mx
    s = 0.0
    for c in range(nchunks):  # in chunk order: the same bits for the same thread count
        s += sums[c]
    return s


_norm_serial, _norm_parallel = kernel(_norm)


def norm_acc(x, order):
    kind = L2 if order == 2.0 else L1 if order == 1.0 else LINF if order == np.inf else LP
    nch = plan(x.size)
    f = _norm_serial if nch == 1 else _norm_parallel
    return f(_1d(x), kind, float(order), nch)


@ieee
def _scale_chunk(x, lo, hi, s):
    a = x[lo:hi]
    sc = x.dtype.type(s)
    for i in range(a.size):
        a[i] = a[i] * sc


def _scale(x, s, nchunks):
    for c in prange(nchunks):
        lo, hi = bounds(x.size, c, nchunks)
        _scale_chunk(x, lo, hi, s)


_scale_serial, _scale_parallel = kernel(_scale)


def scale(x, s):
    nch = plan(x.size)
    f = _scale_serial if nch == 1 else _scale_parallel
    f(_1d(x), float(s), nch)
