"""`python -m fastloss bench`: every kernel beside its peers and its memory roofline.

For each (kernel, size) one table: fastloss ``c`` and ``numba``, NumPy as textbooks write it
(float32 expressions with temporaries: a peer, not the float64 reference backend), PyTorch,
optax/JAX and DeepSpeed (each only when importable), and the roofline: a loop that does only
the kernel's loads and stores (``bench/roofline.c``), compiled like the library, built here
with cffi into a cache directory and timed inside C.  Columns: time per call, bytes moved
per second, fraction of the roofline (roofline time / time); under them, how many times
faster fastloss c and numba are than each peer.  After the tables: the time per call from
Python at n = 1e3 (validation included), import and first-call times, and every performance
target of the issues, met or missed.

Timing (see best_time, measure_case, run): the minimum over many short batches, every case's
rows timed round-robin, the whole list in two passes, each measurement started when no other
process is runnable.  The machine is shared: compare ratios within one run, not absolute
times across runs.  ``bench/bench_kernels.py`` runs the same cases under pytest-benchmark.

Cold caches (``--cold``; see Evictor, cold_sample, measure_case_cold): every timed call of
every row, the roofline's too, follows a write of a buffer of 4x the L3, and is timed alone;
a row's time is the median of its samples, the calls disturbed by another process left out.
Warm is the default and the demanding regime; cold is the one an optimizer meets in training,
where the forward and backward passes evict its state between steps.
"""
import csv
import datetime
import functools
import glob
import hashlib
import importlib.util
import json
import math
import os
import platform
import statistics
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

import numpy as np

from . import _config
from ._registry import ALL_LOSSES, OPTIMIZERS, REGRESSION

SIZES = (1_000, 100_000, 1_000_000, 10_000_000)
QUICK_SIZES = (1_000, 100_000)
CE_SHAPES = ((256, 10), (4096, 1000), (1024, 32000))
QUICK_CE_SHAPES = ((256, 10), (1024, 1000))
FLAT_SPLIT = (200, 5000)          # Adam over 200 tensors of 5000 in one FlatParams
CE_KERNELS = ("cross_entropy", "cross_entropy_nograd", "cross_entropy_prob")
# the per-thread grain of csrc/fl_internal.h (FL_GRAIN_STREAM): below 2x this, one thread
GRAIN = 8192
LR = 1e-6                          # optimizer steps barely move the parameters: any number of calls stays finite
OPTIM_OPTIONS = {"sgd": {"momentum": 0.9}}   # the configuration each optimizer is timed in

IMPL_LABELS = {
    "c": "fastloss c",
    "numba": "fastloss numba",
    "c-1tensor": "fastloss c, one 1e6 tensor",
    "reference": "fastloss numpy (f64 reference)",
    "textbook": "NumPy textbook (f32)",
    "torch": "PyTorch",
    "optax": "optax/JAX jit",
    "deepspeed": "DeepSpeed CPU",
    "roofline": "roofline",
}


BATCH = 50e-6    # seconds: a timed batch is at least this long (timer overhead < 0.5%)


def best_time(batch, min_time=0.05, repeats=5):
    """Seconds per call, the minimum over many short batches.  `batch(k)` makes k calls and
    returns the seconds they took.  Batches hold enough calls to last >= BATCH; they are
    repeated for >= repeats x min_time in total and at least `repeats` times.  On a shared
    machine the minimum of short batches is the time of an undisturbed call: a batch that a
    descheduled thread stalls (an OpenMP barrier waiting for a time slice) is simply lost."""
    batch(1)                                   # warm up: compile, first touch, caches
    number = 1
    while True:
        dt = batch(number)
        if dt >= BATCH or number >= 1 << 20:
            break
        number *= 2 if dt > BATCH / 8 else 8
    best, total, count = dt / number, dt, 1
    while count < repeats or total < repeats * min_time:
        dt = batch(number)
        best, total, count = min(best, dt / number), total + dt, count + 1
        if count >= 100_000:
            break
    return best


def time_call(f, min_time=0.05, repeats=5):
    """Seconds per call of f() from Python: best_time over loops of calls."""
    def batch(k):
        t0 = time.perf_counter()
        for _ in range(k):
            f()
        return time.perf_counter() - t0
    return best_time(batch, min_time, repeats)


# ---- the roofline: bench/roofline.c, built at bench time ------------------------------------

# csrc/build_cffi.py's flags, so the copy loop is compiled as the kernels are
ROOFLINE_FLAGS = ["-O3", "-std=c11", "-fopenmp", "-mprefer-vector-width=512", "-fno-math-errno",
                  "-fno-trapping-math", "-Wall", "-Wno-unknown-pragmas"]
_ROOFLINE_CDEF = """
int rl_supported(int nin, int nout);
double rl_pass(int nin, int nout, float **in, float **out, int64_t n, int threads);
double rl_time(int nin, int nout, float **in, float **out, int64_t n, int threads, int64_t reps);
double rl_evict(float *buf, int64_t n, int threads);
double rl_seconds(int nin, int nout, float **in, float **out, int64_t n, int threads);
"""


@dataclass(frozen=True)
class Pattern:
    """A kernel's memory access per element: `nin` float arrays read, `nout` written; the
    outputs are the first inputs (param, then state) when `inplace`, else fresh arrays."""
    nin: int
    nout: int
    inplace: bool

    @property
    def streams(self):
        return self.nin + self.nout

    def __str__(self):
        if self.nout == 0:
            return f"{self.streams} streams: read {self.nin}"
        where = "in place" if self.inplace else "to a separate array"
        return f"{self.streams} streams: read {self.nin}, write {self.nout} {where}"


def roofline_source():
    """Path of bench/roofline.c: $FASTLOSS_ROOFLINE_C, else the bench/ beside this package
    (a source checkout), else ./bench; None when not found."""
    candidates = [os.environ.get("FASTLOSS_ROOFLINE_C"),
                  os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "roofline.c"),
                  os.path.join(os.getcwd(), "bench", "roofline.c")]
    for c in candidates:
        if c and os.path.isfile(c):
            return c
    return None


def _cache_dir():
    base = os.environ.get("FASTLOSS_BENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "fastloss-bench")
    try:
        os.makedirs(base, exist_ok=True)
        return base
    except OSError:
        base = os.path.join(tempfile.gettempdir(), "fastloss-bench")
        os.makedirs(base, exist_ok=True)
        return base


def _build_roofline(src_path):
    """Compile roofline.c with cffi into the cache (once per source, flags and Python) and
    load it.  Returns (ffi, lib)."""
    import cffi
    with open(src_path) as f:
        src = f.read()
    # the kernels' fork-join is compiled in (csrc/ beside bench/), so the copy loop forks and
    # joins as the kernels do
    csrc = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(src_path))), "csrc")
    shared = [os.path.join(csrc, f) for f in ("pool.c", "fl_internal.h", "fastloss.h")]
    missing = [p for p in shared if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"the roofline needs {', '.join(missing)} (a source checkout's csrc/ beside bench/)")
    texts = [src]
    for p in shared:
        with open(p) as f:
            texts.append(f.read())
    key = hashlib.sha256("\0".join([*texts, _ROOFLINE_CDEF, *ROOFLINE_FLAGS, sys.version, platform.machine()])
                         .encode()).hexdigest()[:16]
    cache = _cache_dir()
    target = os.path.join(cache, key)
    built = glob.glob(os.path.join(target, "_fl_roofline*"))
    if not built:
        tmp = tempfile.mkdtemp(dir=cache)
        try:
            ffi = cffi.FFI()
            ffi.cdef(_ROOFLINE_CDEF)
            ffi.set_source("_fl_roofline", src, sources=[shared[0]], include_dirs=[csrc],
                           extra_compile_args=ROOFLINE_FLAGS, extra_link_args=["-fopenmp"])
            so = ffi.compile(tmpdir=tmp)
            os.makedirs(target, exist_ok=True)
            final = os.path.join(target, os.path.basename(so))
            os.replace(so, final)            # atomic: a concurrent build loads one or the other
            built = [final]
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    spec = importlib.util.spec_from_file_location("_fl_roofline", built[0])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.ffi, mod.lib


