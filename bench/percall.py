"""Where the time of one small call goes (issue 5: <= 2 us per call from Python at n = 1e3).

    python bench/percall.py [n]

For a few kernels, each layer of the call path timed alone (best of many short batches, as
`python -m fastloss bench`): the public function (validation + dispatch + backend + kernel),
the C backend's wrapper called with already-validated arrays (pointer conversion + cffi call
+ kernel), the raw cffi call with pointers made once, the same raw call at n = 16 (the fixed
cost of a call into C: argument conversion, the OpenMP driver), and the roofline of the
access pattern (bench/roofline.c, timed in C).  The differences between rows are the cost of
each layer.  Reads the C backend's module-level names; not part of the library.
"""
import os
import sys

import numpy as np

import fastloss
from fastloss import _bench, _config
from fastloss.backend.c import _lib

ROOFLINE_C = os.path.join(os.path.dirname(os.path.abspath(__file__)), "roofline.c")


def layers(n):
    ffi, lib = _lib.ffi, _lib.lib
    c = _config.module("c")
    rng = np.random.default_rng(0)
    p, t = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
    g = np.empty_like(p)
    m, v, buf = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    fb = lambda a: ffi.from_buffer("float[]", a)
    P, T, G, M, V, B = fb(p), fb(t), fb(g), fb(m), fb(v), fb(buf)
    logits = rng.standard_normal((256, 10), dtype=np.float32)
    y = rng.integers(0, 10, 256)
    glog = np.empty_like(logits)
    X, Y, GL = fb(logits), ffi.from_buffer("int64_t[]", y), fb(glog)
    return {
        "mse": ([
            ("public fastloss.mse(p, t, out=g)", lambda: fastloss.mse(p, t, out=g)),
            ("backend c.mse(g, None, p, t, 1/n)", lambda: c.mse(g, None, p, t, 1.0 / n)),
            ("raw lib.fl_mse_f32, pointers made once", lambda: lib.fl_mse_f32(G, ffi.NULL, P, T, n, 1.0 / n)),
            ("raw lib.fl_mse_f32 at n=16", lambda: lib.fl_mse_f32(G, ffi.NULL, P, T, 16, 1.0 / 16)),
        ], _bench.Pattern(2, 1, False), n),
        "sgd (momentum)": ([
            ("public optim.sgd_(p, g, buf, ...)",
             lambda: fastloss.optim.sgd_(p, t, buf, step=2, lr=1e-6, momentum=0.9)),
            ("backend c.sgd(...)", lambda: c.sgd(p, buf, t, 2, 1e-6, 0.9, 0.0, 0.0, 1.0, False, False)),
            ("raw lib.fl_sgd_f32, pointers made once",
             lambda: lib.fl_sgd_f32(P, B, T, n, 2, 1e-6, 0.9, 0.0, 0.0, 1.0, 0, 0)),
            ("raw lib.fl_sgd_f32 at n=16", lambda: lib.fl_sgd_f32(P, B, T, 16, 2, 1e-6, 0.9, 0.0, 0.0, 1.0, 0, 0)),
        ], _bench.Pattern(3, 2, True), n),
        "adam": ([
            ("public optim.adam_(p, g, m, v, ...)", lambda: fastloss.optim.adam_(p, t, m, v, step=2, lr=1e-6)),
            ("backend c.adam(...)",
             lambda: c.adam(p, m, v, None, t, 2, 1e-6, 0.9, 0.999, 1e-8, 0.0, 1.0, False, False, False)),
            ("raw lib.fl_adam_f32, pointers made once",
             lambda: lib.fl_adam_f32(P, M, V, ffi.NULL, T, n, 2, 1e-6, 0.9, 0.999, 1e-8, 0.0, 1.0, 0, 0, 0)),
            ("raw lib.fl_adam_f32 at n=16",
             lambda: lib.fl_adam_f32(P, M, V, ffi.NULL, T, 16, 2, 1e-6, 0.9, 0.999, 1e-8, 0.0, 1.0, 0, 0, 0)),
        ], _bench.Pattern(4, 3, True), n),
        "cross_entropy 256x10": ([
            ("public cross_entropy(x, y, out=g)", lambda: fastloss.cross_entropy(logits, y, out=glog)),
            ("backend c.cross_entropy(...)",
             lambda: c.cross_entropy(glog, None, logits, y, None, 256, 10, 1, -100, 0.0, 1)),
            ("raw lib.fl_cross_entropy_f32, pointers made once",
             lambda: lib.fl_cross_entropy_f32(GL, ffi.NULL, X, Y, ffi.NULL, 256, 10, 1, -100, 0.0, 1)),
            ("raw lib.fl_cross_entropy_f32 at 16x10",
             lambda: lib.fl_cross_entropy_f32(GL, ffi.NULL, X, Y, ffi.NULL, 16, 10, 1, -100, 0.0, 1)),
        ], _bench.Pattern(1, 1, False), logits.size),
    }


def main(n=1000):
    rl = _bench.load_roofline(ROOFLINE_C)
    print(f"n={n}, {fastloss.get_num_threads()} threads; microseconds per call (best of short batches)")
    for kernel, (rows, pattern, elements) in layers(n).items():
        print(f"\n{kernel}")
        for label, f in rows:
            print(f"  {label:<44} {_bench.time_call(f, 0.05, 7) * 1e6:8.3f}")
        t, threads = rl.seconds(pattern, elements)
        print(f"  {'roofline (' + str(pattern) + ')':<44} {t * 1e6:8.3f}  ({threads} thread, timed in C)")


if __name__ == "__main__":
    main(int(float(sys.argv[1])) if len(sys.argv) > 1 else 1000)
