"""Comparison helpers shared by the tests."""
import numpy as np

from fastloss import optim
from fastloss._check import relerr

TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def tol(dtype):
    return TOL[np.dtype(dtype)]


def assert_close(got, ref, dtype, what=""):
    """Each element within the dtype's tolerance of the reference, relative to its own
    magnitude floored at a few ulps of the largest (fastloss._check.relerr); the same NaN
    pattern and the same infinities."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    if ref.size == 0:
        return
    assert (np.isnan(got) == np.isnan(ref)).all(), f"{what}: NaN pattern differs"
    inf = ~np.isfinite(ref) & ~np.isnan(ref)
    assert (got[inf] == ref[inf]).all(), f"{what}: Inf differs"
    err = relerr(got, ref, dtype)
    assert err <= tol(dtype), f"{what}: relative error {err:.3g} > {tol(dtype):g}"


# every stateful optimizer, with options that create all of its state arrays
KINDS = {
    "sgd": lambda ps, **kw: optim.SGD(ps, lr=0.5, momentum=0.9, **kw),
    "adam": lambda ps, **kw: optim.Adam(ps, lr=0.5, amsgrad=True, **kw),
    "adamw": lambda ps, **kw: optim.AdamW(ps, lr=0.5, **kw),
    "adagrad": lambda ps, **kw: optim.Adagrad(ps, lr=0.5, **kw),
    "rmsprop": lambda ps, **kw: optim.RMSprop(ps, lr=0.5, momentum=0.9, centered=True, **kw),
}
