"""PyTorch as the oracle for the classification losses: every option combination, value and
autograd gradient; extreme logits."""
import itertools

import numpy as np
import pytest

import fastloss
from fastloss._registry import COMPILED, DTYPES
from helpers import assert_close

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _torch(fn, x, *args, **kw):
    tx = torch.tensor(x, requires_grad=True)
    conv = {k: (torch.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    l = fn(tx, *[torch.tensor(a) for a in args], **conv)
    l.sum().backward()
    return l.detach().numpy(), tx.grad.numpy()


CE_GRID = list(itertools.product(
    [False, True],                 # class weights
    [-100, 1],                     # ignore_index
    [0.0, 0.25],                   # label smoothing
    [False, True],                 # probability targets
    ["mean", "sum", "none"],
    [(), (3, 2)],                  # K-dimensional extra axes
))


@pytest.mark.parametrize("weighted,ignore,eps,soft,reduction,extra", CE_GRID)
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_cross_entropy_matches_torch(weighted, ignore, eps, soft, reduction, extra, backend, dtype):
    rng = np.random.default_rng(5)
    n, c = 9, 6
    x = (rng.standard_normal((n, c) + extra) * 2).astype(dtype)
    if soft:
        q = rng.random(x.shape)
        t = (q / q.sum(axis=1, keepdims=True)).astype(dtype)
    else:
        t = rng.integers(0, c, (n,) + extra)
        t.reshape(-1)[::4] = ignore
    kw = dict(reduction=reduction, label_smoothing=eps)
    if not soft:
        kw["ignore_index"] = ignore
    if weighted:
        kw["weight"] = rng.uniform(0.3, 2.0, c).astype(dtype)
    tl, tg = _torch(F.cross_entropy, x, t, **kw)
    l, g = fastloss.cross_entropy(x, t, backend=backend, **kw)
    assert_close(l, tl, dtype, "loss")
    assert_close(g, tg, dtype, "grad")


def test_cross_entropy_unbatched_matches_torch():
    x = np.random.default_rng(1).standard_normal(7)
    for b in COMPILED:
        for t in (np.array(3), np.abs(x) / np.abs(x).sum()):
            tl, tg = _torch(F.cross_entropy, x, t, label_smoothing=0.1)
            l, g = fastloss.cross_entropy(x, t, label_smoothing=0.1, backend=b)
            assert_close(l, tl, np.float64, "loss")
            assert_close(g, tg, np.float64, "grad")


@pytest.mark.parametrize("backend", COMPILED + ("numpy",))
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_cross_entropy_extreme_logits(backend, dtype):
    """+-1e4 logits are exact (max-subtracted log-sum-exp); rows with +-inf or NaN give the
    same NaN/Inf pattern as torch."""
    rows = [[1e4, -1e4, 0.0, 5.0], [-1e4, -1e4, -1e4, -1e4 + 1], [np.inf, 0.0, 1.0, 2.0],
            [-np.inf, 0.0, 1.0, 2.0], [np.nan, 0.0, 1.0, 2.0], [-np.inf, -np.inf, 3.0, -np.inf],
            [1e30, -1e30, 0.0, 1.0]]
    x = np.array(rows, dtype)
    for t in ([0, 3, 1, 0, 2, 2, 0], [1, 0, 0, 2, 1, 3, 1]):
        t = np.array(t)
        for reduction in ("none", "sum"):
            tl, tg = _torch(F.cross_entropy, x, t, reduction=reduction)
            l, g = fastloss.cross_entropy(x, t, reduction=reduction, backend=backend)
            np.testing.assert_array_equal(np.isnan(l), np.isnan(tl))
            np.testing.assert_array_equal(np.isnan(g), np.isnan(tg))
            np.testing.assert_allclose(np.nan_to_num(l), np.nan_to_num(tl), rtol=1e-6)
            np.testing.assert_allclose(np.nan_to_num(g), np.nan_to_num(tg), rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("backend", COMPILED + ("numpy",))
@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_cross_entropy_minus_inf_logits_and_ignored_rows(backend, eps):
    """A -inf logit is a class of probability 0 (finite loss, no smoothing term without
    label smoothing), also in ignored rows: torch's values (the NumPy reference once gave
    0 * inf = NaN there)."""
    x = np.array([[-np.inf, 0.0, 1.0], [0.0, 1.0, 2.0], [-np.inf, -np.inf, 0.5], [2.0, -np.inf, 1.0]])
    t = np.array([1, 0, -100, 2])
    for reduction in ("none", "sum", "mean"):
        tl, tg = _torch(F.cross_entropy, x, t, reduction=reduction, label_smoothing=eps)
        l, g = fastloss.cross_entropy(x, t, reduction=reduction, label_smoothing=eps, backend=backend)
        assert_close(l, tl, np.float64, f"loss {reduction}")
        assert_close(g, tg, np.float64, f"grad {reduction}")


# targets' weights summing to 0 under the mean: torch divides its nll and smoothing means by
# that 0 apart (NaN when a sum is 0 or they differ in sign).  The rows: all-zero target
# weights; weights cancelling (1 - 1 + 0); and with an ignored row.
ZERO_DENOM = [
    ([[0.5, -1.0, 2.0], [0.1, 0.2, 0.3]], [0, 0], [0.0, 1.0, 1.0]),
    ([[0.5, -1.0, 2.0], [0.1, 0.2, 0.3], [1.0, 2.0, 3.0]], [0, 1, 2], [1.0, -1.0, 0.0]),
    ([[0.5, -1.0, 2.0], [0.1, 0.2, 0.3], [1.0, 2.0, 3.0]], [0, 1, 2], [2.0, -1.0, -1.0]),
    ([[0.5, -1.0, 2.0], [0.1, 0.2, 0.3], [1.0, 2.0, 3.0]], [0, -100, 0], [0.0, 1.0, 1.0]),
]


@pytest.mark.parametrize("case", range(len(ZERO_DENOM)))
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_cross_entropy_mean_over_zero_total_weight(case, eps, dtype):
    x, y, w = (np.array(a) for a in ZERO_DENOM[case])
    x, w = x.astype(dtype), w.astype(dtype)
    tl, _ = _torch(F.cross_entropy, x, y, weight=w, label_smoothing=eps)
    grads = []
    for b in COMPILED + ("numpy",):
        l, g = fastloss.cross_entropy(x, y, weight=w, label_smoothing=eps, backend=b)
        assert not np.isfinite(tl)
        np.testing.assert_array_equal(l, tl, err_msg=f"{b}: loss")   # NaN = NaN, inf = inf
        live = y != -100
        assert not np.isfinite(g[live]).any() and np.all(g[~live] == 0), b
        grads.append(g)
    for b, g in zip(COMPILED, grads):   # the same inf / NaN pattern on every backend
        np.testing.assert_array_equal(g, grads[-1], err_msg=b)


@pytest.mark.parametrize("backend", COMPILED + ("numpy",))
@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 4)], ids=str)
def test_cross_entropy_nonfinite_weight_of_a_class_never_a_target(backend, bad, shape):
    """without smoothing torch never multiplies w_j by anything for a class j that is no
    sample's target: its gradient column stays finite (0 * NaN must not appear)"""
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape)
    y = rng.integers(1, 3, (shape[0],) + shape[2:])
    w = np.array([bad, 1.0, 2.0])
    tl, tg = _torch(F.cross_entropy, x, y, weight=w)
    l, g = fastloss.cross_entropy(x, y, weight=w, backend=backend)
    assert np.isfinite(l) and np.all(np.isfinite(g))
    assert_close(l, tl, np.float64, "loss")
    assert_close(g, tg, np.float64, "grad")


