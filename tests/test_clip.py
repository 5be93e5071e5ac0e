"""clip_grad_norm / clip_grad_norm_: against torch.nn.utils.clip_grad_norm_ (norm types 2, 1,
inf, 3; zero, infinite and NaN gradients), against the reference backend, FlatParams, and bad
input (nothing written)."""
import math

import numpy as np
import pytest

import fastloss
from fastloss import clip_grad_norm, clip_grad_norm_
from fastloss._registry import COMPILED, DTYPES
from conftest import assert_close

SHAPES = [(70001,), (17,), (3, 5), (1,)]  # one array above 2 x the grain: the threaded path
NORMS = [2.0, 1.0, math.inf, 3.0]


def _grads(dtype, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(s) * scale).astype(dtype) for s in SHAPES]


@pytest.mark.parametrize("norm_type", NORMS, ids=str)
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_matches_reference(norm_type, backend, dtype):
    gs = _grads(dtype)
    ref = np.concatenate([g.astype(np.float64).ravel() for g in gs])
    exact = float(np.max(np.abs(ref))) if norm_type == math.inf else float(np.sum(np.abs(ref) ** norm_type) ** (1 / norm_type))
    total, scale = clip_grad_norm(gs, 5.0, norm_type, backend=backend)
    rtotal, rscale = clip_grad_norm(gs, 5.0, norm_type, backend="numpy")
    # float64 accumulation: close to the exact norm even for float32 inputs
    assert abs(total - exact) <= 1e-12 * exact and abs(rtotal - exact) <= 1e-12 * exact
    assert scale == min(1.0, 5.0 / (total + 1e-6)) and abs(scale - rscale) <= 1e-12 * rscale
    before = [g.copy() for g in gs]
    assert clip_grad_norm_(gs, 5.0, norm_type, backend=backend) == total
    for g, b in zip(gs, before):
        np.testing.assert_array_equal(g, (b * b.dtype.type(scale)))


def test_flat_params_and_single_array():
    gs = _grads(np.float32)
    flat = fastloss.FlatParams([g.shape for g in gs])
    for v, g in zip(flat.grads, gs):
        v[...] = g
    t_list, s_list = clip_grad_norm(gs, 1.0)
    t_flat, s_flat = clip_grad_norm(flat, 1.0)
    assert abs(t_flat - t_list) <= 1e-12 * t_list
    t_one, _ = clip_grad_norm(flat.grad, 1.0)
    assert t_one == t_flat
    assert clip_grad_norm_(flat, 1.0) == t_flat
    assert_close(flat.grad, np.concatenate([g.ravel() for g in gs]) * np.float32(s_flat), np.float32)


def test_no_clipping_needed_writes_nothing_and_edge_cases():
    g = [np.full(4, 0.1, np.float32), np.zeros(3, np.float32)]
    before = [x.copy() for x in g]
    total = clip_grad_norm_(g, 10.0)
    assert total == pytest.approx(0.2)
    for a, b in zip(g, before):
        np.testing.assert_array_equal(a, b)
    assert clip_grad_norm([], 1.0) == (0.0, 1.0)
    assert clip_grad_norm([np.zeros(5)], 1.0) == (0.0, 1.0)
    assert clip_grad_norm([np.zeros(5)], 0.0) == (0.0, 0.0)
    t, s = clip_grad_norm([np.array([3.0, 4.0])], 1.0, "inf")
    assert t == 4.0
    # non-contiguous gradients are fine to read (clip_grad_norm never writes)
    assert clip_grad_norm([np.arange(10.0)[::2]], 1.0, 1.0)[0] == 20.0


@pytest.mark.parametrize("backend", COMPILED)
def test_nonfinite(backend):
    for bad, expect in ((np.inf, math.inf), (np.nan, math.nan)):
        for norm_type in NORMS:
            gs = _grads(np.float32)
            gs[1][3] = bad
            total, scale = clip_grad_norm(gs, 1.0, norm_type, backend=backend)
            if math.isnan(expect):
                assert math.isnan(total) and math.isnan(scale)
            else:
                assert total == math.inf and scale == 0.0
            before = [g.copy() for g in gs]
            with pytest.raises(ValueError, match="non-finite|nan|inf"):
                clip_grad_norm_(gs, 1.0, norm_type, error_if_nonfinite=True, backend=backend)
            for g, b in zip(gs, before):
                np.testing.assert_array_equal(g, b)


