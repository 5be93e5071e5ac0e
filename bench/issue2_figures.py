"""Issue 2 figures: MSE loss+grad and SGD+momentum at n=1e7, per-call at n=1e3 (f32, default threads)."""
import timeit
import numpy as np, torch, fastloss
from fastloss import optim
F = torch.nn.functional
def best(f, number, repeat=7):
    f(); return min(timeit.repeat(f, number=number, repeat=repeat)) / number
rng = np.random.default_rng(0)
n = 10**7
p = rng.standard_normal(n).astype(np.float32); t = rng.standard_normal(n).astype(np.float32); g = np.empty_like(p)
r = {}
for b in ("c", "numba"):
    r[f"mse {b}"] = best(lambda: fastloss.mse(p, t, out=g, backend=b), 10)
r["mse numpy reference"] = best(lambda: fastloss.mse(p, t, out=g, backend="numpy"), 2, 3)
tp = torch.from_numpy(p.copy()).requires_grad_(True); tt = torch.from_numpy(t)
def tf():
    tp.grad = None; F.mse_loss(tp, tt).backward()
r["mse torch fwd+bwd"] = best(tf, 10)
w = p.copy(); buf = np.zeros_like(w); gr = (t * 1e-3).astype(np.float32)
for b in ("c", "numba"):
    r[f"sgd {b}"] = best(lambda: optim.sgd_(w, gr, buf, step=2, lr=1e-6, momentum=0.9, backend=b), 10)
tw = torch.from_numpy(p.copy()); tw.grad = torch.from_numpy(gr)
o = torch.optim.SGD([tw], lr=1e-6, momentum=0.9, fused=True)
r["sgd torch fused"] = best(o.step, 10)
a = p[:1000].copy(); bb = t[:1000].copy(); ga = np.empty_like(a); ba = np.zeros_like(a)
r["mse n=1e3 per call"] = best(lambda: fastloss.mse(a, bb, out=ga), 20000)
r["huber n=1e3 per call"] = best(lambda: fastloss.huber(a, bb, delta=0.5), 20000)
r["sgd n=1e3 per call"] = best(lambda: optim.sgd_(a, bb, ba, step=2, lr=1e-6, momentum=0.9), 20000)
for k, v in r.items():
    print(f"{k:28s} {v*1e6:10.1f} us")
print(f"MSE c vs torch: {r['mse torch fwd+bwd']/r['mse c']:.2f}x, vs numpy reference: {r['mse numpy reference']/r['mse c']:.1f}x")
print(f"SGD c vs torch fused: {r['sgd torch fused']/r['sgd c']:.2f}x")
