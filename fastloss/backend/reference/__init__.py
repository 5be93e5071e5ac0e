"""The reference backend: the textbook formulas in plain NumPy, computed in float64.

It is what the tests and `python -m fastloss check` compare the compiled backends against,
never a fast path.  Same functions and signatures as the other backends; results are cast
to the arrays' dtype only when written.  One module per kernel family."""
import numpy as np

from .classification import (  # noqa: F401
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, cross_entropy_prob, hinge,
    multi_margin, squared_hinge)
from .regression import huber, mae, mse, sgd, smooth_l1, smooth_l2  # noqa: F401
from .adaptive import adagrad, adam, norm_acc, rmsprop, scale  # noqa: F401

NAME = "numpy"


def set_num_threads(n):
    """The reference is single-threaded NumPy."""


def info():
    return {"numpy": np.__version__}