class Roofline:
    """The copy loop of bench/roofline.c for any Pattern, on float32 arrays of n elements."""

    def __init__(self, src_path=None):
        src_path = src_path or roofline_source()
        if src_path is None:
            raise FileNotFoundError("bench/roofline.c not found (run from a source checkout or set "
                                    "FASTLOSS_ROOFLINE_C)")
        self.ffi, self.lib = _build_roofline(src_path)

    def _pointers(self, pattern, n):
        # values in [0.5, 1): every output is a mean of inputs, so they stay there
        rng = np.random.default_rng(1)
        ins = [rng.uniform(0.5, 1.0, n).astype(np.float32) for _ in range(pattern.nin)]
        outs = ins[:pattern.nout] if pattern.inplace else [np.empty(n, np.float32) for _ in range(pattern.nout)]
        cast = lambda a: self.ffi.cast("float *", a.ctypes.data)
        pin = self.ffi.new("float *[]", [cast(a) for a in ins])
        pout = self.ffi.new("float *[]", [cast(a) for a in outs] or 1)
        return (ins, outs), pin, pout       # the arrays are returned to keep them alive

    def threads_for(self, n, threads=None):
        """The library's policy (csrc/runtime.c): one thread below 2 x GRAIN elements."""
        nt = threads or _config.get_num_threads()
        return max(1, min(nt, n // GRAIN))

    def call(self, pattern, n, threads=None):
        """A no-argument callable running one pass (for pytest-benchmark's roofline row)."""
        if not self.lib.rl_supported(pattern.nin, pattern.nout):
            raise ValueError(f"roofline.c has no loop for {pattern}")
        keep, pin, pout = self._pointers(pattern, n)
        nt = self.threads_for(n, threads)
        lib = self.lib
        return lambda keep=keep: lib.rl_pass(pattern.nin, pattern.nout, pin, pout, n, nt)

    def batches(self, pattern, n, threads=None):
        """{threads: batch(reps) -> seconds for reps passes, timed in C} for one thread and
        `threads` (default: the library's thread count); the arrays live as long as the dict."""
        if not self.lib.rl_supported(pattern.nin, pattern.nout):
            raise ValueError(f"roofline.c has no loop for {pattern}")
        keep, pin, pout = self._pointers(pattern, n)
        return {t: (lambda reps, t=t, keep=keep: self.lib.rl_time(pattern.nin, pattern.nout, pin, pout, n, t, reps))
                for t in self._thread_counts(n, threads)}

    @staticmethod
    def _thread_counts(n, threads=None):
        """1 and `threads` (default: the library's thread count), those that get >= 16 elements each."""
        nt = threads or _config.get_num_threads()
        return [t for t in sorted({1, nt}) if t == 1 or n >= 16 * t]

    def seconds(self, pattern, n, threads=None, min_time=0.05, repeats=5):
        """(seconds per pass, threads): the faster of one thread and `threads`, each a
        best_time of batches of passes timed inside C."""
        return min((best_time(b, min_time, repeats), t) for t, b in self.batches(pattern, n, threads).items())

    def timed_passes(self, pattern, n, threads=None):
        """{threads: run() -> seconds of one pass, timed inside C (rl_seconds)} for one thread
        and `threads`: the roofline's cold samples, each run right after an eviction."""
        if not self.lib.rl_supported(pattern.nin, pattern.nout):
            raise ValueError(f"roofline.c has no loop for {pattern}")
        keep, pin, pout = self._pointers(pattern, n)
        return {t: (lambda t=t, keep=keep: self.lib.rl_seconds(pattern.nin, pattern.nout, pin, pout, n, t))
                for t in self._thread_counts(n, threads)}

    def cold_seconds(self, pattern, n, evictor, threads=None, samples=30):
        """(seconds per pass, threads): the lower of the medians of `samples` cold passes
        (cold_sample after `evictor`) on one thread and on `threads`."""
        waits = RunQueueWait()
        return min((_stats([cold_sample(run, evictor, waits)[::2] for _ in range(samples)])["s"], t)
                   for t, run in self.timed_passes(pattern, n, threads).items())


@functools.lru_cache(maxsize=None)
def load_roofline(src_path=None):
    """The Roofline built from `src_path` (default: roofline_source()), built and loaded once."""
    return Roofline(src_path)


def roofline():
    """load_roofline(), or None (the reason in `roofline_error`) when it cannot be built."""
    global roofline_error
    try:
        return load_roofline()
    except Exception as e:   # no source, no compiler: the suite runs without the roofline row
        roofline_error = f"{type(e).__name__}: {e}"
        return None


roofline_error = None


# ---- cold caches: evict everything before each timed call ----------------------------------------

def largest_cache_bytes():
    """The largest CPU cache the OS reports (Linux sysfs: the L3, 32 MiB here), or 32 MiB."""
    best = 0
    for path in glob.glob("/sys/devices/system/cpu/cpu*/cache/index*/size"):
        try:
            with open(path) as f:
                text = f.read().strip().upper()
            mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
            best = max(best, int(text.rstrip("KMG")) * mult)
        except (OSError, ValueError):
            continue
    return best or 32 << 20


def default_evict_bytes():
    """4x the largest cache, at least 128 MiB: Zen's L3 is a victim cache of the L2s and not
    strictly LRU, so a buffer of one L3 size leaves part of the old lines in place (if each
    new line replaced a random way, ~exp(-k) of them would survive k cache sizes of writes:
    4x, ~2%).  Measured here (Adam n=1e5 and 1e6, 16 to 512 MiB): the roofline is as cold
    from 16 MiB on, but a call from Python keeps slowing down up to 128 MiB (the interpreter's
    and the library's own lines go last) and not beyond."""
    return max(128 << 20, 4 * largest_cache_bytes())


def _cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class Evictor:
    """evict(): write a float32 buffer of `nbytes` (default_evict_bytes()) with one
    read-modify-write pass on every CPU this process may run on, so no cache (each core's
    L2, the shared L3) holds anything of a kernel's arrays, whichever library allocated them
    (NumPy, torch, JAX: a cache is evicted by address, not by owner).  Done in C by
    bench/roofline.c's rl_evict (why it writes: see there); NumPy on one thread when the
    roofline cannot be built."""

    def __init__(self, nbytes=None, threads=None):
        self.nbytes = int(nbytes or default_evict_bytes()) // 64 * 64
        self.buf = np.ones(self.nbytes // 4, np.float32)   # written now: real pages, not the zero page
        rl = roofline()
        if rl is not None:
            self.threads = threads or _cpus()
            ptr, lib, n, t = rl.ffi.cast("float *", self.buf.ctypes.data), rl.lib, self.buf.size, self.threads
            self._evict = lambda: lib.rl_evict(ptr, n, t)
            self.how = "bench/roofline.c rl_evict"
        else:
            self.threads = 1
            buf = self.buf

            def evict():
                np.multiply(buf, np.float32(0.5), out=buf)
                np.add(buf, np.float32(1.0), out=buf)
            self._evict, self.how = evict, "NumPy (no roofline.c)"
        self._evict()                                        # page faults and thread start-up, once

    def __call__(self):
        self._evict()

    def describe(self):
        return (f"a read-modify-write pass over {self.nbytes / (1 << 20):.0f} MiB on {self.threads} "
                f"thread{'s' if self.threads > 1 else ''} ({self.how})")


class RunQueueWait:
    """total(): nanoseconds the threads of this process have spent runnable but waiting for a
    CPU (Linux schedstat: /proc/self/task/*/schedstat, second field), or None where that is
    not available.  The difference across a timed call says whether another process took a
    CPU from one of its threads (a 2-thread kernel whose second thread waits for a time
    slice takes milliseconds, not microseconds)."""

    def __init__(self):
        self.fds = {}
        self.ok = os.path.exists("/proc/self/task/%d/schedstat" % threading.get_native_id())

    def total(self):
        if not self.ok:
            return None
        try:
            tids = os.listdir("/proc/self/task")
        except OSError:
            return None
        for tid in tids:
            if tid not in self.fds:
                try:
                    self.fds[tid] = os.open(f"/proc/self/task/{tid}/schedstat", os.O_RDONLY)
                except OSError:
                    pass
        s = 0
        for tid, fd in list(self.fds.items()):
            try:
                s += int(os.pread(fd, 128, 0).split()[1])
            except (OSError, ValueError, IndexError):   # the thread has exited
                os.close(fd)
                del self.fds[tid]
        return s

    def close(self):
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}


COLD_RETRIES = 20     # a sample disturbed by another process is redone up to this many times


def _disturbed(waited_ns, seconds):
    """A call during which this process's threads waited for a CPU longer than 20 us + 2% of
    the call (a thread pool's wake-up waits a few us: that is part of any call)."""
    return waited_ns is not None and waited_ns > 20e3 + 0.02 * seconds * 1e9


def cold_sample(run, evictor, waits, retries=COLD_RETRIES, quiet=None):
    """(seconds, redone, clean): quiet.wait() (a Quiet, optional), evictor(), then run() ->
    seconds of one call; redone (up to `retries` times) while the call was disturbed
    (RunQueueWait `waits`); when every try was, the last is returned with clean False."""
    for attempt in range(retries + 1):
        if quiet:
            quiet.wait()
        evictor()
        w0 = waits.total()
        s = run()
        w1 = waits.total()
        if not _disturbed(None if w0 is None or w1 is None else w1 - w0, s):
            return s, attempt, True
    return s, attempt, False


# ---- NumPy as textbooks write it: a peer, not the library's float64 reference -----------------
# Plain float32 NumPy expressions, temporaries and all, the way a course or a blog post writes
# each loss and its gradient by hand.  (Python scalars are weak under NumPy 2: f32 stays f32.)

def _tb_mse(p, t):
    d = p - t
    return (d * d).mean(), 2 * d / d.size


def _tb_smooth_l2(p, t):
    d = p - t
    return 0.5 * (d * d).mean(), d / d.size


def _tb_mae(p, t):
    d = p - t
    return np.abs(d).mean(), np.sign(d) / d.size


def _tb_huber(p, t, delta=1.0):
    d = p - t
    a = np.abs(d)
    loss = np.where(a <= delta, 0.5 * d * d, delta * (a - 0.5 * delta)).mean()
    return loss, np.clip(d, -delta, delta) / d.size


def _tb_smooth_l1(p, t, beta=1.0):
    d = p - t
    a = np.abs(d)
    loss = np.where(a < beta, 0.5 * d * d / beta, a - 0.5 * beta).mean()
    return loss, np.where(a < beta, d / beta, np.sign(d)) / d.size


def _tb_bce(p, t):
    loss = -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean()
    return loss, (p - t) / (p * (1 - p)) / p.size


def _tb_bce_logits(x, t):
    loss = (np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))).mean()
    return loss, (1 / (1 + np.exp(-x)) - t) / x.size


def _tb_hinge(s, t, margin=1.0):
    m = margin - t * s
    return np.maximum(m, 0).mean(), np.where(m > 0, -t, 0) / s.size


def _tb_squared_hinge(s, t, margin=1.0):
    h = np.maximum(margin - t * s, 0)
    return (h * h).mean(), -2 * t * h / s.size


