"""The C backend: thin calls into the cffi extension built from csrc/ (fastloss._fastloss_c).

Arrays reach C as pointers from ffi.from_buffer (no copy); cffi releases the GIL around
every call.  One module per kernel family; same functions and signatures as the other
backends."""
from ._lib import ffi, lib
from .classification import (  # noqa: F401
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, cross_entropy_prob, hinge,
    multi_margin, squared_hinge)
from .regression import huber, mae, mse, sgd, smooth_l1, smooth_l2  # noqa: F401
from .adaptive import adagrad, adam, norm_acc, rmsprop, scale  # noqa: F401

NAME = "c"


def set_num_threads(n):
    lib.fl_set_num_threads(int(n))


def info():
    return {"simd path": ffi.string(lib.fl_simd_path()).decode(), "abi version": lib.fl_abi_version(),
            "threads": lib.fl_get_num_threads()}