@pytest.mark.parametrize("backend", COMPILED + ("numpy",))
@pytest.mark.parametrize("xshape,pshape", [((4, 3), (1, 3)), ((4, 3), (4, 3)), ((4, 3), (4, 1)),
                                           ((2, 3, 4, 5), (3, 1, 1)), ((2, 3, 4, 5), (1, 1, 1, 5)),
                                           ((2, 3, 4, 5), ()), ((7,), (1,)), ((), ())], ids=str)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_bce_with_logits_pos_weight_broadcasts_as_torch(backend, xshape, pshape, reduction):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(xshape) * 3
    t = rng.random(xshape)
    pw = rng.uniform(0.5, 3, pshape)
    w = rng.uniform(0.5, 2, xshape[-1:])
    tl, tg = _torch(F.binary_cross_entropy_with_logits, x, t, weight=w, pos_weight=pw, reduction=reduction)
    l, g = fastloss.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw, reduction=reduction,
                                                     backend=backend)
    assert np.shape(l) == tl.shape
    assert_close(l, tl, np.float64, "loss")
    assert_close(g, tg, np.float64, "grad")


@pytest.mark.parametrize("pshape", [(3, 4), (5, 1, 1), (2, 2, 1, 1), (1, 2, 3, 4, 5)], ids=str)
def test_bce_with_logits_pos_weight_that_does_not_broadcast(pshape):
    x = np.zeros((2, 3, 4, 5))
    g = np.full(x.shape, 7.0)
    with pytest.raises(ValueError, match=r"pos_weight: shape .* does not broadcast to the logits' shape \(2, 3, 4, 5\)"):
        fastloss.binary_cross_entropy_with_logits(x, np.zeros_like(x), pos_weight=np.ones(pshape), out=g)
    assert np.all(g == 7.0)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_bce_matches_torch(weighted, reduction, backend, dtype):
    rng = np.random.default_rng(2)
    p = rng.uniform(0, 1, (8, 5)).astype(dtype)
    p[0, :3] = [0.0, 1.0, 1e-30]           # the -100 clamp and the 1e-12 gradient floor
    t = rng.random((8, 5)).astype(dtype)
    t[0, :2] = [1.0, 0.0]
    kw = {"reduction": reduction}
    if weighted:
        kw["weight"] = rng.uniform(0.5, 2, (5,)).astype(dtype)   # broadcast over rows
    tl, tg = _torch(F.binary_cross_entropy, p, t, **kw)
    l, g = fastloss.binary_cross_entropy(p, t, backend=backend, **kw)
    assert_close(l, tl, dtype, "loss")
    assert_close(g, tg, dtype, "grad")


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("pos", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_bce_with_logits_matches_torch(weighted, pos, reduction, backend, dtype):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((8, 5)) * 6).astype(dtype)
    x[0, :4] = [80.0, -80.0, 1e4, -1e4]      # stable form: no overflow
    t = rng.random((8, 5)).astype(dtype)
    kw = {"reduction": reduction}
    if weighted:
        kw["weight"] = rng.uniform(0.5, 2, (8, 1)).astype(dtype)
    if pos:
        kw["pos_weight"] = rng.uniform(0.5, 3, (5,)).astype(dtype)
    tl, tg = _torch(F.binary_cross_entropy_with_logits, x, t, **kw)
    l, g = fastloss.binary_cross_entropy_with_logits(x, t, backend=backend, **kw)
    assert np.all(np.isfinite(l)) and np.all(np.isfinite(g))
    assert_close(l, tl, dtype, "loss")
    assert_close(g, tg, dtype, "grad")