def _tb_multi_margin(x, y, p=1, margin=1.0):
    n, c = x.shape
    rows = np.arange(n)
    m = np.maximum(0, margin - x[rows, y][:, None] + x)
    m[rows, y] = 0
    loss = (m.sum(axis=1) / c).mean()
    g = (m > 0).astype(x.dtype) / c
    g[rows, y] = -g.sum(axis=1)
    return loss, g / n


def _tb_cross_entropy(x, y, grad=True):
    z = x - x.max(axis=1, keepdims=True)           # max-subtract: exp cannot overflow
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    rows = np.arange(x.shape[0])
    loss = -logp[rows, y].mean()
    if not grad:
        return loss
    g = np.exp(logp)
    g[rows, y] -= 1
    return loss, g / x.shape[0]


def _tb_cross_entropy_prob(x, q):
    z = x - x.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -(q * logp).sum(axis=1).mean(), (np.exp(logp) - q) / x.shape[0]


TEXTBOOK_LOSSES = {
    "mse": _tb_mse, "smooth_l2": _tb_smooth_l2, "mae": _tb_mae, "huber": _tb_huber,
    "smooth_l1": _tb_smooth_l1, "binary_cross_entropy": _tb_bce,
    "binary_cross_entropy_with_logits": _tb_bce_logits, "hinge": _tb_hinge,
    "squared_hinge": _tb_squared_hinge, "multi_margin": _tb_multi_margin,
    "cross_entropy": _tb_cross_entropy, "cross_entropy_prob": _tb_cross_entropy_prob,
}


def textbook_step(name, hyper):
    """step(p, g, state) as the textbook writes the update: new arrays for the state
    (kept in the dict `state`), `p -= ...` in place."""
    lr = hyper["lr"]
    if name == "sgd":
        mu = hyper.get("momentum", 0.0)

        def step(p, g, s):
            s["buf"] = mu * s.get("buf", 0) + g
            p -= lr * s["buf"]
    elif name in ("adam", "adamw"):
        b1, b2, eps, wd = 0.9, 0.999, 1e-8, hyper.get("weight_decay", 0.0)

        def step(p, g, s):
            t = s["t"] = s.get("t", 0) + 1
            if name == "adamw":
                p -= lr * wd * p
            s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
            s["v"] = b2 * s.get("v", 0) + (1 - b2) * g * g
            m_hat = s["m"] / (1 - b1 ** t)
            v_hat = s["v"] / (1 - b2 ** t)
            p -= lr * m_hat / (np.sqrt(v_hat) + eps)
    elif name == "adagrad":
        eps = 1e-10

        def step(p, g, s):
            s["sum"] = s.get("sum", 0) + g * g
            p -= lr * g / (np.sqrt(s["sum"]) + eps)
    elif name == "rmsprop":
        alpha, eps = 0.99, 1e-8

        def step(p, g, s):
            s["sq"] = alpha * s.get("sq", 0) + (1 - alpha) * g * g
            p -= lr * g / (np.sqrt(s["sq"]) + eps)
    else:
        raise KeyError(name)
    return step


# ---- peers: importable or not -------------------------------------------------------------------

def available_peers():
    """Which peer libraries are importable (checked without importing them)."""
    found = lambda m: importlib.util.find_spec(m) is not None
    return {"torch": found("torch"), "optax": found("jax") and found("optax"),
            "deepspeed": found("deepspeed") and found("torch")}


@functools.lru_cache(maxsize=None)
def _torch():
    import torch
    torch.set_num_threads(_config.get_num_threads())
    return torch


@functools.lru_cache(maxsize=None)
def _jax():
    import jax
    import jax.numpy as jnp
    import optax
    return jax, jnp, optax


@functools.lru_cache(maxsize=None)
def _deepspeed_ops():
    os.environ.setdefault("DS_ACCELERATOR", "cpu")   # no accelerator probe and warning
    _torch()
    from deepspeed.ops.adagrad import DeepSpeedCPUAdagrad
    from deepspeed.ops.adam import DeepSpeedCPUAdam
    return DeepSpeedCPUAdam, DeepSpeedCPUAdagrad


def _torch_loss(name, hyper):
    """fn(x, t) of the torch peer: F.*_loss where torch has one, else torch ops."""
    F = _torch().nn.functional
    if name == "mse":
        return F.mse_loss, "F.mse_loss"
    if name == "smooth_l2":
        return (lambda x, t: 0.5 * F.mse_loss(x, t)), "0.5*F.mse_loss"
    if name == "mae":
        return F.l1_loss, "F.l1_loss"
    if name == "huber":
        return (lambda x, t: F.huber_loss(x, t, delta=hyper["delta"])), "F.huber_loss"
    if name == "smooth_l1":
        return (lambda x, t: F.smooth_l1_loss(x, t, beta=hyper["beta"])), "F.smooth_l1_loss"
    if name == "binary_cross_entropy":
        return F.binary_cross_entropy, "F.binary_cross_entropy"
    if name == "binary_cross_entropy_with_logits":
        return F.binary_cross_entropy_with_logits, "F.binary_cross_entropy_with_logits"
    if name == "hinge":
        return (lambda s, t: (hyper["margin"] - t * s).clamp(min=0).mean()), "clamp(m-t*s).mean()"
    if name == "squared_hinge":
        return (lambda s, t: (hyper["margin"] - t * s).clamp(min=0).square().mean()), "clamp(m-t*s)^2.mean()"
    if name == "multi_margin":
        return (lambda x, y: F.multi_margin_loss(x, y, p=hyper["p"])), "F.multi_margin_loss"
    if name in ("cross_entropy", "cross_entropy_nograd", "cross_entropy_prob"):
        return F.cross_entropy, "F.cross_entropy"
    return None, None


def _optax_loss(name, hyper):
    """fn(x, t) -> scalar of the optax/JAX peer (optax's loss where it has one)."""
    jax, jnp, optax = _jax()
    if name == "mse":
        return (lambda x, t: optax.squared_error(x, t).mean()), "squared_error"
    if name == "smooth_l2":
        return (lambda x, t: optax.l2_loss(x, t).mean()), "l2_loss"
    if name == "mae":
        return (lambda x, t: jnp.abs(x - t).mean()), "jnp abs"
    if name == "huber":
        return (lambda x, t: optax.huber_loss(x, t, delta=hyper["delta"]).mean()), "huber_loss"
    if name == "smooth_l1":
        b = hyper["beta"]
        return (lambda x, t: optax.huber_loss(x, t, delta=b).mean() / b), "huber_loss/beta"
    if name == "binary_cross_entropy":
        return (lambda p, t: -(t * jnp.maximum(jnp.log(p), -100.0)
                               + (1 - t) * jnp.maximum(jnp.log1p(-p), -100.0)).mean()), "jnp log"
    if name == "binary_cross_entropy_with_logits":
        return (lambda x, t: optax.sigmoid_binary_cross_entropy(x, t).mean()), "sigmoid_binary_cross_entropy"
    if name == "hinge" and hyper["margin"] == 1.0:
        return (lambda s, t: optax.hinge_loss(s, t).mean()), "hinge_loss"
    if name == "squared_hinge":
        m = hyper["margin"]
        return (lambda s, t: jnp.square(jnp.maximum(m - t * s, 0)).mean()), "jnp"
    if name == "multi_margin" and hyper.get("p", 1) == 1:
        def mm(x, y):
            xy = jnp.take_along_axis(x, y[:, None], axis=1)
            m = jnp.maximum(0.0, 1.0 - xy + x)
            return ((m.sum(axis=1) - 1.0) / x.shape[1]).mean()   # minus the y term (margin 1)
        return mm, "jnp"
    if name in ("cross_entropy", "cross_entropy_nograd"):
        return (lambda x, y: optax.softmax_cross_entropy_with_integer_labels(x, y).mean()), \
            "softmax_cross_entropy_with_integer_labels"
    if name == "cross_entropy_prob":
        return (lambda x, q: optax.softmax_cross_entropy(x, q).mean()), "softmax_cross_entropy"
    return None, None


_TORCH_OPTIM = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "adagrad": "Adagrad", "rmsprop": "RMSprop"}
_TORCH_FUSED = ("sgd", "adam", "adamw")       # torch has fused=True on CPU for these; else foreach


def _torch_optimizer(name, tensors, hyper):
    torch = _torch()
    kw = {"lr": hyper["lr"]}
    for k in ("momentum", "weight_decay"):
        if k in hyper:
            kw[k] = hyper[k]
    kw["fused" if name in _TORCH_FUSED else "foreach"] = True
    opt = getattr(torch.optim, _TORCH_OPTIM[name])(tensors, **kw)
    return opt, f"optim.{_TORCH_OPTIM[name]}({'fused' if name in _TORCH_FUSED else 'foreach'}=True)"


def _optax_optimizer(name, hyper):
    optax = _jax()[2]
    lr = hyper["lr"]
    if name == "sgd":
        return optax.sgd(lr, momentum=hyper.get("momentum") or None), "optax.sgd"
    if name == "adam":
        return optax.adam(lr), "optax.adam"
    if name == "adamw":
        return optax.adamw(lr, weight_decay=hyper["weight_decay"]), "optax.adamw"
    if name == "adagrad":
        return optax.adagrad(lr), "optax.adagrad"
    if name == "rmsprop":
        return optax.rmsprop(lr), "optax.rmsprop"
    raise KeyError(name)


