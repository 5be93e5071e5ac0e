"""The C kernels' fork-join (csrc/pool.c): helper threads that take one range each.

Every threaded call goes through it, so the rest of the suite checks its results; these
tests check what is particular to it: the same bits as the OpenMP team it replaces
(FASTLOSS_POOL=0 forces that path), concurrent callers (one gets the pool, the others an
OpenMP team), a fork()ed child (the helpers are not copied), more threads than CPUs (nobody
spins; nor with OMP_WAIT_POLICY=passive) and unloading the library (the helpers are stopped
first).  Each runs in a child
process with a timeout: a lost wake-up shows as a hang, not as a wrong number.
"""
import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest

from fastloss import _fastloss_c

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the pool is Linux-only (futex)")

TIMEOUT = 120

# Calls that take the threaded driver on 2+ threads, one per grain family: the streaming
# losses, the sqrt optimizers, cross-entropy and multi_margin.  Prints a digest of every
# output's bits for each thread count.
DIGEST = textwrap.dedent('''
    import hashlib, sys
    import numpy as np
    import fastloss, fastloss.optim
    rng = np.random.default_rng(7)
    h = {}
    for nt in (2, 3, 4):
        fastloss.set_num_threads(nt)
        d = hashlib.sha256()
        for n in (40000, 100003):
            p = rng.standard_normal(n).astype(np.float32)
            t = rng.standard_normal(n).astype(np.float32)
            g = np.empty_like(p)
            d.update(np.float64(fastloss.mse(p, t, out=g)[0]).tobytes() + g.tobytes())
            d.update(np.float64(fastloss.huber(p, t, out=g)[0]).tobytes() + g.tobytes())
            w, m, v = p.copy(), np.zeros_like(p), np.zeros_like(p)
            for step in range(1, 4):
                fastloss.optim.adam_(w, t, m, v, step=step, lr=1e-2)
            d.update(w.tobytes() + m.tobytes() + v.tobytes())
        for rows, c in ((1000, 7), (4099, 33), (700, 1000)):
            x = rng.standard_normal((rows, c))
            y = rng.integers(0, c, rows)
            g = np.empty_like(x)
            d.update(np.float64(fastloss.cross_entropy(x, y, out=g)[0]).tobytes() + g.tobytes())
            d.update(np.float64(fastloss.multi_margin(x, y, out=g)[0]).tobytes() + g.tobytes())
        h[nt] = d.hexdigest()
    print(h)
''')


# Every child checks that it runs the C kernels: started from a source checkout, `python -c`
# would import the checkout's fastloss/ (no compiled C backend: the Numba default).
PRELUDE = textwrap.dedent('''
    import fastloss
    assert fastloss.get_backend() == "c", fastloss.__file__
''')


def _run(code, env_extra=None, timeout=TIMEOUT):
    env = dict(os.environ, **(env_extra or {}))
    with tempfile.TemporaryDirectory() as cwd:   # not the checkout: see PRELUDE
        r = subprocess.run([sys.executable, "-c", PRELUDE + code], capture_output=True, text=True,
                           timeout=timeout, env=env, cwd=cwd)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.strip()


def test_pool_gives_the_openmp_bits():
    """Each thread count gives the same bits with the pool as with an OpenMP team."""
    with_pool = _run(DIGEST)
    with_omp = _run(DIGEST, {"FASTLOSS_POOL": "0"})
    assert with_pool == with_omp
    # helpers that never spin (sleep on the futex between jobs, the caller yields)
    assert _run(DIGEST, {"OMP_WAIT_POLICY": "passive"}) == with_pool
    assert len(set(eval(with_pool).values())) > 1, "the thread counts should differ in their sums' bits"


# The optimizers from FL_DYN_MIN (2^19) elements: threads take 32768-element blocks in turn
# (fl_parallel_for), so which thread updates an element varies from call to call.  Their
# bits depend on the elements alone: 1 thread, 2-4 threads, the pool and the OpenMP team
# (schedule(dynamic)) and several callers at once must all agree.
BLOCKS = textwrap.dedent('''
    import hashlib, threading
    import numpy as np
    import fastloss, fastloss.optim as O
    from fastloss._fastloss_c import ffi, lib
    rng = np.random.default_rng(11)
    n = (1 << 20) + 12345           # 32 whole blocks and a partial one
    p0 = rng.standard_normal(n).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    def run():
        d = hashlib.sha256()
        w, m, v, vm = p0.copy(), np.zeros(n, np.float32), np.zeros(n, np.float32), np.zeros(n, np.float32)
        for step in (1, 2, 3):
            O.adamw_(w, g, m, v, vm, step=step, lr=1e-2, amsgrad=True)
        d.update(w.tobytes() + m.tobytes() + v.tobytes() + vm.tobytes())
        w, b = p0.copy(), np.zeros(n, np.float32)
        for step in (1, 2):
            O.sgd_(w, g, b, step=step, lr=0.1, momentum=0.9, nesterov=True)
        d.update(w.tobytes() + b.tobytes())
        w, s = p0.copy(), np.zeros(n, np.float32)
        O.adagrad_(w, g, s, step=1, lr=0.1)
        d.update(w.tobytes() + s.tobytes())
        w, sq, mb, ga = p0.copy(), np.zeros(n, np.float32), np.zeros(n, np.float32), np.zeros(n, np.float32)
        O.rmsprop_(w, g, sq, mb, ga, step=1, lr=1e-2, momentum=0.9, centered=True)
        d.update(w.tobytes() + sq.tobytes() + mb.tobytes() + ga.tobytes())
        w = p0.copy()             # clip_grad_norm_'s scaling pass (its norm is a sum: not here)
        lib.fl_scale_f32(ffi.cast("float *", w.ctypes.data), n, 0.37)
        d.update(w.tobytes())
        return d.hexdigest()
    out = set()
    for nt in (1, 2, 3, 4):
        fastloss.set_num_threads(nt)
        out.add(run())
    fastloss.set_num_threads(2)
    res = []
    th = [threading.Thread(target=lambda: res.append(run())) for _ in range(3)]
    for x in th: x.start()
    for x in th: x.join()
    out.update(res)
    print(len(out), out.pop())
''')


