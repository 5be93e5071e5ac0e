"""Edge cases found by a review (session 15): hyperparameters past float's range, a float32
beta that rounds to 0, FlatParams blocks rebound or changed in place, from_arrays with a
dtype given, a bool metric.  Each error names its argument and leaves every buffer as it was."""
import numpy as np
import pytest

import fastloss
from fastloss import optim, schedules
from fastloss._registry import COMPILED

BACKENDS = COMPILED + ("numpy",)
HUGE = 10 ** 400


def _bits(*arrays):
    return [a.copy().view(np.uint8) for a in arrays]


def _same(before, arrays):
    return all(np.array_equal(b, a.view(np.uint8)) for b, a in zip(before, arrays))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sign", [1, -1])
def test_int_past_float_range_is_a_named_value_error(backend, sign):
    p, t = np.ones(5, np.float32), np.zeros(5, np.float32)
    g, buf = np.full(5, 3.0, np.float32), np.zeros(5, np.float32)
    before = _bits(p, g, buf)
    calls = {
        "delta": lambda: fastloss.huber(p, t, delta=sign * HUGE, out=g, backend=backend),
        "beta": lambda: fastloss.smooth_l1(p, t, beta=sign * HUGE, out=g, backend=backend),
        "margin": lambda: fastloss.hinge(p, t, margin=sign * HUGE, out=g, backend=backend),
        "label_smoothing": lambda: fastloss.cross_entropy(np.ones((5, 1), np.float32), np.zeros(5, np.int64),
                                                          label_smoothing=sign * HUGE, backend=backend),
        "lr": lambda: optim.sgd_(p, t, buf, step=1, lr=sign * HUGE, momentum=0.9, backend=backend),
        "eps": lambda: optim.adam_(p, t, buf, np.zeros(5, np.float32), step=1, eps=sign * HUGE,
                                   backend=backend),
        "max_norm": lambda: fastloss.clip_grad_norm_([g], max_norm=sign * HUGE, backend=backend),
        "grad_scale": lambda: optim.SGD([p], lr=0.1, backend=backend).step([t], grad_scale=sign * HUGE),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match=rf"^{name}: an integer of 1329 bits is too large for a float"):
            call()
        assert _same(before, [p, g, buf]), name
    with pytest.raises(ValueError, match="^lr: an integer"):
        schedules.constant(sign * HUGE)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("beta", [1e-50, 7e-46])
def test_smooth_l1_float32_beta_that_rounds_to_zero_is_l1(backend, beta):
    """a beta > 0 that rounds to 0 in float32 is L1 in both compiled backends (Numba raised
    ZeroDivisionError for it).  torch, which keeps beta in double, differs only at d = NaN
    (NaN, not L1's 0) and d = -0 (-0); the float64 reference does as torch (README)."""
    x = np.array([0.5, -1.0, 2.0, 0.0, -0.0, 1e-45, np.inf, np.nan], np.float32)
    t = np.zeros_like(x)
    for reduction in ("sum", "none"):
        l, g = fastloss.smooth_l1(x, t, beta=beta, reduction=reduction, backend=backend)
        ml, mg = fastloss.mae(x, t, reduction=reduction, backend=backend)
        np.testing.assert_array_equal(l, ml)
        np.testing.assert_array_equal(g, mg)
    assert g[3] == 0 and g[5] == 1


def test_flat_blocks_rebound_only_to_what_fits():
    flat = fastloss.FlatParams([(3,), (2, 2)])
    data0, grad0 = flat.data, flat.grad
    bad = [
        (np.full(7, 10, np.float16), TypeError, r"flat.grad: dtype must be the FlatParams' float32, got float16"),
        (np.ones(7, np.int32), TypeError, "got int32"),
        (np.ones(8, np.float32), ValueError, r"flat.grad: must have shape \(7,\), got \(8,\)"),
        (np.ones((7, 1), np.float32), ValueError, r"got \(7, 1\)"),
        (np.ones(14, np.float32)[::2], ValueError, "flat.grad: must be C-contiguous"),
        ([0.0] * 7, TypeError, "flat.grad: must be a numpy.ndarray, got list"),
        (np.ma.zeros(7, np.float32), TypeError, "flat.grad"),
    ]
    for block, exc, match in bad:
        with pytest.raises(exc, match=match):
            flat.grad = block
        with pytest.raises(exc, match=match.replace("grad", "data")):
            flat.data = block
        assert flat.grad is grad0 and flat.data is data0
    g = np.arange(7, dtype=np.float32)
    flat.grad = g  # fits: the views follow the block
    assert flat.grad is g and np.shares_memory(flat.grads[1], g) and flat.grads[1][1, 1] == 6