def _optax_step(name, hyper, params, grads):
    """A call doing one jitted optax update + apply_updates, params and state donated."""
    jax, jnp, optax = _jax()
    opt, label = _optax_optimizer(name, hyper)
    params = jax.tree_util.tree_map(lambda a: jnp.array(a), params)
    grads = jax.tree_util.tree_map(lambda a: jnp.array(a), grads)
    box = [params, opt.init(params)]

    @functools.partial(jax.jit, donate_argnums=(0, 2))
    def step(p, g, s):
        updates, s = opt.update(g, s, p)
        return optax.apply_updates(p, updates), s

    def call():
        box[0], box[1] = step(box[0], grads, box[1])
        jax.block_until_ready(box[0])
    return call, label + " (jit, donated)"


def _deepspeed_optimizer(name, tensors, hyper):
    adam, adagrad = _deepspeed_ops()
    if name in ("adam", "adamw"):
        return adam(tensors, lr=hyper["lr"], weight_decay=hyper.get("weight_decay", 0.0),
                    adamw_mode=(name == "adamw")), "DeepSpeedCPUAdam"
    if name == "adagrad":
        return adagrad(tensors, lr=hyper["lr"]), "DeepSpeedCPUAdagrad"
    return None, None


DEEPSPEED_KERNELS = ("adam", "adamw", "adagrad", "adam_flat")


# ---- the cases --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One (kernel, size): `family` is loss | ce | optim | flat; `size` is n, (N, C) or
    (tensors, each); `elements` the float elements per stream."""
    kernel: str
    family: str
    size: object
    elements: int
    pattern: Pattern

    @property
    def label(self):
        if isinstance(self.size, tuple):
            return f"{self.size[0]}x{self.size[1]}"
        return f"n={self.size:.0e}".replace("e+0", "e").replace("e+", "e")

    @property
    def group(self):
        return f"{self.kernel} {self.label}"

    @property
    def nbytes(self):
        """Bytes the kernel must move: streams x 4 x elements (cross-entropy's int64 targets,
        <= 8/C bytes per logit, are not counted)."""
        return self.pattern.streams * 4 * self.elements

    def impls(self, peers=None):
        """Names of the rows this case has here (without building anything)."""
        peers = available_peers() if peers is None else peers
        names = [b for b in ("c", "numba") if b in _config.backends()]
        if self.family == "flat":
            names.append("c-1tensor")
        if self.kernel in REGRESSION or self.kernel == "sgd":
            names.append("reference")          # issue 2's "x the NumPy reference" targets
        names.append("textbook")
        if peers.get("torch"):
            names.append("torch")
        if peers.get("optax") and (self.family != "loss" or _optax_supported(self.kernel)):
            names.append("optax")
        if peers.get("deepspeed") and self.kernel in DEEPSPEED_KERNELS:
            names.append("deepspeed")
        return names


def _optax_supported(kernel):
    hyper = ALL_LOSSES[kernel].variants[0]
    return not (kernel == "hinge" and hyper.get("margin") != 1.0)


def _loss_pattern(kernel, grad=True):
    s = ALL_LOSSES[kernel].streams
    return Pattern(s - 1, 1 if grad else 0, False)


def _optim_pattern(kernel):
    k = OPTIMIZERS[kernel]
    opts = OPTIM_OPTIONS.get(kernel, {})
    nstate = len(k.state(opts))
    assert k.streams(opts) == 3 + 2 * nstate, f"{kernel}: streams != read p, g, state; write p, state"
    return Pattern(2 + nstate, 1 + nstate, True)


def all_kernels():
    """Every kernel name the suite knows, in table order."""
    elementwise = [k for k in ALL_LOSSES if k not in CE_KERNELS]
    return elementwise + list(CE_KERNELS) + list(OPTIMIZERS) + ["adam_flat"]


def cases(kernels=None, sizes=SIZES, shapes=CE_SHAPES, flat=True):
    """The cases in table order.  kernels: names to keep (None: all)."""
    want = set(all_kernels() if kernels is None else kernels)
    unknown = want - set(all_kernels())
    if unknown:
        raise ValueError(f"kernels: unknown {sorted(unknown)}; choose from {', '.join(all_kernels())}")
    out = []
    for k in ALL_LOSSES:
        if k in want and k not in CE_KERNELS:
            width = 7 if k == "multi_margin" else 1        # the registry samples (n, 7) logits
            out += [Case(k, "loss", n, n * width, _loss_pattern(k)) for n in sizes]
    for k in CE_KERNELS:
        if k in want:
            pat = _loss_pattern("cross_entropy_prob" if k == "cross_entropy_prob" else "cross_entropy",
                                grad=(k != "cross_entropy_nograd"))
            out += [Case(k, "ce", s, s[0] * s[1], pat) for s in shapes]
    for k in OPTIMIZERS:
        if k in want:
            out += [Case(k, "optim", n, n, _optim_pattern(k)) for n in sizes]
    if flat and "adam_flat" in want and _has_flat():
        t, each = FLAT_SPLIT
        out.append(Case("adam_flat", "flat", FLAT_SPLIT, t * each, _optim_pattern("adam")))
    return out


def _has_flat():
    import fastloss
    return hasattr(fastloss, "FlatParams")


# ---- inputs and callables per case ---------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _inputs(case):
    """The case's input arrays (float32), shared by its rows; one case cached at a time."""
    rng = np.random.default_rng(0)
    if case.family == "loss":
        x, t = ALL_LOSSES[case.kernel].sample(rng, (case.size,), np.float32)
        return {"x": x, "t": t, "out": np.empty_like(x)}
    if case.family == "ce":
        n, c = case.size
        x = (rng.standard_normal((n, c), dtype=np.float32) * 3)
        if case.kernel == "cross_entropy_prob":
            q = rng.random((n, c), dtype=np.float32) ** 3
            t = q / q.sum(axis=1, keepdims=True)
        else:
            t = rng.integers(0, c, n)                      # int64 class indices, none ignored
        return {"x": x, "t": t, "out": np.empty_like(x)}
    n = case.elements
    return {"p": rng.standard_normal(n, dtype=np.float32),
            "g": rng.standard_normal(n, dtype=np.float32) * np.float32(1e-3)}


def _optim_hyper(kernel):
    k = OPTIMIZERS[kernel]
    opts = OPTIM_OPTIONS.get(kernel, {})
    return opts, {**k.hyper(opts), "lr": LR}


def build(case, impl):
    """(callable, detail): one call of `impl` on `case` (inputs built once per case)."""
    d = _inputs(case)
    if case.family in ("loss", "ce"):
        return _build_loss(case, impl, d)
    if case.family == "optim":
        return _build_optim(case, impl, d)
    return _build_flat(case, impl, d)


def _loss_name(case):
    return "cross_entropy" if case.kernel == "cross_entropy_nograd" else case.kernel


def _backend_arg(impl):
    """The backend= of a fastloss row: None for the default backend, as a user calls it (so
    the default "c" row includes the C fast path, fastloss._fast), else the name."""
    backend = "numpy" if impl == "reference" else impl
    return None if backend == _config.get_backend() else backend


def _as_written(fn, args, kwargs):
    """A zero-argument callable that calls fn(*args, **kwargs) the way a user writes the call:
    every argument spelled out at the call site.  A lambda that unpacks a dict at every call
    (`fn(x, t, out=out, **hyper)`, even with hyper empty) pays for building and merging the
    keyword dict: 0.2-0.35 us here, which session 11 found counted in every per-call row
    (cross_entropy 256x10 1.95 us as written, 2.16-2.34 us through the unpacking lambda).
    The names are the library's own parameter names; the values are passed in, not printed
    into the source."""
    pos = [f"a{i}" for i in range(len(args))]
    env = {"fn": fn, **dict(zip(pos, args)), **{f"kw_{k}": v for k, v in kwargs.items()}}
    assert all(k.isidentifier() for k in kwargs)
    return eval("lambda: fn(" + ", ".join(pos + [f"{k}=kw_{k}" for k in kwargs]) + ")", env)


def _build_loss(case, impl, d):
    name = _loss_name(case)
    k = ALL_LOSSES[name]
    hyper = {} if case.family == "ce" else dict(k.variants[0])
    grad = case.kernel != "cross_entropy_nograd"
    x, t, out = d["x"], d["t"], d["out"]
    if impl in ("c", "numba", "reference"):
        chosen = {} if _backend_arg(impl) is None else {"backend": _backend_arg(impl)}
        if grad:
            return _as_written(k.func, (x, t), {**hyper, "out": out, **chosen}), "loss + grad, out="
        return _as_written(k.func, (x, t), {**hyper, "grad": False, **chosen}), "loss only"
    if impl == "textbook":
        f = TEXTBOOK_LOSSES[name]
        if not grad:
            return (lambda: f(x, t, grad=False)), "max-subtract log-softmax, loss only"
        return _as_written(f, (x, t), hyper), "loss + grad expressions"
    if impl == "torch":
        torch = _torch()
        fn, label = _torch_loss(name, hyper)
        tx = torch.from_numpy(x.copy())
        tt = torch.from_numpy(t)
        if not grad:
            def fwd():
                with torch.no_grad():
                    fn(tx, tt)
            return fwd, label + " (no_grad)"
        tx.requires_grad_(True)

        def fwd_bwd():
            tx.grad = None
            fn(tx, tt).backward()
        return fwd_bwd, label + " + backward"
    if impl == "optax":
        jax, jnp, optax = _jax()
        fn, label = _optax_loss(name, hyper)
        jx, jt = jnp.array(x), jnp.array(t)
        if not grad:
            f = jax.jit(fn)
            return (lambda: f(jx, jt).block_until_ready()), label + " (jit)"
        f = jax.jit(jax.value_and_grad(fn))

        def vg():
            v, g = f(jx, jt)
            g.block_until_ready()
        return vg, label + " (jit value_and_grad)"
    raise KeyError(impl)