BAD = [
    (lambda g: clip_grad_norm(g, -1.0), ValueError, "max_norm"),
    (lambda g: clip_grad_norm(g, float("nan")), ValueError, "max_norm"),
    (lambda g: clip_grad_norm(g, "1"), TypeError, "max_norm"),
    (lambda g: clip_grad_norm(g, 1.0, 0.0), ValueError, "norm_type"),
    (lambda g: clip_grad_norm(g, 1.0, -2.0), ValueError, "norm_type"),
    (lambda g: clip_grad_norm(g, 1.0, "two"), TypeError, "norm_type"),
    (lambda g: clip_grad_norm(3.0, 1.0), TypeError, "grads"),
    (lambda g: clip_grad_norm([g[0], [1.0, 2.0]], 1.0), TypeError, r"grads\[1\]"),
    (lambda g: clip_grad_norm([np.ones(3, np.int32)], 1.0), TypeError, r"grads\[0\].*dtype"),
    (lambda g: clip_grad_norm_(g, 1.0, error_if_nonfinite=1), TypeError, "error_if_nonfinite"),
    (lambda g: clip_grad_norm_([g[0], np.ones(8)[::2]], 0.1), ValueError, r"grads\[1\].*contiguous"),
    (lambda g: clip_grad_norm_([g[0], g[0][2:]], 0.1), ValueError, "share memory"),
]


@pytest.mark.parametrize("call,exc,match", BAD)
def test_bad_input_touches_nothing(call, exc, match):
    g = [np.arange(1.0, 7.0), np.full(3, 2.0)]
    before = [x.copy() for x in g]
    with pytest.raises(exc, match=match):
        call(g)
    for a, b in zip(g, before):
        np.testing.assert_array_equal(a, b)
    ro = np.ones(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        clip_grad_norm_([np.ones(3), ro], 0.1)


# ---- torch.nn.utils.clip_grad_norm_ ---------------------------------------------------------
def _torch_clip(torch, gs, max_norm, norm_type):
    ps = [torch.zeros(g.shape, dtype=torch.float32 if g.dtype == np.float32 else torch.float64,
                      requires_grad=True) for g in gs]
    for p, g in zip(ps, gs):
        p.grad = torch.tensor(g.copy())
    total = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type)
    return float(total), [p.grad.numpy() for p in ps]


CASES = [("random", 1.0), ("random_small", 1e-3), ("zeros", 0.0), ("inf", 1.0), ("nan", 1.0)]


@pytest.mark.parametrize("case,scale", CASES, ids=[c for c, _ in CASES])
@pytest.mark.parametrize("norm_type", NORMS, ids=str)
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_matches_torch(case, scale, norm_type, backend, dtype):
    torch = pytest.importorskip("torch")
    gs = _grads(dtype, scale)
    if case == "inf":
        gs[2][1, 1] = -np.inf
    elif case == "nan":
        gs[0][5] = np.nan
    ttotal, tgrads = _torch_clip(torch, gs, 1.0, norm_type)
    total = clip_grad_norm_(gs, 1.0, norm_type, backend=backend)
    if math.isnan(ttotal) or math.isinf(ttotal):
        assert (math.isnan(total) and math.isnan(ttotal)) or total == ttotal
        for g, t in zip(gs, tgrads):
            np.testing.assert_array_equal(np.isnan(g), np.isnan(t))
            np.testing.assert_array_equal(g[~np.isnan(t)], t[~np.isnan(t)])
        return
    # torch sums in the gradients' dtype; we accumulate in float64 (closer to the exact norm)
    assert total == pytest.approx(ttotal, rel=float(10 * np.finfo(dtype).eps * (1 if norm_type == math.inf else 100)))
    for g, t in zip(gs, tgrads):
        assert_close(g, t, dtype, f"clipped grad, norm {norm_type}")
