"""The C fast path of the public functions (csrc/pyentry/entry.c, fastloss/_fast.py).

It must give exactly the checked path's results (the same kernels, the same scalars), take
the common case (or it is pointless), and decline everything else without touching a buffer,
so that the checked path converts or raises as documented.
"""
import numpy as np
import pytest

import fastloss
from fastloss import _fast, optim

E = _fast.entry
DTYPES = [np.float32, np.float64]
REGRESSION = [("mse", 0, {}), ("smooth_l2", 1, {}), ("mae", 2, {}), ("huber", 3, {"delta": 0.7}),
              ("smooth_l1", 4, {"beta": 0.3}), ("smooth_l1", 4, {"beta": 0.0})]


def _pair(rng, dt, n=1001):
    return rng.standard_normal(n).astype(dt), rng.standard_normal(n).astype(dt)


def _same_loss(a, b):
    """equal losses: the same type (a NumPy scalar of the dtype, or an array) and bits"""
    assert type(a) is type(b) and a.dtype == b.dtype and np.shape(a) == np.shape(b)
    np.testing.assert_array_equal(a, b)


def _same_as_checked_numba(fast, fn, x, t, reduction, kw):
    """fast (the entry's (loss, grad)) equals fn's checked Numba path bit for bit, and the
    public loss-only call gives the same loss to rounding.  Not to the bit: the loss-only
    kernel is another compiled variant, and with fast-math 'reassoc' LLVM picks each
    variant's summation order itself (on an AVX2 host the two float64 mean-mse sums
    differed in the last bit; on AVX-512 they agreed).  The C kernels fix the order."""
    assert fast is not NotImplemented, fn.__name__
    with _fast.checked_only():
        slow = fn(x, t, reduction=reduction, backend="numba", **kw)
    _same_loss(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])
    alone = fn(x, t, reduction=reduction, grad=False, backend="numba", **kw)
    assert type(alone) is type(slow[0]) and alone.dtype == slow[0].dtype and np.shape(alone) == np.shape(slow[0])
    np.testing.assert_array_max_ulp(alone, slow[0], maxulp=4)


def test_fast_path_is_built_and_on():
    assert E.__name__ == "fastloss._entry", "the C fast path was not built"
    p = np.ones(3, np.float32)
    assert E.ew(0, p, p, "mean", True, None, None, None) is not NotImplemented


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("name,kid,kw", REGRESSION)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_same_bits_as_checked_path(rng, dt, name, kid, kw, reduction):
    p, t = _pair(rng, dt)
    fn = getattr(fastloss, name)
    hyper = next(iter(kw.values()), None)
    fast = E.ew(kid, p, t, reduction, True, None, hyper, None)
    assert fast is not NotImplemented
    with _fast.checked_only():
        slow = fn(p, t, reduction=reduction, backend="c", **kw)
    _same_loss(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])
    # out=, out=pred, grad=False, through the public function
    g = np.empty_like(p)
    loss, g2 = fn(p, t, reduction=reduction, out=g, **kw)
    assert g2 is g
    _same_loss(loss, slow[0])
    np.testing.assert_array_equal(g, slow[1])
    pc = p.copy()
    loss, g3 = fn(pc, t, reduction=reduction, out=pc, **kw)
    assert g3 is pc
    _same_loss(loss, slow[0])
    np.testing.assert_array_equal(pc, slow[1])
    _same_loss(fn(p, t, reduction=reduction, grad=False, **kw), slow[0])


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name,kid", [("binary_cross_entropy", 11), ("binary_cross_entropy_with_logits", 12),
                                      ("hinge", 13), ("squared_hinge", 14)])