def _build_optim(case, impl, d):
    name = case.kernel
    k = OPTIMIZERS[name]
    opts, hyper = _optim_hyper(name)
    p, g = d["p"].copy(), d["g"]
    if impl in ("c", "numba", "reference"):
        chosen = {} if _backend_arg(impl) is None else {"backend": _backend_arg(impl)}
        state = {s: np.zeros_like(p) for s in k.state(opts)}
        return _as_written(k.func, (p, g), {**state, "step": 2, **hyper, **chosen}), f"optim.{name}_"
    if impl == "textbook":
        step, s = textbook_step(name, hyper), {}
        return (lambda: step(p, g, s)), "update with temporaries"
    if impl == "torch":
        torch = _torch()
        tp = torch.from_numpy(p)
        tp.grad = torch.from_numpy(g)
        opt, label = _torch_optimizer(name, [tp], hyper)
        return opt.step, label
    if impl == "optax":
        return _optax_step(name, hyper, p, g)
    if impl == "deepspeed":
        torch = _torch()
        tp = torch.nn.Parameter(torch.from_numpy(p))
        tp.grad = torch.from_numpy(g)
        opt, label = _deepspeed_optimizer(name, [tp], hyper)
        return opt.step, label
    raise KeyError(impl)


def _build_flat(case, impl, d):
    import fastloss
    tensors, each = case.size
    _, hyper = _optim_hyper("adam")
    p, g = d["p"], d["g"]
    if impl in ("c", "numba"):
        flat = fastloss.FlatParams([(each,)] * tensors, dtype=np.float32)
        flat.data[...] = p
        flat.grad[...] = g
        opt = fastloss.optim.Adam(flat, lr=LR, backend=impl)
        return opt.step, f"optim.Adam(FlatParams {tensors}x{each}).step()"
    if impl == "c-1tensor":
        w = p.copy()
        opt = fastloss.optim.Adam([w], lr=LR, backend="c")
        return (lambda: opt.step([g])), "optim.Adam([one 1e6 array]).step()"
    ps = [p[i * each:(i + 1) * each].copy() for i in range(tensors)]
    gs = [g[i * each:(i + 1) * each].copy() for i in range(tensors)]
    if impl == "textbook":
        step = textbook_step("adam", hyper)
        states = [{} for _ in ps]

        def loop():
            for a, b, s in zip(ps, gs, states):
                step(a, b, s)
        return loop, f"loop over {tensors} arrays"
    if impl in ("torch", "deepspeed"):
        torch = _torch()
        tps = [torch.nn.Parameter(torch.from_numpy(a)) for a in ps]
        for tp, b in zip(tps, gs):
            tp.grad = torch.from_numpy(b)
        make = _torch_optimizer if impl == "torch" else _deepspeed_optimizer
        opt, label = make("adam", tps, hyper)
        return opt.step, f"{label}, {tensors} tensors"
    if impl == "optax":
        call, label = _optax_step("adam", hyper, ps, gs)
        return call, f"{label}, pytree of {tensors}"
    raise KeyError(impl)


# ---- running -----------------------------------------------------------------------------------

def _others_running():
    """Threads of other processes runnable right now (Linux; 0 where /proc is missing):
    the kernel's count of runnable tasks (/proc/loadavg) minus this process's own."""
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
        own = 0
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/stat") as f:
                    s = f.read()
            except OSError:
                continue
            own += s[s.rindex(")") + 2] == "R"
        return max(0, running - own)
    except (OSError, ValueError, IndexError):
        return 0


class Quiet:
    """Before each measurement, wait (up to `max_wait` s, `budget` s per run in all) until no
    thread of another process is runnable: on a shared 2-core machine a 2-thread kernel
    whose second thread waits for a time slice takes milliseconds, not microseconds."""

    def __init__(self, max_wait=1.0, budget=120.0):
        self.max_wait, self.budget = max_wait, budget
        self.waited, self.gates, self.busy = 0.0, 0, 0

    def wait(self):
        if self.budget <= 0 or self.max_wait <= 0:
            return
        t0 = time.perf_counter()
        limit = min(self.max_wait, self.budget)
        while _others_running() and time.perf_counter() - t0 < limit:
            time.sleep(0.01)
        dt = time.perf_counter() - t0
        self.gates += 1
        self.busy += dt >= limit
        self.waited += dt
        self.budget -= dt

    def summary(self):
        return {"waited_s": round(self.waited, 1), "gates": self.gates, "still_busy": self.busy}


def measure_case(case, impls=None, min_time=0.05, repeats=5, rounds=3, progress=None, peers=None,
                 quiet=None):
    """{impl: {"s": seconds per call or None, "detail": str, "threads": int}} for one case:
    every available impl (or those in `impls`) and the roofline.  Every impl is built first,
    then timed in `rounds` round-robin rounds (each a best_time of `repeats` batches; the
    minimum over rounds is kept), so a burst of load from another process spoils one round of
    every row rather than every round of one row.

    A case whose arrays are larger than twice the last-level cache streams from DRAM, whose
    bandwidth on this shared host moves with other tenants (copy loops at 45 and at 106 GB/s
    minutes apart, and from one second to the next): there each row also gets "pair_ratio",
    the median over PAIRS single calls of (roofline pass / the row's call) timed PAIR_GAP
    apart, so that its fraction of the roofline compares two timings of one moment."""
    calls, res = _build_rows(case, impls, peers, progress, lambda: {"s": math.inf})
    rl = roofline() if impls is None or "roofline" in impls else None
    roof = rl.batches(case.pattern, case.elements) if rl is not None else {}
    best_roof = {}
    for r in range(rounds):
        if progress and rounds > 1:
            progress(f"r{r + 1}")
        for impl, f in list(calls.items()):
            if quiet:
                quiet.wait()
            try:
                res[impl]["s"] = min(res[impl]["s"], time_call(f, min_time=min_time, repeats=repeats))
            except Exception as e:
                res[impl] = {"s": None, "detail": _failure(e), "threads": None}
                del calls[impl]
        for t, batch in roof.items():
            if quiet:
                quiet.wait()
            best_roof[t] = min(best_time(batch, min_time, repeats), best_roof.get(t, math.inf))
    if case.nbytes > 2 * largest_cache_bytes():
        _pair_up(calls, res, roof[max(roof)] if roof else None, quiet)
    calls = roof = None
    _inputs.cache_clear()
    if best_roof:
        s, t = min((s, t) for t, s in best_roof.items())
        res["roofline"] = {"s": s, "threads": t,
                           "detail": f"copy loop, {case.pattern}, {t} thread{'s' if t > 1 else ''}, timed in C"}
    return res


PAIRS = 15


def _pair_up(calls, res, one_roof, quiet):
    """A DRAM-bound case's paired ratios (see measure_case): each row's "pair_ratio" against
    a roofline pass (one_roof(reps) -> seconds; None: no roofline), and in c's and numba's
    "speedup" {impl: its time / theirs} over every other row (c's also over numba)."""
    timed = {impl: _timed(f) for impl, f in calls.items()}
    for impl, run in timed.items():
        if quiet:
            quiet.wait()
        try:
            if one_roof is not None:
                res[impl]["pair_ratio"] = pair_ratio(lambda: one_roof(1), run)
            for mine in ("c", "numba"):
                if mine in timed and mine != impl and not (impl == "c" and mine == "numba"):
                    res[mine].setdefault("speedup", {})[impl] = pair_ratio(run, timed[mine])
        except Exception as e:   # timed fine above: keep its time, say why there is no ratio
            res[impl]["detail"] += f" (no paired ratio: {_failure(e)})"


# Idle time before each paired call.  A call that follows another library's call at once
# shares the CPUs with that library's threads while they spin for their next job: torch's
# OpenMP threads spin ~5-10 ms after each operation here, so a fastloss call timed right
# after a torch call took 8.2-8.8 ms against 5.0 ms for the same SGD n=1e7 call 10 ms later
# (bench/NOTES.md, session 13), while torch's call after ours (our helpers spin 200 us) was
# barely slower: back to back, the pairs measured the other row's spinning threads.
PAIR_GAP = 0.012


def pair_ratio(ref, run, pairs=PAIRS, gap=PAIR_GAP):
    """The median over `pairs` of ref() / run() (seconds of one call each), each call
    `gap` seconds after the one before (see PAIR_GAP; short against the minutes over which
    the DRAM's bandwidth drifts), alternating which goes first so that a drift cancels."""
    def after_gap(f):
        time.sleep(gap)
        return f()

    ratios = []
    for k in range(pairs):
        if k % 2:
            b = after_gap(run)
            a = after_gap(ref)
        else:
            a = after_gap(ref)
            b = after_gap(run)
        ratios.append(a / b)
    return statistics.median(ratios)


def _build_rows(case, impls, peers, progress, init):
    """(calls, res): {impl: callable} of every row of `case` that builds, and {impl: result}
    starting as init(), or a failure (s None) for a row that does not."""
    names = [i for i in case.impls(peers) if impls is None or i in impls]
    calls, res = {}, {}
    for impl in names:
        if progress:
            progress(impl)
        try:
            f, detail = build(case, impl)
            calls[impl], res[impl] = f, {**init(), "detail": detail, "threads": None}
        except Exception as e:   # one broken peer must not end the run: report it in the table
            res[impl] = {"s": None, "detail": _failure(e), "threads": None}
    return calls, res


def _timed(f):
    """run() -> seconds of one call of f() from Python (perf_counter_ns)."""
    clock = time.perf_counter_ns

    def run():
        t0 = clock()
        f()
        return (clock() - t0) * 1e-9
    return run