@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("margin", [1.0, 0.3])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("nan", [False, True])
@pytest.mark.parametrize("backend", COMPILED + ("numpy",))
def test_hinge_matches_torch_relu_form(squared, margin, reduction, weighted, nan, backend):
    rng = np.random.default_rng(4)
    s = rng.standard_normal(40).astype(np.float32)
    t = rng.choice([-1.0, 1.0], 40).astype(np.float32)
    s[:2] = [margin, -margin]                # kinks: gradient 0, as torch's relu
    t[:2] = [1.0, -1.0]
    if nan:                                  # relu's backward passes the gradient at NaN
        s[2:4] = np.nan
    w = rng.uniform(0.2, 2.0, 40).astype(np.float32) if weighted else None
    red = {"mean": torch.mean, "sum": torch.sum, "none": lambda v: v}[reduction]

    def ref(sv, tv):
        h = F.relu(margin - tv * sv)
        h = h * h if squared else h
        return red(h if w is None else h * torch.tensor(w))
    tl, tg = _torch(ref, s, t)
    fn = fastloss.squared_hinge if squared else fastloss.hinge
    l, g = fn(s, t, margin=margin, weight=w, reduction=reduction, backend=backend)
    assert_close(l, tl, np.float32, "loss")
    assert_close(g, tg, np.float32, "grad")


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_multi_margin_matches_torch(p, weighted, reduction, backend, dtype):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((11, 5)).astype(dtype)
    t = rng.integers(0, 5, 11)
    kw = {"p": p, "margin": 0.8, "reduction": reduction}
    if weighted:
        kw["weight"] = rng.uniform(0.5, 2, 5).astype(dtype)
    tl, tg = _torch(F.multi_margin_loss, x, t, **kw)
    l, g = fastloss.multi_margin(x, t, backend=backend, **kw)
    assert_close(l, tl, dtype, "loss")
    assert_close(g, tg, dtype, "grad")


@pytest.mark.parametrize("backend", COMPILED + ("numpy",))
@pytest.mark.parametrize("p", [1, 2])
def test_multi_margin_unbatched_matches_torch(backend, p):
    """(C,) logits with a () target: torch's unbatched form."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal(6)
    w = rng.uniform(0.5, 2.0, 6)
    for t in (np.array(0), np.array(4)):
        for reduction in ("mean", "sum", "none"):
            tl, tg = _torch(F.multi_margin_loss, x, t, p=p, margin=0.9, weight=w, reduction=reduction)
            l, g = fastloss.multi_margin(x, t, p=p, margin=0.9, weight=w, reduction=reduction, backend=backend)
            assert np.shape(l) == np.shape(tl) and g.shape == x.shape
            assert_close(l, tl, np.float64, "loss")
            assert_close(g, tg, np.float64, "grad")
