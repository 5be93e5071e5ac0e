"""Adam/AdamW, Adagrad, RMSprop: 50-step trajectories of every registry option combination
vs the float64 reference, the stateful classes (groups, attributes, schedules, state_dict
round trips and resume), and validation before any write.  torch comparisons live in
test_torch_optim.py."""
import functools
import pickle

import numpy as np
import pytest

from fastloss import optim, schedules
from fastloss._registry import COMPILED, DTYPES, OPTIMIZERS
from conftest import assert_close

NAMES = ("adam", "adamw", "adagrad", "rmsprop")
CASES = [(name, opts) for name in NAMES for opts in OPTIMIZERS[name].grid()]
# (n, steps): odd sizes break the SIMD bodies; 70001 (> 2 x every grain) runs the threaded path, whose
# chunking a few steps cover (each threaded call can cost a scheduler time slice on a loaded
# 2-core machine, see bench/NOTES_optim.md)
SIZES = ((1, 50), (17, 50), (1025, 50), (70001, 5))
STEPS = 50


def _id(case):
    name, opts = case
    return name + "-" + ",".join(f"{k}={v}" for k, v in opts.items())


@functools.lru_cache(maxsize=None)
def _inputs(dtype, n):
    rng = np.random.default_rng(n)
    p0 = rng.standard_normal(n).astype(dtype)
    grads = tuple(rng.standard_normal(n).astype(dtype) for _ in range(STEPS))
    return p0, grads


def _trajectory(name, opts, backend, dtype, n, steps=STEPS):
    k = OPTIMIZERS[name]
    p0, grads = _inputs(dtype, n)
    p = p0.copy()
    state = {s: np.zeros(n, dtype) for s in k.state(opts)}
    for step, g in enumerate(grads[:steps], 1):
        k.func(p, g, step=step, grad_scale=0.5, backend=backend, **state, **k.hyper(opts))
    return p, state


@functools.lru_cache(maxsize=None)
def _reference(name, opts_items, dtype, n, steps):
    return _trajectory(name, dict(opts_items), "numpy", dtype, n, steps)


@pytest.mark.parametrize("case", CASES, ids=_id)
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_trajectory_matches_reference(case, backend, dtype):
    name, opts = case
    for n, steps in SIZES:
        p, st = _trajectory(name, opts, backend, dtype, n, steps)
        rp, rst = _reference(name, tuple(opts.items()), dtype, n, steps)
        assert_close(p, rp, dtype, f"{name} n={n} param")
        for s in st:
            assert_close(st[s], rst[s], dtype, f"{name} n={n} {s}")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_numba_equals_c_bit_for_bit(name, dtype):
    """Both compiled backends evaluate the same expressions in the same order with IEEE
    arithmetic and no FMA contraction (see csrc/adaptive_tmpl.h, numba/adaptive.py)."""
    for opts in OPTIMIZERS[name].grid():
        for n, steps in SIZES:
            p, st = _trajectory(name, opts, "c", dtype, n, steps)
            q, sq = _trajectory(name, opts, "numba", dtype, n, steps)
            np.testing.assert_array_equal(p, q, err_msg=f"{name} {opts} n={n}")
            for s in st:
                np.testing.assert_array_equal(st[s], sq[s], err_msg=f"{name} {opts} n={n} {s}")


# every optimizer's arrays together >= 64 MiB in float32 (csrc/fl_internal.h FL_PF_MIN_BYTES):
# the C chunks run in blocks that prefetch ahead, clipped at each 32768-element block's end
PREFETCHED_N = 5_600_003


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_prefetched_large_calls_equal_numba_bit_for_bit(name, dtype):
    """The C kernels' prefetching path (large calls only) computes what the unblocked
    Numba loops do, element for element: no element skipped or done twice at a block
    boundary, the odd tail included."""
    k = OPTIMIZERS[name]
    rng = np.random.default_rng(7)
    p0 = rng.standard_normal(PREFETCHED_N).astype(dtype)
    grads = [rng.standard_normal(PREFETCHED_N).astype(dtype) for _ in range(2)]
    for opts in k.grid():
        out = []
        for backend in COMPILED:
            p = p0.copy()
            state = {s: np.zeros(PREFETCHED_N, dtype) for s in k.state(opts)}
            for step, g in enumerate(grads, 1):
                k.func(p, g, step=step, grad_scale=0.5, backend=backend, **state, **k.hyper(opts))
            out.append((p, state))
        (p, st), (q, sq) = out
        assert not np.array_equal(p, p0)
        np.testing.assert_array_equal(p, q, err_msg=f"{name} {opts}")
        for s in st:
            np.testing.assert_array_equal(st[s], sq[s], err_msg=f"{name} {opts} {s}")


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_large_lerp_weight_matches_reference(backend, dtype):
    """beta1 / alpha <= 0.5 take torch's other lerp form: g - (g - avg)(1 - w)."""
    p0, grads = _inputs(dtype, 1025)
    out = {}
    for b in (backend, "numpy"):
        pa, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
        pr, sq, ga = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
        for step, g in enumerate(grads, 1):
            optim.adam_(pa, g, m, v, step=step, lr=0.01, beta1=0.3, beta2=0.4, backend=b)
            optim.rmsprop_(pr, g, sq, grad_avg=ga, step=step, lr=0.01, alpha=0.3, centered=True,
                           backend=b)
        out[b] = (pa, m, v, pr, sq, ga)
    for got, ref in zip(out[backend], out["numpy"]):
        assert_close(got, ref, dtype)


