"""End to end: fastloss's pieces composed in small training loops, against the same loops in
PyTorch (torch 2.13, CPU), step for step.

1. A softmax classifier, 37 features -> 23 tanh units -> 7 classes, batch 61 (odd sizes on
   purpose), 25 steps on fixed synthetic data: forward and backprop of the two layers in
   NumPy, loss and dL/dlogits from ``fastloss.cross_entropy``, parameters in a
   ``fastloss.FlatParams``, gradients clipped with ``fastloss.clip_grad_norm`` (through
   ``step(grad_scale=...)``) or ``clip_grad_norm_`` (in place), updated by ``optim.AdamW`` or
   ``optim.SGD`` (momentum + Nesterov) driven by a ``fastloss.schedules`` schedule.  torch:
   ``nn.Linear`` layers holding the same initial arrays, ``F.cross_entropy`` with the same
   options, ``nn.utils.clip_grad_norm_``, ``torch.optim`` and the equivalent lr_scheduler.
2. A regression MLP, 13 -> 9 tanh -> 3 outputs, batch 53, targets with heavy-tailed noise:
   ``fastloss.huber`` + ``optim.Adam`` (coupled weight decay, exponential schedule) and
   ``fastloss.smooth_l1`` + ``optim.Adam(amsgrad=True)`` with in-place clipping over a list
   of arrays.

Compared per step: the loss, the gradient norm before clipping, the learning rate; at the
end: every parameter.  Each case also checks that its torch trajectory exercises the options
it is about (the loss falls; clipping acts on some steps but not all; the residuals straddle
the Huber/smooth-L1 kink; AMSGrad's running max exceeds exp_avg_sq somewhere), so getting
one of them wrong cannot go unnoticed.

Tolerances, as ``fastloss._check.relerr`` (each element against its own magnitude, floored
at a fraction of the largest).  Measured on these loops (torch 2.13 CPU, both backends): fastloss float64 vs torch float64 differs by <= 1.1e-13 on the parameters and
<= 1e-15 on the per-step losses and norms (summation order only), so float64 is held to
1e-10 everywhere.  In float32, fastloss vs torch differs by <= 5.2e-6 on the parameters and
<= 2.3e-7 on the per-step losses and norms; torch float32 itself differs from torch float64
by as much (4.4e-6 and 2.0e-7): rounding drift, which 25 steps of Adam's normalisation
amplify in the parameters.  So float32 is held to 1e-4 on the parameters and 1e-5 on the
per-step scalars (20x and 40x margins).  Each wrong semantics checked against (the list at
the bottom of this file) moves the float32 per-step losses by >= 2.4e-3 relative, and each
small hyperparameter slip there by >= 4.3e-4: 40x the float32 per-step tolerance or more.

Like every torch comparison here (pyproject's `torch` marker), the module is skipped where
torch is not installed; `.ci/run` installs it, so CI runs it.
"""
import math

import numpy as np
import pytest

import fastloss
from fastloss import optim, schedules
from fastloss._check import relerr
from fastloss._registry import COMPILED, DTYPES

torch = pytest.importorskip("torch")
F = torch.nn.functional

STEPS = 25
# (per-step loss and gradient norm, final parameters): see the module docstring
TOL = {np.dtype(np.float32): (1e-5, 1e-4), np.dtype(np.float64): (1e-10, 1e-10)}


@pytest.fixture(autouse=True)
def _torch_one_thread():
    """torch on one thread while these tests run: ops on a few hundred elements gain nothing
    from threads, and torch's OpenMP runtime beside fastloss's (and Numba's) stalls for a
    scheduler slice per threaded op on this 2-core host (README, "Backends and threads"):
    ~3 s per test instead of ~0.03 s."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _check(got, ref, dtype, what, tol):
    err = relerr(got, ref, dtype)
    assert err <= tol, f"{what}: relative error {err:.3g} > {tol:g}"


# ---- the model: y = tanh(x W1^T + b1) W2^T + b2, torch.nn.Linear's layout --------------------
def _init(rng, sizes, dtype):
    """Weights and biases as nn.Linear draws them: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    arrays = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        k = 1.0 / math.sqrt(fan_in)
        arrays += [rng.uniform(-k, k, (fan_out, fan_in)), rng.uniform(-k, k, fan_out)]
    return [a.astype(dtype) for a in arrays]


