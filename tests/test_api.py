"""Backend selection, threads, concurrency from Python threads, the command line."""
import os
import subprocess
import sys
import tempfile
import threading

import numpy as np
import pytest

import fastloss
from fastloss import optim


def test_backends_and_default():
    assert fastloss.backends() == ["c", "numba", "numpy"]
    assert fastloss.get_backend() in fastloss.backends()
    with pytest.raises(ValueError, match="backend.*'cuda'"):
        fastloss.set_backend("cuda")
    with pytest.raises(ValueError, match="backend"):
        fastloss.mse(np.ones(3), np.ones(3), backend="fortran")
    old = fastloss.get_backend()
    try:
        fastloss.set_backend("numba")
        assert fastloss.get_backend() == "numba"
        l_default = fastloss.mse(np.arange(5.0), np.zeros(5))[0]
        assert l_default == fastloss.mse(np.arange(5.0), np.zeros(5), backend="numba")[0]
    finally:
        fastloss.set_backend(old)


# Subprocesses run outside the checkout: from its root, `python -c`/`-m` would import the
# source tree's fastloss/ (no compiled extension) instead of the installed package.
_OUTSIDE = tempfile.gettempdir()


def _python(code, **env):
    e = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, cwd=_OUTSIDE)


def test_environment_variable_picks_backend():
    r = _python("import fastloss; print(fastloss.get_backend())", FASTLOSS_BACKEND="numpy")
    assert r.returncode == 0 and r.stdout.strip() == "numpy", r.stderr
    r = _python("import fastloss; fastloss.get_backend()", FASTLOSS_BACKEND="bogus")
    assert r.returncode != 0 and "FASTLOSS_BACKEND" in r.stderr


def test_import_does_not_load_numba():
    r = _python("import sys, fastloss; fastloss.mse([1.0], [2.0]); print('numba' in sys.modules)")
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr


def test_threads():
    n0 = fastloss.get_num_threads()
    assert n0 == len(os.sched_getaffinity(0))
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError, match="n must be"):
            fastloss.set_num_threads(bad)
    p = np.random.default_rng(0).standard_normal(300_000).astype(np.float32)
    t = np.zeros_like(p)
    try:
        results = {}
        for nt in (1, 2):
            fastloss.set_num_threads(nt)
            assert fastloss.get_num_threads() == nt
            for b in ("c", "numba"):
                results[nt, b] = fastloss.mse(p, t, backend=b)
        for b in ("c", "numba"):  # thread count changes the summation order only
            np.testing.assert_allclose(results[1, b][0], results[2, b][0], rtol=1e-12)
            np.testing.assert_array_equal(results[1, b][1], results[2, b][1])
    finally:
        fastloss.set_num_threads(n0)


def test_threads_reach_the_fast_path_before_any_backend_module_loads():
    """The fast path calls the C kernels without importing the "c" backend module: the
    library's count must follow set_num_threads all the same (it did not: 2 threads ran)."""
    code = ("import os, fastloss; from fastloss._fastloss_c import lib; "
            "import numpy as np; x = np.ones(4, np.float32); "
            "a = lib.fl_get_num_threads(); fastloss.set_num_threads(1); fastloss.mse(x, x); "
            "b = lib.fl_get_num_threads(); fastloss.set_num_threads(3); "
            "print(a == len(os.sched_getaffinity(0)), b, lib.fl_get_num_threads())")
    r = _python(code)
    assert r.returncode == 0 and r.stdout.split() == ["True", "1", "3"], (r.stdout, r.stderr)


@pytest.mark.parametrize("backend", ["c", "numba"])
def test_concurrent_calls_from_8_threads(backend):
    """Large inputs (the parallel path) from 8 Python threads at once: correct results, no
    abort (numba's workqueue layer would abort here; fastloss selects a thread-safe one)."""
    rng = np.random.default_rng(0)
    n = 200_003
    work = []
    for i in range(8):
        p = rng.standard_normal(n).astype(np.float32)
        t = rng.standard_normal(n).astype(np.float32)
        work.append((p, t, fastloss.huber(p, t, delta=0.5, backend=backend)))
    params = [rng.standard_normal(n) for _ in range(8)]
    grads = [rng.standard_normal(n) for _ in range(8)]
    expect = []
    for p, g in zip(params, grads):
        q, b = p.copy(), np.zeros_like(p)
        for s in range(1, 6):
            optim.sgd_(q, g, b, step=s, lr=0.1, momentum=0.9, backend=backend)
        expect.append(q)
    errors = []

    def worker(i):
        try:
            p, t, (el, eg) = work[i]
            for _ in range(10):
                l, g = fastloss.huber(p, t, delta=0.5, backend=backend)
                assert l == el and np.array_equal(g, eg)
            q, b = params[i].copy(), np.zeros(n)
            for s in range(1, 6):
                optim.sgd_(q, grads[i], b, step=s, lr=0.1, momentum=0.9, backend=backend)
            assert np.array_equal(q, expect[i])
        except Exception as e:  # collected and re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "fastloss", *args], capture_output=True, text=True,
                          cwd=_OUTSIDE)