def test_binary_same_bits_as_checked_path(rng, dt, reduction, name, kid):
    n = 1003
    if name == "binary_cross_entropy":
        x, t = rng.random(n).astype(dt), rng.random(n).astype(dt)
    else:
        x, t = rng.standard_normal(n).astype(dt) * 3, np.where(rng.random(n) < 0.5, -1, 1).astype(dt)
        if name == "binary_cross_entropy_with_logits":
            t = (t + 1) / 2
    margin = 0.7 if "hinge" in name else None
    kw = {} if margin is None else {"margin": margin}
    fast = E.binary(kid, x, t, reduction, True, None, margin, None)
    assert fast is not NotImplemented
    fn = getattr(fastloss, name)
    with _fast.checked_only():
        slow = fn(x, t, reduction=reduction, backend="c", **kw)
    _same_loss(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])
    xc = x.copy()
    loss, g = fn(xc, t, reduction=reduction, out=xc, **kw)
    assert g is xc
    _same_loss(loss, slow[0])
    np.testing.assert_array_equal(xc, slow[1])
    bad_x = x.copy()
    bad_t = t.copy()
    if name == "binary_cross_entropy":
        bad_x[7] = 1.5
    elif "hinge" in name:
        bad_t[7] = 0.5
    else:
        return
    assert E.binary(kid, bad_x, bad_t, reduction, True, None, margin, None) is NotImplemented
    with pytest.raises(ValueError, match=r"position \(7,\)"):
        fn(bad_x, bad_t, **kw)


@pytest.mark.parametrize("dt", DTYPES)
def test_optimizers_same_bits_as_checked_path(rng, dt):
    n = 777
    cases = [
        (optim.sgd_, 1, dict(step=3, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)),
        (optim.sgd_, 1, dict(step=2, lr=0.1, momentum=0.9, nesterov=True, maximize=True)),
        (optim.sgd_, 0, dict(step=1, lr=0.1)),
        (optim.adam_, 2, dict(step=3, lr=1e-2, weight_decay=0.1)),
        (optim.adamw_, 3, dict(step=5, lr=1e-2, amsgrad=True, grad_scale=0.5)),
        (optim.adagrad_, 1, dict(step=4, lr=0.1, lr_decay=0.01, weight_decay=0.1)),
        (optim.rmsprop_, 3, dict(step=2, lr=1e-2, momentum=0.9, centered=True)),
        (optim.rmsprop_, 1, dict(step=2, lr=1e-2)),
    ]
    for fn, nstate, kw in cases:
        p, g = _pair(rng, dt, n)
        states = [np.abs(rng.standard_normal(n)).astype(dt) for _ in range(nstate)]
        ref = [a.copy() for a in [p, *states]]
        out = fn(p, g, *states, **kw)
        assert out is p
        with _fast.checked_only():
            fn(ref[0], g, *ref[1:], backend="c", **kw)
        for a, b in zip([p, *states], ref):
            np.testing.assert_array_equal(a, b, err_msg=f"{fn.__name__} {kw}")


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_same_bits_as_checked_path(rng, dt, reduction):
    for n, c in [(1, 1), (17, 10), (256, 10), (33, 1000)]:
        x = rng.standard_normal((n, c)).astype(dt)
        y = rng.integers(0, c, n)
        y[::5] = -100
        for w in (None, rng.random(c).astype(dt)):
            fast = E.cross_entropy(x, y, w, -100, 0.1, reduction, True, None, None)
            assert fast is not NotImplemented
            with _fast.checked_only():
                slow = fastloss.cross_entropy(x, y, weight=w, label_smoothing=0.1, reduction=reduction,
                                              backend="c")
            assert type(fast[0]) is type(slow[0])
            np.testing.assert_array_equal(fast[0], slow[0])   # nan (all ignored, mean) included
            np.testing.assert_array_equal(fast[1], slow[1])
            xc = x.copy()
            loss, g = fastloss.cross_entropy(xc, y, weight=w, label_smoothing=0.1, reduction=reduction, out=xc)
            assert g is xc
            np.testing.assert_array_equal(loss, slow[0])
            np.testing.assert_array_equal(xc, slow[1])


def _soft_targets(rng, n, c, dt):
    q = rng.random((n, c)).astype(dt)
    return (q / q.sum(axis=1, keepdims=True)).astype(dt)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("backend", [None, "numba"])
