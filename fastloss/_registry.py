"""One table of kernels: what tests, `python -m fastloss check` and the benchmarks iterate.

Each entry names a public function, the hyperparameter variants worth checking, how to
draw valid inputs, and the memory streams of one element (for the roofline).  Adding a
kernel here is what puts it under every backend x dtype x size test and benchmark.
"""
from dataclasses import dataclass, field

import numpy as np

from . import losses, optim

DTYPES = (np.float32, np.float64)
COMPILED = ("c", "numba")
# sizes that break SIMD alignment and cross the threading threshold
SIZES = (0, 1, 7, 15, 16, 17, 127, 1025, 100003)


@dataclass(frozen=True)
class LossKernel:
    name: str
    func: object                      # public function (pred, target, **hyper, reduction, grad, out, backend)
    variants: tuple = ({},)           # hyperparameter sets
    streams: int = 3                  # arrays touched per element: read pred, target; write grad
    kinks: object = None              # hyper -> |d| values where the gradient jumps (finite differences avoid them)

    def sample(self, rng, shape, dtype):
        """Valid (pred, target) for this loss: errors spread across every branch."""
        pred = rng.standard_normal(shape) * 2.0
        target = rng.standard_normal(shape)
        return pred.astype(dtype), target.astype(dtype)


@dataclass(frozen=True)
class OptimKernel:
    name: str
    func: object                      # functional in-place kernel
    options: dict = field(default_factory=dict)   # option -> values, the grid tests cover
    base: dict = field(default_factory=dict)      # hyperparameters every call gets (e.g. lr)
    valid: object = None              # options -> False for combinations the API rejects
    state: object = None              # options -> names of the state arrays the call needs
    streams: object = None            # options -> arrays touched per element (reads + writes)

    def grid(self):
        """Every valid combination of the options."""
        out = [{}]
        for k, values in self.options.items():
            out = [{**o, k: v} for o in out for v in values]
        return [o for o in out if self.valid is None or self.valid(o)]

    def hyper(self, options):
        return {**self.base, **options}


LOSSES = {
    "mse": LossKernel("mse", losses.mse),
    "smooth_l2": LossKernel("smooth_l2", losses.smooth_l2),
    "mae": LossKernel("mae", losses.mae, kinks=lambda h: (0.0,)),
    "huber": LossKernel("huber", losses.huber, variants=({"delta": 1.0}, {"delta": 0.3}, {"delta": 2.5}),
                        kinks=lambda h: (h["delta"],)),
    "smooth_l1": LossKernel("smooth_l1", losses.smooth_l1,
                            variants=({"beta": 1.0}, {"beta": 0.4}, {"beta": 0.0}),
                            kinks=lambda h: (h["beta"],)),
}

OPTIMIZERS = {
    "sgd": OptimKernel(
        "sgd", optim.sgd_,
        options={"momentum": (0.0, 0.9), "dampening": (0.0, 0.3), "nesterov": (False, True),
                 "weight_decay": (0.0, 0.01), "maximize": (False, True)},
        base={"lr": 0.05},
        valid=lambda o: not o["nesterov"] or (o["momentum"] > 0 and o["dampening"] == 0),
        state=lambda o: ("momentum_buffer",) if o.get("momentum", 0) else (),
        streams=lambda o: 3 + (2 if o.get("momentum", 0) else 0),
    ),
}

