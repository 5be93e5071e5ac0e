"""pytest-benchmark over the registry: one group per (kernel, n), every fastloss backend and
PyTorch (when installed) side by side.

Disabled by default (pyproject's addopts has --benchmark-disable), so a plain `pytest` runs
each case once as a smoke test.  Measure for real with:

    pytest bench --benchmark-enable --benchmark-group-by=group --benchmark-columns=min,median,rounds
"""
import numpy as np
import pytest

from fastloss import _bench, _config
from fastloss._registry import LOSSES, OPTIMIZERS

SIZES = (1_000, 100_000, 1_000_000, 10_000_000)

try:
    import torch
except ImportError:
    torch = None

IMPLS = tuple(_config.backends()) + (("torch",) if torch is not None else ())
CASES = ([(k, _bench.loss_impls) for k in LOSSES.values()]
         + [(k, _bench.optim_impls) for k in OPTIMIZERS.values()])


@pytest.mark.parametrize("n", SIZES, ids=lambda n: f"n={n:.0e}")
@pytest.mark.parametrize("kernel,make", CASES, ids=[k.name for k, _ in CASES])
@pytest.mark.parametrize("impl", IMPLS)
def bench_kernel(benchmark, kernel, make, n, impl):
    impls, nbytes = make(kernel, n, np.float32, _config.backends(), torch)
    assert impl in impls, f"no {impl} implementation of {kernel.name}"
    benchmark.group = f"{kernel.name} n={n:.0e}"
    benchmark.extra_info["bytes"] = nbytes
    benchmark(impls[impl])
