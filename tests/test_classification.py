"""Classification losses: every kernel x backend x dtype x size x reduction vs the reference,
finite differences, aliasing, K-dimensional inputs, bad input."""
import numpy as np
import pytest

import fastloss
from fastloss._registry import CLASSIFICATION, COMPILED, DTYPES
from helpers import assert_close

CASES = [(name, i) for name, k in CLASSIFICATION.items() for i in range(len(k.variants))]
IDS = [f"{n}-v{i}" for n, i in CASES]
REDUCTIONS = ("mean", "sum", "none")
SIZES = (0, 1, 7, 16, 17, 127, 1025, 20011)


def _kernel(name, i):
    k = CLASSIFICATION[name]
    return k, k.variants[i]


@pytest.mark.parametrize("name,i", CASES, ids=IDS)
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", SIZES)
def test_matches_reference(name, i, backend, dtype, n, rng):
    k, hyper = _kernel(name, i)
    x, t = k.sample(rng, (n,), dtype)
    hyper = k.bind(hyper, x)
    for reduction in REDUCTIONS:
        rl, rg = k.func(x, t, reduction=reduction, backend="numpy", **hyper)
        l, g = k.func(x, t, reduction=reduction, backend=backend, **hyper)
        assert g.dtype == dtype and g.shape == x.shape
        if reduction == "none":
            assert l.dtype == dtype and l.shape == rl.shape
        else:
            assert isinstance(l, np.generic) and l.dtype == dtype
        if n == 0 and reduction == "mean":
            assert np.isnan(l) and np.isnan(rl)
        else:
            assert_close(l, rl, dtype, f"{name} {reduction} loss")
        assert_close(g, rg, dtype, f"{name} {reduction} grad")
        l2 = k.func(x, t, reduction=reduction, backend=backend, grad=False, **hyper)
        if not (n == 0 and reduction == "mean"):
            assert_close(l2, l, dtype, f"{name} {reduction} loss-only")
        if backend == "c":   # the same loss, bit for bit, with or without the gradient (Numba:
            # fast-math reassociation lets LLVM sum the two variants in different orders)
            np.testing.assert_array_equal(l2, l, err_msg=f"{name} {reduction} loss-only bits")


@pytest.mark.parametrize("name,i", CASES, ids=IDS)
@pytest.mark.parametrize("backend", COMPILED + ("numpy",))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_finite_differences(name, i, backend, reduction, rng):
    k, hyper = _kernel(name, i)
    x, t = k.sample(rng, (4,), np.float64)
    hyper = k.bind(hyper, x)
    _, g = k.func(x, t, reduction=reduction, backend=backend, **hyper)
    eps = 1e-6
    num = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        hi, lo = x.copy(), x.copy()
        hi[idx] += eps
        lo[idx] -= eps
        fh = np.sum(k.func(hi, t, reduction=reduction, backend=backend, grad=False, **hyper))
        fl = np.sum(k.func(lo, t, reduction=reduction, backend=backend, grad=False, **hyper))
        num[idx] = (fh - fl) / (2 * eps)
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name,i", CASES, ids=IDS)
@pytest.mark.parametrize("backend", COMPILED + ("numpy",))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_out_may_be_the_input(name, i, backend, reduction, rng):
    k, hyper = _kernel(name, i)
    x, t = k.sample(rng, (2053,), np.float32)
    hyper = k.bind(hyper, x)
    _assert_out_may_be(k.func, (x, t), 0, reduction=reduction, backend=backend, **hyper)


def _assert_out_may_be(f, args, which, **kw):
    """f(*args, out=<a copy of args[which]>) writes its gradient there and returns what f(*args)
    returns."""
    el, eg = f(*args, **kw)
    args = list(args)
    args[which] = args[which].copy()
    l, g = f(*args, out=args[which], **kw)
    assert g is args[which]
    assert_close(g, eg, np.float32, "aliased grad")
    assert_close(l, el, np.float32, "aliased loss")


@pytest.mark.parametrize("backend", COMPILED + ("numpy",))
@pytest.mark.parametrize("shape", [(7, 50), (70, 40), (6, 10), (3, 5, 4), (3, 40, 2)], ids=str)
def test_probability_targets_out_may_be_the_target(backend, shape, rng):
    """out=target with class probabilities: the kernels read q_j after parking e_j in the
    gradient row; with out=target they must not (rows of more than 32 classes, and
    (N, C, d) logits, once gave another loss and gradient)."""
    x = rng.standard_normal(shape).astype(np.float32)
    q = rng.random(shape).astype(np.float32)
    q /= q.sum(axis=1, keepdims=True)
    for kw in ({}, {"label_smoothing": 0.1, "weight": rng.uniform(0.5, 2.0, shape[1]).astype(np.float32)}):
        for reduction in REDUCTIONS:
            _assert_out_may_be(fastloss.cross_entropy, (x, q), 1, reduction=reduction, backend=backend, **kw)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("name", ["cross_entropy", "cross_entropy_prob"])