@pytest.mark.parametrize("backend", COMPILED)
def test_nonfinite_values_propagate_like_reference(backend):
    # no 1e30: its square overflows float32 but not the float64 reference (torch: test_torch_optim)
    vals = np.array([np.nan, np.inf, -np.inf, 0.0, 1.0, -3.0, 1e-30], np.float32)
    pg, gg = np.meshgrid(vals, vals)
    p0, g = pg.ravel().copy(), gg.ravel().copy()
    for name in NAMES:
        k = OPTIMIZERS[name]
        for opts in k.grid():
            res = []
            for b in (backend, "numpy"):
                p = p0.copy()
                state = {s: np.zeros_like(p) for s in k.state(opts)}
                with np.errstate(all="ignore"):
                    for step in (1, 2):
                        k.func(p, g, step=step, backend=b, **state, **k.hyper(opts))
                res.append([p, *state.values()])
            for got, ref in zip(*res):
                np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=f"{name} {opts}")
                np.testing.assert_array_equal(np.isinf(got), np.isinf(ref), err_msg=f"{name} {opts}")


# ---- the stateful classes -------------------------------------------------------------------
CLASSES = {
    "adam": (optim.Adam, optim.adam_, dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.125,
                                           amsgrad=True)),
    "adamw": (optim.AdamW, optim.adamw_, dict(lr=0.01, weight_decay=0.0625, maximize=True)),
    "adagrad": (optim.Adagrad, optim.adagrad_, dict(lr=0.05, lr_decay=0.01, weight_decay=0.125,
                                                    initial_accumulator_value=0.25)),
    "rmsprop": (optim.RMSprop, optim.rmsprop_, dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True,
                                                    weight_decay=0.125)),
}
SHAPES = ((5, 3), (4,), (2, 2, 2))


def _functional_kwargs(name, kw):
    """The class hyperparameters as the functional kernel's keywords."""
    kw = dict(kw)
    if "betas" in kw:
        kw["beta1"], kw["beta2"] = kw.pop("betas")
    kw.pop("initial_accumulator_value", None)
    return kw


def _grads(dtype, count, seed=1):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(count)]


def _params(dtype, seed=2):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("backend", COMPILED)
def test_class_equals_functional(name, backend):
    cls, func, kw = CLASSES[name]
    ps = _params(np.float64)
    fp = [p.copy() for p in ps]
    opt = cls(ps, backend=backend, **kw)
    state = {"adam": ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"), "adamw": ("exp_avg", "exp_avg_sq"),
             "adagrad": ("state_sum",), "rmsprop": ("square_avg", "momentum_buffer", "grad_avg")}[name]
    fill = kw.get("initial_accumulator_value", 0.0)
    st = [{s: np.full_like(p, fill) for s in state} for p in fp]
    for step, gs in enumerate(_grads(np.float64, 6), 1):
        opt.step(gs, grad_scale=0.5)
        for p, g, s in zip(fp, gs, st):
            func(p, g, **s, step=step, grad_scale=0.5, backend=backend, **_functional_kwargs(name, kw))
    for a, b in zip(ps, fp):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_state_dict_round_trip_and_resume(name, backend, dtype):
    cls, _, kw = CLASSES[name]
    grads = _grads(dtype, 10)
    init = _params(dtype)

    full = [p.copy() for p in init]
    opt = cls(full, backend=backend, **kw)
    for g in grads:
        opt.step(g)

    half = [p.copy() for p in init]
    a = cls(half, backend=backend, **kw)
    for g in grads[:5]:
        a.step(g)
    sd = pickle.loads(pickle.dumps(a.state_dict()))  # a saved checkpoint
    resumed = [p.copy() for p in half]
    b = cls(resumed, backend=backend, **kw)
    b.load_state_dict(sd)
    sd2 = b.state_dict()
    assert sd2["param_groups"] == sd["param_groups"]
    for i, st in sd["state"].items():
        assert sd2["state"][i].keys() == st.keys()
        for k, v in st.items():
            if isinstance(v, np.ndarray):
                assert v.dtype == sd2["state"][i][k].dtype
                np.testing.assert_array_equal(v, sd2["state"][i][k])
            else:
                assert v == sd2["state"][i][k]
    assert sd2["state"][0]["step"] == 5
    a.step(grads[5])  # a keeps going on its own: b's state must not alias a's
    for g in grads[5:]:
        b.step(g)
    for x, y in zip(full, resumed):
        np.testing.assert_array_equal(x, y)


