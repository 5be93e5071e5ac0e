"""fastloss.schedules: every schedule against torch.optim.lr_scheduler, step for step and bit for
bit (``==``: the schedules replay torch's own recursion), plus purity, repr, pickling and
argument validation, which run without torch.

Expected values come from torch 2.13 itself: a torch.optim.SGD over one tensor, the scheduler
built on it, ``param_groups[0]["lr"]`` read after each ``scheduler.step()``.
"""
import math
import pickle
import random
import subprocess
import tempfile
import sys
import warnings

import numpy as np
import pytest

from fastloss import schedules as S

N = 300  # steps compared with torch per case


# ---- cases: (id, our schedule, torch scheduler maker, initial lr of the torch optimizer) -------
def _sched_cases():
    return [
        ("constant", S.constant(0.1), lambda L, o: L.ConstantLR(o, factor=1.0), 0.1),
        ("step", S.step_decay(0.1, 30), lambda L, o: L.StepLR(o, 30), 0.1),
        ("step_size1", S.step_decay(0.1, 1, gamma=0.97), lambda L, o: L.StepLR(o, 1, 0.97), 0.1),
        ("step_gamma1", S.step_decay(0.1, 7, gamma=1.0), lambda L, o: L.StepLR(o, 7, 1.0), 0.1),
        ("step_grow", S.step_decay(0.001, 13, gamma=1.7), lambda L, o: L.StepLR(o, 13, 1.7), 0.001),
        ("multistep", S.multistep(0.1, [30, 80, 250], gamma=0.5),
         lambda L, o: L.MultiStepLR(o, [30, 80, 250], 0.5), 0.1),
        ("multistep_repeats", S.multistep(0.3, [0, 5, 5, 5, 90], gamma=0.7),
         lambda L, o: L.MultiStepLR(o, [0, 5, 5, 5, 90], 0.7), 0.3),
        ("multistep_empty", S.multistep(0.3, []), lambda L, o: L.MultiStepLR(o, []), 0.3),
        ("exponential", S.exponential(0.1, 0.99), lambda L, o: L.ExponentialLR(o, 0.99), 0.1),
        ("exponential_gamma1", S.exponential(0.1, 1.0), lambda L, o: L.ExponentialLR(o, 1.0), 0.1),
        ("exponential_underflow", S.exponential(0.5, 0.05),
         lambda L, o: L.ExponentialLR(o, 0.05), 0.5),
        ("cosine", S.cosine(0.1, 300), lambda L, o: L.CosineAnnealingLR(o, 300), 0.1),
        ("cosine_min_lr", S.cosine(0.01, 100, min_lr=0.001),
         lambda L, o: L.CosineAnnealingLR(o, 100, 0.001), 0.01),
        ("cosine_periods", S.cosine(0.1, 37, min_lr=0.003),
         lambda L, o: L.CosineAnnealingLR(o, 37, 0.003), 0.1),
        ("cosine_T1", S.cosine(0.1, 1), lambda L, o: L.CosineAnnealingLR(o, 1), 0.1),
        ("cosine_T2_min", S.cosine(0.2, 2, min_lr=0.05),
         lambda L, o: L.CosineAnnealingLR(o, 2, 0.05), 0.2),
    ]


def _one_cycle_cases():
    kws = [dict(), dict(three_phase=True), dict(anneal_strategy="linear"),
           dict(anneal_strategy="linear", three_phase=True), dict(pct_start=0.0),
           dict(pct_start=1.0), dict(pct_start=0.5, three_phase=True),
           dict(pct_start=0.7, three_phase=True), dict(pct_start=0.001),
           dict(div_factor=3.0, final_div_factor=50.0, pct_start=0.25)]
    out = []
    for T in (300, 7, 1, 2):
        for kw in kws:
            if float(kw.get("pct_start", 0.3) * T) == 1.0:
                continue  # rejected (torch divides by zero), see test_one_cycle_zero_length_phase
            out.append((f"T{T}-{kw}", T, kw))
    return out


