"""A/B of two or more builds of the C kernels in one process, their calls interleaved.

On a shared host whose memory bandwidth drifts by 2x from one minute to the next, two
processes run one after the other cannot separate a 10% change from the drift; calls of
both builds alternating in one process meet the same drift.  Each build is a checkout whose
cffi module was built in place (``python setup.py build_ext --inplace --force``: without
--force a change to a header alone is not recompiled); its module is imported under a name
of its own, and the optimizer kernels are called through cffi with raw pointers (no Python
checks, no fast path), on the same arrays.

    python bench/ab_builds.py OLD_CHECKOUT NEW_CHECKOUT --kernel adagrad --n 1e7 --rounds 20

prints, per build, the minimum, first quartile and median of the per-round times (a round:
one call, then a batch of back-to-back calls of ~3e6 elements in all, timed as one).
Session 19 (bench/NOTES.md) measured the adaptive optimizers' prefetching with it.
"""
import argparse
import glob
import importlib.util
import os
import time

import numpy as np


def load(tag, checkout):
    """The cffi module built in `checkout`, imported as `<tag>._fastloss_c`."""
    paths = glob.glob(os.path.join(checkout, "fastloss", "_fastloss_c*.so"))
    if not paths:
        raise SystemExit(f"{checkout}: no fastloss/_fastloss_c*.so (build it in place first)")
    spec = importlib.util.spec_from_file_location(f"{tag}._fastloss_c", paths[0])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def caller(mod, kernel, arrays, n):
    """step -> None: one float32 call of `kernel` on arrays (param, grad, state1, state2, state3)."""
    ffi, lib = mod.ffi, mod.lib
    p, g, s1, s2, s3 = (ffi.cast("float *", a.ctypes.data) for a in arrays)
    if kernel == "adam":
        return lambda step: lib.fl_adam_f32(p, s1, s2, ffi.NULL, g, n, step, 1e-3, 0.9, 0.999, 1e-8,
                                            0.0, 1.0, 0, 0, 0)
    if kernel == "adagrad":
        return lambda step: lib.fl_adagrad_f32(p, s1, g, n, step, 1e-3, 0.0, 0.0, 1e-10, 1.0, 0)
    if kernel == "rmsprop":
        return lambda step: lib.fl_rmsprop_f32(p, s1, s2, s3, g, n, 1e-3, 0.99, 1e-8, 0.0, 0.0, 1.0, 0, 0)
    if kernel == "sgd":
        return lambda step: lib.fl_sgd_f32(p, s1, g, n, step, 1e-3, 0.9, 0.0, 0.0, 1.0, 0, 0)
    raise SystemExit(f"unknown kernel {kernel!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkouts", nargs="+", help="checkouts with the C module built in place")
    ap.add_argument("--kernel", default="adam", choices=["adam", "adagrad", "rmsprop", "sgd"])
    ap.add_argument("--n", default="1e7", help="elements (default 1e7)")
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    n = int(float(args.n))
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32) * 1e-3]
    arrays += [np.zeros(n, np.float32) for _ in range(3)]
    calls = {c: caller(load(f"ab{i}", c), args.kernel, arrays, n) for i, c in enumerate(args.checkouts)}
    times = {c: [] for c in calls}
    reps = max(1, int(3e6 // n))
    step = 1
    for _ in range(args.rounds):
        for c, call in calls.items():
            call(step)
            t = time.perf_counter()
            for _ in range(reps):
                call(step)
            times[c].append((time.perf_counter() - t) / reps)
            step += 1
    for c, ts in times.items():
        us = np.array(ts) * 1e6
        print(f"{args.kernel} n={n} {c}: min {us.min():.1f}  p25 {np.percentile(us, 25):.1f}  "
              f"median {np.median(us):.1f} us")


if __name__ == "__main__":
    main()