def test_hyperparameters_are_attributes_and_groups():
    p1, p2 = np.ones(3), np.ones(3)
    opt = optim.Adam([{"params": [p1], "lr": 0.5}, {"params": [p2], "betas": (0.5, 0.9)}], lr=0.1)
    assert opt.param_groups[0]["lr"] == 0.5 and opt.param_groups[1]["lr"] == 0.1
    assert opt.param_groups[0]["betas"] == (0.9, 0.999)
    with pytest.raises(AttributeError, match="differs"):
        opt.lr
    opt.betas = (0.8, 0.99)
    assert opt.betas == (0.8, 0.99)
    with pytest.raises(ValueError, match=r"betas\[1\]"):
        opt.betas = (0.8, 1.0)
    assert opt.betas == (0.8, 0.99)
    opt.step([np.ones(3), np.ones(3)])
    # step 1 of Adam moves every coordinate by lr (m/sqrt(v) = sign(g) after bias correction)
    np.testing.assert_allclose(p1, 0.5, rtol=1e-6)
    np.testing.assert_allclose(p2, 0.9, rtol=1e-6)
    assert optim.AdamW([np.ones(2)]).weight_decay == 0.01
    assert optim.AdamW([np.ones(2)]).decoupled_weight_decay is True
    r = optim.RMSprop([np.ones(2)])
    r.momentum = 0.9  # turned on later: its buffer starts at zero, as torch's would
    r.step([np.ones(2)])
    assert r.state[0]["momentum_buffer"] is not None


@pytest.mark.parametrize("name", NAMES)
def test_schedule_drives_lr(name):
    """lr given as a schedule equals setting opt.lr = schedule(t) by hand before each step."""
    cls, _, kw = CLASSES[name]
    sched = schedules.linear_warmup(schedules.cosine(0.05, 12), 3, 0.1)
    grads = _grads(np.float32, 8)
    a, b = _params(np.float32), _params(np.float32)
    oa = cls(a, **{**kw, "lr": sched})
    ob = cls(b, **kw)
    for t, g in enumerate(grads):
        ob.lr = sched(t)
        oa.step(g)
        ob.step(g)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_adagrad_initial_accumulator():
    p = np.ones(3, np.float32)
    opt = optim.Adagrad([p], initial_accumulator_value=0.5)
    np.testing.assert_array_equal(opt.state[0]["sum"], np.full(3, 0.5, np.float32))
    opt.step([np.ones(3, np.float32)])
    np.testing.assert_array_equal(opt.state[0]["sum"], np.full(3, 1.5, np.float32))