def measure_case_cold(case, evictor, impls=None, samples=15, rounds=2, progress=None, peers=None, quiet=None):
    """Cold caches: {impl: {"samples": [(seconds of one call, clean), ...] or None (failed),
    "redone": int, "detail", "threads"}}, the roofline as {"roofline": {"by_threads": {threads:
    [(seconds, clean), ...]}, "redone": int}}.  Every row, after one untimed call (compilation, the
    optimizers' lazily allocated state), is timed `rounds` x `samples` times, each sample a
    single call right after evictor() (cold_sample: redone when another process took a CPU
    from this one during the call); the samples are interleaved (sample k of every row, the
    roofline included, before sample k+1 of any), so a slow moment of the DRAM falls on every
    row alike.  Python rows: perf_counter_ns around the call; the roofline: timed inside C."""
    calls, res = _build_rows(case, impls, peers, progress, lambda: {"samples": [], "redone": 0})
    for impl, f in list(calls.items()):
        try:
            f()
        except Exception as e:
            res[impl] = {"samples": None, "detail": _failure(e), "threads": None}
            del calls[impl]
    runs = {impl: _timed(f) for impl, f in calls.items()}
    rl = roofline() if impls is None or "roofline" in impls else None
    roof = rl.timed_passes(case.pattern, case.elements) if rl is not None else {}
    by_threads, roof_redone = {t: [] for t in roof}, 0
    waits = RunQueueWait()
    for r in range(rounds):
        if progress and rounds > 1:
            progress(f"r{r + 1}")
        for _ in range(samples):
            for impl, run in list(runs.items()):
                try:
                    sec, redone, clean = cold_sample(run, evictor, waits, quiet=quiet)
                except Exception as e:
                    res[impl] = {"samples": None, "detail": _failure(e), "threads": None}
                    del runs[impl]
                    continue
                res[impl]["samples"].append((sec, clean))
                res[impl]["redone"] += redone
            for t, run in roof.items():
                sec, redone, clean = cold_sample(run, evictor, waits, quiet=quiet)
                by_threads[t].append((sec, clean))
                roof_redone += redone
    waits.close()
    calls = runs = roof = None
    _inputs.cache_clear()
    if by_threads:
        res["roofline"] = {"by_threads": by_threads, "redone": roof_redone}
    return res


def merge_cold(a, b):
    """Per impl, the samples of two measure_case_cold results pooled (None = failed in both)."""
    out = dict(a)
    for impl, m in b.items():
        old = out.get(impl)
        if old is None:
            out[impl] = m
        elif "by_threads" in m:
            out[impl] = {"by_threads": {t: old["by_threads"].get(t, []) + xs for t, xs in m["by_threads"].items()},
                         "redone": old.get("redone", 0) + m.get("redone", 0)}
        elif old["samples"] is None or m["samples"] is None:
            out[impl] = m if old["samples"] is None else old
        else:
            out[impl] = {**m, "samples": old["samples"] + m["samples"],
                         "redone": old.get("redone", 0) + m.get("redone", 0)}
    return out


def _stats(samples):
    """Median, min and quartiles of the clean samples [(seconds, clean), ...] (of all of them
    when none is clean); "disturbed": how many were left out (or, when none is clean, all)."""
    clean = [sec for sec, ok in samples if ok]
    xs = clean or [sec for sec, _ in samples]
    q1, med, q3 = np.percentile(xs, [25, 50, 75])
    return {"s": float(med), "samples": len(xs), "disturbed": len(samples) - len(clean),
            "min": float(min(xs)), "q1": float(q1), "q3": float(q3)}


def summarize_cold(case, measured):
    """measure_case_cold's (pooled) samples -> measure_case's form, "s" the median, plus the
    sample count, min and quartiles.  The roofline keeps the thread count with the lower median."""
    out = {}
    for impl, m in measured.items():
        if "by_threads" in m:
            per = {t: _stats(xs) for t, xs in m["by_threads"].items() if xs}
            if not per:
                continue
            t = min(per, key=lambda k: per[k]["s"])
            out[impl] = {**per[t], "threads": t, "redone": m.get("redone", 0),
                         "detail": f"copy loop, {case.pattern}, {t} thread{'s' if t > 1 else ''}, "
                                   "timed in C"}
        elif not m["samples"]:
            out[impl] = {"s": None, "detail": m["detail"], "threads": None}
        else:
            out[impl] = {**_stats(m["samples"]), "redone": m.get("redone", 0), "detail": m["detail"],
                         "threads": m["threads"]}
    return out


def merge(a, b):
    """Per impl, the faster of two measure_case results (None = failed in both)."""
    out = dict(a)
    for impl, m in b.items():
        old = out.get(impl)
        if old is None or old["s"] is None or (m["s"] is not None and m["s"] < old["s"]):
            out[impl] = m
    return out


def case_rows(case, measured, mode="warm"):
    """Rows (dicts) of one case from its measurements: time, GB/s, fraction of roofline, ratios;
    `mode` and the statistic say how "us" was measured (warm: the minimum; cold: the median
    of single calls after an eviction, with its sample count, min and quartiles)."""
    roof = measured.get("roofline")
    roof_s = roof["s"] if roof else None
    t_c = (measured.get("c") or {}).get("s")
    t_nb = (measured.get("numba") or {}).get("s")
    paired_vs_c = ((measured.get("c") or {}).get("speedup") or {}).get("numba")   # numba / c, paired
    rows = []
    for impl, m in measured.items():
        t = m["s"]
        ratio = m.get("pair_ratio")      # DRAM-bound cases: against the roofline of the same moments
        rows.append({
            "kernel": case.kernel, "size": case.label, "elements": case.elements, "impl": impl,
            "label": IMPL_LABELS[impl], "detail": m["detail"],
            "us": None if t is None else t * 1e6,
            "bytes": case.nbytes, "streams": case.pattern.streams,
            "GB/s": None if t is None else case.nbytes / t / 1e9,
            "roofline_us": None if roof_s is None else roof_s * 1e6,
            "roofline_paired": ratio is not None,
            "roofline_threads": roof["threads"] if roof else None,
            "of_roofline": ratio if ratio is not None else (None if (roof_s is None or t is None) else roof_s / t),
            "vs_c": paired_vs_c if impl == "numba" and paired_vs_c else _ratio(t, t_c),
            "vs_numba": _ratio(t, t_nb), "speedup": m.get("speedup"),
            "threads": _config.get_num_threads(),
            "mode": mode, "stat": "median" if mode == "cold" else "min",
            "samples": m.get("samples"), "redone": m.get("redone"), "disturbed": m.get("disturbed"),
            **{f"{k}_us": (None if m.get(k) is None else m[k] * 1e6) for k in ("min", "q1", "q3")},
        })
    return rows


def _failure(e):
    text = str(e).splitlines()[0][:80] if str(e) else ""
    return f"failed: {type(e).__name__}: {text}"


def _ratio(t, ref):
    return None if (t is None or not ref) else t / ref


def measure_startup(repeats=3):
    """Seconds for `import fastloss` and for the first mse call per compiled backend, in
    fresh interpreters with warm caches (the best of `repeats`; the first run warms them)."""
    import fastloss
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastloss.__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = ("import time; t0 = time.perf_counter(); import fastloss; t1 = time.perf_counter(); "
            "import numpy as np; p = np.ones(1000, np.float32); t2 = time.perf_counter(); "
            "fastloss.mse(p, p, backend={b!r}); t3 = time.perf_counter(); print(t1 - t0, t3 - t2)")
    out = {}
    for b in (x for x in ("c", "numba") if x in _config.backends()):
        best = (math.inf, math.inf)
        for _ in range(repeats + 1):
            # cwd outside any checkout: `python -c` would import a source tree's fastloss/ there
            r = subprocess.run([sys.executable, "-c", code.format(b=b)], capture_output=True, text=True,
                               env=env, timeout=300, cwd=tempfile.gettempdir())
            if r.returncode != 0:
                break
            imp, first = map(float, r.stdout.split())
            best = (min(best[0], imp), min(best[1], first))
        if math.isfinite(best[0]):
            out[b] = {"import_s": best[0], "first_call_s": best[1]}
    return out


COLD_SAMPLES = 15        # cold: single calls per row per round (x 2 rounds x 2 passes = 60 per row)
QUICK_COLD_SAMPLES = 5


