"""`python -m fastloss check`: every kernel x backend x dtype on random inputs of several
sizes (odd ones included) against the float64 reference."""
import numpy as np

from . import _config
from ._registry import ALL_LOSSES, DTYPES, OPTIMIZERS

TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
CHECK_SIZES = (1, 7, 17, 1025, 100003)


# An element's error is measured against its own magnitude, floored at ULPS units in the
# last place of the largest one: elementwise relative error where it means something, and no
# more than ULPS ulps of the largest entry from entries that come out of a cancellation (a
# softmax's p_y - 1 next to 1, a sigmoid minus its target: float32 cross-entropy's
# gradient misses by up to ~6 ulps of 1 there, as PyTorch's does).  A reference-wide scale
# alone would let any entry below tol x max through, zeroed or not.
ULPS = 16


def floor(dtype):
    """The floor of relerr for this dtype: ULPS ulps of the largest entry, in its units."""
    dt = np.dtype(dtype)
    return ULPS * float(np.finfo(dt).eps) / TOL[dt]


def relerr(got, ref, dtype):
    """max |got - ref| / (|ref| + floor(dtype) max|ref|) over the finite entries; inf when the
    shape, the NaN pattern or an infinite entry differs; 0.0 for empty arrays."""
    got = np.asarray(got, np.float64)
    ref = np.asarray(ref, np.float64)
    if got.shape != ref.shape:
        return float("inf")
    if ref.size == 0:
        return 0.0
    if not np.array_equal(np.isnan(got), np.isnan(ref)):
        return float("inf")
    ok = np.isfinite(ref)
    if not np.array_equal(got[~ok & ~np.isnan(ref)], ref[~ok & ~np.isnan(ref)]):
        return float("inf")
    if not ok.any():
        return 0.0
    r = np.abs(ref[ok])
    scale = max(float(r.max()), 1e-300)
    return float((np.abs(got[ok] - ref[ok]) / (r + floor(dtype) * scale)).max())


def _loss_err(k, backend, dtype, n, rng):
    worst = 0.0
    for hyper in k.variants:
        pred, target = k.sample(rng, (n,), dtype)
        hyper = k.bind(hyper, pred)
        for reduction in ("mean", "sum", "none"):
            rl, rg = k.func(pred, target, reduction=reduction, backend="numpy", **hyper)
            l, g = k.func(pred, target, reduction=reduction, backend=backend, **hyper)
            worst = max(worst, relerr(l, rl, dtype), relerr(g, rg, dtype))
    return worst


def _optim_err(k, backend, dtype, n, rng, steps=5):
    worst = 0.0
    for opts in k.grid():
        p0 = rng.standard_normal(n).astype(dtype)
        grads = [rng.standard_normal(n).astype(dtype) for _ in range(steps)]
        results = []
        for b in (backend, "numpy"):
            p = p0.copy()
            state = {s: np.zeros(n, dtype) for s in k.state(opts)}
            for step, g in enumerate(grads, 1):
                k.func(p, g, step=step, backend=b, **state, **k.hyper(opts))
            results.append([p, *state.values()])
        for got, ref in zip(*results):
            worst = max(worst, relerr(got, ref, dtype))
    return worst


def run(out=print, backends=None, sizes=CHECK_SIZES, seed=0):
    """Print the table; return True when every row is within tolerance."""
    rng = np.random.default_rng(seed)
    backends = [b for b in (backends or _config.backends()) if b != "numpy"]
    rows = []
    jobs = [(k, _loss_err) for k in ALL_LOSSES.values()] + [(k, _optim_err) for k in OPTIMIZERS.values()]
    out(f"{'kernel':<34} {'backend':<7} {'dtype':<8} {'max rel err':>12}  {'tol':>6}  result")
    all_ok = True
    for k, fn in jobs:
        for backend in backends:
            for dtype in DTYPES:
                dt = np.dtype(dtype)
                err = max(fn(k, backend, dtype, n, rng) for n in sizes)
                ok = err <= TOL[dt]
                all_ok &= ok
                rows.append((k.name, backend, dt.name, err, ok))
                out(f"{k.name:<34} {backend:<7} {dt.name:<8} {err:12.3g}  {TOL[dt]:6.0e}  {'ok' if ok else 'FAIL'}")
    out(f"{sum(r[-1] for r in rows)} ok, {sum(not r[-1] for r in rows)} FAIL")
    return all_ok
