"""The validation contract (fastloss._validate and the public functions' checked paths):
each error is a ValueError/TypeError naming the argument, raised before any buffer is
written (checked byte for byte), with nothing silently copied, broadcast or truncated.

One test per confirmed finding (audit B: F3, F4, F6, F9, F10; fuzzing against torch 2.13:
BCE target range, ignore_index with probability targets).  Each runs on the checked Python
path (``_fast.checked_only()``) and, where the C fast path could take the call, on the
public path too: both must refuse it.
"""
import contextlib

import numpy as np
import pytest

import fastloss
from fastloss import _fast, optim
from fastloss import _validate as V

BACKENDS = ["c", "numba", "numpy"]
# np.matrix is what F6 is about
pytestmark = pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
PATHS = ["checked", "public"]


def _path(path):
    return _fast.checked_only() if path == "checked" else contextlib.nullcontext()


@contextlib.contextmanager
def unchanged(*arrays):
    """The block must leave every array's bytes as they were (it is expected to raise)."""
    before = [a.tobytes() for a in arrays]
    try:
        yield
    finally:
        for i, (a, b) in enumerate(zip(arrays, before)):
            assert a.tobytes() == b, f"array {i} was written by a call that failed"


def _raises(exc, *words):
    """pytest.raises(exc) whose message names each of words (the argument first)."""
    return pytest.raises(exc, match="".join(f"(?=.*{w})" for w in words))


# ---- F3 / F4: out= over the int64 class-index target -------------------------------------------

def _target_and_out(n, c, offset, d=()):
    """int64 targets (n, *d) in [0, c) and a float32 out (n, c, *d) in one raw buffer, out
    starting `offset` bytes after the targets."""
    nt = n * int(np.prod(d, dtype=np.int64))
    raw = np.zeros(max(nt * 8, offset + nt * c * 4) + 64, np.uint8)
    t = raw[:nt * 8].view(np.int64).reshape((n,) + d)
    t[...] = np.random.default_rng(1).integers(0, c, t.shape)
    out = raw[offset:offset + nt * c * 4].view(np.float32).reshape((n, c) + d)
    return raw, t, out


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fn", ["multi_margin", "cross_entropy"])
@pytest.mark.parametrize("weighted", [False, True])
def test_out_partially_over_target_is_refused(fn, backend, path, weighted):
    """F3: multi_margin checked out= against the logits only; an out overlapping the int64
    targets from byte 16 on (targets not yet read) was accepted: corrupted memory."""
    n, c = 200, 3
    logits = np.random.default_rng(0).standard_normal((n, c)).astype(np.float32)
    raw, t, out = _target_and_out(n, c, 16)
    kw = {"weight": np.ones(c, np.float32)} if weighted else {}
    with _path(path), unchanged(raw, logits), _raises(ValueError, "out", "target"):
        getattr(fastloss, fn)(logits, t, out=out, backend=backend, **kw)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fn,d", [("cross_entropy", (64,)), ("cross_entropy", ()), ("multi_margin", ())])
def test_out_reading_the_target_bytes_as_floats_is_refused(fn, d, backend, path):
    """F4: a float32 out with the int64 target's start and byte count (C == 2) counted as
    "the same array" (same_memory compared the address and nbytes only): accepted, and the
    C kernel segfaulted on (N, C, d) logits."""
    n, c = 50, 2
    logits = np.random.default_rng(0).standard_normal((n, c) + d).astype(np.float32)
    raw, t, out = _target_and_out(n, c, 0, d)
    assert out.nbytes == t.nbytes and out.ctypes.data == t.ctypes.data
    with _path(path), unchanged(raw, logits), _raises(ValueError, "out", "target"):
        getattr(fastloss, fn)(logits, t, out=out, backend=backend)


