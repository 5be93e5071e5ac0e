"""fastloss: fused loss-and-gradient kernels and in-place optimizer kernels for CPU training.

Backends: "c" (compiled C, default), "numba" (Numba JIT), "numpy" (float64 reference).
"""
from . import optim, schedules
from ._config import backends, get_backend, get_num_threads, set_backend, set_num_threads
from .classification import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, hinge,
                             log_loss, multi_margin, squared_hinge)
from .losses import huber, l1, mae, mse, smooth_l1, smooth_l2
from .clip import clip_grad_norm, clip_grad_norm_
from .flat import FlatParams

__version__ = "0.1.0"

__all__ = [
    "backends", "get_backend", "set_backend", "get_num_threads", "set_num_threads",
    "mse", "mae", "l1", "smooth_l2", "huber", "smooth_l1", "optim", "schedules",
    "cross_entropy", "binary_cross_entropy", "log_loss", "binary_cross_entropy_with_logits", "hinge",
    "squared_hinge", "multi_margin",
    "FlatParams", "clip_grad_norm", "clip_grad_norm_",
]
