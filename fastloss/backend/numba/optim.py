"""In-place optimizer kernels, Numba.  Same math as csrc/optim_tmpl.h."""
import numpy as np
from numba import prange

from ._common import bounds, kernel


def _sgd(param, buf, grad, first, lr, momentum, dampening, weight_decay, gscale, nesterov, nchunks):
    # buf is None when momentum == 0 (numba compiles that variant without the buffer)
    T = param.dtype.type
    lr, m, w, gs = T(lr), T(momentum), T(weight_decay), T(gscale)
    omd = T(1.0 - dampening)  # as torch: alpha = 1 - dampening, computed in double
    wd = weight_decay != 0.0   # skipped, not multiplied: 0 * inf would be NaN (torch skips it too)
    for c in prange(nchunks):
        lo, hi = bounds(param.size, c, nchunks)
        # slices indexed from 0 vectorize; see regression.py
        p, gr = param[lo:hi], grad[lo:hi]
        if buf is None:
            if wd:
                for i in range(p.size):
                    p[i] = p[i] - lr * (gr[i] * gs + w * p[i])
            else:
                for i in range(p.size):
                    p[i] = p[i] - lr * (gr[i] * gs)
        else:
            b = buf[lo:hi]
            for i in range(p.size):
                g = gr[i] * gs
                if wd:
                    g = g + w * p[i]
                v = g if first else m * b[i] + omd * g
                b[i] = v
                if nesterov:
                    g = g + m * v
                else:
                    g = v
                p[i] = p[i] - lr * g


KERNELS = {"sgd": kernel(_sgd, fastmath=False)}  # no reduction: exact IEEE, position-independent bits