def test_same_memory_means_same_array():
    """F4, the helper itself: the same start and byte count is not enough."""
    a = np.arange(8, dtype=np.int64)
    assert V.same_memory(a, a.view(np.int64))
    assert V.same_memory(a, a[:])
    assert not V.same_memory(a.view(np.float64), a)         # another dtype
    assert not V.same_memory(a.reshape(2, 4), a)            # another shape
    assert not V.same_memory(np.lib.stride_tricks.as_strided(a, (8,), (0,)), a)  # other strides


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_may_still_be_an_input_itself(backend):
    """what same_memory is for: out=pred / out=logits / out=prob-target stay allowed"""
    rng = np.random.default_rng(0)
    p, t = rng.standard_normal(33).astype(np.float32), rng.standard_normal(33).astype(np.float32)
    ref = fastloss.mse(p, t, backend=backend)
    with _fast.checked_only():
        loss, g = fastloss.mse(p, t, out=p, backend=backend)
    assert g is p and loss == ref[0]
    np.testing.assert_array_equal(p, ref[1])
    x = rng.standard_normal((5, 4)).astype(np.float32)
    q = rng.random((5, 4)).astype(np.float32)
    ref = fastloss.cross_entropy(x, q, backend=backend)
    with _fast.checked_only():
        loss, g = fastloss.cross_entropy(x, q, out=x, backend=backend)
    assert g is x and loss == ref[0]


# ---- F6: ndarray subclasses --------------------------------------------------------------------

def _matrix(n, dt=np.float32, v=1.0):
    return np.asmatrix(np.full(n, v, dt))


def _masked(n, dt=np.float32, v=1.0):
    return np.ma.MaskedArray(np.full(n, v, dt), mask=np.arange(n) % 2 == 0)


SUBCLASSES = {"matrix": (_matrix, "numpy.matrix"), "masked": (_masked, "MaskedArray")}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", sorted(SUBCLASSES))
@pytest.mark.parametrize("role", ["pred", "target", "out"])
def test_loss_refuses_ndarray_subclasses(role, kind, backend, path):
    """F6: np.matrix as out= with backend="numba" corrupted the heap (reshape(-1) keeps it
    2-D); a MaskedArray's mask was dropped (pred) or ignored (out).  TypeError naming the
    argument, nothing written."""
    make, what = SUBCLASSES[kind]
    args = {"pred": np.ones((1, 64), np.float32), "target": np.zeros((1, 64), np.float32), "out": None}
    args[role] = make(64).reshape(1, 64) if kind == "masked" else make(64)
    bufs = [np.asarray(a) for a in args.values() if a is not None]
    with _path(path), unchanged(*bufs), _raises(TypeError, role, what):
        fastloss.mse(args["pred"], args["target"], out=args["out"], backend=backend)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", sorted(SUBCLASSES))
