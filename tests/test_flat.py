"""FlatParams: layout and alignment, from_arrays, zero_grad; every optimizer over a FlatParams
makes one kernel call per step, keeps flat state, and equals the same arrays updated one by
one bit for bit; state_dict portability between flat and per-array optimizers."""
import numpy as np
import pytest

import fastloss
from fastloss import _config, _fast, optim
from fastloss._registry import COMPILED, DTYPES

# 75000 + small odd ones: the flat call (and the big array) runs threaded, the rest serially
SHAPES = [(300, 250), (17,), (1,), (3, 5, 7), (), (0, 4), (1025,)]

OPTS = {
    "sgd": (optim.SGD, "sgd", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    "adam": (optim.Adam, "adam", dict(lr=0.01, amsgrad=True, weight_decay=0.125)),
    "adamw": (optim.AdamW, "adam", dict(lr=0.01, maximize=True)),
    "adagrad": (optim.Adagrad, "adagrad", dict(lr=0.05, lr_decay=0.01, initial_accumulator_value=0.5)),
    "rmsprop": (optim.RMSprop, "rmsprop", dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.125)),
}


def _init(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def _grads(dtype, steps, seed=1):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(steps)]


def test_layout_views_alignment():
    flat = fastloss.FlatParams([(784, 256), (256,), 10, (2, 0)], dtype=np.float64)
    assert flat.dtype == np.float64 and len(flat) == 4
    assert [p.shape for p in flat.params] == [(784, 256), (256,), (10,), (2, 0)]
    assert [g.shape for g in flat.grads] == [(784, 256), (256,), (10,), (2, 0)]
    assert flat.size == 784 * 256 + 256 + 10 == flat.data.size == flat.grad.size
    assert flat.offsets == [0, 784 * 256, 784 * 256 + 256, 784 * 256 + 266]
    for block in (flat.data, flat.grad):
        assert block.ctypes.data % 64 == 0 and block.flags.c_contiguous and block.ndim == 1
    assert not np.shares_memory(flat.data, flat.grad)
    for views, block in ((flat.params, flat.data), (flat.grads, flat.grad)):
        for v, o, n in zip(views, flat.offsets, flat.sizes):
            if n:
                assert np.shares_memory(v, block)
                assert v.ctypes.data == block.ctypes.data + 8 * o
            assert v.flags.c_contiguous and v.flags.writeable
    assert (flat.data == 0).all() and (flat.grad == 0).all()
    flat.params[1][...] = 3.0
    assert (flat.data[784 * 256:784 * 256 + 256] == 3.0).all()
    flat.grads[2][...] = 1.0
    flat.zero_grad()
    assert (flat.grad == 0).all()
    assert fastloss.FlatParams([3]).dtype == np.float32
    assert "4 parameters" in repr(flat)


