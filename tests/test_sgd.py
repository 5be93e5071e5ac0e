"""SGD: trajectories vs the reference for every option combination, validation before
writes, the stateful class, state_dict round trips."""
import numpy as np
import pytest

import fastloss
from fastloss import optim
from fastloss._registry import COMPILED, DTYPES, OPTIMIZERS
from helpers import assert_close

SGD = OPTIMIZERS["sgd"]
GRID = SGD.grid()


def _trajectory(backend, dtype, opts, n, steps=20, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(n).astype(dtype)
    state = {s: np.zeros(n, dtype) for s in SGD.state(opts)}
    hyper = SGD.hyper(opts)
    for step in range(1, steps + 1):
        g = rng.standard_normal(n).astype(dtype)
        optim.sgd_(p, g, step=step, grad_scale=0.5, backend=backend, **state, **hyper)
    return p, state


@pytest.mark.parametrize("opts", GRID, ids=[str(i) for i in range(len(GRID))])
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("n", [1, 17, 1025, 100003])
def test_trajectory_matches_reference(opts, backend, dtype, n):
    p, st = _trajectory(backend, dtype, opts, n)
    rp, rst = _trajectory("numpy", dtype, opts, n)
    assert_close(p, rp, dtype, "param")
    for k in st:
        assert_close(st[k], rst[k], dtype, k)


@pytest.mark.parametrize("backend", COMPILED)
def test_class_equals_functional(backend):
    rng = np.random.default_rng(1)
    ps = [rng.standard_normal((3, 4)), rng.standard_normal(7)]
    fp = [p.copy() for p in ps]
    bufs = [np.zeros_like(p) for p in ps]
    opt = optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01, backend=backend)
    for step in range(1, 6):
        gs = [rng.standard_normal(p.shape) for p in ps]
        opt.step(gs)
        for p, g, b in zip(fp, gs, bufs):
            optim.sgd_(p, g, b, step=step, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01,
                       backend=backend)
    for a, b in zip(ps, fp):
        np.testing.assert_array_equal(a, b)


def test_hyperparameters_are_attributes_and_groups():
    p1, p2 = np.ones(3), np.ones(3)
    opt = optim.SGD([{"params": [p1], "lr": 0.5}, {"params": [p2]}], lr=0.1)
    assert opt.param_groups[0]["lr"] == 0.5 and opt.param_groups[1]["lr"] == 0.1
    with pytest.raises(AttributeError, match="differs"):
        opt.lr
    opt.lr = 0.05
    assert opt.lr == 0.05
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1.0
    assert opt.lr == 0.05
    opt.step([np.ones(3), np.ones(3)])
    np.testing.assert_allclose(p1, 0.95)
    with pytest.raises(ValueError, match="nesterov"):
        opt.nesterov = True


def test_lr_schedule_callable():
    p = np.zeros(2)
    opt = optim.SGD([p], lr=lambda t: 0.1 * (t + 1))
    for _ in range(3):
        opt.step([np.ones(2)])
    np.testing.assert_allclose(p, -(0.1 + 0.2 + 0.3))
    opt.lr = lambda t: -1.0
    with pytest.raises(ValueError, match="schedule"):
        opt.step([np.ones(2)])
    np.testing.assert_allclose(p, -0.6)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_state_dict_round_trip_bit_exact(backend, dtype):
    rng = np.random.default_rng(2)
    grads = [[rng.standard_normal(s).astype(dtype) for s in ((5, 3), (4,))] for _ in range(10)]
    init = [rng.standard_normal(s).astype(dtype) for s in ((5, 3), (4,))]
    kw = dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-3, backend=backend)

    full = [p.copy() for p in init]
    opt = optim.SGD(full, **kw)
    for g in grads:
        opt.step(g)

    half = [p.copy() for p in init]
    a = optim.SGD(half, **kw)
    for g in grads[:5]:
        a.step(g)
    sd = a.state_dict()
    resumed = [p.copy() for p in half]
    b = optim.SGD(resumed, **kw)
    b.load_state_dict(sd)
    assert b.state_dict()["state"][1]["step"] == 5
    a.step(grads[5])  # a keeps going independently: b's state must not alias a's
    for g in grads[5:]:
        b.step(g)
    for x, y in zip(full, resumed):
        np.testing.assert_array_equal(x, y)


def test_load_state_dict_validates_first():
    p = np.ones(3)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    opt.step([np.ones(3)])
    sd = opt.state_dict()
    sd["state"][0]["momentum_buffer"] = np.ones(4)
    before = opt.state_dict()
    with pytest.raises(ValueError, match="momentum_buffer"):
        opt.load_state_dict(sd)
    np.testing.assert_array_equal(opt.state[0]["momentum_buffer"], before["state"][0]["momentum_buffer"])