def run(kernels=None, sizes=None, shapes=None, quick=False, impls=None, out=print, progress=None,
        flat=None, startup=None, passes=None, cold=False, samples=None, evict_bytes=None):
    """Time every case in `passes` passes over the whole list (each case's rows keep the best
    of the passes: passes minutes apart rarely all meet a burst of load from another process);
    print the tables, the n=1e3 section, startup times and the targets; return
    {"meta": ..., "rows": [...], "startup": ...}.

    cold: every timed call follows an eviction of the caches (Evictor, `evict_bytes`); each
    row's time is the median of its single-call samples (`samples` per round, rounds and passes
    pooled) instead of the minimum of warm batches; no startup section (a warm measurement)."""
    sizes = tuple(sizes or (QUICK_SIZES if quick else SIZES))
    shapes = tuple(shapes or (QUICK_CE_SHAPES if quick else CE_SHAPES))
    flat = (not quick) if flat is None else flat
    startup = (not quick and kernels is None and not cold) if startup is None else startup
    passes = passes or (1 if quick else 2)
    min_time, repeats, rounds = (0.01, 3, 1) if quick else (0.03, 4, 2)
    samples = samples or (QUICK_COLD_SAMPLES if quick else COLD_SAMPLES)
    if not cold and (evict_bytes is not None):
        raise ValueError("evict size: only with cold caches (--cold)")
    if samples < 1 or (evict_bytes is not None and evict_bytes < 1 << 20):
        raise ValueError(f"cold: need samples >= 1 and an eviction buffer >= 1 MiB, got {samples}, {evict_bytes}")
    quiet = Quiet(max_wait=0.0 if quick else 2.0, budget=90.0 * passes)
    unknown = set(impls or ()) - set(IMPL_LABELS)
    if unknown:
        raise ValueError(f"impls: unknown {sorted(unknown)}; choose from {', '.join(IMPL_LABELS)}")
    todo = cases(kernels, sizes, shapes, flat=flat or (kernels is not None and "adam_flat" in kernels))
    peers = available_peers()
    meta = metadata(peers)
    meta["passes"] = passes
    meta["mode"], meta["statistic"] = ("cold", "median") if cold else ("warm", "min")
    evictor = None
    if cold:
        evictor = Evictor(evict_bytes)
        meta.update(samples_per_row=samples * rounds * passes, evict_bytes=evictor.nbytes,
                    evict_threads=evictor.threads, evict=evictor.describe())
    out(format_meta(meta))
    measured = [{} for _ in todo]
    for p in range(passes):
        for i, case in enumerate(todo):
            t0 = time.perf_counter()
            done = []
            where = f"[{i + 1}/{len(todo)}]" + (f" pass {p + 1}/{passes}" if passes > 1 else "")

            def step(what):
                done.append(what)
                if progress:
                    progress(f"\r{where} {case.group}: {' '.join(done)}", end="")
            if cold:
                m = measure_case_cold(case, evictor, impls=impls, samples=samples, rounds=rounds,
                                      progress=step, peers=peers, quiet=quiet)
                measured[i] = merge_cold(measured[i], m)
            else:
                m = measure_case(case, impls=impls, min_time=min_time, repeats=repeats, rounds=rounds,
                                 progress=step, peers=peers, quiet=quiet)
                measured[i] = merge(measured[i], m)
            if progress:
                progress(f"\r{where} {case.group}: {' '.join(done)} ({time.perf_counter() - t0:.1f} s)")
    # each case keeps its own roofline, measured in the same rounds as its rows: at n=1e7 the
    # DRAM bandwidth of this shared host drifts by up to ~1.8x between minutes, so a roofline
    # from another case's moment would not be "at the same size and thread count"
    rows = []
    for case, m in zip(todo, measured):
        r = case_rows(case, summarize_cold(case, m) if cold else m, meta["mode"])
        rows += r
        out(format_case(case, r))
    meta["quiet"] = quiet.summary()
    meta["loadavg_end"] = _loadavg()
    how = (f"cold caches: {samples} x {rounds} round{'s' if rounds > 1 else ''} single calls per row and pass, "
           "pooled, the median per row" if cold else "the best of them per row")
    out(f"\n{passes} pass{'es' if passes > 1 else ''}, {how}; waited for other processes "
        f"{meta['quiet']['waited_s']} s over {meta['quiet']['gates']} measurements, "
        f"{meta['quiet']['still_busy']} started while another was running; load average "
        f"{meta['loadavg']} at the start, {meta['loadavg_end']} at the end")
    result = {"meta": meta, "rows": rows, "startup": None}
    if roofline() is None:
        out(f"(no roofline rows: {roofline_error})")
    out(format_small(rows))
    if cold and kernels is None and not quick:
        out("\n(no startup section with --cold: it is measured in fresh interpreters, warm caches)")
    if startup:
        if progress:
            progress("startup: import fastloss and first calls in fresh interpreters")
        result["startup"] = measure_startup()
        out(format_startup(result["startup"]))
    out(format_targets(evaluate_targets(rows, result["startup"]), meta["mode"]))
    return result


def metadata(peers):
    import fastloss
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "fastloss": fastloss.__version__,
            "threads": _config.get_num_threads(), "backends": _config.backends(),
            "python": platform.python_version(), "numpy": np.__version__, "cpu": _cpu_name(),
            "cpus": os.cpu_count(), "loadavg": _loadavg()}
    try:
        meta["simd"] = _config.module("c").info().get("simd", None) if "c" in _config.backends() else None
    except Exception:
        meta["simd"] = None
    for m in ("numba", "torch", "jax", "optax", "deepspeed"):
        if importlib.util.find_spec(m) is not None:
            try:
                from importlib.metadata import version
                meta[m] = version(m)
            except Exception:
                meta[m] = "?"
    return meta


def _loadavg():
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ---- formatting ---------------------------------------------------------------------------------

def _f(x, fmt, none="-"):
    return none if x is None else format(x, fmt)


def format_meta(meta):
    peers = ", ".join(f"{m} {meta[m]}" for m in ("numba", "torch", "jax", "optax", "deepspeed") if m in meta)
    head = (f"fastloss {meta['fastloss']} bench, {meta['date']}: {meta['cpu']}, {meta['threads']} threads, "
            f"python {meta['python']}, numpy {meta['numpy']}; {peers}; load average {meta['loadavg']}\n")
    tail = ("of roofline = roofline time / time; "
            "speed-up x PEER = PEER's time / fastloss time: > 1 means fastloss is that many times faster.")
    if meta.get("mode") == "cold":
        return (head + f"COLD CACHES: before every timed call, {meta['evict']} evicts every cache (not timed).\n"
                f"time: one call from Python (validation included) right after an eviction, the MEDIAN of "
                f"{meta['samples_per_row']} such calls per row (n: the clean ones).  A call during which another "
                f"process took a CPU from this one is redone (redo), up to {COLD_RETRIES} times, then left out "
                "(dist).\nroofline: the kernel's loads and stores alone, after the same eviction, timed in C "
                "(median).\n" + tail)
    return (head + "time: per call from Python (validation included), the minimum over many short batches; "
            "roofline: the kernel's loads and stores alone, timed in C.\n" + tail)


PEER_IMPLS = ("reference", "textbook", "torch", "optax", "deepspeed")
_PEER_SHORT = {"reference": "x reference", "textbook": "x textbook", "torch": "x torch", "optax": "x optax",
               "deepspeed": "x deepspeed", "c-1tensor": "x one tensor"}


def format_case(case, rows):
    """The case's rows, then how many times faster fastloss c and numba are than each peer.
    Cold rows (median time) add the minimum and the interquartile range of their samples."""
    mb = case.nbytes / 1e6
    cold = any(r.get("mode") == "cold" for r in rows)
    if cold:
        lines = [f"\n{case.kernel} {case.label} · COLD caches · {case.pattern} · {mb:,.3g} MB per call "
                 f"({case.pattern.streams * 4} B per element)",
                 f"  {'impl':<31} {'median (us)':>11} {'GB/s':>7} {'of roofline':>11} {'min (us)':>10} "
                 f"{'IQR':>6} {'n':>4} {'redo':>5} {'dist':>4}  detail"]
        for r in rows:
            iqr = None if r["us"] is None else (r["q3_us"] - r["q1_us"]) / r["us"] * 100
            lines.append(f"  {r['label']:<31} {_f(r['us'], '11.2f', 'failed'):>11} {_f(r['GB/s'], '7.1f'):>7} "
                         f"{_f(r['of_roofline'], '11.2f'):>11} {_f(r['min_us'], '10.2f'):>10} "
                         f"{_f(iqr, '5.0f'):>5}% {_f(r['samples'], '4d'):>4} {_f(r['redone'], '5d'):>5} "
                         f"{_f(r['disturbed'], '4d'):>4}  "
                         f"{r['detail']}")
    else:
        lines = [f"\n{case.kernel} {case.label} · {case.pattern} · {mb:,.3g} MB per call "
                 f"({case.pattern.streams * 4} B per element)",
                 f"  {'impl':<31} {'time (us)':>11} {'GB/s':>7} {'of roofline':>11}  detail"]
        for r in rows:
            lines.append(f"  {r['label']:<31} {_f(r['us'], '11.2f', 'failed'):>11} {_f(r['GB/s'], '7.1f'):>7} "
                         f"{_f(r['of_roofline'], '11.2f'):>11}  {r['detail']}")
        if any(r.get("roofline_paired") for r in rows):
            lines.append(f"  (DRAM-bound: 'of roofline' and the speed-ups are medians of {PAIRS} single calls "
                         "each paired with a roofline pass / the other row's call, "
                         f"{PAIR_GAP * 1e3:.0f} ms apart, not ratios of the times shown)")
    by = {r["impl"]: r for r in rows}
    peers = [i for i in ("c-1tensor",) + PEER_IMPLS if i in by and by[i]["us"] is not None]
    mine = [i for i in ("c", "numba") if i in by and by[i]["us"] is not None]
    if peers and mine:
        lines.append("  speed-up " + "".join(f"{_PEER_SHORT[p]:>13}" for p in peers))
        for m in mine:
            lines.append(f"  {m:<8} " + "".join(f"{speedup_of(by[m], by[p]):>13.2f}" for p in peers))
    return "\n".join(lines)


def speedup_of(mine, peer):
    """How many times faster row `mine` is than row `peer` (paired when measured so)."""
    paired = (mine.get("speedup") or {}).get(peer["impl"])
    return paired if paired is not None else peer["us"] / mine["us"]


def _small_rows(rows):
    return [r for r in rows if r["size"] in ("n=1e3", "256x10")]


