"""One table of kernels: what tests, `python -m fastloss check` and the benchmarks iterate.

Each entry names a public function, the hyperparameter variants worth checking, how to
draw valid inputs, and the memory streams of one element (for the roofline).  Adding a
kernel here is what puts it under every backend x dtype x size test and benchmark.
"""
from dataclasses import dataclass, field

import numpy as np

from . import classification, losses, optim

DTYPES = (np.float32, np.float64)
COMPILED = ("c", "numba")
# sizes that break SIMD alignment and cross the threading threshold
SIZES = (0, 1, 7, 15, 16, 17, 127, 1025, 100003)


def _regression_sample(rng, shape, dtype):
    """(pred, target) with errors spread across every branch."""
    return (rng.standard_normal(shape) * 2.0).astype(dtype), rng.standard_normal(shape).astype(dtype)


@dataclass(frozen=True)
class LossKernel:
    name: str
    func: object                      # public function (input, target, **hyper, reduction, grad, out, backend)
    variants: tuple = ({},)           # hyperparameter sets
    streams: int = 3                  # arrays touched per input element: e.g. read pred, target; write grad
    kinks: object = None              # hyper -> |d| values where the gradient jumps (finite differences avoid them)
    sampler: object = _regression_sample   # (rng, shape, dtype) -> (input, target); shape[0] = samples

    def sample(self, rng, shape, dtype):
        """Valid (input, target) of this loss for `shape` samples."""
        return self.sampler(rng, shape, dtype)

    def bind(self, hyper, x):
        """A variant's hyperparameters for the input x: a value given as a function (such as
        _per_element) is called with x."""
        return {k: v(x) if callable(v) else v for k, v in hyper.items()}


CLASSES = 17   # odd: rows that break SIMD alignment
_W = np.random.default_rng(7).uniform(0.2, 2.0, 64)   # fixed class weights for the variants


def _per_element(seed):
    """A variant's weight of the input's shape and dtype, different in every element (a
    kernel that indexes it wrongly, in any thread's chunk, gives other results)."""
    return lambda x: np.random.default_rng(seed).uniform(0.2, 2.0, x.shape).astype(x.dtype)


def _ce_sample(rng, shape, dtype):
    """logits (n, C, *rest) with a spread of +-6, class indices (n, *rest), every 5th ignored."""
    n, rest = shape[0], tuple(shape[1:])
    logits = (rng.standard_normal((n, CLASSES) + rest) * 3.0).astype(dtype)
    target = rng.integers(0, CLASSES, (n,) + rest)
    target.reshape(-1)[::5] = -100
    return logits, target


def _ce_prob_sample(rng, shape, dtype):
    logits, _ = _ce_sample(rng, shape, dtype)
    q = rng.random(logits.shape) ** 3
    return logits, (q / q.sum(axis=1, keepdims=True)).astype(dtype)


def _bce_sample(rng, shape, dtype):
    return rng.uniform(0.02, 0.98, shape).astype(dtype), rng.random(shape).astype(dtype)


def _bce_logits_sample(rng, shape, dtype):
    return (rng.standard_normal(shape) * 4.0).astype(dtype), rng.random(shape).astype(dtype)


def _hinge_sample(rng, shape, dtype):
    return (rng.standard_normal(shape) * 1.5).astype(dtype), rng.choice([-1.0, 1.0], shape).astype(dtype)


def _margin_sample(rng, shape, dtype):
    n = shape[0]
    return (rng.standard_normal((n, 7)) * 1.5).astype(dtype), rng.integers(0, 7, n)


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