def test_block_scheduled_optimizers_same_bits_everywhere():
    with_pool = _run(BLOCKS)
    assert with_pool.startswith("1 "), with_pool
    assert _run(BLOCKS, {"FASTLOSS_POOL": "0"}) == with_pool


def test_concurrent_callers():
    """Python threads calling at once (the GIL is released above 32768 elements): each call
    gets the pool or, while another holds it, an OpenMP team; every result is the one a lone
    call gives."""
    code = textwrap.dedent('''
        import threading
        import numpy as np
        import fastloss
        fastloss.set_num_threads(2)
        rng = np.random.default_rng(1)
        n = 200000
        ps = [rng.standard_normal(n).astype(np.float32) for _ in range(4)]
        t = rng.standard_normal(n).astype(np.float32)
        want = []
        for p in ps:
            g = np.empty_like(p)
            want.append((float(fastloss.mse(p, t, out=g)[0]), g.copy()))
        bad = []
        def work(i):
            g = np.empty_like(ps[i])
            for _ in range(300):
                loss = float(fastloss.mse(ps[i], t, out=g)[0])
                if loss != want[i][0] or not np.array_equal(g, want[i][1]):
                    bad.append(i)
                    return
        th = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for x in th: x.start()
        for x in th: x.join()
        print("bad", bad)
    ''')
    assert _run(code) == "bad []"


def test_fork_child_starts_its_own_helpers():
    code = textwrap.dedent('''
        import os
        import numpy as np
        import fastloss
        fastloss.set_num_threads(2)
        p = np.linspace(-1, 1, 100000, dtype=np.float32)
        t = np.zeros_like(p)
        g = np.empty_like(p)
        want = float(fastloss.mse(p, t, out=g)[0])      # the parent's helpers are running
        pid = os.fork()
        if pid == 0:
            ok = all(float(fastloss.mse(p, t, out=g)[0]) == want for _ in range(100))
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), float(fastloss.mse(p, t, out=g)[0]) == want)
    ''')
    assert _run(code) == "0 True"


def test_more_threads_than_cpus():
    """16 threads on this machine's CPUs: the helpers and the caller yield instead of
    spinning, and the calls still finish and agree with the OpenMP team."""
    code = textwrap.dedent('''
        import numpy as np
        import fastloss
        fastloss.set_num_threads(16)
        rng = np.random.default_rng(3)
        p = rng.standard_normal(1 << 20).astype(np.float32)
        t = rng.standard_normal(1 << 20).astype(np.float32)
        g = np.empty_like(p)
        out = [float(fastloss.mse(p, t, out=g)[0]) for _ in range(200)]
        print(len(set(out)), repr(out[0]), g[:: 1 << 16].tobytes().hex())
    ''')
    assert _run(code) == _run(code, {"FASTLOSS_POOL": "0"})


def test_unloading_the_library_stops_the_helpers():
    """dlclose() of the kernels' shared object with helpers running: they are joined first,
    so none is left executing unmapped code (which would crash the process below)."""
    code = textwrap.dedent('''
        import ctypes, _ctypes, sys, time
        import numpy as np
        lib = ctypes.CDLL(sys.argv[1])
        lib.fl_set_num_threads(2)
        lib.fl_mse_f32.restype = ctypes.c_double
        lib.fl_mse_f32.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int64, ctypes.c_float]
        n = 1 << 20
        p = np.ones(n, np.float32); t = np.zeros(n, np.float32); g = np.empty(n, np.float32)
        s = lib.fl_mse_f32(g.ctypes.data, None, p.ctypes.data, t.ctypes.data, n, 1.0)
        _ctypes.dlclose(lib._handle)
        time.sleep(0.5)                 # a helper still spinning in the unmapped code would fault
        with open("/proc/self/maps") as f:
            mapped = sys.argv[1] in f.read()
        print(s, mapped)
    ''')
    so = os.path.realpath(_fastloss_c.__file__)
    with tempfile.TemporaryDirectory() as cwd:
        r = subprocess.run([sys.executable, "-c", code, so], capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == f"{float(1 << 20)} False", "the library should have been unmapped"
