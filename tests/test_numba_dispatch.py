"""The Numba backend's call path: plan() and numba's per-thread thread count, N-d inputs
through the 1-D kernels, and results that depend on the chunks, not on who runs them."""
import threading

import numpy as np
import pytest

import fastloss
from fastloss import optim

numba = pytest.importorskip("numba")
nb = fastloss._config.module("numba")
from fastloss.backend.numba import _common, _regression  # noqa: E402

two_threads = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")


@two_threads
def test_plan_sets_numba_threads_changed_behind_its_back():
    n0 = fastloss.get_num_threads()
    try:
        fastloss.set_num_threads(2)
        n = 4 * _common.GRAIN_STREAM
        assert _common.plan(n) == 2 and numba.get_num_threads() == 2
        numba.set_num_threads(1)  # someone else's numba code, in this thread
        assert _common.plan(n) == 2 and numba.get_num_threads() == 2
        assert _common.plan(_common.GRAIN_STREAM) == 1  # serial: numba's setting untouched
    finally:
        fastloss.set_num_threads(n0)


@two_threads
def test_plan_in_a_new_thread():
    n0 = fastloss.get_num_threads()
    seen = []

    def worker():
        seen.append((_common.plan(2 * _common.GRAIN_STREAM), numba.get_num_threads()))

    try:
        fastloss.set_num_threads(2)
        th = threading.Thread(target=worker)
        th.start()
        th.join()
        assert seen == [(2, 2)]
    finally:
        fastloss.set_num_threads(n0)


@two_threads
def test_loss_bits_depend_on_chunks_not_threads():
    rng = np.random.default_rng(3)
    n = 100_003
    p, t = (rng.standard_normal(n).astype(np.float32) for _ in range(2))
    par = _regression.ew_loss[1]
    results = []
    try:
        for threads in (2, 1):
            numba.set_num_threads(threads)
            g = np.empty_like(p)
            results.append((par(_regression.HUBER, g, None, p, t, 1.0 / n, 0.5, 2), g))
    finally:
        numba.set_num_threads(2)
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])


@pytest.mark.parametrize("shape", [(300, 500), (7, 3, 5)])
def test_nd_inputs(shape):
    rng = np.random.default_rng(4)
    p, t = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
    for name in ("mse", "smooth_l2", "mae", "huber", "smooth_l1"):
        f = getattr(fastloss, name)
        for reduction in ("mean", "none"):
            l, g = f(p, t, reduction=reduction, backend="numba")
            l1, g1 = f(p.ravel(), t.ravel(), reduction=reduction, backend="numba")
            assert g.shape == shape and np.array_equal(g.ravel(), g1)
            assert np.array_equal(np.ravel(l), np.ravel(l1))
    q, b = p.copy(), np.zeros_like(p)
    q1, b1 = p.ravel().copy(), np.zeros(p.size, np.float32)
    for s in (1, 2):
        optim.sgd_(q, t, b, step=s, lr=0.1, momentum=0.9, backend="numba")
        optim.sgd_(q1, t.ravel(), b1, step=s, lr=0.1, momentum=0.9, backend="numba")
    assert np.array_equal(q.ravel(), q1) and np.array_equal(b.ravel(), b1)


def test_optional_output_rows_are_typed_as_arrays_or_none():
    """The classification kernels take their gradient row as _row(grad, r) and a chunk of
    an output as _sl(a, lo, hi).  Typed Optional(array) (as @jit functions with an `if a is
    None` they were), every loop writing through them tested the optional at run time and
    LLVM vectorized none of them (cross_entropy_prob 1024x32000 ran at 1.9x C's time):
    they must come out as a plain array for an array and as None for None."""
    from numba import njit, types

    from fastloss.backend.numba import classification as K

    row = njit(lambda a: K._row(a, 1))
    sl = njit(lambda a: K._sl(a, 1, 3))
    a = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.testing.assert_array_equal(row(a), a[1])
    np.testing.assert_array_equal(sl(a), a[1:3])
    assert row(None) is None and sl(None) is None
    for f in (row, sl):
        kinds = {type(sig.return_type) for sig in f.nopython_signatures}
        assert kinds == {types.Array, types.NoneType}, (f, f.nopython_signatures)
