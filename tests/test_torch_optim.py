"""torch.optim as the external oracle for Adam, AdamW, Adagrad and RMSprop: 50-step
trajectories of every registry option combination (and Adagrad's initial accumulator),
schedules against torch's lr_scheduler driving the same optimizer, FlatParams, and NaN/Inf
propagation."""
import numpy as np
import pytest

import fastloss
from fastloss import optim, schedules
from fastloss._registry import COMPILED, DTYPES, OPTIMIZERS
from conftest import assert_close

torch = pytest.importorskip("torch")

OURS = {"adam": optim.Adam, "adamw": optim.AdamW, "adagrad": optim.Adagrad, "rmsprop": optim.RMSprop}
TORCH = {"adam": "Adam", "adamw": "AdamW", "adagrad": "Adagrad", "rmsprop": "RMSprop"}
STATE = {"adam": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"), "adamw": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"),
         "adagrad": ("sum",), "rmsprop": ("square_avg", "momentum_buffer", "grad_avg")}
CASES = [(name, opts) for name in OURS for opts in OPTIMIZERS[name].grid()]
# Adagrad's initial accumulator is a constructor argument, not a kernel option
CASES += [("adagrad", {"initial_accumulator_value": 0.1, "lr_decay": 0.05}),
          ("adagrad", {"initial_accumulator_value": 2.0, "weight_decay": 0.125, "maximize": True})]
N, STEPS = 1031, 50


def _id(case):
    name, opts = case
    return name + "-" + ",".join(f"{k}={v}" for k, v in opts.items())


def _run_pair(name, kwargs, dtype, backend, grads, p0, lr_torch_sched=None, lr_ours=None):
    tp = torch.tensor(p0.copy())
    topt = getattr(torch.optim, TORCH[name])([tp], **kwargs)
    sched = lr_torch_sched(topt) if lr_torch_sched else None
    p = p0.copy()
    ours = {**kwargs, "lr": lr_ours} if lr_ours is not None else kwargs
    opt = OURS[name]([p], **ours, backend=backend)
    for t, g in enumerate(grads):
        if lr_ours is not None:  # the lr of update t + 1, bit for bit
            assert topt.param_groups[0]["lr"] == lr_ours(t)
        tp.grad = torch.tensor(g)
        topt.step()
        if sched is not None:
            sched.step()
        opt.step([g])
    return p, opt, tp, topt


@pytest.mark.parametrize("case", CASES, ids=_id)
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_matches_torch(case, backend, dtype):
    name, opts = case
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(N).astype(dtype)
    grads = [rng.standard_normal(N).astype(dtype) for _ in range(STEPS)]
    kwargs = OPTIMIZERS[name].hyper(opts)
    p, opt, tp, topt = _run_pair(name, kwargs, dtype, backend, grads, p0)
    assert_close(p, tp.numpy(), dtype, f"param after {STEPS} steps")
    tstate = topt.state[tp]
    for s in STATE[name]:
        if s in tstate:
            assert_close(opt.state[0][s], tstate[s].numpy(), dtype, s)
    assert opt.state[0]["step"] == int(tstate["step"]) == STEPS


def _torch_schedules():
    # (id, our schedule, torch scheduler over an optimizer built with the same initial lr)
    L = torch.optim.lr_scheduler
    return [
        ("cosine", schedules.cosine(0.01, STEPS, min_lr=1e-4), lambda o: L.CosineAnnealingLR(o, STEPS, 1e-4)),
        ("step", schedules.step_decay(0.01, 7, gamma=0.5), lambda o: L.StepLR(o, 7, 0.5)),
        ("exponential", schedules.exponential(0.01, 0.95), lambda o: L.ExponentialLR(o, 0.95)),
        ("one_cycle", schedules.one_cycle(0.02, STEPS), 
         # our schedules drive lr only: torch's OneCycleLR would also cycle beta1/momentum
         lambda o: L.OneCycleLR(o, 0.02, total_steps=STEPS, cycle_momentum=False)),
        ("warmup_multistep", schedules.linear_warmup(schedules.multistep(0.01, [20, 35]), 10, 0.1),
         lambda o: L.SequentialLR(o, [L.LinearLR(o, 0.1, total_iters=10), L.MultiStepLR(o, [20, 35])],
                                  milestones=[10])),
    ]


