"""`python -m fastloss bench`: time every kernel per backend at a few sizes, PyTorch beside
it when installed.  Timings are the best of several repeats of an auto-sized loop (the
machine is shared: compare ratios within one run, not absolute times across runs)."""
import time

import numpy as np

from . import _config
from ._registry import LOSSES, OPTIMIZERS

SIZES = (1_000, 100_000, 1_000_000, 10_000_000)
QUICK_SIZES = (1_000, 100_000)


def time_call(f, min_time=0.02, repeats=5):
    """Seconds per call: best of `repeats` loops, each sized to run >= min_time."""
    f()
    number = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(number):
            f()
        dt = time.perf_counter() - t0
        if dt >= min_time or number >= 1 << 20:
            break
        number *= 2 if dt > min_time / 8 else 8
    best = dt / number
    for _ in range(repeats - 1):
        t0 = time.perf_counter()
        for _ in range(number):
            f()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def _torch():
    try:
        import torch
        return torch
    except ImportError:
        return None


def loss_impls(k, n, dtype, backends, torch):
    rng = np.random.default_rng(0)
    pred, target = k.sample(rng, (n,), dtype)
    out = np.empty_like(pred)
    hyper = k.variants[0]
    impls = {b: (lambda b=b: k.func(pred, target, out=out, backend=b, **hyper)) for b in backends}
    if torch is not None and k.name in ("mse", "mae", "huber", "smooth_l1", "smooth_l2"):
        F = torch.nn.functional
        fn = {"mse": F.mse_loss, "mae": F.l1_loss, "huber": F.huber_loss, "smooth_l1": F.smooth_l1_loss,
              "smooth_l2": lambda p, t: 0.5 * F.mse_loss(p, t)}[k.name]
        tp = torch.from_numpy(pred.copy()).requires_grad_(True)
        tt = torch.from_numpy(target)

        def torch_fb():
            tp.grad = None
            fn(tp, tt, **hyper).backward()
        impls["torch"] = torch_fb
    return impls, k.streams * np.dtype(dtype).itemsize * n


def optim_impls(k, n, dtype, backends, torch):
    rng = np.random.default_rng(0)
    opts = {"momentum": 0.9} if k.name == "sgd" else {}
    p = rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype) * 1e-3
    state = {s: np.zeros(n, dtype) for s in k.state(opts)}
    hyper = {**k.hyper(opts), "lr": 1e-6}
    impls = {b: (lambda b=b: k.func(p, g, step=2, backend=b, **state, **hyper)) for b in backends}
    if torch is not None and k.name == "sgd":
        tp = torch.from_numpy(p.copy())
        tp.grad = torch.from_numpy(g)
        topt = torch.optim.SGD([tp], fused=True, **hyper)
        impls["torch"] = topt.step
    return impls, k.streams(opts) * np.dtype(dtype).itemsize * n


def run(sizes=SIZES, quick=False, out=print, progress=None, backends=None, dtype=np.float32):
    """Time everything; print the table; return the rows (dicts)."""
    torch = _torch()
    backends = backends or _config.backends()
    min_time, repeats = (0.005, 3) if quick else (0.05, 5)
    jobs = [(k, loss_impls) for k in LOSSES.values()] + [(k, optim_impls) for k in OPTIMIZERS.values()]
    rows = []
    total = len(jobs) * len(sizes)
    done = 0
    for k, make in jobs:
        for n in sizes:
            impls, nbytes = make(k, n, dtype, backends, torch)
            times = {}
            for name, f in impls.items():
                if name == "numpy" and n > 1_000_000 and quick:
                    continue
                times[name] = time_call(f, min_time=min_time, repeats=repeats)
            for name, t in times.items():
                rows.append({"kernel": k.name, "n": n, "impl": name, "us": t * 1e6,
                             "GB/s": nbytes / t / 1e9,
                             "x numpy": times["numpy"] / t if "numpy" in times else None,
                             "x torch": times["torch"] / t if "torch" in times else None})
            done += 1
            if progress:
                progress(f"[{done}/{total}] {k.name} n={n:,}")
    out(format_table(rows))
    return rows


def format_table(rows):
    head = f"{'kernel':<10} {'n':>10} {'impl':<7} {'time (us)':>11} {'GB/s':>7} {'x numpy':>8} {'x torch':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        xn = f"{r['x numpy']:.1f}" if r["x numpy"] is not None else "-"
        xt = f"{r['x torch']:.2f}" if r["x torch"] is not None else "-"
        lines.append(f"{r['kernel']:<10} {r['n']:>10,} {r['impl']:<7} {r['us']:>11.2f} {r['GB/s']:>7.1f} {xn:>8} {xt:>8}")
    return "\n".join(lines)
