"""In-place optimizer kernels (functional, ``*_``) and stateful optimizers over them."""
from ._base import Optimizer
from .adagrad import Adagrad, adagrad_
from .adam import Adam, AdamW, adam_, adamw_
from .rmsprop import RMSprop, rmsprop_
from .sgd import SGD, sgd_

__all__ = ["Optimizer", "SGD", "sgd_", "Adam", "adam_", "AdamW", "adamw_", "Adagrad", "adagrad_",
           "RMSprop", "rmsprop_"]