def test_k_dimensional_and_unbatched(backend, name, rng):
    k = CLASSIFICATION[name]
    x, t = k.sample(rng, (3, 4, 5), np.float64)            # logits (3, C, 4, 5)
    assert x.shape == (3, 17, 4, 5)
    for hyper in k.variants:
        hyper = k.bind(hyper, x)
        for reduction in REDUCTIONS:
            rl, rg = k.func(x, t, reduction=reduction, backend="numpy", **hyper)
            l, g = k.func(x, t, reduction=reduction, backend=backend, **hyper)
            assert_close(l, rl, np.float64, "K-dim loss")
            assert_close(g, rg, np.float64, "K-dim grad")
    # unbatched (C,) with a () target equals the batch of one
    x1, t1 = k.sample(rng, (1,), np.float64)
    l1, g1 = k.func(x1[0], t1[0] if name == "cross_entropy" and t1[0] != -100 else (t1[0] if name != "cross_entropy" else 3),
                    backend=backend)
    lb, gb = k.func(x1, t1 if name != "cross_entropy" or t1[0] != -100 else np.array([3]), backend=backend)
    assert_close(l1, lb, np.float64, "unbatched")
    assert_close(g1, gb[0], np.float64, "unbatched grad")


@pytest.mark.parametrize("backend", COMPILED)
def test_ignore_index_may_be_a_class(backend, rng):
    """ignore_index=2 drops the samples whose target is class 2; -100 is then out of range."""
    x = rng.standard_normal((50, 6))
    t = rng.integers(0, 6, 50)
    w = rng.uniform(0.5, 2.0, 6)
    for kw in ({}, {"weight": w, "label_smoothing": 0.2}):
        for reduction in REDUCTIONS:
            rl, rg = fastloss.cross_entropy(x, t, ignore_index=2, reduction=reduction, backend="numpy", **kw)
            l, g = fastloss.cross_entropy(x, t, ignore_index=2, reduction=reduction, backend=backend, **kw)
            assert_close(l, rl, np.float64, "loss")
            assert_close(g, rg, np.float64, "grad")
            assert np.all(g[t == 2] == 0)
    with pytest.raises(ValueError, match="-100"):
        fastloss.cross_entropy(x, np.r_[t[:-1], -100], ignore_index=2, backend=backend)


@pytest.mark.parametrize("backend", COMPILED + ("numpy",))
def test_all_ignored_mean_is_nan(backend):
    x = np.random.default_rng(0).standard_normal((4, 5))
    t = np.full(4, -100)
    l, g = fastloss.cross_entropy(x, t, backend=backend)
    assert np.isnan(l) and np.all(g == 0)
    l, g = fastloss.cross_entropy(x, t, reduction="sum", backend=backend)
    assert l == 0 and np.all(g == 0)


@pytest.mark.parametrize("backend", COMPILED)
def test_target_dtypes_and_lists(backend):
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    ref = fastloss.cross_entropy(x, np.array([0, 1, 2, 3, 0, 1]), backend=backend)
    for t in (np.array([0, 1, 2, 3, 0, 1], np.uint8), np.array([0, 1, 2, 3, 0, 1], np.int16), [0, 1, 2, 3, 0, 1]):
        l, g = fastloss.cross_entropy(x, t, backend=backend)
        # numba: bits may differ by an ulp with the buffers' alignment (vector vs scalar
        # remainder under fast-math contraction); C is bit-identical
        assert_close(l, ref[0], np.float32, "loss")
        assert_close(g, ref[1], np.float32, "grad")
        if backend == "c":
            assert l == ref[0] and np.array_equal(g, ref[1])