def _forward(params, x):
    w1, b1, w2, b2 = params
    h = np.tanh(x @ w1.T + b1)
    return h, h @ w2.T + b2


def _backward(params, x, h, dout, grads):
    """Gradients of the four parameters, written (=) into ``grads``."""
    w1, b1, w2, b2 = params
    gw1, gb1, gw2, gb2 = grads
    np.matmul(dout.T, h, out=gw2)
    np.sum(dout, axis=0, out=gb2)
    dpre = (dout @ w2) * (1 - h * h)
    np.matmul(dpre.T, x, out=gw1)
    np.sum(dpre, axis=0, out=gb1)


def _torch_model(init):
    t = torch
    (w1, b1, w2, b2), dt = init, t.from_numpy(init[0]).dtype
    l1 = t.nn.Linear(w1.shape[1], w1.shape[0], dtype=dt)
    l2 = t.nn.Linear(w2.shape[1], w2.shape[0], dtype=dt)
    with t.no_grad():
        for p, a in zip((l1.weight, l1.bias, l2.weight, l2.bias), init):
            p.copy_(t.from_numpy(a))
    return t.nn.Sequential(l1, t.nn.Tanh(), l2)


# ---- the two loops ---------------------------------------------------------------------------
def _train_fastloss(case, x, y, init, backend):
    """Returns (per-step losses, norms before clipping, learning rates; final parameters,
    the optimizer)."""
    if case["flat"]:
        flat = fastloss.FlatParams.from_arrays(init, dtype=x.dtype)
        params, grads, target = flat.params, flat.grads, flat
    else:
        params = [a.copy() for a in init]
        grads = [np.empty_like(a) for a in init]
        target = params
    opt = case["ours"](target, backend)
    lr = opt.lr
    losses, norms, lrs = [], [], []
    for t in range(STEPS):
        lrs.append(lr(t) if callable(lr) else lr)
        h, out = _forward(params, x)
        loss, dout = case["loss"](out, y, backend=backend)
        _backward(params, x, h, dout, grads)
        gs = flat if case["flat"] else grads
        scale = 1.0
        if case["clip"] == "fused":      # the norm and torch's factor, applied inside step()
            norm, scale = fastloss.clip_grad_norm(gs, case["max_norm"], backend=backend)
        elif case["clip"] == "inplace":  # torch's form: the gradients scaled in place
            norm = fastloss.clip_grad_norm_(gs, case["max_norm"], backend=backend)
        else:
            norm = fastloss.clip_grad_norm(gs, math.inf, backend=backend)[0]
        if case["flat"]:
            opt.step(grad_scale=scale)
        else:
            opt.step(grads, grad_scale=scale)
        losses.append(float(loss))
        norms.append(norm)
    return np.array(losses), np.array(norms), lrs, [np.array(p) for p in params], opt


def _train_torch(case, x, y, init):
    t = torch
    model = _torch_model(init)
    params = list(model.parameters())
    opt = case["theirs"](params)
    sched = case["sched"](opt) if case["sched"] else None
    tx, ty = t.from_numpy(x), t.from_numpy(y)
    losses, norms, lrs = [], [], []
    for _ in range(STEPS):
        lrs.append(opt.param_groups[0]["lr"])
        opt.zero_grad()
        loss = case["torch_loss"](model(tx), ty)
        loss.backward()
        norm = t.nn.utils.clip_grad_norm_(params, case["max_norm"] if case["clip"] else math.inf)
        opt.step()
        if sched is not None:
            sched.step()
        losses.append(loss.item())
        norms.append(norm.item())
    final = [p.detach().numpy().copy() for p in params]
    return np.array(losses), np.array(norms), lrs, final, opt


def _compare(case, ours, theirs, dtype):
    losses, norms, lrs, params, _ = ours
    tlosses, tnorms, tlrs, tparams, _ = theirs
    # the schedules replay torch's recursion: equal, or within an ulp where the docstring of
    # schedules.linear_warmup says so (cosine restarted at its milestone)
    for t, (a, b) in enumerate(zip(lrs, tlrs)):
        assert math.isclose(a, b, rel_tol=1e-15, abs_tol=0.0), f"lr at step {t}: {a!r} vs torch {b!r}"
    tol_step, tol_param = TOL[np.dtype(dtype)]
    _check(losses, tlosses, dtype, "per-step loss", tol_step)
    _check(norms, tnorms, dtype, "per-step gradient norm", tol_step)
    for i, (p, tp) in enumerate(zip(params, tparams)):
        _check(p, tp, dtype, f"parameter {i} after {STEPS} steps", tol_param)
    assert tlosses[-1] < 0.9 * tlosses[0], "the loop does not train: a weak comparison"
    if case["clip"]:  # clipping must act on some steps and not on others
        clipped = tnorms > case["max_norm"]
        assert clipped.any() and not clipped.all(), tnorms