# ---- validation: errors name the argument, nothing is written ---------------------------------
def _calls(p, g, s1, s2, s3):
    """(call, exception, message) for every optimizer's bad inputs."""
    ok = dict(step=1)
    return [
        # step
        (lambda: optim.adam_(p, g, s1, s2, step=0), ValueError, "step"),
        (lambda: optim.adam_(p, g, s1, s2, step=1.0), TypeError, "step"),
        (lambda: optim.rmsprop_(p, g, s1, step=True), TypeError, "step"),
        # hyperparameters
        (lambda: optim.adam_(p, g, s1, s2, lr=-1e-3, **ok), ValueError, "lr"),
        (lambda: optim.adam_(p, g, s1, s2, lr=float("nan"), **ok), ValueError, "lr"),
        (lambda: optim.adam_(p, g, s1, s2, beta1=1.0, **ok), ValueError, "beta1"),
        (lambda: optim.adam_(p, g, s1, s2, beta2=-0.1, **ok), ValueError, "beta2"),
        (lambda: optim.adam_(p, g, s1, s2, eps=-1e-8, **ok), ValueError, "eps"),
        (lambda: optim.adam_(p, g, s1, s2, weight_decay=-0.1, **ok), ValueError, "weight_decay"),
        (lambda: optim.adamw_(p, g, s1, s2, weight_decay=-0.1, **ok), ValueError, "weight_decay"),
        (lambda: optim.adam_(p, g, s1, s2, amsgrad=1, **ok), TypeError, "amsgrad"),
        (lambda: optim.adam_(p, g, s1, s2, lr="0.1", **ok), TypeError, "lr"),
        (lambda: optim.adam_(p, g, s1, s2, grad_scale=float("inf"), **ok), ValueError, "grad_scale"),
        (lambda: optim.adagrad_(p, g, s1, lr_decay=-1.0, **ok), ValueError, "lr_decay"),
        (lambda: optim.adagrad_(p, g, s1, eps=-1.0, **ok), ValueError, "eps"),
        (lambda: optim.adagrad_(p, g, s1, maximize=None, **ok), TypeError, "maximize"),
        (lambda: optim.rmsprop_(p, g, s1, alpha=-0.5, **ok), ValueError, "alpha"),
        (lambda: optim.rmsprop_(p, g, s1, momentum=-0.5, **ok), ValueError, "momentum"),
        (lambda: optim.rmsprop_(p, g, s1, centered="yes", **ok), TypeError, "centered"),
        # required state
        (lambda: optim.adam_(p, g, s1, s2, amsgrad=True, **ok), ValueError, "max_exp_avg_sq"),
        (lambda: optim.rmsprop_(p, g, s1, momentum=0.9, **ok), ValueError, "momentum_buffer"),
        (lambda: optim.rmsprop_(p, g, s1, centered=True, **ok), ValueError, "grad_avg"),
        # arrays
        (lambda: optim.adam_(p, np.ones(5), s1, s2, **ok), ValueError, "grad.*shape"),
        (lambda: optim.adam_(p, g.astype(np.float32), s1, s2, **ok), TypeError, "grad.*dtype"),
        (lambda: optim.adam_(p, g, np.zeros(3), s2, **ok), ValueError, "exp_avg.*shape"),
        (lambda: optim.adam_(p, g, s1, np.zeros(4, np.float32), **ok), TypeError, "exp_avg_sq.*dtype"),
        (lambda: optim.adam_(p, g, s1, s2, np.zeros((2, 2)), amsgrad=True, **ok), ValueError,
         "max_exp_avg_sq.*shape"),
        (lambda: optim.adagrad_(p, g, [0.0] * 4, **ok), TypeError, "state_sum"),
        (lambda: optim.adagrad_(np.ones(8)[::2], g, s1, **ok), ValueError, "param.*contiguous"),
        (lambda: optim.adagrad_(p, g, np.zeros(8)[::2], **ok), ValueError, "state_sum.*contiguous"),
        (lambda: optim.adagrad_(np.ones(4, np.int64), g, s1, **ok), TypeError, "param.*dtype"),
        (lambda: optim.adagrad_([1.0] * 4, g, s1, **ok), TypeError, "param"),
        (lambda: optim.rmsprop_(p, g, s1, np.zeros((4, 1)), momentum=0.9, **ok), ValueError,
         "momentum_buffer.*shape"),
        # overlap
        (lambda: optim.adam_(p, g, s1, s1, **ok), ValueError, "share memory"),
        (lambda: optim.adam_(p, g, p, s2, **ok), ValueError, "share memory"),
        (lambda: optim.adam_(p, p, s1, s2, **ok), ValueError, "share memory"),
        (lambda: optim.adam_(p, g, s1, s2, s2, amsgrad=True, **ok), ValueError, "share memory"),
        (lambda: optim.rmsprop_(p, g, s1, s3, s3, momentum=0.9, centered=True, **ok), ValueError,
         "share memory"),
        (lambda: optim.adagrad_(p, g, g, **ok), ValueError, "share memory"),
    ]


def test_bad_inputs_touch_nothing():
    p, g = np.ones(4), np.full(4, 0.5)
    s1, s2, s3 = np.full(4, 7.0), np.full(4, 8.0), np.full(4, 9.0)
    for call, exc, match in _calls(p, g, s1, s2, s3):
        with pytest.raises(exc, match=match):
            call()
        for a, v in ((p, 1.0), (g, 0.5), (s1, 7.0), (s2, 8.0), (s3, 9.0)):
            np.testing.assert_array_equal(a, np.full(4, v))