BAD = [
    (lambda: fastloss.cross_entropy(np.zeros((3, 4)), [0, 4, 1]), ValueError, r"class index 4 at position \(1,\)"),
    (lambda: fastloss.cross_entropy(np.zeros((3, 4)), [0, -1, 1]), ValueError, "class index -1"),
    (lambda: fastloss.cross_entropy(np.zeros((3, 4)), [0, 1]), ValueError, "target.*shape"),
    (lambda: fastloss.cross_entropy(np.zeros((3, 4)), np.zeros((3, 5))), ValueError, "probabilities.*shape"),
    (lambda: fastloss.cross_entropy(np.zeros((3, 4)), [0, 1, 2], weight=np.ones(3)), ValueError, "weight.*shape"),
    (lambda: fastloss.cross_entropy(np.zeros((3, 4)), [0, 1, 2], label_smoothing=1.5), ValueError, "label_smoothing"),
    (lambda: fastloss.cross_entropy(np.zeros((3, 4)), [True, False, True]), TypeError, "target"),
    (lambda: fastloss.cross_entropy(np.zeros((3, 0)), [0, 0, 0]), ValueError, "no classes"),
    (lambda: fastloss.cross_entropy(np.zeros(()), 0), ValueError, "class axis"),
    (lambda: fastloss.binary_cross_entropy([0.5, 1.2], [0.0, 1.0]), ValueError, r"prob.*1.2.*\(1,\)"),
    (lambda: fastloss.binary_cross_entropy([0.5, np.nan], [0.0, 1.0]), ValueError, "prob"),
    (lambda: fastloss.binary_cross_entropy([0.5, 0.2], [0.0, 1.0], weight=[1.0, 2.0, 3.0]), ValueError, "weight"),
    (lambda: fastloss.binary_cross_entropy_with_logits(np.zeros((2, 3)), np.zeros((2, 3)), pos_weight=np.ones(2)),
     ValueError, "pos_weight"),
    (lambda: fastloss.hinge([0.5, 0.2], [1.0, 0.0]), ValueError, r"target.*-1 or \+1.*\(1,\)"),
    (lambda: fastloss.squared_hinge([0.5, 0.2], [1.0, 2.0]), ValueError, "target"),
    (lambda: fastloss.multi_margin(np.zeros((2, 3)), [0, 3]), ValueError, "class index 3"),
    (lambda: fastloss.multi_margin(np.zeros((2, 3)), [0, 1], p=3), ValueError, "p:"),
    (lambda: fastloss.multi_margin(np.zeros((2, 3, 4)), [0, 1]), ValueError, "logits"),
]


@pytest.mark.parametrize("call,exc,match", BAD)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_bad_target_touches_nothing():
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    out = np.full_like(x, 7.0)
    with pytest.raises(ValueError, match="position"):
        fastloss.cross_entropy(x, [0, 1, 9, 2, 3], out=out)
    assert np.all(out == 7.0)
    p = np.array([0.2, 0.4, -0.1], np.float32)
    out = np.full(3, 7.0, np.float32)
    with pytest.raises(ValueError, match="prob"):
        fastloss.binary_cross_entropy(p, np.zeros(3, np.float32), out=out)
    assert np.all(out == 7.0)


def test_aliases():
    assert fastloss.log_loss is fastloss.binary_cross_entropy


@pytest.mark.parametrize("classes", [1, 2, 15, 16, 17, 31, 32, 33, 127, 1000])
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_cross_entropy_every_row_path(classes, backend, dtype, rng):
    """C <= 16 and <= 32 take the padded block path, larger C the row loop (with the 64-wide
    max for C >= 128); rows of 1 class are degenerate (loss 0)."""
    n = 37
    x = (rng.standard_normal((n, classes)) * 4).astype(dtype)
    t = rng.integers(0, classes, n)
    t[::6] = -100
    w = rng.uniform(0.3, 2, classes).astype(dtype)
    q = rng.random((n, classes)).astype(dtype)
    cases = [(t, ({}, {"weight": w, "label_smoothing": 0.2}, {"label_smoothing": 1.0}))]
    if classes > 1:  # one class: the exact gradient is 0 and only rounding is left to compare
        cases.append((q, ({}, {"weight": w, "label_smoothing": 0.1})))
    for target, kws in cases:
        for kw in kws:
            for reduction in REDUCTIONS:
                rl, rg = fastloss.cross_entropy(x, target, reduction=reduction, backend="numpy", **kw)
                l, g = fastloss.cross_entropy(x, target, reduction=reduction, backend=backend, **kw)
                assert_close(l, rl, dtype, f"loss C={classes} {kw}")
                assert_close(g, rg, dtype, f"grad C={classes} {kw}")
                lo = fastloss.cross_entropy(x, target, reduction=reduction, backend=backend, grad=False, **kw)
                assert_close(lo, rl, dtype, "loss only")