def _against_torch(case, data, backend, dtype):
    """Train with fastloss and with torch from the same start, compare; returns torch's run."""
    x, y, init = data
    theirs = _train_torch(case, x, y, init)
    _compare(case, _train_fastloss(case, x, y, init, backend), theirs, dtype)
    return theirs


# ---- 1. softmax classifier -----------------------------------------------------------------
N, D, H, C = 61, 37, 23, 7


def _class_data(dtype, ignore_index=None):
    rng = np.random.default_rng(20261122)
    x = rng.standard_normal((N, D))
    teacher = rng.standard_normal((D, C))
    y = np.argmax(x @ teacher + rng.standard_normal((N, C)), axis=1).astype(np.int64)
    if ignore_index is not None:
        y[3::5] = ignore_index  # 12 of 61 rows ignored
    return x.astype(dtype), y, _init(rng, (D, H, C), dtype)


CLASS_WEIGHTS = np.array([0.5, 1.0, 2.0, 0.75, 1.5, 1.25, 0.9])
WARMUP, LR_ADAMW = 5, 0.03
MILESTONES = [10, 18]


def _ce_case(name, dtype):
    t = torch
    L = t.optim.lr_scheduler
    if name == "adamw-smooth-weight":
        # AdamW (decoupled weight decay), warm-up then cosine, label smoothing and class
        # weights, clipping through step(grad_scale=...)
        w = CLASS_WEIGHTS.astype(dtype)
        sched = schedules.linear_warmup(schedules.cosine(LR_ADAMW, STEPS - WARMUP, min_lr=1e-3), WARMUP, 0.2)
        hyper = dict(betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
        return dict(
            ignore_index=None, flat=True, clip="fused", max_norm=0.3,
            loss=lambda z, y, backend: fastloss.cross_entropy(z, y, weight=w, label_smoothing=0.1,
                                                              backend=backend),
            torch_loss=lambda z, y: F.cross_entropy(z, y, weight=t.from_numpy(w), label_smoothing=0.1),
            ours=lambda p, backend: optim.AdamW(p, lr=sched, **hyper, backend=backend),
            theirs=lambda p: t.optim.AdamW(p, lr=LR_ADAMW, **hyper),
            sched=lambda o: L.SequentialLR(o, [L.LinearLR(o, 0.2, total_iters=WARMUP),
                                               L.CosineAnnealingLR(o, STEPS - WARMUP, 1e-3)],
                                           milestones=[WARMUP]),
        )
    if name == "sgd-nesterov-ignore":
        # SGD with Nesterov momentum and weight decay, multistep decay, ignored rows and a
        # little label smoothing, clipping in place
        sched = schedules.multistep(0.2, MILESTONES, gamma=0.3)
        hyper = dict(momentum=0.9, nesterov=True, weight_decay=1e-3)
        return dict(
            ignore_index=-1, flat=True, clip="inplace", max_norm=0.4,
            loss=lambda z, y, backend: fastloss.cross_entropy(z, y, ignore_index=-1, label_smoothing=0.05,
                                                              backend=backend),
            torch_loss=lambda z, y: F.cross_entropy(z, y, ignore_index=-1, label_smoothing=0.05),
            ours=lambda p, backend: optim.SGD(p, lr=sched, **hyper, backend=backend),
            theirs=lambda p: t.optim.SGD(p, lr=0.2, **hyper),
            sched=lambda o: L.MultiStepLR(o, MILESTONES, gamma=0.3),
        )
    raise KeyError(name)


CE_CASES = ["adamw-smooth-weight", "sgd-nesterov-ignore"]


@pytest.mark.parametrize("name", CE_CASES)
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_classifier_matches_torch(name, backend, dtype):
    case = _ce_case(name, dtype)
    _against_torch(case, _class_data(dtype, case["ignore_index"]), backend, dtype)


# ---- 2. regression -------------------------------------------------------------------------
NR, DR, HR, OUT = 53, 13, 9, 3


def _reg_data(dtype):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((NR, DR))
    y = np.tanh(x @ rng.standard_normal((DR, OUT))) * 3 + rng.standard_t(2, (NR, OUT))  # outliers
    return x.astype(dtype), y.astype(dtype), _init(rng, (DR, HR, OUT), dtype)


def _reg_case(name, dtype):
    t = torch
    if name == "adam-huber":
        # Adam with coupled (L2) weight decay, exponential decay, Huber, no clipping
        sched = schedules.exponential(0.05, 0.93)
        hyper = dict(betas=(0.9, 0.99), eps=1e-8, weight_decay=0.05)
        return dict(
            flat=False, clip=None, max_norm=None, kink=1.0,
            loss=lambda z, y, backend: fastloss.huber(z, y, delta=1.0, backend=backend),
            torch_loss=lambda z, y: F.huber_loss(z, y, delta=1.0),
            ours=lambda p, backend: optim.Adam(p, lr=sched, **hyper, backend=backend),
            theirs=lambda p: t.optim.Adam(p, lr=0.05, **hyper),
            sched=lambda o: t.optim.lr_scheduler.ExponentialLR(o, 0.93),
        )
    if name == "adam-amsgrad-smooth_l1":
        # AMSGrad with a short beta2 (so exp_avg_sq falls below its running max within 25
        # steps), smooth L1, a constant lr, clipping in place over a list of arrays
        hyper = dict(lr=0.03, betas=(0.8, 0.9), eps=1e-8, amsgrad=True)
        return dict(
            flat=False, clip="inplace", max_norm=0.3, kink=0.5,
            loss=lambda z, y, backend: fastloss.smooth_l1(z, y, beta=0.5, backend=backend),
            torch_loss=lambda z, y: F.smooth_l1_loss(z, y, beta=0.5),
            ours=lambda p, backend: optim.Adam(p, **hyper, backend=backend),
            theirs=lambda p: t.optim.Adam(p, **hyper),
            sched=None,
        )
    raise KeyError(name)


REG_CASES = ["adam-huber", "adam-amsgrad-smooth_l1"]


@pytest.mark.parametrize("name", REG_CASES)
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_regression_matches_torch(name, backend, dtype):
    case, (x, y, init) = _reg_case(name, dtype), _reg_data(dtype)
    theirs = _against_torch(case, (x, y, init), backend, dtype)
    # both sides of the kink are visited: the residuals at the start straddle it
    d = np.abs(_forward(init, x)[1] - y)
    assert 0.1 < (d > case["kink"]).mean() < 0.9
    if name == "adam-amsgrad-smooth_l1":  # the running max is in use
        st = theirs[4].state[theirs[4].param_groups[0]["params"][0]]
        assert (st["max_exp_avg_sq"] > st["exp_avg_sq"]).any()


# ---- what these tests catch ------------------------------------------------------------------
# Each change below, made on the fastloss side only, fails every (backend, dtype) of its case;
# the number is the per-step loss's relative error in float32 (float64 alike or larger):
#   adamw-smooth-weight:    Adam's coupled weight decay instead of AdamW's 0.46; Adam's bias
#     correction one step ahead 0.033; label_smoothing 0.09 0.045; no class weights 0.055;
#     clipping skipped (grad_scale=1) 0.020; beta2 0.999 1.3e-3; weight_decay 0.09 4.4e-4;
#     the schedule one step early: the lr check at step 0.
#   sgd-nesterov-ignore:    nesterov off 0.14; dampening 0.1 0.20; weight_decay 0 2.8e-3;
#     ignored rows taken as class 0 0.097; label_smoothing 0 0.27; clipping skipped 0.15;
#     reduction "sum" 40.
#   adam-huber:             AdamW's decoupled weight decay 0.034; weight_decay 0.045 0.018;
#     bias correction one step ahead 0.030; delta 0.9 0.069; amsgrad on 4.3e-4.
#   adam-amsgrad-smooth_l1: amsgrad off 2.4e-3; bias correction one step ahead 0.017;
#     beta 0.45 0.012; clipping skipped 5.6e-3; huber(delta=0.5) for smooth_l1 0.42.
