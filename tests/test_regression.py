"""Regression losses: every kernel x backend x dtype x size x reduction vs the reference,
finite differences, PyTorch, aliasing, bad input."""
import numpy as np
import pytest

import fastloss
from fastloss._registry import COMPILED, DTYPES, LOSSES, SIZES
from helpers import assert_close

CASES = [(name, h) for name, k in LOSSES.items() for h in k.variants]
IDS = [f"{n}-{'-'.join(f'{a}{b}' for a, b in h.items())}".rstrip("-") for n, h in CASES]
REDUCTIONS = ("mean", "sum", "none")


@pytest.mark.parametrize("name,hyper", CASES, ids=IDS)
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", SIZES)
def test_matches_reference(name, hyper, backend, dtype, n, rng):
    k = LOSSES[name]
    pred, target = k.sample(rng, (n,), dtype)
    for reduction in REDUCTIONS:
        ref_l, ref_g = k.func(pred, target, reduction=reduction, backend="numpy", **hyper)
        l, g = k.func(pred, target, reduction=reduction, backend=backend, **hyper)
        assert g.dtype == dtype and g.shape == pred.shape
        if reduction == "none":
            assert isinstance(l, np.ndarray) and l.dtype == dtype and l.shape == pred.shape
        else:
            assert isinstance(l, np.generic) and l.dtype == dtype
        if n == 0 and reduction == "mean":
            assert np.isnan(l) and np.isnan(ref_l)
        else:
            assert_close(l, ref_l, dtype, f"{name} {reduction} loss")
        assert_close(g, ref_g, dtype, f"{name} {reduction} grad")
        # loss only: the same value (the summation may vectorize differently: not bitwise)
        l2 = k.func(pred, target, reduction=reduction, backend=backend, grad=False, **hyper)
        if not (n == 0 and reduction == "mean"):
            assert_close(l2, l, dtype, f"{name} {reduction} loss-only")


@pytest.mark.parametrize("name,hyper", CASES, ids=IDS)
@pytest.mark.parametrize("backend", COMPILED + ("numpy",))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_finite_differences(name, hyper, backend, reduction, rng):
    k = LOSSES[name]
    pred, target = k.sample(rng, (3, 5), np.float64)
    if k.kinks:  # keep every error at least 1e-3 away from a kink of the gradient
        d = pred - target
        for kink in k.kinks(hyper):
            for sign in (1, -1):
                near = np.abs(d - sign * kink) < 1e-3
                pred[near] += 3e-3
    _, g = k.func(pred, target, reduction=reduction, backend=backend, **hyper)
    eps = 1e-6
    num = np.empty_like(pred)
    for idx in np.ndindex(pred.shape):
        hi, lo = pred.copy(), pred.copy()
        hi[idx] += eps
        lo[idx] -= eps
        fh = np.sum(k.func(hi, target, reduction=reduction, backend=backend, grad=False, **hyper))
        fl = np.sum(k.func(lo, target, reduction=reduction, backend=backend, grad=False, **hyper))
        num[idx] = (fh - fl) / (2 * eps)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name,hyper", CASES, ids=IDS)
@pytest.mark.parametrize("backend", COMPILED)
def test_shapes_and_lists(name, hyper, backend, rng):
    k = LOSSES[name]
    pred, target = k.sample(rng, (4, 3, 5), np.float32)
    ref = k.func(pred.ravel(), target.ravel(), reduction="none", backend=backend, **hyper)
    l, g = k.func(pred, target, reduction="none", backend=backend, **hyper)
    assert l.shape == g.shape == (4, 3, 5)
    np.testing.assert_array_equal(l.ravel(), ref[0])
    np.testing.assert_array_equal(g.ravel(), ref[1])
    # scalars (0-d) and nested lists (-> float64)
    l0, g0 = k.func(np.float32(1.5), np.float32(-0.25), backend=backend, **hyper)
    assert g0.shape == () and l0.dtype == np.float32
    ll, gl = k.func(pred.tolist(), target.tolist(), backend=backend, **hyper)
    assert ll.dtype == np.float64 and gl.shape == (4, 3, 5)


@pytest.mark.parametrize("name,hyper", CASES, ids=IDS)
@pytest.mark.parametrize("backend", COMPILED + ("numpy",))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_out_may_be_pred(name, hyper, backend, reduction, rng):
    k = LOSSES[name]
    pred, target = k.sample(rng, (100003,), np.float32)
    expect_l, expect_g = k.func(pred, target, reduction=reduction, backend=backend, **hyper)
    # C: bit-identical (its loops assert no cross-iteration dependence).  Numba: LLVM's
    # runtime alias check sends an aliased call down the scalar loop, whose fast-math
    # rewrites may round differently by an ulp (bench/NOTES.md: numba out=pred is slower).
    same = np.testing.assert_array_equal if backend != "numba" else (
        lambda a, b: assert_close(a, b, np.float32, "aliased"))
    p = pred.copy()
    l, g = k.func(p, target, reduction=reduction, backend=backend, out=p, **hyper)
    assert g is p
    same(p, expect_g)
    same(l, expect_l)
    t = target.copy()
    l, g = k.func(pred, t, reduction=reduction, backend=backend, out=t, **hyper)
    same(t, expect_g)