def format_small(rows):
    """Per call from Python at n = 1e3 (cross-entropy 256x10): validation included."""
    small = _small_rows(rows)
    if not small:
        return ""
    by = {}
    for r in small:
        by.setdefault((r["kernel"], r["size"]), {})[r["impl"]] = r
    cold = any(r.get("mode") == "cold" for r in small)
    lines = ["\nper call from Python at n=1e3 (cross-entropy 256x10), validation included "
             "(issue 5: <= 2 us; issue 3: CE 256x10 <= 5 us)" + ("; COLD caches, median" if cold else ""),
             f"  {'kernel':<34} {'c (us)':>8} {'numba (us)':>10} {'roofline':>9}  fastest peer"]
    for (k, size), d in by.items():
        peers = [(r["us"], r["label"]) for i, r in d.items()
                 if i in ("torch", "optax", "deepspeed", "textbook") and r["us"] is not None]
        best = min(peers) if peers else None
        lines.append(f"  {k + ' ' + size:<34} {_f(d.get('c', {}).get('us'), '8.2f'):>8} "
                     f"{_f(d.get('numba', {}).get('us'), '10.2f'):>10} "
                     f"{_f(d.get('roofline', {}).get('us'), '9.2f'):>9}  "
                     + (f"{best[1]} {best[0]:.1f} us" if best else "-"))
    return "\n".join(lines)


def format_startup(startup):
    if not startup:
        return ""
    lines = ["\nstartup, fresh interpreter, warm caches (issue 5: import <= 0.5 s, first call <= 50 ms)"]
    for b, s in startup.items():
        lines.append(f"  {b:<6} import fastloss {s['import_s'] * 1e3:7.1f} ms   first mse call "
                     f"{s['first_call_s'] * 1e3:7.1f} ms")
    return "\n".join(lines)


# ---- the issues' targets ------------------------------------------------------------------------

def _t(rows, kernel, size, impl):
    for r in rows:
        if r["kernel"] == kernel and r["size"] == size and r["impl"] == impl:
            return r
    return None


def evaluate_targets(rows, startup=None):
    """[(issue, target, measured, met)] for every target whose rows were measured."""
    res = []

    def us(k, s, i):
        r = _t(rows, k, s, i)
        return None if r is None else r["us"]

    def frac(k, s, i="c"):
        r = _t(rows, k, s, i)
        return None if r is None else r["of_roofline"]

    def faster(k, s, peer):
        """how many times faster c is than peer (paired in DRAM-bound cases), or None"""
        c, p = _t(rows, k, s, "c"), _t(rows, k, s, peer)
        ok = c is not None and p is not None and c["us"] is not None and p["us"] is not None
        return speedup_of(c, p) if ok else None

    def add(issue, target, value, met, text):
        if value is not None:
            res.append((issue, target, text, bool(met)))

    big = ("n=1e6", "n=1e7")
    for s in big:
        f = frac("adam", s)
        add(5, f"Adam {s}: >= 0.90 of roofline", f, f is not None and f >= 0.90, f"{_f(f, '.2f')}")
    r, c = us("adam", "n=1e5", "roofline"), us("adam", "n=1e5", "c")
    add(5, "Adam n=1e5: <= 2x roofline time", c and r, c and r and c <= 2 * r,
        f"{_f(c and r and c / r, '.2f')}x ({_f(c, '.1f')} vs {_f(r, '.1f')} us)")
    for k in OPTIMIZERS:
        for s in big:
            f = frac(k, s)
            add(5, f"{k} {s}: >= 0.85 of roofline", f, f is not None and f >= 0.85, _f(f, ".2f"))
    for k in REGRESSION:
        for s in big:
            f = frac(k, s)
            add(5, f"{k} {s}: >= 0.85 of 3-stream roofline", f, f is not None and f >= 0.85, _f(f, ".2f"))
    for r in _small_rows(rows):
        if r["impl"] == "c" and r["size"] == "n=1e3":
            add(5, f"{r['kernel']} n=1e3: <= 2 us per call", r["us"], r["us"] is not None and r["us"] <= 2.0,
                f"{_f(r['us'], '.2f')} us")
    for s, want_optax, want_torch in (("4096x1000", 1.5, 3.5), ("1024x32000", 3.0, 6.0)):
        for peer, want in (("optax", want_optax), ("torch", want_torch)):
            x = faster("cross_entropy", s, peer)
            add(3 if peer == "torch" else 5, f"cross_entropy {s}: >= {want}x {peer}", x, x and x >= want,
                f"{_f(x, '.2f')}x")
    c = us("cross_entropy", "256x10", "c")
    add(3, "cross_entropy 256x10: <= 5 us per call", c, c is not None and c <= 5.0, f"{_f(c, '.2f')} us")
    for k in CE_KERNELS:   # issue 5's "every kernel" at the smallest shape measured (2560 logits)
        c = us(k, "256x10", "c")
        add(5, f"{k} 256x10: <= 2 us per call", c, c is not None and c <= 2.0, f"{_f(c, '.2f')} us")
    for s in ("256x10", "4096x1000", "1024x32000"):
        c, nog = us("cross_entropy", s, "c"), us("cross_entropy_nograd", s, "c")
        add(3, f"cross_entropy {s}: grad=False faster than loss+grad", c and nog, c and nog and nog < c,
            f"{_f(nog, '.1f')} vs {_f(c, '.1f')} us")
    for r in rows:
        if r["impl"] == "numba" and r["size"] not in ("n=1e3", "256x10") and r["vs_c"] is not None:
            tgt = 5 if r["kernel"] not in CE_KERNELS else 3
            add(tgt, f"numba {r['kernel']} {r['size']}: within 1.5x of c", r["vs_c"], r["vs_c"] <= 1.5,
                f"{r['vs_c']:.2f}x")
    for s in big:
        ds, tf = faster("adam", s, "deepspeed"), faster("adam", s, "torch")
        add(4, f"Adam {s}: faster than DeepSpeed CPUAdam", ds, ds and ds > 1, f"{_f(ds, '.2f')}x")
        add(4, f"Adam {s}: >= 1.3x torch fused", tf, tf and tf >= 1.3, f"{_f(tf, '.2f')}x")
    c = us("adam", "n=1e3", "c")
    add(4, "Adam n=1e3: <= 2 us per call", c, c is not None and c <= 2.0, f"{_f(c, '.2f')} us")
    fl, one = us("adam_flat", "200x5000", "c"), us("adam_flat", "200x5000", "c-1tensor")
    add(4, "Adam FlatParams 200x5000: <= 1.1x one 1e6 tensor", fl and one, fl and one and fl <= 1.1 * one,
        f"{_f(fl and one and fl / one, '.2f')}x ({_f(fl, '.0f')} vs {_f(one, '.0f')} us)")
    for k in ("adagrad", "rmsprop"):
        f = frac(k, "n=1e7")
        add(4, f"{k} n=1e7: within 1.2x of the copy roofline", f, f and 1 / f <= 1.2, f"{_f(f and 1 / f, '.2f')}x")
    tr, ref = faster("mse", "n=1e7", "torch"), faster("mse", "n=1e7", "reference")
    add(2, "MSE n=1e7: >= 2x torch fwd+bwd", tr, tr and tr >= 2, f"{_f(tr, '.2f')}x")
    add(2, "MSE n=1e7: >= 5x NumPy reference", ref, ref and ref >= 5, f"{_f(ref, '.2f')}x")
    tr = faster("sgd", "n=1e7", "torch")
    add(2, "SGD momentum n=1e7: >= torch fused", tr, tr and tr >= 1, f"{_f(tr, '.2f')}x")
    slow = [r for r in rows if r["impl"] == "c" and r["size"] == "n=1e3" and r["us"] is not None]
    if slow:
        worst = max(slow, key=lambda r: r["us"])
        add(2, "every kernel n=1e3: <= 3 us per call", worst["us"], worst["us"] <= 3.0,
            f"worst {worst['kernel']} {worst['us']:.2f} us")
    for b, s in (startup or {}).items():
        add(5, f"{b}: import fastloss <= 0.5 s", s["import_s"], s["import_s"] <= 0.5, f"{s['import_s']:.2f} s")
        add(5, f"{b}: first call, warm cache, <= 50 ms", s["first_call_s"], s["first_call_s"] <= 0.05,
            f"{s['first_call_s'] * 1e3:.1f} ms")
    return res


def format_targets(results, mode="warm"):
    """The targets table; in cold mode its title and every target say so (the issues set
    their targets on warm-cache timings: a cold result is a different measurement)."""
    if not results:
        return ""
    if mode == "cold":
        results = [(i, f"{t} [cold]", x, ok) for i, t, x, ok in results]
    w = max(len(t) for _, t, _, _ in results) + 2
    m = max(len(x) for _, _, x, _ in results) + 2
    title = ("targets (default backend c unless named; f32; this run)" if mode != "cold" else
             "targets, measured with COLD caches (every call after an eviction; the median; default "
             "backend c unless named; f32; this run)")
    lines = ["\n" + title,
             f"  {'issue':<6} {'target':<{w}} {'measured':<{m}} result"]
    for issue, target, text, met in results:
        lines.append(f"  #{issue:<5} {target:<{w}} {text:<{m}} {'met' if met else 'MISSED'}")
    missed = sum(1 for *_, ok in results if not ok)
    lines.append(f"  {len(results) - missed} met, {missed} missed")
    return "\n".join(lines)


# ---- files --------------------------------------------------------------------------------------

FIELDS = ("kernel", "size", "elements", "impl", "label", "detail", "us", "bytes", "streams", "GB/s",
          "roofline_us", "roofline_threads", "of_roofline", "vs_c", "vs_numba", "threads",
          "mode", "stat", "samples", "redone", "disturbed", "min_us", "q1_us", "q3_us")


def write_json(path, result):
    with open(path, "w") as f:
        json.dump(result, f, indent=1)


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k) for k in FIELDS})