def _warmup_cases():
    # (id, warmup steps, start factor, inner schedule, inner torch maker, torch optimizer lr)
    return [
        ("cosine", 10, 0.1, S.cosine(0.1, 200), lambda L, o: L.CosineAnnealingLR(o, 200), 0.1),
        ("cosine_min_lr_ulp", 3, 0.1, S.cosine(0.01, 50, min_lr=0.001),
         lambda L, o: L.CosineAnnealingLR(o, 50, 0.001), 0.01),
        ("one_step", 1, 0.5, S.step_decay(0.1, 7), lambda L, o: L.StepLR(o, 7), 0.1),
        ("zero_steps", 0, 0.5, S.step_decay(0.1, 7), lambda L, o: L.StepLR(o, 7), 0.1),
        ("factor1", 5, 1.0, S.exponential(0.1, 0.98), lambda L, o: L.ExponentialLR(o, 0.98), 0.1),
        ("exponential", 20, 0.01, S.exponential(0.1, 0.97),
         lambda L, o: L.ExponentialLR(o, 0.97), 0.1),
        ("multistep", 17, 0.25, S.multistep(0.1, [10, 40, 40]),
         lambda L, o: L.MultiStepLR(o, [10, 40, 40]), 0.1),
        ("constant", 50, 1e-3, S.constant(0.3), lambda L, o: L.ConstantLR(o, factor=1.0), 0.3),
        ("long", 299, 0.3, S.cosine(0.1, 10), lambda L, o: L.CosineAnnealingLR(o, 10), 0.1),
        # OneCycleLR overwrites initial_lr with max_lr/div_factor: the warm-up ramps to that.
        ("one_cycle", 10, 0.3, S.one_cycle(0.5, 290),
         lambda L, o: L.OneCycleLR(o, 0.5, 290, cycle_momentum=False), 0.123),
    ]


def _all_schedules():
    out = [(i, s) for i, s, _, _ in _sched_cases()]
    out += [(f"one_cycle-{i}", S.one_cycle(0.5, T, **kw)) for i, T, kw in _one_cycle_cases()]
    out += [(f"warmup-{i}", S.linear_warmup(s, w, f)) for i, w, f, s, _, _ in _warmup_cases()]
    return out


def _domain(s, default=3 * 256 + 41):
    """How many steps to evaluate: one_cycle is defined for t < total_steps only."""
    if s._name == "one_cycle":
        return s.total_steps
    if s._name == "linear_warmup" and isinstance(s.schedule, S.Schedule):
        return s.warmup_steps + _domain(s.schedule, default)
    return default


def _ids(cases):
    return [c[0] for c in cases]


