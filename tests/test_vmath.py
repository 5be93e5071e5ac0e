"""csrc/vmath.h (C) and fastloss.backend.numba.vmath (Numba) against NumPy.

Error is measured in ulps of the correctly rounded result: |y - f(x)| / ulp(f(x)), with f(x)
from NumPy in float64 for the float32 functions and in long double (x87, 64-bit mantissa)
for the float64 ones; an inf where f(x) rounds to a finite value counts as 2^128 (2^1024),
and where f(x) rounds to inf or is NaN the result must be exactly that.  Near the overflow
and underflow thresholds, inf and 0 must also come exactly where NumPy has them.

Three builds of each function are checked:
  c            csrc/vmath.h in loops compiled as the project compiles kernels (the flags of
               csrc/build_cffi.py, FMA contraction included, and target_clones), through a
               test-only cffi module built in a temporary dir;
  numba        the Numba functions inlined into an njit loop with the project's fast-math
               flags (_common.FASTMATH: reassoc, contract, nsz, arcp), as kernels use them;
  numba_strict the same loop without fast-math: must give, bit for bit, the results of a
               second C build with contraction off (-ffp-contract=off: same algorithm, same
               constants, same rounding order), except where STRICT_MAY_DIFFER documents why
               not.  Against the shipped (contracted) build it differs in the last bit here
               and there; the accuracy bounds hold for both.

Float32 inputs: every 97th bit pattern of all 2^32, plus every value in windows around the
range boundaries (overflow, underflow, subnormals, reduction switch points).  Float64: random
values over the whole range plus the same kind of windows.

BCE's logs of a probability (logf_01c, log1mf_01c, log1pf_01 and the float64 ones) are
measured on their domain only (DOMAIN), against the reference clamped at -100 where they
clamp (CLAMP): every STEP01-th float32 bit pattern in [0, 1] (the whole interval when run
as a script with --exhaustive), sampled patterns of the rest of the domain, and windows.

Run as a script for the tables in bench/NOTES_vmath.md:  python tests/test_vmath.py
(and python tests/test_vmath.py --exhaustive for every float32 in [0, 1], ~4 minutes)
"""
import importlib.util
import itertools
import math
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
import pytest
from numba import njit

from fastloss.backend.numba import vmath as nvm
from fastloss.backend.numba._common import FASTMATH