@pytest.mark.parametrize("classes", list(range(1, 35)) + [64, 100])
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_every_class_count_and_row_remainder(classes, backend, dtype, rng):
    """Every c up to 34 (the few-class blocks transpose 8 rows at a time: c = 5..32 by 8x8
    transposes, c = 3 by permutes, the other rows and c by copies; c > 32 is the row loop) and
    row counts around the 8-row groups and 64-row blocks: cross_entropy with class and with
    probability targets and multi_margin (p 1 and 2, weighted) against the reference, out=
    the logits, and the loss alone."""
    for n in (1, 7, 8, 9, 63, 64, 65, 136):
        x = (rng.standard_normal((n, classes)) * 2).astype(dtype)
        t = rng.integers(0, classes, n)
        q = rng.random((n, classes)).astype(dtype)
        w = rng.uniform(0.3, 2, classes).astype(dtype)
        calls = [(fastloss.cross_entropy, t, {}), (fastloss.cross_entropy, t, {"weight": w}),
                 (fastloss.cross_entropy, q, {"weight": w, "label_smoothing": 0.1}),
                 (fastloss.multi_margin, t, {"p": 1}),
                 (fastloss.multi_margin, t, {"p": 2, "weight": w, "margin": 0.7})]
        for fn, t, kw in calls:
            for reduction in ("sum", "none"):
                what = f"{fn.__name__} c={classes} n={n} target {t.dtype} {reduction} {kw.keys()}"
                rl, rg = fn(x, t, reduction=reduction, backend="numpy", **kw)
                l, g = fn(x, t, reduction=reduction, backend=backend, **kw)
                assert_close(l, rl, dtype, what + " loss")
                assert_close(g, rg, dtype, what + " grad")
                xc = x.copy()
                l2, g2 = fn(xc, t, reduction=reduction, backend=backend, out=xc, **kw)
                assert g2 is xc
                assert_close(g2, g, dtype, what + " out=logits")
                assert_close(l2, l, dtype, what + " out=logits loss")
                lo = fn(x, t, reduction=reduction, backend=backend, grad=False, **kw)
                if backend == "c":   # bit for bit with or without the gradient (see above)
                    np.testing.assert_array_equal(lo, l, err_msg=what + " loss only")
                else:
                    assert_close(lo, rl, dtype, what + " loss only")


_GUARD_SCRIPT = """
import ctypes, mmap, sys
import numpy as np
import fastloss
PAGE = mmap.PAGESIZE
libc = ctypes.CDLL(None)
libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
keep = []

def at_page_end(shape, dtype):
    # an array whose last byte is the last byte before a page that may not be touched
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    pages = nbytes // PAGE + 2
    buf = mmap.mmap(-1, pages * PAGE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    assert libc.mprotect(base + (pages - 1) * PAGE, PAGE, 0) == 0      # PROT_NONE
    a = np.frombuffer(buf, dtype, int(np.prod(shape)), (pages - 1) * PAGE - nbytes).reshape(shape)
    keep.append(buf)
    return a

rng = np.random.default_rng(0)
backend = sys.argv[1]
for c in list(range(1, 35)) + [40]:
    for n in (1, 7, 8, 9, 64, 65, 136):
        for dt in (np.float32, np.float64):
            x = at_page_end((n, c), dt)
            x[:] = rng.standard_normal((n, c))
            q = at_page_end((n, c), dt)
            q[:] = 1.0 / c
            g = at_page_end((n, c), dt)
            t = at_page_end((n,), np.int64)
            t[:] = rng.integers(0, c, n)
            w = at_page_end((c,), dt)
            w[:] = rng.uniform(0.5, 2, c)
            l, gg = fastloss.cross_entropy(x, t, out=g, backend=backend)
            assert gg is g   # written in place: the kernel saw these very pages
            assert np.isclose(l, fastloss.cross_entropy(x.copy(), t, grad=False, backend="numpy"), rtol=1e-4)
            fastloss.cross_entropy(x, q, out=g, backend=backend)
            fastloss.cross_entropy(x, t, weight=w, out=g, backend=backend)
            fastloss.multi_margin(x, t, out=g, backend=backend)
            fastloss.multi_margin(x, t, weight=w, p=2, out=g, backend=backend)
            fastloss.cross_entropy(x, t, out=x, backend=backend)
print("ok")
"""


@pytest.mark.parametrize("backend", COMPILED)
def test_blocks_never_touch_memory_past_the_arrays(backend, tmp_path):
    """The few-class blocks load and store whole 8-float vectors that run past a row (into the
    same 8-row group) and read the targets by vector loops; logits, targets, probabilities,
    weights and gradients here end right before an inaccessible page,
    so a read or write past any of them is a crash (run in a child process)."""
    import subprocess
    import sys
    # cwd: not the checkout, whose fastloss/ (no compiled extension in a fresh clone) `python -c`
    # would import instead of the installed package
    r = subprocess.run([sys.executable, "-c", _GUARD_SCRIPT, backend], capture_output=True, text=True,
                       timeout=600, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stdout[-2000:], r.stderr[-2000:])


