"""Comparison helpers shared by the tests."""
import numpy as np

TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def tol(dtype):
    return TOL[np.dtype(dtype)]


def assert_close(got, ref, dtype, what=""):
    """Relative error within the dtype's tolerance, measured against the largest reference
    magnitude (elementwise relative error is meaningless where the reference is ~0)."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, (what, got.shape, ref.shape)
    if ref.size == 0:
        return
    same_nan = np.isnan(got) == np.isnan(ref)
    assert same_nan.all(), f"{what}: NaN pattern differs"
    fin = np.isfinite(ref)
    assert (got[~fin & ~np.isnan(ref)] == ref[~fin & ~np.isnan(ref)]).all(), f"{what}: Inf differs"
    if fin.any():
        scale = np.abs(ref[fin]).max()
        scale = scale if scale > 0 else 1.0  # an all-zero reference: compare absolutely
        err = np.abs(got[fin] - ref[fin]).max() / scale
        assert err <= tol(dtype), f"{what}: relative error {err:.3g} > {tol(dtype):g}"
