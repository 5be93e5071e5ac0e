"""The benchmark's textbook NumPy rows compute what the fastloss rows compute (the same loss
and gradient on the same inputs), so that the speed-ups in the tables compare equal work."""
import numpy as np
import pytest

from fastloss import _bench

LOSS_CASES = [c for c in _bench.cases(sizes=(1000,), shapes=((64, 10),), flat=False)
              if c.family in ("loss", "ce")]


@pytest.mark.parametrize("case", LOSS_CASES, ids=lambda c: c.kernel)
def test_textbook_row_computes_the_same_loss_and_gradient(case):
    f_c, _ = _bench.build(case, "c")
    f_tb, _ = _bench.build(case, "textbook")
    got = f_c()
    got = tuple(np.array(v, copy=True) for v in (got if isinstance(got, tuple) else (got,)))
    want = f_tb()
    want = want if isinstance(want, tuple) else (want,)
    assert len(got) == len(want)
    for what, a, b in zip(("loss", "grad"), got, want):
        b = np.asarray(b, np.float64)
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6 * float(np.abs(b).max()),
                                   err_msg=f"{case.kernel} {what}")