def test_cli_info():
    r = _cli("info")
    assert r.returncode == 0, r.stderr
    assert "simd path" in r.stdout and "threading layer" in r.stdout and "threads" in r.stdout


def test_cli_check_passes():
    r = _cli("check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FAIL" not in r.stdout.replace("0 FAIL", "")
    assert "mse" in r.stdout and "sgd" in r.stdout


def test_cli_bench_quick_prints_table():
    r = _cli("bench", "--quick")
    assert r.returncode == 0, r.stderr
    assert "x torch" in r.stdout and "GB/s" in r.stdout
    for kernel in ("mse", "huber", "sgd"):
        assert kernel in r.stdout
    assert "[1/" in r.stderr  # progress


def test_cli_usage_error():
    r = _cli("frobnicate")
    assert r.returncode == 2


def _unpickled(a):
    """a copy whose dtype equals a's but is not numpy's singleton dtype object (as after
    pickle, multiprocessing, joblib)."""
    import pickle
    b = pickle.loads(pickle.dumps(a))
    assert b.dtype == a.dtype and b.dtype is not a.dtype
    return b


@pytest.mark.parametrize("backend", ["c", "numba", "numpy"])
def test_float32_with_an_equal_but_distinct_dtype_object(backend):
    """The C backend chose its kernel by `dtype is float32`: an unpickled float32 array ran the
    float64 kernel over twice its bytes.  Every dispatch point, on the checked path: the same
    bits as with ordinary arrays."""
    rng = np.random.default_rng(3)
    n = 1031
    f32 = lambda: rng.standard_normal(n).astype(np.float32)  # noqa: E731
    p0, g0, m0, v0 = f32(), f32(), np.abs(f32()), np.abs(f32())
    calls = {
        "sgd_": lambda p, g, m, v: optim.sgd_(p, g, m, step=2, lr=0.1, momentum=0.9, backend=backend),
        "adam_": lambda p, g, m, v: optim.adam_(p, g, m, v, step=3, lr=0.01, backend=backend),
        "adagrad_": lambda p, g, m, v: optim.adagrad_(p, g, v, step=3, lr=0.1, backend=backend),
        "rmsprop_": lambda p, g, m, v: optim.rmsprop_(p, g, v, m, step=3, lr=0.01, momentum=0.5,
                                                      backend=backend),
        "clip_grad_norm_": lambda p, g, m, v: fastloss.clip_grad_norm_([g, p], 1.0, backend=backend),
        "mse": lambda p, g, m, v: fastloss.mse(p, g, out=m, backend=backend),
        "smooth_l1": lambda p, g, m, v: fastloss.smooth_l1(p, g, beta=0.5, out=m, backend=backend),
        "bce_logits": lambda p, g, m, v: fastloss.binary_cross_entropy_with_logits(p, np.abs(g) / 5, out=m,
                                                                                    backend=backend),
    }
    for name, call in calls.items():
        want = [a.copy() for a in (p0, g0, m0, v0)]
        with fastloss._fast.checked_only():
            rw = call(*want)
            got = [_unpickled(a) for a in (p0, g0, m0, v0)]
            rg = call(*got)
        for w, g in zip(want, got):
            assert w.tobytes() == g.tobytes(), name
        rw = rw if isinstance(rw, tuple) else (rw,)
        rg = rg if isinstance(rg, tuple) else (rg,)
        for a, b in zip(rw, rg):
            if a is not None:
                assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), name
    g = _unpickled(np.full(8, 3.0, np.float32))
    norm, _ = fastloss.clip_grad_norm([g], 1.0, backend=backend)
    assert norm == pytest.approx(np.sqrt(8 * 9.0), rel=1e-6)


def test_set_num_threads_range():
    """At most the C driver's 1024 (its per-thread partial sums); a refused value changes
    nothing."""
    before = fastloss.get_num_threads()
    for bad in (0, -1, 1025, 2**31, 2.0, True):
        with pytest.raises(ValueError, match="set_num_threads"):
            fastloss.set_num_threads(bad)
        assert fastloss.get_num_threads() == before


def test_c_abi_refuses_zero_classes():
    """fl_cross_entropy / _prob / fl_multi_margin with c < 1 return NaN and write nothing
    (they divided by c before any size check: SIGFPE)."""
    from fastloss.backend.c._lib import ffi, lib
    x, q, g = np.ones(4, np.float32), np.ones(4, np.float32), np.full(4, 7.0, np.float32)
    t = np.zeros(4, np.int64)
    fb = ffi.from_buffer
    for n in (0, 4):
        assert np.isnan(lib.fl_cross_entropy_f32(fb("float[]", g), ffi.NULL, fb("float[]", x),
                                                 fb("int64_t[]", t), ffi.NULL, n, 0, 1, -100, 0.0, 2))
        assert np.isnan(lib.fl_cross_entropy_prob_f32(fb("float[]", g), ffi.NULL, fb("float[]", x),
                                                      fb("float[]", q), ffi.NULL, n, 0, 1, 0.0, 2))
        assert np.isnan(lib.fl_multi_margin_f32(fb("float[]", g), ffi.NULL, fb("float[]", x),
                                                fb("int64_t[]", t), ffi.NULL, n, 0, 1, 1.0, 2))
    assert (g == 7).all()