# ---- torch oracle ------------------------------------------------------------------------------
def _torch_lrs(torch, make, n, lr):
    """lr held by a torch optimizer after 0, 1, ..., n-1 calls of scheduler.step()."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scheduler-before-optimizer and deprecation notes
        sched = make(torch.optim.lr_scheduler, opt)
        out = [opt.param_groups[0]["lr"]]
        for _ in range(n - 1):
            sched.step()
            out.append(opt.param_groups[0]["lr"])
    return out


def _ours(schedule, n):
    return [schedule(t) for t in range(n)]


@pytest.mark.torch
@pytest.mark.parametrize("case", _sched_cases(), ids=_ids(_sched_cases()))
def test_matches_torch(case):
    torch = pytest.importorskip("torch")
    _, ours, make, lr = case
    assert _ours(ours, N) == _torch_lrs(torch, make, N, lr)


@pytest.mark.torch
@pytest.mark.parametrize("case", _one_cycle_cases(), ids=_ids(_one_cycle_cases()))
def test_one_cycle_matches_torch(case):
    torch = pytest.importorskip("torch")
    _, T, kw = case
    expected = _torch_lrs(torch, lambda L, o: L.OneCycleLR(o, 0.5, T, cycle_momentum=False, **kw),
                          T, 0.5)
    assert _ours(S.one_cycle(0.5, T, **kw), T) == expected


@pytest.mark.torch
@pytest.mark.parametrize("case", _warmup_cases(), ids=_ids(_warmup_cases()))
def test_linear_warmup_matches_torch_sequential(case):
    """linear_warmup(s, w, f) == SequentialLR([LinearLR(f, 1.0, w), S], milestones=[w])."""
    torch = pytest.importorskip("torch")
    _, w, f, inner, make_inner, lr = case

    def make(L, o):
        warm = L.LinearLR(o, start_factor=f, end_factor=1.0, total_iters=w)
        return L.SequentialLR(o, [warm, make_inner(L, o)], milestones=[w])

    n = min(N + w, 300) if "one_cycle" in case[0] else N + w
    assert _ours(S.linear_warmup(inner, w, f), n) == _torch_lrs(torch, make, n, lr)


@pytest.mark.torch
def test_one_cycle_zero_length_phase():
    """pct_start * total_steps == 1 is rejected because torch divides by zero there."""
    torch = pytest.importorskip("torch")
    with pytest.raises(ZeroDivisionError):
        _torch_lrs(torch, lambda L, o: L.OneCycleLR(o, 0.5, 10, pct_start=0.1,
                                                   cycle_momentum=False), 2, 0.5)
    with pytest.raises(ValueError, match="pct_start"):
        S.one_cycle(0.5, 10, pct_start=0.1)


@pytest.mark.torch
def test_cosine_closed_form_is_not_what_torch_holds():
    """The recursion is reproduced, not the closed form: the latter misses torch's values in the
    last bits (so comparing it with == would fail), by a relative 1e-12 at most."""
    torch = pytest.importorskip("torch")
    T, lo = 300, 0.003
    theirs = _torch_lrs(torch, lambda L, o: L.CosineAnnealingLR(o, T, lo), 2 * T, 0.1)
    closed = [lo + (0.1 - lo) * (1 + math.cos(math.pi * t / T)) / 2 for t in range(2 * T)]
    assert closed != theirs
    np.testing.assert_allclose(closed, theirs, rtol=1e-12, atol=0)
    assert _ours(S.cosine(0.1, T, min_lr=lo), 2 * T) == theirs


# ---- ReduceLROnPlateau vs torch -----------------------------------------------------------------
def _plateau_cases():
    rnd = random.Random(7)
    noisy = [1.0 / (1 + 0.05 * i) + rnd.uniform(-0.02, 0.02) for i in range(200)]
    steps = [1.0] * 3 + [0.9] * 15 + [0.5] + [0.5] * 30 + [0.49995] * 12 + [0.3] * 40
    acc = [min(0.95, 0.5 + 0.01 * i) + rnd.choice([0.0, 0.0, -0.01]) for i in range(150)]
    return [
        ("default_steps", 0.1, {}, steps),
        ("noisy_patience3", 0.1, dict(patience=3), noisy),
        ("patience0", 0.1, dict(patience=0, factor=0.5), noisy[:80]),
        ("max_rel", 0.1, dict(mode="max", patience=4, factor=0.3), acc),
        ("max_rel_negative", 0.1, dict(mode="max", patience=1), [-5.0, -4.0, -4.0004, -3.99, -4.5,
                                                                  -3.999, -3.98, -3.98, -3.98]),
        ("min_abs", 0.1, dict(threshold=0.05, threshold_mode="abs", patience=2), noisy),
        ("max_abs", 0.1, dict(mode="max", threshold=0.02, threshold_mode="abs", patience=2), acc),
        ("cooldown", 0.1, dict(patience=2, cooldown=3, factor=0.5), noisy),
        ("cooldown0_patience0", 1.0, dict(patience=0, cooldown=0, factor=0.9), [1.0] * 60),
        ("min_lr_floor", 0.1, dict(patience=1, factor=0.5, min_lr=0.02), [1.0] * 40),
        ("eps_stops", 1e-6, dict(patience=0, factor=0.5, eps=1e-8), [1.0] * 40),
        ("eps0_factor0", 0.1, dict(patience=1, factor=0.0, eps=0.0), [2.0] * 10),
        ("big_threshold", 0.1, dict(threshold=0.5, patience=2), noisy[:100]),
        ("nan_inf", 0.1, dict(patience=1), [1.0, float("nan"), 0.5, float("inf"), float("nan"),
                                            0.4, float("-inf"), 0.0, float("nan")] * 3),
    ]


@pytest.mark.torch
@pytest.mark.parametrize("case", _plateau_cases(), ids=_ids(_plateau_cases()))
def test_plateau_matches_torch(case):
    torch = pytest.importorskip("torch")
    _, lr, kw, metrics = case
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
    ours = S.ReduceLROnPlateau(lr, **kw)
    assert ours(0) == lr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, m in enumerate(metrics):
            theirs.step(m)
            got = ours.step(m)
            want = opt.param_groups[0]["lr"]
            assert got == ours.lr == ours(i + 1) == want, (i, m)
            assert (ours.num_bad_epochs, ours.cooldown_counter, ours.last_epoch) == \
                (theirs.num_bad_epochs, theirs.cooldown_counter, theirs.last_epoch), i
            assert ours.best == theirs.best or (math.isnan(ours.best) and math.isnan(theirs.best))


@pytest.mark.torch
def test_plateau_takes_tensor_metric():
    torch = pytest.importorskip("torch")
    sched = S.ReduceLROnPlateau(0.1, patience=0)
    sched.step(torch.tensor(1.0))
    assert sched.step(torch.tensor(2.0)) == pytest.approx(0.01)


# ---- no torch below ----------------------------------------------------------------------------
def test_import_does_not_load_torch():
    code = "import sys, fastloss.schedules; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tempfile.gettempdir())   # the installed package, not a checkout's
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("case", _all_schedules(), ids=_ids(_all_schedules()))
def test_pure_in_any_order(case):
    """schedule(t) depends on t alone: a fresh schedule asked in a random order (crossing the
    replay cache's checkpoints) and twice over gives the sequential values."""
    _, s = case
    n = _domain(s)
    sequential = _ours(s, n)
    fresh = pickle.loads(pickle.dumps(s))
    order = list(range(n)) * 2
    random.Random(n).shuffle(order)
    assert [fresh(t) for t in order] == [sequential[t] for t in order]
    assert [fresh(t) for t in reversed(range(n))] == sequential[::-1]


@pytest.mark.parametrize("case", _all_schedules(), ids=_ids(_all_schedules()))
def test_repr_rebuilds(case):
    _, s = case
    r = repr(s)
    assert r.startswith(s._name + "(")
    rebuilt = eval(r, {**vars(S), "inf": math.inf})
    n = min(_domain(s), 50)
    assert repr(rebuilt) == r
    assert _ours(rebuilt, n) == _ours(s, n)


def test_repr_text():
    assert repr(S.step_decay(0.1, 30)) == "step_decay(lr=0.1, step_size=30, gamma=0.1)"
    assert repr(S.multistep(0.1, [3, 5], gamma=0.5)) == \
        "multistep(lr=0.1, milestones=(3, 5), gamma=0.5)"
    assert repr(S.linear_warmup(S.cosine(1, 10), 5, 0.1)) == \
        "linear_warmup(schedule=cosine(lr=1.0, total_steps=10, min_lr=0.0), " \
        "warmup_steps=5, start_factor=0.1)"
    assert repr(S.ReduceLROnPlateau(0.1, patience=3)) == (
        "ReduceLROnPlateau(lr=0.1, mode='min', factor=0.1, patience=3, threshold=0.0001, "
        "threshold_mode='rel', cooldown=0, min_lr=0.0, eps=1e-08)")


def test_immutable():
    s = S.cosine(0.1, 10)
    with pytest.raises(AttributeError, match="immutable"):
        s.lr = 0.2
    assert isinstance(s, S.Schedule)


def test_formulas():
    """The replayed recursions stay within a few ulps of the textbook formulas."""
    def close(a, b):
        return math.isclose(a, b, rel_tol=1e-13, abs_tol=1e-300)
    s = S.step_decay(0.1, 3, gamma=0.7)
    assert all(close(s(t), 0.1 * 0.7 ** (t // 3)) for t in range(400))
    s = S.exponential(2.0, 0.99)
    assert all(close(s(t), 2.0 * 0.99 ** t) for t in range(400))
    s = S.multistep(1.0, [2, 2, 9], gamma=0.5)
    assert [s(t) for t in (0, 1, 2, 8, 9, 100)] == [1.0, 1.0, 0.25, 0.25, 0.125, 0.125]
    s = S.cosine(0.1, 100, min_lr=0.01)
    assert all(close(s(t), 0.01 + 0.09 * (1 + math.cos(math.pi * t / 100)) / 2) for t in range(400))
    assert s(100) == 0.01
    w = S.linear_warmup(S.constant(1.0), 4, 0.2)
    assert all(close(w(t), 0.2 + 0.8 * t / 4) for t in range(4)) and w(4) == w(99) == 1.0
    o = S.one_cycle(1.0, 101, pct_start=0.5, div_factor=10.0, final_div_factor=100.0)
    assert close(o(0), 0.1) and close(o(100), 0.001)
    assert max(_ours(o, 101)) == pytest.approx(1.0, rel=1e-3)


def test_recursion_shortcuts_and_large_t():
    assert S.exponential(0.1, 1.0)(10 ** 12) == 0.1          # fixed point: no replay
    assert S.exponential(0.1, 0.5)(10 ** 9) == 0.0           # underflows after ~1080 steps
    assert S.step_decay(0.1, 1000, gamma=0.5)(10 ** 12) == 0.0
    assert S.exponential(0.1, 2.0)(10 ** 9) == math.inf
    assert S.multistep(0.1, [5])(10 ** 15) == pytest.approx(0.01)
    assert S.cosine(0.1, 1000)(np.int64(1000)) == 0.0


def test_warmup_of_plain_callable():
    w = S.linear_warmup(lambda t: 0.5 / (1 + t), 2, 0.5)
    assert [w(t) for t in range(4)] == [0.25, 0.25 * (1 + 0.5 / (2 * 0.5)), 0.5, 0.25]
    with pytest.raises(TypeError, match="ReduceLROnPlateau"):
        S.linear_warmup(S.ReduceLROnPlateau(0.1), 5, 0.1)
    with pytest.raises(ValueError, match=r"schedule\(0\)"):
        S.linear_warmup(lambda t: -1.0, 5, 0.1)


@pytest.mark.parametrize("bad_t,exc", [(-1, ValueError), (1.0, TypeError), (True, TypeError),
                                       ("3", TypeError), (None, TypeError),
                                       (np.int64(-2), ValueError), (np.float64(2), TypeError)])
@pytest.mark.parametrize("case", _all_schedules()[::4], ids=_ids(_all_schedules()[::4]))
def test_bad_t(case, bad_t, exc):
    with pytest.raises(exc, match="t: "):
        case[1](bad_t)


def test_one_cycle_domain():
    s = S.one_cycle(0.1, 10)
    s(9)
    with pytest.raises(ValueError, match="t: must be < total_steps=10"):
        s(10)
    assert S.ReduceLROnPlateau(0.1)(10 ** 6) == 0.1
    with pytest.raises(ValueError, match="t: "):
        S.ReduceLROnPlateau(0.1)(-1)


BAD = [
    # (factory, args, kwargs, exception, message fragment)
    (S.constant, (-0.1,), {}, ValueError, "lr"),
    (S.constant, (math.inf,), {}, ValueError, "lr"),
    (S.constant, (math.nan,), {}, ValueError, "lr"),
    (S.constant, ("0.1",), {}, TypeError, "lr"),
    (S.step_decay, (0.1, 0), {}, ValueError, "step_size"),
    (S.step_decay, (0.1, 2.0), {}, TypeError, "step_size"),
    (S.step_decay, (0.1, True), {}, TypeError, "step_size"),
    (S.step_decay, (0.1, 5), dict(gamma=0.0), ValueError, "gamma"),
    (S.step_decay, (0.1, 5), dict(gamma=-0.5), ValueError, "gamma"),
    (S.step_decay, (0.1, 5), dict(gamma=None), TypeError, "gamma"),
    (S.step_decay, (-1.0, 5), {}, ValueError, "lr"),
    (S.multistep, (0.1, [5, 3]), {}, ValueError, "milestones"),
    (S.multistep, (0.1, [-1, 3]), {}, ValueError, r"milestones\[0\]"),
    (S.multistep, (0.1, [1, 2.5]), {}, TypeError, r"milestones\[1\]"),
    (S.multistep, (0.1, 5), {}, TypeError, "milestones"),
    (S.multistep, (0.1, "35"), {}, TypeError, "milestones"),
    (S.multistep, (0.1, [5]), dict(gamma=0), ValueError, "gamma"),
    (S.exponential, (0.1, 0.0), {}, ValueError, "gamma"),
    (S.exponential, (0.1, math.inf), {}, ValueError, "gamma"),
    (S.exponential, (-0.1, 0.9), {}, ValueError, "lr"),
    (S.cosine, (0.1, 0), {}, ValueError, "total_steps"),
    (S.cosine, (0.1, 10.0), {}, TypeError, "total_steps"),
    (S.cosine, (0.1, 10), dict(min_lr=-1e-3), ValueError, "min_lr"),
    (S.cosine, (-0.1, 10), {}, ValueError, "lr"),
    (S.linear_warmup, (S.constant(0.1), 5, 0.0), {}, ValueError, "start_factor"),
    (S.linear_warmup, (S.constant(0.1), 5, 1.5), {}, ValueError, "start_factor"),
    (S.linear_warmup, (S.constant(0.1), 5, "a"), {}, TypeError, "start_factor"),
    (S.linear_warmup, (S.constant(0.1), -1, 0.5), {}, ValueError, "warmup_steps"),
    (S.linear_warmup, (S.constant(0.1), 1.5, 0.5), {}, TypeError, "warmup_steps"),
    (S.linear_warmup, (0.1, 5, 0.5), {}, TypeError, "schedule"),
    (S.one_cycle, (-0.1, 10), {}, ValueError, "max_lr"),
    (S.one_cycle, (0.1, 0), {}, ValueError, "total_steps"),
    (S.one_cycle, (0.1, 10), dict(pct_start=1.5), ValueError, "pct_start"),
    (S.one_cycle, (0.1, 10), dict(pct_start=-0.1), ValueError, "pct_start"),
    (S.one_cycle, (0.1, 5), dict(pct_start=0.2), ValueError, "pct_start"),
    (S.one_cycle, (0.1, 10), dict(anneal_strategy="exp"), ValueError, "anneal_strategy"),
    (S.one_cycle, (0.1, 10), dict(anneal_strategy=None), TypeError, "anneal_strategy"),
    (S.one_cycle, (0.1, 10), dict(div_factor=0.0), ValueError, "div_factor"),
    (S.one_cycle, (0.1, 10), dict(final_div_factor=-1.0), ValueError, "final_div_factor"),
    (S.one_cycle, (0.1, 10), dict(three_phase=1), TypeError, "three_phase"),
    (S.ReduceLROnPlateau, (-0.1,), {}, ValueError, "lr"),
    (S.ReduceLROnPlateau, (0.1,), dict(mode="mean"), ValueError, "mode"),
    (S.ReduceLROnPlateau, (0.1,), dict(factor=1.0), ValueError, "factor"),
    (S.ReduceLROnPlateau, (0.1,), dict(factor=-0.5), ValueError, "factor"),
    (S.ReduceLROnPlateau, (0.1,), dict(patience=-1), ValueError, "patience"),
    (S.ReduceLROnPlateau, (0.1,), dict(patience=2.0), TypeError, "patience"),
    (S.ReduceLROnPlateau, (0.1,), dict(threshold=-1e-4), ValueError, "threshold"),
    (S.ReduceLROnPlateau, (0.1,), dict(threshold_mode="relative"), ValueError, "threshold_mode"),
    (S.ReduceLROnPlateau, (0.1,), dict(cooldown=-1), ValueError, "cooldown"),
    (S.ReduceLROnPlateau, (0.1,), dict(min_lr=-1.0), ValueError, "min_lr"),
    (S.ReduceLROnPlateau, (0.1,), dict(eps=math.nan), ValueError, "eps"),
]


@pytest.mark.parametrize("factory,args,kwargs,exc,name", BAD,
                         ids=[f"{b[0].__name__}-{b[4]}-{i}" for i, b in enumerate(BAD)])
def test_bad_arguments(factory, args, kwargs, exc, name):
    with pytest.raises(exc, match=name):
        factory(*args, **kwargs)


def test_hyperparameters_after_required_are_keyword_only():
    with pytest.raises(TypeError):
        S.step_decay(0.1, 30, 0.5)
    with pytest.raises(TypeError):
        S.ReduceLROnPlateau(0.1, "max")


def test_plateau_hand_computed():
    s = S.ReduceLROnPlateau(1.0, patience=1, factor=0.5, cooldown=1)
    lrs = [s.step(m) for m in [5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 4.0, 4.0, 4.0]]
    # bad-step count after each metric: 0 (new best), 1, 2 > patience -> halve, cooldown 1;
    # 0 (cooldown forgets), 1, 2 -> halve, cooldown 1; 0 (new best 4.0), 1, 2 -> halve.
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]
    with pytest.raises(TypeError, match="metric"):
        s.step("0.5")
    with pytest.raises(TypeError, match="metric"):
        s.step(None)


def test_plateau_state_dict_round_trip():
    metrics = [1.0 / (1 + i % 17) + 0.01 * (i // 17) for i in range(120)]
    kw = dict(patience=2, cooldown=1, factor=0.5, min_lr=1e-3)
    whole = S.ReduceLROnPlateau(0.1, **kw)
    expected = [whole.step(m) for m in metrics]
    first = S.ReduceLROnPlateau(0.1, **kw)
    got = [first.step(m) for m in metrics[:50]]
    state = pickle.loads(pickle.dumps(first.state_dict()))
    second = S.ReduceLROnPlateau(7.0, mode="max")
    second.load_state_dict(state)
    assert second.state_dict() == state and repr(second) == repr(first)
    got += [second.step(m) for m in metrics[50:]]
    assert got == expected
    assert second.state_dict() == whole.state_dict()


def test_plateau_load_state_dict_validates_first():
    s = S.ReduceLROnPlateau(0.1)
    before = s.state_dict()
    with pytest.raises(ValueError, match="missing"):
        s.load_state_dict({k: v for k, v in before.items() if k != "best"})
    with pytest.raises(ValueError, match="unknown"):
        s.load_state_dict({**before, "extra": 1})
    with pytest.raises(ValueError, match="factor"):
        s.load_state_dict({**before, "factor": 2.0, "lr": 0.5})
    with pytest.raises(ValueError, match="num_bad_epochs"):
        s.load_state_dict({**before, "num_bad_epochs": -1, "lr": 0.5})
    with pytest.raises(TypeError, match="state"):
        s.load_state_dict([1, 2])
    assert s.state_dict() == before