def test_cross_entropy_probabilities_same_bits_as_checked_path(rng, dt, reduction, backend):
    """Class-probability targets: the fast path (C, or the Numba route) gives the checked
    path's bits, with out= a fresh buffer, the logits or the target itself."""
    if backend == "numba":
        pytest.importorskip("numba")
        fastloss._config.module("numba")
    for n, c in [(1, 1), (17, 10), (256, 10), (33, 1000), (3000, 7)]:
        x = rng.standard_normal((n, c)).astype(dt)
        q = _soft_targets(rng, n, c, dt)
        for w in (None, rng.random(c).astype(dt)):
            fast = E.cross_entropy(x, q, w, -100, 0.1, reduction, True, None, backend)
            assert fast is not NotImplemented
            with _fast.checked_only():
                slow = fastloss.cross_entropy(x, q, weight=w, label_smoothing=0.1, reduction=reduction,
                                              backend=backend)
            _same_loss(fast[0], slow[0])
            np.testing.assert_array_equal(fast[1], slow[1])
            _same_loss(fastloss.cross_entropy(x, q, weight=w, label_smoothing=0.1, reduction=reduction,
                                              grad=False, backend=backend), slow[0])
            for alias in ("logits", "target"):
                xc, qc = x.copy(), q.copy()
                out = xc if alias == "logits" else qc
                loss, g = fastloss.cross_entropy(xc, qc, weight=w, label_smoothing=0.1, reduction=reduction,
                                                 out=out, backend=backend)
                assert g is out
                with _fast.checked_only():
                    xs, qs = x.copy(), q.copy()
                    ref = fastloss.cross_entropy(xs, qs, weight=w, label_smoothing=0.1, reduction=reduction,
                                                 out=xs if alias == "logits" else qs, backend=backend)
                _same_loss(loss, ref[0])
                np.testing.assert_array_equal(g, ref[1])


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("p", [1, 2])
def test_multi_margin_same_bits_as_checked_path(rng, dt, reduction, p):
    for n, c in [(1, 1), (3, 2), (1000, 7), (65, 32), (9, 33), (5, 300)]:
        x = (rng.standard_normal((n, c)) * 2).astype(dt)
        y = rng.integers(0, c, n)
        w = rng.random(c).astype(dt)
        fast = E.multi_margin(x, y, p, 0.8, w, reduction, True, None, None)
        assert fast is not NotImplemented
        with _fast.checked_only():
            slow_w = fastloss.multi_margin(x, y, p=p, margin=0.8, weight=w, reduction=reduction, backend="c")
        _same_loss(fast[0], slow_w[0])
        np.testing.assert_array_equal(fast[1], slow_w[1])
        fast = E.multi_margin(x, y, p, 0.8, None, reduction, True, None, None)
        assert fast is not NotImplemented
        with _fast.checked_only():
            slow = fastloss.multi_margin(x, y, p=p, margin=0.8, reduction=reduction, backend="c")
        assert type(fast[0]) is type(slow[0]) and fast[0] == slow[0]
        np.testing.assert_array_equal(fast[1], slow[1])
        xc = x.copy()
        loss, g = fastloss.multi_margin(xc, y, p=p, margin=0.8, reduction=reduction, out=xc)
        assert g is xc and loss == slow[0]
        np.testing.assert_array_equal(xc, slow[1])
        with _fast.checked_only():
            slow_nograd = fastloss.multi_margin(x, y, p=p, margin=0.8, reduction=reduction, grad=False)
        assert fastloss.multi_margin(x, y, p=p, margin=0.8, reduction=reduction, grad=False) == slow_nograd