@pytest.mark.parametrize("n", [1, 7, 8, 9, 64, 1000])
def test_bad_target_found_at_every_position(n):
    """The vectorized target check (every ISA clone's count, then the position): a target
    < 0 (other than ignore_index), == C, or huge, at the first, a middle and the last row."""
    x = np.zeros((n, 4), np.float32)
    for bad in (-1, 4, 2 ** 62, -(2 ** 63)):
        for pos in sorted({0, n // 2, n - 1}):
            t = np.zeros(n, np.int64)
            t[pos] = bad
            for fn in (fastloss.cross_entropy, fastloss.multi_margin):
                with pytest.raises(ValueError, match=f"position \\({pos},\\)"):
                    fn(x, t)
    t = np.full(n, -100, np.int64)   # ignore_index everywhere: accepted (a NaN mean)
    assert np.isnan(fastloss.cross_entropy(x, t, grad=False))
    t = np.zeros(n, np.int64)
    t[-1] = -7
    with pytest.raises(ValueError, match="-7"):
        fastloss.cross_entropy(x, t)
    got = fastloss.cross_entropy(x, t, ignore_index=-7, reduction="sum", grad=False)
    np.testing.assert_allclose(got, (n - 1) * np.log(4), rtol=1e-6)


@pytest.mark.parametrize("backend", COMPILED + ("numpy",))
@pytest.mark.parametrize("n", [1, 65, 2000])
def test_multi_margin_huge_margin_in_a_partial_block(backend, n):
    """Rows of a partial 64-row block's unused lanes sum C margin (or margin^2) too; once that
    overflows, masking them by a zero weight gave inf * 0 = NaN in the total."""
    m = 2.0 ** 65
    x = np.zeros((n, 3), np.float32)
    x[:, 0] = m
    t = np.zeros(n, np.int64)
    for p in (1, 2):
        for reduction in ("sum", "mean"):
            l, g = fastloss.multi_margin(x, t, p=p, margin=m, reduction=reduction, backend=backend)
            assert l == 0 and not np.any(g), (p, reduction)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("classes", [4, 5, 6, 7, 8])
def test_multi_margin_rows_at_thread_boundaries(backend, classes, rng):
    """multi_margin's float32 row kernel (4 <= c <= 8, loss reduced) loads and stores 8 lanes
    per row, the next row's logits put back as read; only each chunk's last row is masked.
    Split over 1-4 threads (row counts that put chunk edges at every position of the 4-row
    steps and 16-row groups), with out= a separate array and out= the logits: the gradient's
    bits are the same for every thread count (one thread's row spilling into the next chunk
    would overwrite rows another thread had written), and equal the reference's to rounding."""
    n0 = fastloss.get_num_threads()
    try:
        for n in (401, 1000, 1607, 4099, 20011):   # Numba splits from 65536 logits
            x = (rng.standard_normal((n, classes)) * 1.5).astype(np.float32)
            t = rng.integers(0, classes, n)
            w = rng.uniform(0.3, 2, classes).astype(np.float32)
            for kw in ({"p": 1}, {"p": 2, "weight": w, "margin": 0.7}):
                rl, rg = fastloss.multi_margin(x, t, reduction="sum", backend="numpy", **kw)
                first = None
                for nt in (1, 2, 3, 4):
                    fastloss.set_num_threads(nt)
                    for _ in range(3):
                        g = np.full_like(x, np.nan)
                        l, _g = fastloss.multi_margin(x, t, reduction="sum", out=g, backend=backend, **kw)
                        xc = x.copy()
                        l2, g2 = fastloss.multi_margin(xc, t, reduction="sum", out=xc, backend=backend, **kw)
                        what = f"c={classes} n={n} threads={nt} {sorted(kw)}"
                        np.testing.assert_array_equal(g2, g, err_msg=what + " out=logits")
                        assert l2 == l, what
                        if first is None:
                            first = g
                            assert_close(g, rg, np.float32, what + " grad")
                            assert_close(l, rl, np.float32, what + " loss")
                        np.testing.assert_array_equal(g, first, err_msg=what)
                        assert_close(l, rl, np.float32, what + " loss")
    finally:
        fastloss.set_num_threads(n0)