CSRC = Path(__file__).parent.parent / "csrc"
def _shipped_cflags():
    """csrc/build_cffi.py's CFLAGS: the flags the package's kernels are built with."""
    spec = importlib.util.spec_from_file_location("_fl_build_cffi", CSRC / "build_cffi.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return list(mod.CFLAGS)


CFLAGS = _shipped_cflags()
NO_CONTRACT = ["-ffp-contract=off"]   # for the bit-for-bit comparison with numba_strict
NAMES = ["expf", "logf", "log1pf", "exp", "log", "log1p", "expf_neg", "exp_neg",
         "logf_01c", "log1mf_01c", "log1pf_01", "log_01c", "log1m_01c", "log1p_01"]
F32 = ["expf", "logf", "log1pf", "expf_neg", "logf_01c", "log1mf_01c", "log1pf_01"]
# the softmax's exp: domain x <= 0 (and NaN); results below e^FLUSH are 0 by design
FLUSH = {"expf_neg": -86.5, "exp_neg": -707.5}
# BCE's logs of a probability: the functions that clamp at -100 (log1m = log1p(-x)), and the
# domain each is measured on, (lo, hi) inclusive, plus NaN; outside it the result is not
# specified.  Beyond x in [0, 1]: the _01c ones give NaN below (log) / above (log1m) it,
# and vmath.h says logf_01c is valid up to 2^104 (2^971) and log1mf_01c down to -2^24 (-2^53).
CLAMP = {"logf_01c": -100.0, "log1mf_01c": -100.0, "log_01c": -100.0, "log1m_01c": -100.0}
DOMAIN = {"logf_01c": (-math.inf, 2.0 ** 104), "log1mf_01c": (-2.0 ** 24, math.inf),
          "log1pf_01": (0.0, 1.0),
          "log_01c": (-math.inf, 2.0 ** 971), "log1m_01c": (-2.0 ** 53, math.inf),
          "log1p_01": (0.0, 1.0)}
# Every STEP01-th float32 bit pattern in [0, 1] in the tests (an odd step: every mantissa
# residue is hit); `python tests/test_vmath.py --exhaustive` does every one (bench/NOTES_vmath.md).
STEP01 = 31
# The documented bounds (csrc/vmath.h): the Numba build is looser because 'reassoc' lets LLVM
# reorder the final sums (no catastrophic case: the algorithm is written so that it cannot).
BOUND = {"c": 1.5, "numba": 2.5}

X86 = platform.machine().lower() in ("x86_64", "amd64")

# ---------------------------------------------------------------------------------------------
# builds

C_SOURCE = r"""
#include <math.h>
#include <stdint.h>
#include "vmath.h"
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#endif
#define LOOP(NAME, T, F)                                                  \
    CLONES void NAME(T *out, const T *in, int64_t n)                      \
    {                                                                     \
        _Pragma("omp simd")                                               \
        for (int64_t i = 0; i < n; i++) out[i] = F(in[i]);                \
    }
LOOP(t_expf, float, fl_expf)
LOOP(t_logf, float, fl_logf)
LOOP(t_log1pf, float, fl_log1pf)
LOOP(t_exp, double, fl_exp)
LOOP(t_log, double, fl_log)
LOOP(t_log1p, double, fl_log1p)
LOOP(t_expf_neg, float, fl_expf_neg)
LOOP(t_exp_neg, double, fl_exp_neg)
LOOP(t_logf_01c, float, fl_logf_01c)
LOOP(t_log1mf_01c, float, fl_log1mf_01c)
LOOP(t_log1pf_01, float, fl_log1pf_01)
LOOP(t_log_01c, double, fl_log_01c)
LOOP(t_log1m_01c, double, fl_log1m_01c)
LOOP(t_log1p_01, double, fl_log1p_01)
/* glibc, for the throughput comparison */
static inline float g__logf_01c(float x) { float y = logf(x); return y < -100.0f ? -100.0f : y; }
static inline float g__log1mf_01c(float x) { float y = log1pf(-x); return y < -100.0f ? -100.0f : y; }
static inline double g__log_01c(double x) { double y = log(x); return y < -100.0 ? -100.0 : y; }
static inline double g__log1m_01c(double x) { double y = log1p(-x); return y < -100.0 ? -100.0 : y; }
LOOP(g_expf, float, expf)
LOOP(g_logf, float, logf)
LOOP(g_log1pf, float, log1pf)
LOOP(g_exp, double, exp)
LOOP(g_log, double, log)
LOOP(g_log1p, double, log1p)
LOOP(g_expf_neg, float, expf)
LOOP(g_exp_neg, double, exp)
LOOP(g_logf_01c, float, g__logf_01c)
LOOP(g_log1mf_01c, float, g__log1mf_01c)
LOOP(g_log1pf_01, float, log1pf)
LOOP(g_log_01c, double, g__log_01c)
LOOP(g_log1m_01c, double, g__log1m_01c)
LOOP(g_log1p_01, double, log1p)
"""


def _cdef():
    lines = []
    for pre in ("t", "g"):
        for name in NAMES:
            t = "float" if name in F32 else "double"
            lines.append(f"void {pre}_{name}({t} *out, const {t} *in, int64_t n);")
    return "\n".join(lines)


def have_cc():
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) is not None


def build_c(tmpdir, extra=()):
    """Compile C_SOURCE with cffi into tmpdir (CFLAGS + extra); returns (ffi, lib, path of
    the .so)."""
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(_cdef())
    modname = "_fl_vmath_test"
    ffi.set_source(modname, C_SOURCE, include_dirs=[str(CSRC)], extra_compile_args=CFLAGS + list(extra),
                   extra_link_args=["-fopenmp"], libraries=["m"])
    so = ffi.compile(tmpdir=str(tmpdir))
    spec = importlib.util.spec_from_file_location(modname, so)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.ffi, mod.lib, so


class CFuncs:
    def __init__(self, ffi, lib, so):
        self.ffi, self.lib, self.so = ffi, lib, so

    def __call__(self, name, x, out=None, prefix="t"):
        out = np.empty_like(x) if out is None else out
        ct = "float *" if x.dtype == np.float32 else "double *"
        getattr(self.lib, f"{prefix}_{name}")(self.ffi.from_buffer(ct, out),
                                              self.ffi.from_buffer(ct, x), x.size)
        return out


def _make_loop(f, fastmath):
    def loop(out, x):
        for i in range(x.size):
            out[i] = f(x[i])
    # a closure: not cacheable, which is fine for a test
    return njit(nogil=True, fastmath=fastmath)(loop)


_LOOPS = {}