def test_from_arrays_copies_values():
    a = [np.arange(6.0).reshape(2, 3), np.ones(4, np.float32)]
    flat = fastloss.FlatParams.from_arrays(a)
    assert flat.dtype == np.float64  # any float64 -> float64
    np.testing.assert_array_equal(flat.params[0], a[0])
    np.testing.assert_array_equal(flat.params[1], a[1])
    flat.params[0][...] = 0
    assert a[0][1, 2] == 5.0  # a copy, not a view of the caller's arrays
    f32 = fastloss.FlatParams.from_arrays([np.ones(3, np.float32), [1, 2]])
    assert f32.dtype == np.float32
    assert fastloss.FlatParams.from_arrays([np.ones(3)], dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize("args,exc,match", [
    ((np.ones(3),), TypeError, "shapes"),
    ((5,), TypeError, "shapes"),
    (([(2, -1)],), ValueError, r"shapes\[0\]"),
    (([(2, 1.5)],), TypeError, r"shapes\[0\]"),
    (([3, "a"],), TypeError, r"shapes\[1\]"),
    (([3], np.int32), TypeError, "dtype"),
    (([3], "float16"), TypeError, "dtype"),
])
def test_bad_construction(args, exc, match):
    with pytest.raises(exc, match=match):
        fastloss.FlatParams(*args)


def test_from_arrays_bad_input():
    with pytest.raises(TypeError, match="arrays"):
        fastloss.FlatParams.from_arrays(np.ones(3))
    with pytest.raises(TypeError, match=r"arrays\[0\]"):
        fastloss.FlatParams.from_arrays([np.array(["a"])])


@pytest.mark.parametrize("name", list(OPTS))
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_flat_equals_per_array_bit_for_bit(name, backend, dtype, monkeypatch):
    cls, kernel, kw = OPTS[name]
    init = _init(dtype)
    flat = fastloss.FlatParams.from_arrays(init, dtype=dtype)
    arrays = [a.copy() for a in init]
    fopt = cls(flat, backend=backend, **kw)
    aopt = cls(arrays, backend=backend, **kw)

    kernels = _config.module(backend)
    calls = []
    real = getattr(kernels, kernel)
    monkeypatch.setattr(kernels, kernel, lambda *a: (calls.append(a[0].size), real(*a))[1])
    # the checked path, where the backend module's kernel can be counted (the C fast path
    # calls the same kernel with the same arguments: tests/test_fast.py)
    with _fast.checked_only():
        for step, gs in enumerate(_grads(dtype, 8), 1):
            for view, g in zip(flat.grads, gs):
                view[...] = g
            fopt.step(grad_scale=0.5)
            assert calls == [flat.size]  # one kernel call over the whole block
            calls.clear()
            aopt.step(gs, grad_scale=0.5)
            calls.clear()
    for p, a in zip(flat.params, arrays):
        np.testing.assert_array_equal(p, a)
    # flat state: blocks of the same layout, each parameter's state a view into them
    for s, block in fopt._flat_state.items():
        if isinstance(block, np.ndarray):
            assert block.shape == (flat.size,) and block.ctypes.data % 64 == 0
            for i, st in enumerate(fopt.state):
                if st[s].size:
                    assert np.shares_memory(st[s], block)
                np.testing.assert_array_equal(st[s], aopt.state[i][s])
    assert all(st["step"] == 8 for st in fopt.state)


@pytest.mark.parametrize("name", list(OPTS))
def test_state_dict_portable_between_flat_and_arrays(name):
    cls, _, kw = OPTS[name]
    dtype = np.float32
    grads = _grads(dtype, 10)
    init = _init(dtype)

    full = [a.copy() for a in init]
    opt = cls(full, **kw)
    for g in grads:
        opt.step(g)

    # 5 steps over arrays, saved, resumed over a FlatParams
    a = [x.copy() for x in init]
    oa = cls(a, **kw)
    for g in grads[:5]:
        oa.step(g)
    flat = fastloss.FlatParams.from_arrays(a)
    of = cls(flat, **kw)
    of.load_state_dict(oa.state_dict())
    assert all(np.shares_memory(st[s], of._flat_state[s]) for st in of.state[:1]
               for s in of._state_arrays if st[s] is not None)
    for g in grads[5:]:
        of.step(np.concatenate([x.ravel() for x in g]))  # one flat gradient array
    for x, y in zip(full, flat.params):
        np.testing.assert_array_equal(x, y)

    # and back: the flat optimizer's state_dict loads into a per-array one
    b = [x.copy() for x in flat.params]
    ob = cls(b, **kw)
    ob.load_state_dict(of.state_dict())
    sd_f, sd_b = of.state_dict(), ob.state_dict()
    for i in sd_f["state"]:
        for k, v in sd_f["state"][i].items():
            if isinstance(v, np.ndarray):
                np.testing.assert_array_equal(v, sd_b["state"][i][k])
                assert not np.shares_memory(v, of._flat_state[k])  # state_dict copies


def test_flat_step_validates_first():
    flat = fastloss.FlatParams([3, 4])
    opt = optim.Adam(flat, lr=0.1)
    with pytest.raises(TypeError, match="grads"):
        opt.step([np.ones(3, np.float32), np.ones(4, np.float32)])
    with pytest.raises(ValueError, match="grads.*shape"):
        opt.step(np.ones(6, np.float32))
    with pytest.raises(TypeError, match="grads.*dtype"):
        opt.step(np.ones(7))
    with pytest.raises(ValueError, match="shares memory"):
        opt.step(flat.data)
    with pytest.raises(ValueError, match="grad_scale"):
        opt.step(grad_scale=float("nan"))
    assert (flat.data == 0).all() and opt._flat_state["exp_avg"] is None
    assert opt.state[0]["step"] == 0
    with pytest.raises(TypeError, match="FlatParams"):
        optim.Adam([{"params": flat}])
    with pytest.raises(ValueError, match="no parameters"):
        optim.Adam(fastloss.FlatParams([]))


def test_load_state_dict_needs_one_step_count():
    a, b = np.ones(3, np.float32), np.ones(4, np.float32)
    opt = optim.Adam([a, b])
    opt.step([np.ones(3, np.float32), np.ones(4, np.float32)])
    sd = opt.state_dict()
    sd["state"][1]["step"] = 2
    fopt = optim.Adam(fastloss.FlatParams([3, 4]))
    with pytest.raises(ValueError, match="step counts differ"):
        fopt.load_state_dict(sd)
    sd["state"][1]["step"] = 1
    sd["state"][1]["exp_avg"] = None
    with pytest.raises(ValueError, match="exp_avg"):
        fopt.load_state_dict(sd)
    assert fopt.state[0]["step"] == 0 and fopt._flat_state["exp_avg"] is None


def test_clip_then_step_with_grad_scale():
    """clip_grad_norm's scale passed to step equals clip_grad_norm_ followed by step."""
    init = _init(np.float32)
    f1, f2 = fastloss.FlatParams.from_arrays(init), fastloss.FlatParams.from_arrays(init)
    o1, o2 = optim.Adam(f1, lr=0.01), optim.Adam(f2, lr=0.01)
    for gs in _grads(np.float32, 3):
        for flat in (f1, f2):
            for v, g in zip(flat.grads, gs):
                v[...] = 10 * g
        total, scale = fastloss.clip_grad_norm(f1, max_norm=1.0)
        assert scale < 1.0
        o1.step(grad_scale=scale)
        assert fastloss.clip_grad_norm_(f2, max_norm=1.0) == total
        o2.step()
    np.testing.assert_allclose(f1.data, f2.data, rtol=1e-6, atol=1e-7)