BAD_HYPER = [
    (dict(lr=-0.1), ValueError, "lr"),
    (dict(lr=float("nan")), ValueError, "lr"),
    (dict(momentum=-0.5), ValueError, "momentum"),
    (dict(weight_decay=-1e-3), ValueError, "weight_decay"),
    (dict(nesterov=True), ValueError, "nesterov"),
    (dict(nesterov=True, momentum=0.9, dampening=0.1), ValueError, "nesterov"),
    (dict(lr="0.1"), TypeError, "lr"),
]


@pytest.mark.parametrize("kw,exc,match", BAD_HYPER)
def test_bad_hyperparameters(kw, exc, match):
    p, g, b = np.ones(4), np.ones(4), np.full(4, 7.0)
    args = dict(lr=0.1)
    args.update(kw)
    with pytest.raises(exc, match=match):
        optim.sgd_(p, g, b, step=2, **args)
    np.testing.assert_array_equal(p, np.ones(4))
    np.testing.assert_array_equal(b, np.full(4, 7.0))
    with pytest.raises(exc, match=match):
        optim.SGD([p], **args)


def test_bad_arrays_touch_nothing():
    p, g, b = np.ones(4), np.ones(4), np.zeros(4)
    cases = [
        (lambda: optim.sgd_(p, g, step=1, lr=0.1, momentum=0.9), ValueError, "momentum_buffer"),
        (lambda: optim.sgd_(p, g, b, step=0, lr=0.1), ValueError, "step"),
        (lambda: optim.sgd_(p, g, b, step=1.0, lr=0.1), TypeError, "step"),
        (lambda: optim.sgd_(p, np.ones(5), b, step=1, lr=0.1), ValueError, "grad.*shape"),
        (lambda: optim.sgd_(p, np.ones(4, np.float32), b, step=1, lr=0.1), TypeError, "grad.*dtype"),
        (lambda: optim.sgd_(p, g, np.zeros(3), step=1, lr=0.1, momentum=0.9), ValueError, "momentum_buffer"),
        (lambda: optim.sgd_(np.ones(8)[::2], g, b, step=1, lr=0.1), ValueError, "param.*contiguous"),
        (lambda: optim.sgd_([1.0, 2.0], g, b, step=1, lr=0.1), TypeError, "param"),
        (lambda: optim.sgd_(np.ones(4, np.int64), g, b, step=1, lr=0.1), TypeError, "param.*dtype"),
        (lambda: optim.sgd_(p, p, b, step=1, lr=0.1), ValueError, "share memory"),
        (lambda: optim.sgd_(p, g, p, step=1, lr=0.1, momentum=0.9), ValueError, "share memory"),
        (lambda: optim.sgd_(p, g, b, step=1, lr=0.1, grad_scale=float("inf")), ValueError, "grad_scale"),
    ]
    for call, exc, match in cases:
        with pytest.raises(exc, match=match):
            call()
        np.testing.assert_array_equal(p, np.ones(4))
        np.testing.assert_array_equal(b, np.zeros(4))
    ro = np.ones(4)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        optim.sgd_(ro, g, step=1, lr=0.1)


def test_step_validates_every_pair_before_writing():
    ps = [np.ones(3), np.ones(3)]
    opt = optim.SGD(ps, lr=0.1, momentum=0.9)
    with pytest.raises(TypeError, match=r"grads\[1\]"):
        opt.step([np.ones(3), np.ones(3, np.float32)])
    with pytest.raises(ValueError, match="grads"):
        opt.step([np.ones(3)])
    for p in ps:
        np.testing.assert_array_equal(p, np.ones(3))
    assert opt.state[0]["step"] == 0 and opt.state[0]["momentum_buffer"] is None
    with pytest.raises(TypeError, match="params"):
        optim.SGD(np.ones(3), lr=0.1)
    with pytest.raises(ValueError, match="share memory"):
        q = np.ones(6)
        optim.SGD([q[:3], q[2:5]], lr=0.1)


def test_momentum_turned_on_later_starts_from_gradient():
    """torch creates the buffer as a copy of the gradient the first time it is used."""
    p = np.zeros(2)
    opt = optim.SGD([p], lr=1.0)
    opt.step([np.ones(2)])
    opt.momentum = 0.5
    opt.step([np.ones(2)])
    np.testing.assert_array_equal(p, [-2.0, -2.0])  # buf = g on first use
    opt.step([np.ones(2)])
    np.testing.assert_array_equal(p, [-3.5, -3.5])  # buf = 0.5*1 + 1