def numba_call(name, x, strict=False, out=None):
    key = (name, strict)
    if key not in _LOOPS:
        _LOOPS[key] = _make_loop(getattr(nvm, name), False if strict else FASTMATH)
    out = np.empty_like(x) if out is None else out
    _LOOPS[key](out, x)
    return out


@pytest.fixture(scope="module")
def cfuncs(tmp_path_factory):
    # the package itself is built with this compiler: its absence is a failure, not a skip
    assert have_cc(), "no C compiler"
    return CFuncs(*build_c(tmp_path_factory.mktemp("vmath")))


@pytest.fixture(scope="module")
def cfuncs_exact(tmp_path_factory):
    """The same loops with FMA contraction off: numba_strict's bit-for-bit counterpart."""
    assert have_cc(), "no C compiler"
    return CFuncs(*build_c(tmp_path_factory.mktemp("vmath_exact"), NO_CONTRACT))


# ---------------------------------------------------------------------------------------------
# measuring

REF = {"exp": np.exp, "log": np.log, "log1p": np.log1p, "log1m": lambda x: np.log1p(-x)}


def _base(name):
    """The function name computes: exp, log, log1p or log1m (= log1p(-x))."""
    name = name.removesuffix("_neg").removesuffix("_01c").removesuffix("_01")
    return name[:-1] if name.endswith("f") and name != "exp" else name


def in_domain(name, x):
    """x restricted to name's domain (for the _neg functions: x <= 0 or NaN; DOMAIN)."""
    if name in FLUSH:
        return x[(x <= 0) | np.isnan(x)]
    if name in DOMAIN:
        lo, hi = DOMAIN[name]
        return x[((x >= lo) & (x <= hi)) | np.isnan(x)]
    return x


def reference(name, x):
    """name(x) in float64 (float32 x) or long double: NumPy's, flushed or clamped as
    documented."""
    fn = REF[_base(name)]
    with np.errstate(all="ignore"):
        ref = fn(x.astype(np.float64 if x.dtype == np.float32 else np.longdouble))
    if name in FLUSH:
        ref = np.where(x < FLUSH[name], 0, ref)
    if name in CLAMP:
        ref = np.maximum(ref, CLAMP[name])     # NaN stays NaN
    return ref


def ulp_error(y, x, name):
    """Error of y = name(x) in ulps of the correctly rounded result (see the module doc)."""
    with np.errstate(all="ignore"):
        ref = reference(name, x)
        if y.dtype == np.float32:
            # ulp of a float32 at |ref|: 2^(exponent - 23), at least 2^-149 (subnormals)
            e = (np.abs(ref).view(np.uint64) >> np.uint64(52)).astype(np.int64) - 1023
            ulp = ((np.maximum(e - 23, -149) + 1023).astype(np.uint64) << np.uint64(52)).view(np.float64)
            big = 2.0 ** 128
        else:
            _, e = np.frexp(ref)
            ulp = np.ldexp(np.ones_like(ref), np.maximum(e - 53, -1074))
            big = np.longdouble(2) ** 1024
        ref_t = ref.astype(y.dtype)
        fin = np.isfinite(ref_t)
        yy = y.astype(ref.dtype)
        yy = np.where(np.isinf(yy) & fin, np.copysign(big, yy), yy)
        err = np.abs(yy - ref) / ulp
        same = (ref_t == y) | (np.isnan(ref_t) & np.isnan(y))
        return np.where(fin, err, np.where(same, 0.0, np.inf))


def _bits_around(v, n, dtype):
    """The 2n + 1 values of dtype nearest to v by bit pattern (v's sign), as dtype."""
    ity = np.uint32 if dtype == np.float32 else np.uint64
    b = int(np.array(v, dtype).view(ity))
    top = 2 ** (8 * np.dtype(ity).itemsize)
    lo, hi = max(b - n, 0), min(b + n + 1, top)
    return np.arange(lo, hi, dtype=np.uint64).astype(ity).view(dtype)