CLASSIFICATION = {
    "cross_entropy": LossKernel(
        "cross_entropy", classification.cross_entropy, sampler=_ce_sample, streams=2,
        variants=({}, {"label_smoothing": 0.15}, {"weight": _W[:CLASSES]},
                  {"weight": _W[:CLASSES], "label_smoothing": 0.3})),
    "cross_entropy_prob": LossKernel(
        "cross_entropy_prob", classification.cross_entropy, sampler=_ce_prob_sample, streams=3,
        variants=({}, {"weight": _W[:CLASSES], "label_smoothing": 0.2})),
    "binary_cross_entropy": LossKernel(
        "binary_cross_entropy", classification.binary_cross_entropy, sampler=_bce_sample,
        variants=({}, {"weight": [0.5]}, {"weight": _per_element(1)})),
    "binary_cross_entropy_with_logits": LossKernel(
        "binary_cross_entropy_with_logits", classification.binary_cross_entropy_with_logits,
        sampler=_bce_logits_sample,
        variants=({}, {"pos_weight": [1.7], "weight": [0.8]},
                  {"pos_weight": _per_element(2), "weight": _per_element(3)})),
    "hinge": LossKernel("hinge", classification.hinge, sampler=_hinge_sample,
                        variants=({"margin": 1.0}, {"margin": 0.5}, {"margin": 0.8, "weight": _per_element(4)})),
    "squared_hinge": LossKernel("squared_hinge", classification.squared_hinge, sampler=_hinge_sample,
                                variants=({"margin": 1.0}, {"margin": 0.5},
                                          {"margin": 0.8, "weight": _per_element(5)})),
    "multi_margin": LossKernel(
        "multi_margin", classification.multi_margin, sampler=_margin_sample, streams=2,
        variants=({"p": 1}, {"p": 2, "margin": 0.7}, {"p": 1, "weight": _W[:7]})),
}
REGRESSION = LOSSES
ALL_LOSSES = {**REGRESSION, **CLASSIFICATION}

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
    # The adaptive optimizers divide g by its own running magnitude, so where random inputs make
    # grad + weight_decay*param cancel to ~1e-7 the float32 rounding of weight_decay (0.1f) is
    # amplified into a ~1e-5 disagreement with the float64 reference (torch's float32 Adam does
    # the same).  Their weight decays are powers of two: wd*param is then exact in float32 and the
    # cancelling sum exact too (Sterbenz), so the comparison measures the kernels alone.
    # Adam: read param, grad, exp_avg, exp_avg_sq; write param, exp_avg, exp_avg_sq (+ amsgrad's max)
    "adam": OptimKernel(
        "adam", optim.adam_,
        options={"amsgrad": (False, True), "maximize": (False, True), "weight_decay": (0.0, 0.125),
                 "decoupled_weight_decay": (False, True)},
        base={"lr": 0.01},
        valid=lambda o: not o["decoupled_weight_decay"] or o["weight_decay"] > 0,
        state=lambda o: ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if o.get("amsgrad") else ()),
        streams=lambda o: 7 + (2 if o.get("amsgrad") else 0),
    ),
    "adamw": OptimKernel(
        "adamw", optim.adamw_,
        options={"amsgrad": (False, True), "maximize": (False, True)},
        base={"lr": 0.01, "weight_decay": 0.0625},
        state=lambda o: ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if o.get("amsgrad") else ()),
        streams=lambda o: 7 + (2 if o.get("amsgrad") else 0),
    ),
    "adagrad": OptimKernel(
        "adagrad", optim.adagrad_,
        options={"lr_decay": (0.0, 0.05), "weight_decay": (0.0, 0.125), "maximize": (False, True)},
        base={"lr": 0.05},
        state=lambda o: ("state_sum",),
        streams=lambda o: 5,
    ),
    "rmsprop": OptimKernel(
        "rmsprop", optim.rmsprop_,
        options={"momentum": (0.0, 0.9), "centered": (False, True), "weight_decay": (0.0, 0.125),
                 "maximize": (False, True)},
        base={"lr": 0.01},
        state=lambda o: (("square_avg",) + (("momentum_buffer",) if o.get("momentum", 0) else ())
                         + (("grad_avg",) if o.get("centered") else ())),
        streams=lambda o: 5 + (2 if o.get("momentum", 0) else 0) + (2 if o.get("centered") else 0),
    ),
}

