"""cffi (API, out-of-line mode) build of the C kernels into ``fastloss._fastloss_c``.

The declarations given to ``ffi.cdef`` are read from ``fastloss.h`` (the block between the
FL_CDEF markers) and the generated module compiles ``#include "fastloss.h"`` with every
``csrc/*.c`` file, so the header is the single declaration of each kernel: a prototype that
drifts from its definition is a compile error.

Flags:
  -O3 -fopenmp                 optimized loops, OpenMP threads for large inputs
  -mprefer-vector-width=512    lets the AVX-512 clones (FL_CLONES) use zmm registers
  -fno-math-errno              sqrt/exp need not set errno, so they may vectorize; results,
                               NaN and Inf are unchanged
  -fno-trapping-math           we never read FP exception flags; allows if-conversion
  -ffp-contract=fast           FMA contraction (-std=c11 alone turns it off): 20-30% on the
                               exp/log loops (bench/NOTES_vmath.md).  Rounding then differs by
                               an ulp between the AVX2/AVX-512 clones and the SSE2 baseline;
                               NaN/Inf are unaffected
  -fno-tree-loop-distribute-patterns
                               no zeroing loop turned into a memset: GCC's generic tuning
                               expands a small fixed-size memset as `rep stos`, whose ~30-cycle
                               start-up on Zen 3 the cross-entropy blocks paid five times per
                               64 rows (256x10 one thread -1%, probability targets -4.5%;
                               bench/NOTES.md, session 16).  For the same reason the loss sums
                               are zeroed by loops, not `= {0}`.  Only classification.c's code
                               changes
  no -ffast-math, no -march=native: NaN/Inf must propagate exactly as in PyTorch, and the
  ISA is chosen at run time (target_clones), not baked in at build time.
"""
import glob
import os
import re

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
HEADER = os.path.join(HERE, "fastloss.h")


def cdef_source(path=HEADER):
    with open(path) as f:
        text = f.read()
    m = re.search(r"/\* FL_CDEF_BEGIN \*/(.*)/\* FL_CDEF_END \*/", text, re.S)
    if not m:
        raise RuntimeError(f"{path}: FL_CDEF_BEGIN/FL_CDEF_END markers not found")
    return m.group(1)


# the flags above; tests/test_vmath.py and tests/test_isa.py build with these too
CFLAGS = ["-O3", "-std=c11", "-fopenmp", "-mprefer-vector-width=512",
          "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=fast", "-fno-tree-loop-distribute-patterns", "-Wall", "-Wno-unknown-pragmas"]
SOURCES = sorted(glob.glob(os.path.join(HERE, "*.c")))

ffibuilder = FFI()
ffibuilder.cdef(cdef_source())
ffibuilder.set_source(
    "fastloss._fastloss_c",
    '#include "fastloss.h"',
    sources=[os.path.relpath(p) for p in SOURCES],
    include_dirs=[os.path.relpath(HERE)],
    extra_compile_args=CFLAGS,
    extra_link_args=["-fopenmp"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