def windows(name):
    """Every value near the places where name's algorithm or result changes regime."""
    dt = np.float32 if name in F32 else np.float64
    tiny = 2.0 ** -126 if dt == np.float32 else 2.0 ** -1022
    big = float(np.finfo(dt).max)
    base = _base(name)
    if name in DOMAIN:
        # 0 (positive subnormals; beside -0: negative subnormals and NaN patterns), the
        # subnormal onset, the clamp's onset e^-100, the places where 1 - x or 1 + x crosses
        # 0.75 or 1.5 times a power of 2 (the split's switch: x = 0.25, 0.625, -0.5, -2, and
        # 0.5 for log1p), 1 and just above it, tiny x, the domain's ends beyond [0, 1]
        pts = [0.0, -0.0, tiny, math.exp(-100), 0.25, 0.5, 0.625, 0.75, 1.0, 1.5, -0.5, -2.0,
               1e-30, -1e-30] + [v for v in DOMAIN[name] if math.isfinite(v) and not 0 <= v <= 1]
    elif name in FLUSH:            # the flush point, subnormal onset, k switches, tiny x, 0
        pts = [FLUSH[name], -87.33654475055310898657 if dt == np.float32 else -708.3964185322641,
               -math.log(2) / 2, -math.log(2) * 1.5, -1e-30, -0.0]
    elif base == "exp":
        if dt == np.float32:   # overflow, result 2^-126 (subnormal onset), result -> 0, clamp
            pts = [88.72283935546875, -87.33654475055310898657, -103.97207708399179, -104.0, 104.0]
        else:
            pts = [709.782712893384, -708.3964185322641, -745.1332191019411, -746.0, 746.0]
        pts += [math.log(2) / 2, -math.log(2) / 2, 1e-30, -1e-30]   # k switches; tiny x
    elif base == "log":   # the split's ends (m in [0.75, 1.5)), subnormals, the top
        pts = [1.0, 0.75, 1.5, 3.0, tiny, float(np.finfo(dt).smallest_subnormal), big, 2.0 ** 100]
    else:                 # -1, e switches (u = 0.75, 1.5, 3), tiny x, where f = m - 1 takes over
        pts = [-1.0, -0.25, 0.5, 2.0, 1e-30, -1e-30, big,
               1.5 * 2.0 ** 24 if dt == np.float32 else 1.5 * 2.0 ** 53]
    parts = [_bits_around(p, 4096, dt) for p in pts]
    return in_domain(name, np.concatenate(parts))