def test_dtype_rules():
    f16 = np.ones(5, np.float16)
    f32 = np.ones(5, np.float32)
    assert fastloss.mse(f16, f16)[1].dtype == np.float32
    assert fastloss.mse(f16, f32)[1].dtype == np.float32
    assert fastloss.mse(f32, np.ones(5))[1].dtype == np.float64
    assert fastloss.mse(f32, np.ones(5, np.int32))[1].dtype == np.float64
    assert fastloss.mse(np.ones(5, bool), np.zeros(5, np.uint8))[1].dtype == np.float64
    with pytest.raises(TypeError, match="pred"):
        fastloss.mse(np.ones(5, np.complex64), f32)
    with pytest.raises(TypeError, match="target"):
        fastloss.mse(f32, np.array(["a"] * 5))


def test_inputs_never_modified_and_converted_copies(rng):
    p = rng.standard_normal((6, 7))[:, ::2]  # non-contiguous float64
    t = rng.standard_normal((6, 4)).astype(np.float32)
    p0, t0 = p.copy(), t.copy()
    l, g = fastloss.huber(p, t, delta=0.5)
    np.testing.assert_array_equal(p, p0)
    np.testing.assert_array_equal(t, t0)
    ref = fastloss.huber(np.ascontiguousarray(p), t.astype(np.float64), delta=0.5)
    np.testing.assert_array_equal(g, ref[1])


@pytest.mark.parametrize("backend", COMPILED + ("numpy",))
def test_empty(backend):
    e = np.empty((0, 3), np.float32)
    l, g = fastloss.mse(e, e, backend=backend)
    assert np.isnan(l) and g.shape == (0, 3)
    l, g = fastloss.mae(e, e, reduction="sum", backend=backend)
    assert l == 0 and l.dtype == np.float32
    l, g = fastloss.huber(e, e, reduction="none", backend=backend)
    assert l.shape == (0, 3)


@pytest.mark.parametrize("backend", COMPILED)
def test_special_values(backend):
    """NaN and Inf propagate as in torch (values checked against torch in test_torch)."""
    p = np.array([np.nan, np.inf, -np.inf, 1.0, 0.0], np.float32)
    t = np.array([0.0, np.inf, 0.0, 1.0, np.nan], np.float32)
    l, g = fastloss.mae(p, t, reduction="none", backend=backend)
    np.testing.assert_array_equal(g, [0, 0, -1, 0, 0])  # torch: sign(NaN) = 0
    l, g = fastloss.huber(p, t, reduction="none", backend=backend)
    assert np.isnan(g[0]) and np.isnan(g[1]) and g[2] == -1 and g[3] == 0 and np.isnan(g[4])


BAD = [
    (dict(pred=np.ones(3), target=np.ones(4)), ValueError, r"same shape.*\(3,\).*\(4,\)"),
    (dict(reduction="avg"), ValueError, "reduction"),
    (dict(reduction=None), ValueError, "reduction"),
    (dict(out=np.empty(5, np.float64)), TypeError, "out.*float32"),
    (dict(out=np.empty(4, np.float32)), ValueError, "out.*shape"),
    (dict(out=np.empty(10, np.float32)[::2]), ValueError, "out.*contiguous"),
    (dict(out=[0.0] * 5), TypeError, "out"),
    (dict(grad="yes"), TypeError, "grad"),
]


@pytest.mark.parametrize("kwargs,exc,match", BAD)
@pytest.mark.parametrize("backend", COMPILED)
def test_bad_input_touches_nothing(kwargs, exc, match, backend):
    p = np.arange(5, dtype=np.float32)
    t = np.ones(5, np.float32)
    args = dict(pred=p, target=t)
    args.update(kwargs)
    out = args.get("out")
    before = None if not isinstance(out, np.ndarray) else out.copy()
    with pytest.raises(exc, match=match):
        fastloss.mse(args.pop("pred"), args.pop("target"), backend=backend, **args)
    np.testing.assert_array_equal(p, np.arange(5, dtype=np.float32))
    if before is not None:
        np.testing.assert_array_equal(out, before)


def test_read_only_and_overlapping_out():
    p = np.arange(6, dtype=np.float32)
    ro = np.zeros(6, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out.*read-only"):
        fastloss.mse(p, p, out=ro)
    buf = np.arange(7, dtype=np.float32)
    with pytest.raises(ValueError, match="out.*overlaps pred"):
        fastloss.mse(buf[:6], np.ones(6, np.float32), out=buf[1:])
    np.testing.assert_array_equal(buf, np.arange(7, dtype=np.float32))
    with pytest.raises(ValueError, match="grad=False"):
        fastloss.mse(p, p, grad=False, out=np.empty(6, np.float32))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_bad_delta(bad):
    with pytest.raises(ValueError, match="delta"):
        fastloss.huber(np.ones(3), np.ones(3), delta=bad)


@pytest.mark.parametrize("bad", [-0.5, float("nan")])
def test_bad_beta(bad):
    with pytest.raises(ValueError, match="beta"):
        fastloss.smooth_l1(np.ones(3), np.ones(3), beta=bad)
    with pytest.raises(TypeError, match="beta"):
        fastloss.smooth_l1(np.ones(3), np.ones(3), beta="1")


def test_aliases():
    assert fastloss.l1 is fastloss.mae
