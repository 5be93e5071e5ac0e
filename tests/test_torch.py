"""PyTorch as the external oracle: every loss (value and autograd gradient, every option)
and SGD trajectories vs torch.optim.SGD."""
import numpy as np
import pytest

from fastloss import optim
from fastloss._registry import COMPILED, DTYPES, LOSSES, OPTIMIZERS
from helpers import assert_close

torch = pytest.importorskip("torch")
F = torch.nn.functional

TORCH_LOSS = {
    "mse": lambda p, t, r, h: F.mse_loss(p, t, reduction=r),
    "smooth_l2": lambda p, t, r, h: 0.5 * F.mse_loss(p, t, reduction=r),
    "mae": lambda p, t, r, h: F.l1_loss(p, t, reduction=r),
    "huber": lambda p, t, r, h: F.huber_loss(p, t, reduction=r, delta=h["delta"]),
    "smooth_l1": lambda p, t, r, h: F.smooth_l1_loss(p, t, reduction=r, beta=h["beta"]),
}
CASES = [(name, h) for name, k in LOSSES.items() for h in k.variants]


def _torch_loss(name, pred, target, reduction, hyper):
    tp = torch.tensor(pred, requires_grad=True)
    l = TORCH_LOSS[name](tp, torch.tensor(target), reduction, hyper)
    l.sum().backward()
    return l.detach().numpy(), tp.grad.numpy()


@pytest.mark.parametrize("name,hyper", CASES)
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_matches_torch(name, hyper, backend, dtype, reduction, rng):
    k = LOSSES[name]
    pred, target = k.sample(rng, (37, 11), dtype)
    tl, tg = _torch_loss(name, pred, target, reduction, hyper)
    l, g = k.func(pred, target, reduction=reduction, backend=backend, **hyper)
    assert_close(l, tl, dtype, "loss")
    assert_close(g, tg, dtype, "grad")


@pytest.mark.parametrize("name,hyper", CASES)
@pytest.mark.parametrize("backend", COMPILED)
def test_special_values_match_torch(name, hyper, backend):
    vals = np.array([np.nan, np.inf, -np.inf, 0.0, 1.0, -3.0, 1e30], np.float32)
    pred, target = np.meshgrid(vals, vals)
    pred, target = pred.ravel().copy(), target.ravel().copy()
    tl, tg = _torch_loss(name, pred, target, "none", hyper)
    l, g = LOSSES[name].func(pred, target, reduction="none", backend=backend, **hyper)
    np.testing.assert_array_equal(np.isnan(l), np.isnan(tl))
    np.testing.assert_array_equal(np.isnan(g), np.isnan(tg))
    ok = ~np.isnan(tl)
    np.testing.assert_allclose(l[ok], tl[ok], rtol=1e-6)
    ok = ~np.isnan(tg)
    np.testing.assert_allclose(g[ok], tg[ok], rtol=1e-6)


@pytest.mark.parametrize("backend", COMPILED + ("numpy",))
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_smooth_l1_degenerate_beta_matches_torch(backend, dtype):
    """beta below 2^-100 (subnormal included: 0.5/beta and 1/beta overflow) and beta = inf
    (d = +-inf then takes torch's compares: gradient +-1, not inf/inf)."""
    tiny = np.finfo(dtype).smallest_subnormal * 1000
    for beta in (float(tiny), 2.0 ** -110, float("inf")):
        d = np.array([0.0, tiny / 3, -tiny / 2, tiny, 2 * tiny, 1.0, -2.5, np.inf, -np.inf, np.nan], dtype)
        pred, target = d.copy(), np.zeros_like(d)
        # "mean" against the float64 reference: torch's float32 backward forms (1/n) d first,
        # a subnormal that has lost bits before the division (0.0331 for 1/30)
        for reduction in ("none", "sum", "mean"):
            if reduction == "mean":
                tl, tg = LOSSES["smooth_l1"].func(pred, target, beta=beta, reduction=reduction, backend="numpy")
            else:
                tl, tg = _torch_loss("smooth_l1", pred, target, reduction, {"beta": beta})
            l, g = LOSSES["smooth_l1"].func(pred, target, beta=beta, reduction=reduction, backend=backend)
            assert_close(l, tl, dtype, f"{reduction} loss beta={beta}")
            assert_close(g, tg, dtype, f"{reduction} grad beta={beta}")


SGD = OPTIMIZERS["sgd"]


@pytest.mark.parametrize("opts", SGD.grid(), ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_sgd_matches_torch(opts, backend, dtype):
    rng = np.random.default_rng(3)
    n = 1031
    p0 = rng.standard_normal(n).astype(dtype)
    grads = [rng.standard_normal(n).astype(dtype) for _ in range(20)]
    hyper = SGD.hyper(opts)

    tp = torch.tensor(p0.copy(), requires_grad=True)
    topt = torch.optim.SGD([tp], **hyper)
    p = p0.copy()
    opt = optim.SGD([p], **hyper, backend=backend)
    for g in grads:
        tp.grad = torch.tensor(g)
        topt.step()
        opt.step([g])
    assert_close(p, tp.detach().numpy(), dtype, "param after 20 steps")
    if opts["momentum"]:
        assert_close(opt.state[0]["momentum_buffer"], topt.state[tp]["momentum_buffer"].numpy(), dtype, "buffer")
