"""The kernels' AVX2 and SSE2 code against the reference.

The library is built once with GCC target_clones (AVX-512, AVX2+FMA, SSE2) and the loader
picks one clone for the CPU, so on this machine every other test runs the AVX-512 code only.
Here the same sources are built twice more without clones (-DFL_NO_CLONES), for
-march=x86-64-v3 and for the x86-64 baseline, with the shipped flags (csrc/build_cffi.py),
and each build replaces fastloss._fastloss_c in a fresh process (the C backend and the fast
path both bind to it there) that runs `python -m fastloss check`'s comparison: every kernel x
dtype x size (threaded ones included) against the float64 reference, backend "c".
The two builds run at once, in their own processes (~1-2 minutes).
"""
import os
import platform
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CSRC = Path(__file__).parent.parent / "csrc"
X86 = platform.machine() in ("x86_64", "AMD64")
# -march -> a vector register name its code must not contain (proof of the ISA built)
ISAS = {"x86-64-v3": "zmm", "x86-64": "ymm"}

BUILD_AND_CHECK = textwrap.dedent('''
    import importlib.util, sys
    import cffi
    csrc, march, tmp = sys.argv[1:4]
    spec = importlib.util.spec_from_file_location("_fl_build_cffi", csrc + "/build_cffi.py")
    b = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(b)
    ffi = cffi.FFI()
    ffi.cdef(b.cdef_source())
    ffi.set_source("fastloss._fastloss_c", '#include "fastloss.h"', sources=b.SOURCES,
                   include_dirs=[csrc], extra_compile_args=b.CFLAGS + ["-DFL_NO_CLONES", "-march=" + march],
                   extra_link_args=["-fopenmp"])
    so = ffi.compile(tmpdir=tmp + "/build")   # not the cwd: its fastloss/ would shadow the package
    print("SO", so, flush=True)
    spec = importlib.util.spec_from_file_location("fastloss._fastloss_c", so)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules["fastloss._fastloss_c"] = mod
    import fastloss
    from fastloss import _check
    from fastloss.backend.c import _lib
    assert _lib.lib is mod.lib
    fastloss.set_num_threads(2)        # the threaded drivers too, whatever this machine has
    sys.exit(0 if _check.run(backends=["c"]) else 1)
''')


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """march -> its finished process (stdout, stderr, return code); both started at once."""
    procs = {}
    for march in ISAS:
        tmp = tmp_path_factory.mktemp(march)
        procs[march] = subprocess.Popen([sys.executable, "-c", BUILD_AND_CHECK, str(CSRC), march, str(tmp)],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        cwd=str(tmp), env=dict(os.environ, OMP_WAIT_POLICY="passive"))
    return {march: (*p.communicate(timeout=1200), p.returncode) for march, p in procs.items()}


@pytest.mark.skipif(not X86, reason="builds x86-64 ISA levels")
@pytest.mark.parametrize("march", list(ISAS))
def test_kernels_built_for_this_isa_match_the_reference(builds, march):
    out, err, rc = builds[march]
    assert rc == 0, f"{march}:\n{out[-4000:]}\n{err[-4000:]}"
    summary = re.search(r"^(\d+) ok, 0 FAIL$", out, re.M)    # every kernel x dtype row within tolerance
    assert summary and int(summary.group(1)) >= 30, out[-4000:]
    so = re.search(r"^SO (.+)$", out, re.M).group(1)
    objdump = shutil.which("objdump")
    assert objdump is not None, "objdump (binutils, installed with gcc) is missing"
    asm = subprocess.run([objdump, "-d", "--no-show-raw-insn", so], check=True, capture_output=True,
                         text=True).stdout
    assert ISAS[march] not in asm, f"the {march} build has {ISAS[march]} registers: not that ISA"
    assert "fl_adam_f32" in asm and "mulps" in asm