def test_checked_only_turns_the_fast_path_off(rng):
    p, t = _pair(rng, np.float32, 10)
    with _fast.checked_only():
        assert E.ew(0, p, t, "mean", True, None, None, None) is NotImplemented
        assert E.ew(0, p, t, "mean", True, None, None, "c") is NotImplemented
    assert E.ew(0, p, t, "mean", True, None, None, "c") is not NotImplemented


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_numba_route_same_bits_as_checked_numba(rng, dt, reduction):
    """backend="numba" (and a numba default): the fast path's checks, then the Numba
    backend's function: exactly the checked path's results."""
    pytest.importorskip("numba")
    fastloss._config.module("numba")   # loaded: its functions are bound
    p, t = _pair(rng, dt, 70001)       # parallel at 2 threads
    for name, kid, kw in REGRESSION:
        fn = getattr(fastloss, name)
        hyper = next(iter(kw.values()), None)
        _same_as_checked_numba(E.ew(kid, p, t, reduction, True, None, hyper, "numba"), fn, p, t, reduction, kw)
    cases = [dict(step=3, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
             dict(step=1, lr=0.1, momentum=0.9, nesterov=True, maximize=True), dict(step=2, lr=0.1)]
    for kw in cases:
        q, g = _pair(rng, dt, 70001)
        buf = rng.standard_normal(q.size).astype(dt)
        ref = [q.copy(), buf.copy()]
        assert E.sgd(q, g, buf, kw["step"], kw["lr"], kw.get("momentum", 0.0), kw.get("dampening", 0.0),
                     kw.get("nesterov", False), kw.get("weight_decay", 0.0), kw.get("maximize", False), 1.0,
                     "numba") is q
        with _fast.checked_only():
            optim.sgd_(ref[0], g, ref[1], backend="numba", **kw)
        np.testing.assert_array_equal(q, ref[0])
        np.testing.assert_array_equal(buf, ref[1])
    # a Numba default: backend=None takes the Numba route too
    x = rng.random(10).astype(dt)
    try:
        fastloss.set_backend("numba")
        assert E.ew(0, p, t, "mean", True, None, None, None) is not NotImplemented
        assert E.binary(11, x, x, "mean", True, None, None, None) is not NotImplemented
        assert E.adam(x, x.copy(), x.copy(), x.copy(), None, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False,
                      False, 1.0, None) is x
    finally:
        fastloss.set_backend("c")


ADAPTIVE = [
    # (entry function, public function, number of state arrays, keywords, entry's arguments
    #  after the arrays: the public keywords in entry.c's order)
    ("adam", optim.adam_, 2, dict(step=3, lr=1e-2, weight_decay=0.1),
     (3, 1e-2, 0.9, 0.999, 1e-8, 0.1, False, False, False, 1.0)),
    ("adam", optim.adamw_, 3, dict(step=5, lr=1e-2, amsgrad=True, maximize=True, grad_scale=0.5),
     (5, 1e-2, 0.9, 0.999, 1e-8, 0.01, True, True, True, 0.5)),
    ("adagrad", optim.adagrad_, 1, dict(step=4, lr=0.1, lr_decay=0.01, weight_decay=0.1, grad_scale=2.0),
     (4, 0.1, 0.01, 0.1, 1e-10, False, 2.0)),
    ("rmsprop", optim.rmsprop_, 3, dict(step=2, lr=1e-2, momentum=0.9, centered=True, maximize=True),
     (2, 1e-2, 0.99, 1e-8, 0.0, 0.9, True, True, 1.0)),
    ("rmsprop", optim.rmsprop_, 1, dict(step=2, lr=1e-2, weight_decay=0.1),
     (2, 1e-2, 0.99, 1e-8, 0.1, 0.0, False, False, 1.0)),
]


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("n", [777, 70001])   # serial, and parallel at 2 threads
def test_numba_route_adaptive_optimizers_same_bits_as_checked_numba(rng, dt, n):
    """Adam/AdamW/Adagrad/RMSprop with backend="numba": the fast path's checks, then the
    Numba backend's function (each argument where it belongs: the checked path's bits)."""
    pytest.importorskip("numba")
    fastloss._config.module("numba")
    for name, fn, nstate, kw, hyper in ADAPTIVE:
        p, g = _pair(rng, dt, n)
        states = [np.abs(rng.standard_normal(n)).astype(dt) for _ in range(nstate)]
        ref = [a.copy() for a in [p, *states]]
        # entry.c takes (param, grad, state..., hyper..., backend); absent state: None
        if name == "adagrad":
            full = states
        elif name == "adam":
            full = states + [None] * (3 - nstate)
        else:  # rmsprop: square_avg, momentum_buffer, grad_avg
            full = states if nstate == 3 else states + [None, None]
        assert getattr(E, name)(p, g, *full, *hyper, "numba") is p, f"{fn.__name__} {kw}"
        with _fast.checked_only():
            fn(ref[0], g, *ref[1:], backend="numba", **kw)
        for a, b in zip([p, *states], ref):
            np.testing.assert_array_equal(a, b, err_msg=f"{fn.__name__} {kw}")
        # and through the public function (the route taken): the same bits again
        q, qs = ref[0].copy(), [a.copy() for a in ref[1:]]
        with _fast.checked_only():
            fn(ref[0], g, *ref[1:], backend="numba", **kw)
        fn(q, g, *qs, backend="numba", **kw)
        for a, b in zip([q, *qs], ref):
            np.testing.assert_array_equal(a, b, err_msg=f"{fn.__name__} {kw}")


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_numba_route_classification_same_bits_as_checked_numba(rng, dt, reduction):
    """The binary losses, cross_entropy and multi_margin with backend="numba": the fast
    path's checks, then the Numba backend's function, exactly the checked path's results;
    and what the checks refuse still raises the checked path's errors."""
    pytest.importorskip("numba")
    fastloss._config.module("numba")
    n = 70001                                   # parallel at 2 threads
    probs, u = rng.random(n).astype(dt), rng.random(n).astype(dt)
    scores, signs = (rng.standard_normal(n) * 3).astype(dt), np.where(rng.random(n) < 0.5, -1, 1).astype(dt)
    for name, kid, x, t, kw in [("binary_cross_entropy", 11, probs, u, {}),
                                ("binary_cross_entropy_with_logits", 12, scores, u, {}),
                                ("hinge", 13, scores, signs, {"margin": 0.7}),
                                ("squared_hinge", 14, scores, signs, {"margin": 0.7})]:
        fn = getattr(fastloss, name)
        fast = E.binary(kid, x, t, reduction, True, None, kw.get("margin"), "numba")
        _same_as_checked_numba(fast, fn, x, t, reduction, kw)
    bad = probs.copy()
    bad[5] = -0.5
    with pytest.raises(ValueError, match=r"position \(5,\)"):
        fastloss.binary_cross_entropy(bad, u, backend="numba")
    if reduction == "none":
        return
    for rows, c in [(1, 1), (65, 7), (300, 33), (9, 1000)]:
        x = rng.standard_normal((rows, c)).astype(dt)
        y = rng.integers(0, c, rows)
        w = rng.random(c).astype(dt)
        for wt in (None, w):
            yi = y.copy()
            yi[::4] = -100
            fast = E.cross_entropy(x, yi, wt, -100, 0.1, reduction, True, None, "numba")
            assert fast is not NotImplemented
            with _fast.checked_only():
                slow = fastloss.cross_entropy(x, yi, weight=wt, label_smoothing=0.1, reduction=reduction,
                                              backend="numba")
            _same_loss(fast[0], slow[0])
            np.testing.assert_array_equal(fast[1], slow[1])
            for p in (1, 2):
                fast = E.multi_margin(x, y, p, 0.8, wt, reduction, True, None, "numba")
                assert fast is not NotImplemented
                with _fast.checked_only():
                    slow = fastloss.multi_margin(x, y, p=p, margin=0.8, weight=wt, reduction=reduction,
                                                 backend="numba")
                _same_loss(fast[0], slow[0])
                np.testing.assert_array_equal(fast[1], slow[1])
                nograd = fastloss.multi_margin(x, y, p=p, margin=0.8, weight=wt, reduction=reduction, grad=False,
                                               backend="numba")
                with _fast.checked_only():
                    _same_loss(nograd, fastloss.multi_margin(x, y, p=p, margin=0.8, weight=wt, reduction=reduction,
                                                             grad=False, backend="numba"))
        y[-1] = c
        with pytest.raises(ValueError, match=f"class index {c}"):
            fastloss.multi_margin(x, y, backend="numba")


def test_declines_what_is_not_the_common_case(rng):
    p, t = _pair(rng, np.float32, 100)
    g = np.empty_like(p)
    declined = [
        E.ew(0, p, t, "nonee", True, None, None, None),             # not a reduction
        E.ew(0, p, t.astype(np.float64), "mean", True, None, None, None),   # mixed dtypes
        E.ew(0, p, t[:50], "mean", True, None, None, None),          # shapes differ
        E.ew(0, p[::2], t[::2], "mean", True, None, None, None),     # not contiguous
        E.ew(0, list(p), t, "mean", True, None, None, None),         # not an ndarray
        E.ew(3, p, t, "mean", True, None, 1, None),                  # int delta (the checked path converts)
        E.ew(3, p, t, "mean", True, None, -1.0, None),               # bad delta
        E.ew(0, p, t, "mean", 1, None, None, None),                  # grad not a bool
        E.ew(0, p, t, "mean", True, g[:50], None, None),             # out of the wrong shape
        E.ew(0, p, t, "mean", False, g, None, None),                 # out with grad=False
        E.ew(0, p[:0], t[:0], "mean", True, None, None, None),       # empty: the checked path's nan
        E.sgd(p, t, None, 1, 0.1, 0.9, 0.0, False, 0.0, False, 1.0, None),  # momentum without buffer
        E.sgd(p, t, None, 0, 0.1, 0.0, 0.0, False, 0.0, False, 1.0, None),  # step 0
        E.sgd(p, t, None, 1, 0.1, 0.0, 0.0, True, 0.0, False, 1.0, None),   # nesterov without momentum
        E.adam(p, t, g, g, None, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False, False, 1.0, None),  # m is v
        E.adam(p, t, g, g.copy(), None, 1, 1e-3, 1.0, 0.999, 1e-8, 0.0, False, False, False, 1.0, None),
        E.adam(p, t, g, g.copy(), None, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, True, False, 1.0, None),
    ]
    for i, r in enumerate(declined):
        assert r is NotImplemented, f"case {i} was taken"
    x = rng.standard_normal((8, 5)).astype(np.float32)
    y = rng.integers(0, 5, 8)
    for args in [(x, y.astype(np.int32), None, -100, 0.0, "mean", True, None),   # int32 targets
                 (x, np.where(y == 0, 7, y), None, -100, 0.0, "mean", True, None),  # bad target
                 (x, y, np.ones(5, np.float64), -100, 0.0, "mean", True, None),   # weights' dtype
                 (x, y, np.ones(6, np.float32), -100, 0.0, "mean", True, None),   # weights' shape
                 (x, y, [1.0] * 5, -100, 0.0, "mean", True, None),                # weights a list
                 (x, y, None, -100, 1.5, "mean", True, None),                      # smoothing > 1
                 (x, y, None, -100, 0.0, "none", True, None),                      # per-sample losses
                 (x[0], y[:1], None, -100, 0.0, "mean", True, None),               # unbatched
                 (np.zeros((3, 0), np.float32), [0, 0, 0], None, -100, 0.0, "mean", True, None)]:
        assert E.cross_entropy(*args, None) is NotImplemented
    q = _soft_targets(rng, 8, 5, np.float32)
    g = np.empty_like(x)
    for args in [(x, q.astype(np.float64), None, -100, 0.0, "mean", True, None),   # targets' dtype
                 (x, q[:, :4].copy(), None, -100, 0.0, "mean", True, None),          # targets' shape
                 (x, q.T.copy().T, None, -100, 0.0, "mean", True, None),             # not C-contiguous
                 (x, q, np.ones(5, np.float64), -100, 0.0, "mean", True, None),      # weights' dtype
                 (x, q, None, -100, 0.0, "none", True, None),                         # per-sample losses
                 (x, q, None, -100, 0.0, "mean", True, g[:4]),                        # out's shape
                 (x[0], q[0], None, -100, 0.0, "mean", True, None)]:                  # unbatched
        assert E.cross_entropy(*args, None) is NotImplemented
    buf = np.zeros(41, np.float32)
    xs, qs = buf[:40].reshape(8, 5), buf[1:].reshape(8, 5)   # out overlapping an input, not equal to it
    assert E.cross_entropy(xs, q, None, -100, 0.0, "mean", True, qs, None) is NotImplemented
    assert E.cross_entropy(x, xs, None, -100, 0.0, "mean", True, qs, None) is NotImplemented
    assert not buf.any()
    for args in [(x, y.astype(np.int32), 1, 1.0, None),          # int32 targets
                 (x, np.where(y == 0, 5, y), 1, 1.0, None),      # target out of range
                 (x, np.where(y == 0, -1, y), 1, 1.0, None),     # negative target
                 (x, y, 3, 1.0, None),                           # p not 1 or 2
                 (x, y, True, 1.0, None),                        # p a bool
                 (x, y, 1, 1, None),                             # int margin (the checked path converts)
                 (x, y, 1, float("inf"), None),                  # margin not finite
                 (x, y, 1, 1.0, np.ones(5, np.float64)),         # weights' dtype
                 (x, y, 1, 1.0, np.ones((1, 5), np.float32)),    # weights' shape
                 (x[0], y[:1], 1, 1.0, None)]:                   # unbatched
        assert E.multi_margin(*args, "mean", True, None, None) is NotImplemented
    assert E.multi_margin(x, y, 1, 1.0, None, "none", True, None, None) is NotImplemented


def test_declines_arrays_it_cannot_read_as_they_are(rng):
    """The fast path reads NumPy's array fields itself: byte order, alignment, subclasses,
    read-only and warn-on-write buffers are the checked path's (which converts or raises)."""
    p, t = _pair(rng, np.float32, 12)
    raw = np.zeros(12 * 4 + 1, np.uint8)
    misaligned = raw[1:].view(np.float32)
    misaligned[:] = p
    readonly = np.empty_like(p)
    readonly.setflags(write=False)
    x2 = p.reshape(1, 12)
    warn_on_write = np.broadcast_arrays(np.empty(12, np.float32), x2)[0]   # (1, 12), C-contiguous
    assert warn_on_write.strides[1] == 4
    sub = p.view(type("Sub", (np.ndarray,), {}))
    for args in [(p.astype(">f4"), t), (p, t.astype(">f4")), (misaligned, t), (sub, t),
                 (p.astype(np.int64), t)]:
        assert E.ew(0, *args, "mean", True, None, None, None) is NotImplemented
    assert E.ew(0, p, t, "mean", True, readonly, None, None, None) is NotImplemented
    assert E.ew(0, x2, t.reshape(1, 12), "mean", True, warn_on_write, None, None, None) is NotImplemented
    with pytest.warns(FutureWarning, match="broadcast"):   # the checked path writes it, as NumPy warns
        fastloss.mse(x2, t.reshape(1, 12), out=warn_on_write)
    for bad in (p.astype(">f4"), misaligned):
        np.testing.assert_array_equal(fastloss.mse(bad, t)[1], fastloss.mse(p, t)[1])
    with pytest.raises(TypeError, match="pred: ndarray subclass"):
        fastloss.mse(sub, t)
    x = rng.standard_normal((8, 5)).astype(np.float32)
    y = rng.integers(0, 5, 8)
    assert E.cross_entropy(x, y.astype(">i8"), None, -100, 0.0, "mean", True, None, None) is NotImplemented
    assert E.cross_entropy(x, y.astype(np.uint64), None, -100, 0.0, "mean", True, None, None) is NotImplemented
    taken = E.cross_entropy(x, y.astype(np.longlong), None, -100, 0.0, "mean", True, None, None)
    assert taken is not NotImplemented                       # 'q' and 'l' are both int64 here
    loss, g = taken
    assert type(loss) is np.float32
    ref_loss, ref_g = fastloss.cross_entropy(x, y)
    assert loss == ref_loss
    np.testing.assert_array_equal(g, ref_g)
    assert g.flags.c_contiguous and g.flags.writeable and g.dtype == np.float32 and type(g) is np.ndarray


def test_declined_calls_still_work_or_raise_named_errors(rng):
    p, t = _pair(rng, np.float32, 100)
    loss, _ = fastloss.huber(p, t, delta=1)
    assert loss == fastloss.huber(p, t, delta=1.0)[0]
    g = np.empty(100, np.float32)
    g.setflags(write=False)
    with pytest.raises(ValueError, match="out: is read-only"):
        fastloss.mse(p, t, out=g)
    buf = np.zeros(150, np.float32)
    before = buf.copy()
    with pytest.raises(ValueError, match="partially overlaps"):
        fastloss.mse(buf[:100], t, out=buf[50:])
    np.testing.assert_array_equal(buf, before)
    with pytest.raises(ValueError, match="share memory"):
        optim.adam_(buf[:100], t, buf[50:], np.zeros(100, np.float32), step=1)
    np.testing.assert_array_equal(buf, before)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    with pytest.raises(ValueError, match=r"class index 9 at position \(2,\)"):
        fastloss.cross_entropy(x, np.array([0, 1, 9, 2]))
    # the gradient must not be written over per-class weights (read while it is written)
    buf = np.ones(12, np.float32)
    before = buf.copy()
    for fn in (fastloss.cross_entropy, fastloss.multi_margin):
        for w, out in [(buf[:3], buf.reshape(4, 3)), (buf[3:6], buf[:12].reshape(4, 3))]:
            with pytest.raises(ValueError, match="out: shares memory with weight"):
                fn(x, np.array([0, 1, 2, 2]), weight=w, out=out)
            np.testing.assert_array_equal(buf, before)


def test_backend_none_only_while_the_default_is_c_and_c_by_name_always(rng):
    """(the Numba route: test_numba_route_same_bits_as_checked_numba)"""
    p, t = _pair(rng, np.float32, 10)
    try:
        fastloss.set_backend("numpy")
        assert E.ew(0, p, t, "mean", True, None, None, None) is NotImplemented
        assert E.ew(0, p, t, "mean", True, None, None, "numpy") is NotImplemented
        assert fastloss.get_backend() == "numpy"
        loss, _ = fastloss.mse(p, t)   # runs on the reference backend
        assert loss.dtype == np.float32
        # backend="c" by name: the fast path, the C kernels' bits
        fast = E.ew(0, p, t, "mean", True, None, None, "c")
        assert fast is not NotImplemented
        with _fast.checked_only():
            slow = fastloss.mse(p, t, backend="c")
        assert fast[0] == slow[0]
        np.testing.assert_array_equal(fast[1], slow[1])
        for other in ("numpy", "C", 3):
            assert E.ew(0, p, t, "mean", True, None, None, other) is NotImplemented
    finally:
        fastloss.set_backend("c")
    assert E.ew(0, p, t, "mean", True, None, None, None) is not NotImplemented


def test_concurrent_calls_without_the_gil(rng):
    """Large calls run without the GIL on the fast path: several Python threads at once get
    exactly the serial results."""
    from concurrent.futures import ThreadPoolExecutor
    n = 100_003
    pairs = [_pair(rng, np.float32, n) for _ in range(8)]
    serial = [fastloss.huber(p, t, delta=0.5) for p, t in pairs]
    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(lambda pt: fastloss.huber(pt[0], pt[1], delta=0.5), pairs))
    for (l1, g1), (l2, g2) in zip(serial, results):
        assert l1 == l2
        np.testing.assert_array_equal(g1, g2)