@pytest.mark.parametrize("backend", BACKENDS)
def test_flat_grad_changed_in_place_is_checked_by_its_users(backend):
    flat = fastloss.FlatParams([(3,), (4,)])
    flat.grad[...] = 2.0
    flat.grad.setflags(write=False)
    before = _bits(flat.grad)
    with pytest.raises(ValueError, match=r"^grads \(the FlatParams' grad block\): is read-only"):
        fastloss.clip_grad_norm_(flat, 1.0, backend=backend)
    with pytest.raises(ValueError, match="^flat.grad: is read-only"):
        flat.zero_grad()
    assert _same(before, [flat.grad])
    assert fastloss.clip_grad_norm(flat, 1.0, backend=backend)[0] == pytest.approx(np.sqrt(28))
    flat2 = fastloss.FlatParams([(3,), (4,)])
    flat2.grad.dtype = np.int32  # the same bytes, retyped in place
    for call in (lambda: fastloss.clip_grad_norm(flat2, 1.0, backend=backend),
                 lambda: fastloss.clip_grad_norm_(flat2, 1.0, backend=backend)):
        with pytest.raises(TypeError, match=r"^grads \(the FlatParams' grad block\): dtype must be"):
            call()


@pytest.mark.parametrize("bad", [[1 + 2j, 3 + 4j], ["1.5", "2"], np.array([1.0, None], dtype=object)],
                         ids=["complex", "str", "object"])
@pytest.mark.parametrize("dtype", [None, np.float32, np.float64])
def test_from_arrays_refuses_non_real_input_whatever_the_dtype(bad, dtype):
    with pytest.raises(TypeError, match=r"^arrays\[1\]: dtype .* is not real numeric"):
        fastloss.FlatParams.from_arrays([np.ones(2), bad], dtype=dtype)


def test_plateau_refuses_a_bool_metric():
    s = schedules.ReduceLROnPlateau(0.1)
    for bad in (True, np.bool_(False)):
        with pytest.raises(TypeError, match="^metric: must be a real number"):
            s.step(bad)
    with pytest.raises(ValueError, match="^metric: an integer too large"):
        s.step(HUGE)
    assert s.last_epoch == 0
    s.step(np.float32(1.5))
    s.step(np.array(1.25))
    assert s.best == 1.25


STATEFUL = [
    (optim.SGD, dict(lr=0.1, momentum=0.9), "momentum_buffer"),
    (optim.Adam, dict(lr=0.1, amsgrad=True), "max_exp_avg_sq"),
    (optim.Adagrad, dict(lr=0.1), "sum"),
    (optim.RMSprop, dict(lr=0.1, centered=True), "grad_avg"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cls,kw,key", STATEFUL, ids=lambda v: getattr(v, "__name__", None))
@pytest.mark.parametrize("how", ["read-only", "retyped", "reshaped"])
def test_state_array_changed_in_place_after_it_was_recorded(backend, cls, kw, key, how):
    """a state array verified and recorded by earlier steps, then made read-only, given
    another dtype or another shape (of the same size) in place: the next step names it and
    updates nothing (the kernels wrote into it, or Numba raised a TypingError after updating
    params[0]; a reshaped one was stepped and exported in its new shape)"""
    ps = [np.ones(4, np.float32), np.ones(4, np.float32)]
    g = np.full(4, 0.5, np.float32)
    opt = cls(ps, backend=backend, **kw)
    opt.step([g, g])
    opt.step([g, g])
    a = opt.state[1][key]
    if how == "read-only":
        a.setflags(write=False)
        exc, match = ValueError, rf"^state\[1\]\['{key}'\]: is read-only"
    elif how == "retyped":
        a.dtype = np.int32
        exc, match = TypeError, rf"^state\[1\]\['{key}'\]: dtype must be"
    else:
        a.shape = (2, 2)
        exc, match = ValueError, rf"^state\[1\]\['{key}'\]: shape must be params\[1\]'s shape \(4,\), got \(2, 2\)"
    arrays = ps + [v for st in opt.state for v in st.values() if isinstance(v, np.ndarray)]
    before = _bits(*arrays)
    with pytest.raises(exc, match=match):
        opt.step([g, g])
    assert _same(before, arrays) and [st["step"] for st in opt.state] == [2, 2]


def test_state_dict_refuses_what_load_state_dict_would():
    """an entry added by hand to a parameter's state (step() never reads it) made a
    state_dict() that load_state_dict() refuses; and a replaced state raised KeyError there"""
    p, g = np.ones(3, np.float32), np.ones(3, np.float32)
    opt = optim.Adam([p], lr=0.1)
    opt.step([g])
    opt.state[0]["foo"] = 1
    with pytest.raises(ValueError, match=r"^state\[0\]: unknown entry 'foo' \(expected 'step', 'exp_avg'"):
        opt.state_dict()
    del opt.state[0]["foo"]
    optim.Adam([np.ones(3, np.float32)], lr=0.1).load_state_dict(opt.state_dict())
    opt.state = {}
    with pytest.raises(ValueError, match="^state: must be the optimizer's list of 1 dicts"):
        opt.state_dict()
