"""In-place optimizer kernels (functional, ``*_``) and stateful optimizers over them."""
from ._base import Optimizer
from .sgd import SGD, sgd_

__all__ = ["Optimizer", "SGD", "sgd_"]