def samples64(name):
    rng = np.random.default_rng(20240611)
    n = 400_000
    base = _base(name)
    if name in DOMAIN:
        # uniform in [0, 1], bit patterns in [0, 1] (log-uniform, subnormals included),
        # log-uniform down to the subnormals, 1 - tiny, around the clamp's onset e^-100
        xs = [rng.uniform(0, 1, n), rng.integers(0, 0x3FF0000000000001, n, dtype=np.uint64).view(np.float64),
              10.0 ** rng.uniform(-323, 0, n), 1 - 10.0 ** rng.uniform(-16, 0, n),
              math.exp(-100) * rng.uniform(0.5, 2, n)]
        lo, hi = DOMAIN[name]
        if math.isfinite(hi) and hi > 1:   # log: the rest of the domain above 1; x < 0 (NaN)
            xs += [10.0 ** rng.uniform(0, math.log10(hi), n), -(10.0 ** rng.uniform(-320, 308, n // 8))]
        if math.isfinite(lo) and lo < 0:   # log1m: the rest of the domain below 0; x > 1 (NaN)
            xs += [-(10.0 ** rng.uniform(-30, math.log10(-lo), n)), 10.0 ** rng.uniform(0, 308, n // 8)]
        return in_domain(name, np.concatenate(xs + [windows(name)]))
    if name in FLUSH:
        xs = [rng.uniform(-750, 0, n), rng.uniform(-1, 0, n), -(10.0 ** rng.uniform(-30, 2.86, n))]
    elif base == "exp":
        xs = [rng.uniform(-750, 750, n), rng.uniform(-1, 1, n),
              np.copysign(10.0 ** rng.uniform(-30, 2.86, n), rng.uniform(-1, 1, n))]
    elif base == "log":
        xs = [rng.integers(0, 0x7FF0000000000000, n, dtype=np.uint64).view(np.float64),
              rng.uniform(0.5, 3.0, n), 10.0 ** rng.uniform(-300, 300, n)]
    else:
        xs = [rng.uniform(-1, 1, n), rng.integers(0, 0x7FF0000000000000, n, dtype=np.uint64).view(np.float64),
              np.copysign(10.0 ** rng.uniform(-300, 0, n), rng.uniform(-1, 1, n)),
              -1.0 + 10.0 ** rng.uniform(-16, 0, n)]
    return np.concatenate(xs + [windows(name)])


def _chunks32(step=97, chunk=1 << 22, lo=0, hi=1 << 32):
    """Every step-th float32 bit pattern in [lo, hi), in chunks."""
    for start in range(lo, hi, step * chunk):
        stop = min(start + step * chunk, hi)
        yield np.arange(start, stop, step, dtype=np.uint64).astype(np.uint32).view(np.float32)


def _bits32(v):
    return int(np.float32(v).view(np.uint32))


def sweeps32(name, step01=STEP01):
    """The float32 sweep of name: (first bit pattern, end (exclusive), step) ranges."""
    if name not in DOMAIN:
        return [(0, 1 << 32, 97)]
    one = _bits32(1.0)
    ranges = [(0, one + 1, step01)]                       # [0, 1]
    if name == "logf_01c":
        ranges += [(one + 1, _bits32(2.0 ** 104) + 1, 97),  # (1, 2^104]
                   (_bits32(-0.0) + 1, 1 << 32, 997)]        # x < 0 and -NaN: NaN
    if name == "log1mf_01c":
        ranges += [(_bits32(-0.0) + 1, _bits32(-2.0 ** 24) + 1, 97),   # [-2^24, 0)
                   (one + 1, _bits32(-0.0), 997)]                     # x > 1 and NaN: NaN
    return ranges


def _rounds_up_to_three_halves(x):
    """x < 0.5 for which 1 + x, in x's type, rounds up to 1.5."""
    return (x < 0.5) & (x.dtype.type(1) + x == 1.5)


# Where numba_strict may differ from C, and why.  log1p_01 (vmath.py's docstring): C takes
# e = 1 when x >= 0.5, Numba reads e from the bits of the rounded 1 + x (to keep LLVM's
# 'reassoc' from merging e ln2's two parts); the two split differently exactly where 1 + x
# rounds up to 1.5 for an x < 0.5: x = 0.5 - 2^-53 and 0.5 - 2^-54, where the results are
# one ulp apart (both within the bound).  Not log1pf_01: at its two such x (0.5 - 2^-24,
# 0.5 - 2^-25) both splits give the same float32, and C and Numba agree on every float32 in
# [0, 1] (--exhaustive; outside [0, 1] they differ, C's e is 0 or 1 only).  Numba's other
# documented difference, abs(x) for C's + 0.0 (both make -0 +0), changes no result: logf_01c
# and log1mf_01c give C's bits for all 2^32 inputs (checked once, bench/NOTES_vmath.md).
STRICT_MAY_DIFFER = {"log1p_01": _rounds_up_to_three_halves}


_RESULTS = {}


def measure(cf, name, step01=STEP01, only01=False, identity_only=False):
    """{impl: (max ulp error, x at the max)} over all samples of name (only01: a float32
    name's sweep of [0, 1] alone); the number of results where numba_strict differs from c in
    any bit (NaNs compare equal) outside STRICT_MAY_DIFFER; inside it, the number that differ
    and the largest difference in units of the last place (bit patterns).  identity_only:
    the counts alone (no ulp errors, no fast-math Numba)."""
    key = (id(cf), name, step01, only01, identity_only)
    if key in _RESULTS:
        return _RESULTS[key]
    best = {k: (0.0, None) for k in ("c", "numba")}
    ndiff = nexc = maxexc = 0
    if name in F32 and only01:
        inputs = _chunks32(step01, hi=_bits32(1.0) + 1)
    elif name in F32:
        inputs = itertools.chain((in_domain(name, x) for lo, hi, step in sweeps32(name, step01)
                                  for x in _chunks32(step, lo=lo, hi=hi)), [windows(name)])
    else:
        inputs = [samples64(name)]
    may_differ = STRICT_MAY_DIFFER.get(name, lambda x: np.zeros(x.shape, bool))
    for x in inputs:
        if x.size == 0:
            continue
        ys = {"c": cf(name, x)} if identity_only else {"c": cf(name, x), "numba": numba_call(name, x)}
        ystrict = numba_call(name, x, strict=True)
        ity = np.int32 if x.dtype == np.float32 else np.int64
        differ = (ys["c"].view(ity) != ystrict.view(ity)) & ~(np.isnan(ys["c"]) & np.isnan(ystrict))
        exc = may_differ(x)
        ndiff += int(np.sum(differ & ~exc))
        nexc += int(np.sum(differ & exc))
        if (differ & exc).any():
            dist = np.abs(ys["c"][differ & exc].view(ity).astype(np.int64) - ystrict[differ & exc].view(ity))
            maxexc = max(maxexc, int(dist.max()))
        if identity_only:
            continue
        for k, y in ys.items():
            err = ulp_error(y, x, name)
            i = int(np.argmax(err))
            if err[i] > best[k][0]:
                best[k] = (float(err[i]), x[i])
    _RESULTS[key] = (best, ndiff, (nexc, maxexc))
    return _RESULTS[key]


# ---------------------------------------------------------------------------------------------
# tests

@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("impl", ["c", "numba"])
def test_max_ulp_error(cfuncs, name, impl):
    best, _, _ = measure(cfuncs, name)
    err, at = best[impl]
    assert err <= BOUND[impl], f"{impl} {name}: {err:.3f} ulp at x = {at!r}"


@pytest.mark.parametrize("name", NAMES)
def test_numba_without_fastmath_is_the_c_algorithm(cfuncs_exact, name):
    _, ndiff, (nexc, maxexc) = measure(cfuncs_exact, name, identity_only=True)
    assert ndiff == 0, f"{name}: {ndiff} results differ in some bit between C and Numba"
    assert maxexc <= 1, f"{name}: C and Numba differ by {maxexc} ulp where STRICT_MAY_DIFFER"


@pytest.mark.parametrize("name", sorted(STRICT_MAY_DIFFER))
def test_numba_strict_exceptions_are_the_documented_ones(cfuncs_exact, name):
    """The exception set is the two x < 0.5 whose 1 + x rounds to 1.5 (both in the windows,
    so the test above checks them); C and Numba are at most one ulp apart there."""
    dt = np.float32 if name in F32 else np.float64
    x = windows(name)
    exc = np.sort(x[STRICT_MAY_DIFFER[name](x)])
    eps = float(np.finfo(dt).eps)
    np.testing.assert_array_equal(exc, np.array([0.5 - eps / 2, 0.5 - eps / 4], dt))
    yc, ys = cfuncs_exact(name, exc), numba_call(name, exc, strict=True)
    ity = np.int32 if dt == np.float32 else np.int64
    dist = np.abs(yc.view(ity).astype(np.int64) - ys.view(ity))
    assert (dist <= 1).all(), f"{name}: at x = {exc!r}: C {yc!r}, Numba {ys!r}"


INF, NAN = math.inf, math.nan


def special_cases(name):
    """(x, exact name(x)) pairs, as arrays of name's dtype."""
    dt = np.float32 if name in F32 else np.float64
    ity = np.uint32 if dt == np.float32 else np.uint64
    sub = float(np.finfo(dt).smallest_subnormal)
    snan = float(np.array(0x7F800001 if dt == np.float32 else 0x7FF0000000000001, ity).view(dt))
    if name in FLUSH:
        cases = [(-INF, 0.0), (NAN, NAN), (-NAN, NAN), (0.0, 1.0), (-0.0, 1.0), (-1e4, 0.0),
                 (FLUSH[name] * 1.0001, 0.0)]
        return np.array([a for a, _ in cases], dt), np.array([b for _, b in cases], dt)
    if name in DOMAIN:
        # BCE's logs: the clamp (log x < -100 for x < e^-100 = 3.7e-44, a float32 subnormal;
        # log1p(-x) only at x = 1), ln2 at the split's switch, the NaNs outside the domain.
        # A zero result is +0 for both zeros (log1p(-0) is -0; BCE only adds these terms).
        ln2 = float(dt(math.log(2)))
        above1 = float(np.nextafter(dt(1), dt(2)))
        nans = [(NAN, NAN), (-NAN, NAN), (snan, NAN)]
        cases = {
            "log": [(0.0, -100.0), (-0.0, -100.0), (sub, -100.0), (1e-44, -100.0),
                    (math.exp(-100) / 2, -100.0), (1.0, 0.0), (0.5, -ln2), (-sub, NAN),
                    (-1.0, NAN), (-INF, NAN)],
            "log1m": [(0.0, 0.0), (-0.0, 0.0), (sub, -sub), (-sub, sub), (1.0, -100.0),
                      (0.5, -ln2), (above1, NAN), (2.0, NAN), (INF, NAN)],
            "log1p": [(0.0, 0.0), (-0.0, 0.0), (sub, sub), (1.0, ln2)],
        }[_base(name)] + nans
        return np.array([a for a, _ in cases], dt), np.array([b for _, b in cases], dt)
    cases = {
        "exp": [(-INF, 0.0), (INF, INF), (NAN, NAN), (-NAN, NAN), (snan, NAN), (0.0, 1.0),
                (-0.0, 1.0), (1e4, INF), (-1e4, 0.0)],
        "log": [(0.0, -INF), (-0.0, -INF), (-1.0, NAN), (-sub, NAN), (-INF, NAN), (INF, INF),
                (NAN, NAN), (-NAN, NAN), (snan, NAN), (1.0, 0.0)],
        "log1p": [(-1.0, -INF), (-2.0, NAN), (-1.0000001, NAN), (-INF, NAN), (INF, INF),
                  (NAN, NAN), (-NAN, NAN), (snan, NAN), (0.0, 0.0), (-0.0, -0.0)],
    }[_base(name)]
    return np.array([a for a, _ in cases], dt), np.array([b for _, b in cases], dt)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("impl", ["c", "numba", "numba_strict"])
def test_special_values(cfuncs, name, impl):
    x, want = special_cases(name)
    if impl == "c":
        y = cfuncs(name, x)
    else:
        y = numba_call(name, x, strict=impl == "numba_strict")
    np.testing.assert_array_equal(y, want)
    if impl != "numba":   # nsz lets the fast-math build lose the sign of a zero
        num = ~np.isnan(want)
        np.testing.assert_array_equal(np.signbit(y[num]), np.signbit(want[num]))


@pytest.mark.parametrize("name", NAMES)
def test_zero_inf_nan_exactly_where_numpy_has_them(cfuncs, name):
    """Around overflow/underflow, and for log's domain edges: the result is 0 / inf / NaN
    exactly when the correctly rounded result is (the ulp test allows an inf one ulp early).
    For the clamped logs: never inf, NaN exactly below 0 (log x) / above 1 (log1p(-x))."""
    x = windows(name)
    with np.errstate(all="ignore"):
        ref = reference(name, x).astype(x.dtype)
    for impl, y in (("c", cfuncs(name, x)), ("numba", numba_call(name, x))):
        for what, pred in (("inf", np.isinf), ("nan", np.isnan), ("zero", lambda a: a == 0)):
            bad = pred(y) != pred(ref)
            assert not bad.any(), f"{impl} {name}: {what} differs at x = {x[bad][:5]!r}"


@pytest.mark.parametrize("name", NAMES)
def test_numba_dtype_stable(name):
    f = getattr(nvm, name)
    g = njit(fastmath=FASTMATH)(lambda x: f(x))
    dt = np.float32 if name in F32 else np.float64
    g(dt(0.5))
    assert g.nopython_signatures[0].return_type == numba.from_dtype(dt)


@pytest.mark.skipif(not X86, reason="checks x86 assembly")
@pytest.mark.parametrize("name", NAMES)
def test_numba_loop_vectorizes(name):
    dt = np.float32 if name in F32 else np.float64
    numba_call(name, np.ones(4, dt))
    asm = "\n".join(_LOOPS[(name, False)].inspect_asm().values())
    # packed arithmetic (mulps, vfmadd213pd, ...): scalar code uses the ss/sd forms
    packed = re.findall(r"\b(?:v?(?:mul|add|sub|div)p[sd]|vf\w+p[sd])\b", asm)
    assert len(packed) > 10, f"{name}: the Numba loop did not vectorize"


@pytest.mark.skipif(not X86, reason="checks x86 assembly")
def test_c_avx512_clones_use_zmm_and_call_nothing(cfuncs):
    objdump = shutil.which("objdump")
    assert objdump is not None, "objdump (binutils, installed with gcc) is missing"
    text = subprocess.run([objdump, "-d", "--no-show-raw-insn", cfuncs.so], check=True,
                          capture_output=True, text=True).stdout
    bodies = {}
    for block in re.split(r"\n(?=[0-9a-f]+ <)", text):
        m = re.match(r"[0-9a-f]+ <([^>]+)>:", block)
        if m:
            bodies[m.group(1)] = block
    for name in NAMES:
        body = bodies[f"t_{name}.arch_x86_64_v4"]
        assert "zmm" in body, f"t_{name}: no zmm in the x86-64-v4 clone"
        assert not re.search(r"\bcall", body), f"t_{name}: the x86-64-v4 clone calls out"


CACHE_KERNEL = '''
import numpy as np
from numba import njit
from fastloss.backend.numba import vmath
from fastloss.backend.numba._common import FASTMATH

@njit(nogil=True, cache=True, fastmath=FASTMATH)
def kernel(out32, x32, out64, x64):
    for i in range(x32.size):
        out32[i] = vmath.log1pf(vmath.expf(-abs(x32[i]))) + vmath.logf(x32[i])
        p = x32[i] * np.float32(0.25)
        out32[i] += vmath.logf_01c(p) + vmath.log1mf_01c(p) + vmath.log1pf_01(p)
    for i in range(x64.size):
        out64[i] = vmath.log1p(vmath.exp(-abs(x64[i]))) + vmath.log(x64[i])
        p = x64[i] * 0.25
        out64[i] += vmath.log_01c(p) + vmath.log1m_01c(p) + vmath.log1p_01(p)

x32 = np.linspace(0.5, 2, 7).astype(np.float32)
x64 = x32.astype(np.float64)
kernel(np.empty_like(x32), x32, np.empty_like(x64), x64)
print(sum(kernel.stats.cache_hits.values()), sum(kernel.stats.cache_misses.values()))
'''


def test_numba_cache_works_for_a_kernel_using_vmath(tmp_path):
    """vmath holds nothing numba cannot cache (closures, non-constant globals): a cached kernel
    that inlines it loads from the cache in a second process."""
    (tmp_path / "vmath_cache_kernel.py").write_text(CACHE_KERNEL)
    runs = [subprocess.run([sys.executable, "vmath_cache_kernel.py"], cwd=tmp_path, check=True,
                           capture_output=True, text=True).stdout.split() for _ in range(2)]
    assert runs == [["0", "1"], ["1", "0"]], f"(hits, misses) per run: {runs}"


# ---------------------------------------------------------------------------------------------
# throughput (python tests/test_vmath.py)

def _best(fn, reps=30):
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def _math_loops():
    def mk(f):
        def loop(out, x):
            for i in range(x.size):
                out[i] = f(x[i])
        return njit(nogil=True, fastmath=FASTMATH)(loop)
    log1m = njit(lambda x: math.log1p(-x))
    fns = {"exp": math.exp, "log": math.log, "log1p": math.log1p, "log1m": log1m}
    def clamped(f):
        return njit(lambda x: max(f(x), -100.0))
    return {name: mk(clamped(fns[_base(name)]) if name in CLAMP else fns[_base(name)])
            for name in NAMES}


def _accuracy_table(cf, cf_exact, names, step01=STEP01, only01=False):
    print("\n| function | C max ulp | Numba (FASTMATH) max ulp | Numba strict == C without contraction |")
    print("|---|---|---|---|")
    for name in names:
        t0 = time.perf_counter()
        best, _, _ = measure(cf, name, step01, only01)
        _, ndiff, (nexc, maxexc) = measure(cf_exact, name, step01, only01, identity_only=True)
        same = "yes" if ndiff == 0 else f"{ndiff} differ"
        if nexc:
            same += f" (+{nexc} documented, <= {maxexc} ulp apart)"
        print(f"| {name} | {best['c'][0]:.3f} (x={best['c'][1]!r}) | "
              f"{best['numba'][0]:.3f} (x={best['numba'][1]!r}) | {same} |"
              f"  [{time.perf_counter() - t0:.0f} s]", flush=True)


def main(exhaustive=False):
    n = 1_000_000
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d, tempfile.TemporaryDirectory() as d2:
        cf, cf_exact = CFuncs(*build_c(d)), CFuncs(*build_c(d2, NO_CONTRACT))
        if exhaustive:
            print("every float32 in [0, 1]")
            _accuracy_table(cf, cf_exact, [name for name in F32 if name in DOMAIN], step01=1, only01=True)
            return
        mloops = _math_loops()
        print(f"ns per element, {n} elements, one thread, best of 30\n")
        print("| function | C fl_* | C glibc | Numba vmath | Numba math.* |")
        print("|---|---|---|---|---|")
        for name in NAMES:
            dt = np.float32 if name in F32 else np.float64
            base = _base(name)
            if name in DOMAIN:        # a probability
                lo, hi = 0, 1
            else:
                lo = -30 if base == "exp" else 1e-3
                hi = 0 if name in FLUSH else 30 if base == "exp" else 1e3
            x = rng.uniform(lo, hi, n).astype(dt)
            out = np.empty_like(x)
            t = [_best(lambda: cf(name, x, out)), _best(lambda: cf(name, x, out, prefix="g")),
                 _best(lambda: numba_call(name, x, out=out)), _best(lambda: mloops[name](out, x))]
            print(f"| {name} | " + " | ".join(f"{v * 1e9 / n:.2f}" for v in t) + " |")
        _accuracy_table(cf, cf_exact, NAMES)


if __name__ == "__main__":
    main(exhaustive="--exhaustive" in sys.argv[1:])