def test_overlapping_views_and_read_only():
    buf = np.zeros(12)
    p = np.ones(4)
    with pytest.raises(ValueError, match="share memory"):
        optim.adam_(p, np.ones(4), buf[0:4], buf[2:6], step=1)
    np.testing.assert_array_equal(buf, 0.0)
    optim.adam_(p, np.ones(4), buf[0:4], buf[4:8], step=1)  # disjoint views are fine
    assert (buf[:8] != 0).all() and (buf[8:] == 0).all()
    ro = np.ones(4)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        optim.adagrad_(ro, np.ones(4), np.zeros(4), step=1)
    with pytest.raises(ValueError, match="state_sum.*read-only"):
        optim.adagrad_(np.ones(4), np.ones(4), ro, step=1)
    g = np.ones(4)
    g.flags.writeable = False  # a read-only gradient is fine
    q = np.ones(4)
    optim.adagrad_(q, g, np.zeros(4), step=1, lr=0.5)
    np.testing.assert_allclose(q, 0.5)


BAD_CLASS = [
    (optim.Adam, dict(lr=-1.0), ValueError, "lr"),
    (optim.Adam, dict(betas=(1.0, 0.9)), ValueError, r"betas\[0\]"),
    (optim.Adam, dict(betas=(0.9, -0.1)), ValueError, r"betas\[1\]"),
    (optim.Adam, dict(betas=0.9), TypeError, "betas"),
    (optim.Adam, dict(eps=-1.0), ValueError, "eps"),
    (optim.AdamW, dict(weight_decay=-1.0), ValueError, "weight_decay"),
    (optim.Adam, dict(amsgrad="no"), TypeError, "amsgrad"),
    (optim.Adagrad, dict(lr_decay=-1.0), ValueError, "lr_decay"),
    (optim.Adagrad, dict(initial_accumulator_value=-1.0), ValueError, "initial_accumulator_value"),
    (optim.RMSprop, dict(alpha=-1.0), ValueError, "alpha"),
    (optim.RMSprop, dict(momentum=-1.0), ValueError, "momentum"),
    (optim.RMSprop, dict(centered=1), TypeError, "centered"),
]


@pytest.mark.parametrize("cls,kw,exc,match", BAD_CLASS)
def test_bad_class_hyperparameters(cls, kw, exc, match):
    with pytest.raises(exc, match=match):
        cls([np.ones(3)], **kw)


@pytest.mark.parametrize("name", NAMES)
def test_step_validates_everything_before_writing(name):
    cls, _, kw = CLASSES[name]
    ps = [np.ones(3), np.ones(3)]
    opt = cls(ps, **kw)
    before = opt.state_dict()
    with pytest.raises(TypeError, match=r"grads\[1\]"):
        opt.step([np.ones(3), np.ones(3, np.float32)])
    with pytest.raises(ValueError, match="grads"):
        opt.step([np.ones(3)])
    with pytest.raises(ValueError, match="grads"):
        opt.step()  # grads=None needs a FlatParams
    with pytest.raises(ValueError, match="grad_scale"):
        opt.step([np.ones(3), np.ones(3)], grad_scale=float("nan"))
    opt.param_groups[0]["eps"] = -1.0  # bypassing the attribute check: step still validates
    with pytest.raises(ValueError, match="eps"):
        opt.step([np.ones(3), np.ones(3)])
    for p in ps:
        np.testing.assert_array_equal(p, np.ones(3))
    after = opt.state_dict()
    for i in before["state"]:
        for k, v in before["state"][i].items():
            np.testing.assert_array_equal(v if v is not None else np.nan,
                                          after["state"][i][k] if after["state"][i][k] is not None else np.nan)


def test_load_state_dict_validates_first():
    p = np.ones(3)
    opt = optim.Adam([p], lr=0.1)
    opt.step([np.ones(3)])
    sd = opt.state_dict()
    sd["state"][0]["exp_avg_sq"] = np.ones(4)
    before = opt.state_dict()
    with pytest.raises(ValueError, match="exp_avg_sq"):
        opt.load_state_dict(sd)
    np.testing.assert_array_equal(opt.state[0]["exp_avg"], before["state"][0]["exp_avg"])
    sd = before
    sd["param_groups"][0]["betas"] = (2.0, 0.9)
    with pytest.raises(ValueError, match="betas"):
        opt.load_state_dict(sd)
    assert opt.betas == (0.9, 0.999)