@pytest.mark.parametrize("name", list(OURS))
@pytest.mark.parametrize("which", range(5), ids=[s[0] for s in _torch_schedules()])
def test_schedules_match_torch_schedulers(name, which):
    _, ours, make = _torch_schedules()[which]
    rng = np.random.default_rng(4)
    p0 = rng.standard_normal(N).astype(np.float64)
    grads = [rng.standard_normal(N) for _ in range(STEPS)]
    # torch's optimizer starts at the base lr its scheduler scales (the warm-up's target)
    kwargs = {**OPTIMIZERS[name].hyper({}), "lr": 0.01 if which == 4 else ours(0)}
    p, opt, tp, topt = _run_pair(name, kwargs, np.float64, "c", grads, p0, lr_torch_sched=make,
                                 lr_ours=ours)
    assert_close(p, tp.numpy(), np.float64, f"{name} param after {STEPS} scheduled steps")


@pytest.mark.parametrize("name", list(OURS))
@pytest.mark.parametrize("backend", COMPILED)
def test_flat_params_match_torch(name, backend):
    rng = np.random.default_rng(5)
    shapes = [(7, 3), (11,), (2, 2, 5)]
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    flat = fastloss.FlatParams.from_arrays(init)
    tps = [torch.tensor(a.copy()) for a in init]
    kwargs = OPTIMIZERS[name].hyper({})
    opt = OURS[name](flat, **kwargs, backend=backend)
    topt = getattr(torch.optim, TORCH[name])(tps, **kwargs)
    for _ in range(20):
        for g, t in zip(flat.grads, tps):
            g[...] = rng.standard_normal(g.shape)
            t.grad = torch.tensor(g.copy())
        opt.step()
        topt.step()
    for p, t in zip(flat.params, tps):
        assert_close(p, t.numpy(), np.float32, name)


SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, 1.0, -3.0, 1e30, 1e-30], np.float32)
SPECIAL_OPTS = {
    "adam": [{}, {"amsgrad": True}, {"weight_decay": 0.125}, {"weight_decay": 0.125, "decoupled_weight_decay": True}],
    "adamw": [{}, {"amsgrad": True, "maximize": True}],
    "adagrad": [{}, {"weight_decay": 0.125, "lr_decay": 0.5}, {"eps": 0.0}],
    "rmsprop": [{}, {"centered": True}, {"momentum": 0.9, "weight_decay": 0.125}, {"centered": True, "eps": 0.0}],
}


@pytest.mark.parametrize("name", list(OURS))
@pytest.mark.parametrize("backend", COMPILED)
def test_special_values_match_torch(name, backend):
    pg, gg = np.meshgrid(SPECIAL, SPECIAL)
    p0, g = pg.ravel().copy(), gg.ravel().copy()
    for opts in SPECIAL_OPTS[name]:
        kwargs = {**OPTIMIZERS[name].hyper({}), **opts}
        p, opt, tp, topt = _run_pair(name, kwargs, np.float32, backend, [g, g[::-1].copy(), g], p0)
        t = tp.numpy()
        np.testing.assert_array_equal(np.isnan(p), np.isnan(t), err_msg=f"{name} {opts}: NaN")
        np.testing.assert_array_equal(np.isinf(p), np.isinf(t), err_msg=f"{name} {opts}: Inf")
        ok = np.isfinite(t)
        np.testing.assert_allclose(p[ok], t[ok], rtol=1e-5, atol=1e-6, err_msg=f"{name} {opts}")
