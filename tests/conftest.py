import numpy as np
import pytest

from helpers import assert_close, tol  # noqa: F401  (re-exported for older imports)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