@pytest.mark.parametrize("role", ["logits", "target", "weight", "out"])
@pytest.mark.parametrize("fn", ["cross_entropy", "multi_margin"])
def test_class_losses_refuse_ndarray_subclasses(fn, role, kind, backend, path):
    make, what = SUBCLASSES[kind]
    n, c = 1, 4  # np.matrix is 2-D: logits (1, C)
    args = {"logits": np.zeros((n, c), np.float32), "target": np.array([1]),
            "weight": np.ones(c, np.float32), "out": np.zeros((n, c), np.float32)}
    if role == "target":
        args[role] = np.ma.MaskedArray([1], mask=[True]) if kind == "masked" else np.asmatrix([1])
    elif role == "weight":
        args[role] = make(c)
    else:
        args[role] = make(c).reshape(1, c) if kind == "masked" else make(c)
    bufs = [np.asarray(a) for a in args.values()]
    with _path(path), unchanged(*bufs), _raises(TypeError, role, what):
        getattr(fastloss, fn)(args["logits"], args["target"], weight=args["weight"], out=args["out"],
                              backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", sorted(SUBCLASSES))
@pytest.mark.parametrize("role", ["param", "grad", "momentum_buffer"])
def test_sgd_refuses_ndarray_subclasses(role, kind, backend):
    """F6: optim.sgd_ on an np.matrix param with backend="numba" segfaulted; a MaskedArray
    param had its masked elements updated (c, numpy) or raised a raw Numba error."""
    make, what = SUBCLASSES[kind]
    n = 64
    shape = (1, n) if kind == "matrix" else (n,)  # all of one shape: only the subclass is wrong
    args = {"param": np.ones(shape, np.float32), "grad": np.ones(shape, np.float32),
            "momentum_buffer": np.zeros(shape, np.float32)}
    args[role] = make(n)
    bufs = [np.asarray(a) for a in args.values()]
    with unchanged(*bufs), _raises(TypeError, role, what):
        optim.sgd_(args["param"], args["grad"], args["momentum_buffer"], step=2, lr=0.5, momentum=0.9,
                   backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", sorted(SUBCLASSES))
@pytest.mark.parametrize("role", ["param", "grad", "exp_avg", "exp_avg_sq"])
def test_adam_refuses_ndarray_subclasses(role, kind, backend):
    """F6: adam_ raised numba TypingError (not a TypeError) for a matrix, after validation"""
    make, what = SUBCLASSES[kind]
    n = 16
    args = {k: np.full(n, 0.5, np.float32) for k in ("param", "grad", "exp_avg", "exp_avg_sq")}
    args[role] = make(n, v=0.5)
    if kind == "matrix":
        args = {k: (v if k == role else v.reshape(1, n)) for k, v in args.items()}
    bufs = [np.asarray(a) for a in args.values()]
    with unchanged(*bufs), _raises(TypeError, role, what):
        optim.adam_(args["param"], args["grad"], args["exp_avg"], args["exp_avg_sq"], step=1, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", sorted(SUBCLASSES))
def test_stateful_optimizer_and_clipping_refuse_ndarray_subclasses(kind, backend):
    make, what = SUBCLASSES[kind]
    g = make(8, v=3.0)
    with unchanged(np.asarray(g)), _raises(TypeError, r"params\[0\]", what):
        optim.SGD([g], lr=0.1, backend=backend)
    for fn in (fastloss.clip_grad_norm, fastloss.clip_grad_norm_):
        with unchanged(np.asarray(g)), _raises(TypeError, r"grads\[0\]", what):
            fn([g], 1.0, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_memmap_is_an_ndarray(backend, tmp_path):
    """np.memmap is the one subclass taken as is (an ndarray over a file mapping, which
    every backend reads and writes as one): results equal a plain array's, bit for bit."""
    n = 40
    rng = np.random.default_rng(3)
    p0, g0 = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    mm = np.memmap(tmp_path / "p.bin", dtype=np.float32, mode="w+", shape=(n,))
    mm[:] = p0
    plain = p0.copy()
    for a in (mm, plain):
        with _fast.checked_only():
            optim.sgd_(a, g0, step=1, lr=0.1, backend=backend)
    np.testing.assert_array_equal(np.asarray(mm), plain)
    out = np.memmap(tmp_path / "g.bin", dtype=np.float32, mode="w+", shape=(n,))
    with _fast.checked_only():
        loss, g = fastloss.mse(mm, g0, out=out, backend=backend)
        ref = fastloss.mse(plain, g0, backend=backend)
    assert loss == ref[0]
    np.testing.assert_array_equal(np.asarray(out), ref[1])
    assert fastloss.clip_grad_norm([mm], 1.0, backend=backend) == fastloss.clip_grad_norm([plain], 1.0,
                                                                                        backend=backend)


# ---- F9: uint64 class indices ------------------------------------------------------------------

@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fn", ["cross_entropy", "multi_margin"])
@pytest.mark.parametrize("big", [2**64 - 100, 2**64 - 99, 2**63])
def test_uint64_index_above_int64_is_refused_as_given(big, fn, backend, path):
    """F9: the unsafe cast to int64 made 2**64 - 100 the ignore_index -100 (silently
    ignored), and reported other wrapped values (-99) the caller never passed."""
    x = np.array([[1.0, 2.0, 3.0], [3.0, 1.0, 0.5]], np.float32)
    t = np.array([0, big], np.uint64)
    out = np.zeros_like(x)
    with _path(path), unchanged(x, t, out), _raises(ValueError, "target", rf"class index {big} ", r"\(1,\)"):
        getattr(fastloss, fn)(x, t, out=out, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_uint64_indices_that_fit_are_taken(backend):
    x = np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32)
    t = np.array([0, 2, 1, 1, 0, 2])
    for fn in (fastloss.cross_entropy, fastloss.multi_margin):
        ref = fn(x, t, backend=backend)
        got = fn(x, t.astype(np.uint64), backend=backend)
        assert got[0] == ref[0]
        np.testing.assert_array_equal(got[1], ref[1])
    # the first bad one is named, also among wrapped ones
    with _raises(ValueError, "target", "class index 7", r"\(0,\)"):
        fastloss.cross_entropy(x[:2], np.array([7, 2**64 - 1], np.uint64), backend=backend)


# ---- F10: ignore_index outside int64 -----------------------------------------------------------

@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ii", [2**63, -2**63 - 1, 2**64, np.uint64(2**63)])
def test_ignore_index_outside_int64(ii, backend, path):
    """F10: OverflowError (every backend) instead of a ValueError naming ignore_index"""
    x = np.zeros((2, 3), np.float32)
    t = np.array([0, 1])
    out = np.full_like(x, 7.0)
    with _path(path), unchanged(x, t, out), _raises(ValueError, "ignore_index", str(int(ii))):
        fastloss.cross_entropy(x, t, ignore_index=ii, out=out, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ignore_index_at_the_int64_ends(backend):
    x = np.random.default_rng(0).standard_normal((3, 4))
    t = np.array([0, 3, 2])
    ref = fastloss.cross_entropy(x, t, backend=backend)
    for ii in (2**63 - 1, -2**63, np.int64(-5)):
        with _fast.checked_only():
            got = fastloss.cross_entropy(x, t, ignore_index=ii, backend=backend)
        assert got[0] == ref[0]
    with _raises(TypeError, "ignore_index"):
        fastloss.cross_entropy(x, t, ignore_index=1.0, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("step", [2**63, 2**64])
@pytest.mark.parametrize("hyper", [{}, {"lr": 1}])
def test_functional_optimizer_step_outside_int64(step, hyper, backend):
    """F10: step=2**63 raised OverflowError (c) or a Numba TypingError (2**64); now a
    ValueError naming step (fastloss._validate.step_count), nothing written."""
    arrays = [np.full(4, 0.5, np.float32) for _ in range(4)]
    with unchanged(*arrays), _raises(ValueError, "step"):
        optim.adam_(*arrays, step=step, backend=backend, **hyper)
    with unchanged(*arrays), _raises(ValueError, "step"):
        optim.sgd_(arrays[0], arrays[1], arrays[2], step=step, momentum=0.5, backend=backend,
                   **({"lr": 0.1} | hyper))


# ---- binary_cross_entropy: targets outside [0, 1] (torch raises) --------------------------------

@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [1.5, -0.1, np.inf, -np.inf, np.nan, 1.0000001])
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_target_outside_unit_interval(bad, dtype, backend, path, weighted):
    """torch: "all elements of target should be between 0 and 1" (NaN included: torch 2.13
    raises for a NaN target as it does for a NaN input, and so does fastloss for a NaN prob).
    The public path with weight=None needs entry.c to decline these."""
    n = 37  # past a SIMD width, the bad one after the first vector
    prob = np.linspace(0.01, 0.99, n).astype(dtype)
    t = np.linspace(0, 1, n).astype(dtype)
    t[20] = bad
    out = np.full(n, 3.0, dtype)
    kw = {"weight": np.ones(n, dtype)} if weighted else {}
    with _path(path), unchanged(prob, t, out), _raises(ValueError, "target", r"\[0, 1\]", r"\(20,\)"):
        fastloss.binary_cross_entropy(prob, t, out=out, backend=backend, **kw)
    with _path(path), unchanged(prob, t), _raises(ValueError, "target"):
        fastloss.binary_cross_entropy(prob, t, grad=False, reduction="none", backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bce_target_range_edges_and_with_logits(backend):
    prob = np.full(4, 0.5, np.float32)
    t = np.array([0.0, 1.0, -0.0, 0.25], np.float32)  # the closed interval, -0 included
    with _fast.checked_only():
        ref = fastloss.binary_cross_entropy(prob, t, backend=backend)
    assert np.isfinite(ref[0])
    # prob is checked first (the first argument named); a 0-d target names position ()
    with _raises(ValueError, "prob"):
        fastloss.binary_cross_entropy(np.float32(2.0), np.float32(5.0), backend=backend)
    with _raises(ValueError, "target", r"\(\)"):
        fastloss.binary_cross_entropy(np.float32(0.5), np.float32(5.0), backend=backend)
    # with_logits takes any target (torch does not check it either)
    fastloss.binary_cross_entropy_with_logits(prob, np.array([1.5, -1.0, np.nan, 2.0], np.float32),
                                              backend=backend)


# ---- cross_entropy: ignore_index with probability targets (torch raises) ------------------------

@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ii", [0, 1, 3, 2**63 - 1])
@pytest.mark.parametrize("shape", [(5, 3), (3,), (2, 3, 4)])
def test_probability_targets_refuse_ignore_index(ii, shape, backend, path):
    """torch: "ignore_index is not supported for floating point target" for any
    ignore_index >= 0; fastloss ignored it silently.  The public path with (N, C) logits
    needs entry.c to decline these."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    q = rng.random(shape).astype(np.float32)
    out = np.full_like(x, 9.0)
    with _path(path), unchanged(x, q, out), _raises(ValueError, "ignore_index", str(ii)):
        fastloss.cross_entropy(x, q, ignore_index=ii, out=out, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_probability_targets_take_negative_ignore_index(backend):
    """as torch: a negative ignore_index (the default -100 included) never names a class and
    is accepted with probability targets"""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3))
    q = rng.random((5, 3))
    ref = fastloss.cross_entropy(x, q, backend=backend)
    for ii in (-100, -1, -2**63):
        for path in PATHS:
            with _path(path):
                got = fastloss.cross_entropy(x, q, ignore_index=ii, backend=backend)
            assert got[0] == ref[0]
            np.testing.assert_array_equal(got[1], ref[1])


def test_torch_agrees_on_what_is_refused():
    """the two torch rules above, as torch 2.13 applies them"""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    p = torch.full((3,), 0.5)
    for bad in (1.5, -0.1, float("nan"), float("inf")):
        with pytest.raises(RuntimeError, match="target should be between 0 and 1"):
            F.binary_cross_entropy(p, torch.tensor([0.5, bad, 0.0]))
    F.binary_cross_entropy(p, torch.tensor([0.0, 1.0, -0.0]))
    x, q = torch.zeros(2, 3), torch.full((2, 3), 1 / 3)
    for ii in (0, 1):
        with pytest.raises(RuntimeError, match="ignore_index is not supported"):
            F.cross_entropy(x, q, ignore_index=ii)
    for ii in (-100, -1):
        F.cross_entropy(x, q, ignore_index=ii)


# ---- arrays that start off their element size -----------------------------------------------

def _misaligned(a, shift=4):
    """A copy of a whose data starts `shift` bytes past an element boundary (as a view into a
    byte buffer, or np.memmap(offset=...), gives)."""
    raw = np.zeros(a.nbytes + a.itemsize, np.uint8)
    m = raw[shift:shift + a.nbytes].view(a.dtype).reshape(a.shape)
    m[...] = a
    assert not m.flags.aligned
    return m


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", PATHS)
def test_misaligned_inputs_are_read_from_an_aligned_copy(backend, path):
    """The kernels load whole elements; an input off its element size is copied (inputs are
    never written), with the results of the aligned call."""
    rng = np.random.default_rng(9)
    p, t = rng.standard_normal(1001), rng.standard_normal(1001)
    x, y = rng.standard_normal((50, 7)), rng.integers(0, 7, 50)
    with _path(path):
        for f, args in ((fastloss.mse, (p, t)), (fastloss.huber, (p, t)),
                        (fastloss.cross_entropy, (x, y)), (fastloss.multi_margin, (x, y))):
            want = f(*args, backend=backend)
            got = f(*(_misaligned(a) for a in args), backend=backend)
            for w, g in zip(want, got):
                assert np.asarray(w).tobytes() == np.asarray(g).tobytes(), f.__name__


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", PATHS)
def test_misaligned_buffers_written_in_place_are_refused(backend, path):
    rng = np.random.default_rng(10)
    p, t = rng.standard_normal(1001), rng.standard_normal(1001)
    out = _misaligned(np.zeros(1001))
    with _path(path):
        with unchanged(out), _raises(ValueError, "out", "multiple of its 8-byte elements"):
            fastloss.mse(p, t, out=out, backend=backend)
        w, g, buf = _misaligned(p), t.copy(), np.zeros(1001)
        with unchanged(w, g, buf), _raises(ValueError, "param", "8-byte elements"):
            optim.sgd_(w, g, buf, step=1, lr=0.1, momentum=0.9, backend=backend)
        w, buf = p.copy(), _misaligned(np.zeros(1001))
        with unchanged(w, g, buf), _raises(ValueError, "momentum_buffer", "8-byte elements"):
            optim.sgd_(w, g, buf, step=1, lr=0.1, momentum=0.9, backend=backend)
