"""pytest-benchmark over the cases of `python -m fastloss bench` (fastloss/_bench.py): one group
per (kernel, size), holding fastloss c and numba, NumPy as textbooks write it, PyTorch,
optax/JAX and DeepSpeed (each only when installed) and the roofline (bench/roofline.c: the
kernel's loads and stores alone, compiled like the library).

Disabled by default (pyproject's addopts has --benchmark-disable): a plain `pytest` then runs
each row once, at the smallest sizes only, as a smoke test.  Measure for real with

    pytest bench --benchmark-enable --benchmark-group-by=group --benchmark-columns=min,median,rounds

(every size; ids are kernel-size-impl: add `-k "adam-1e6"` to pick cases, --benchmark-json PATH to keep the rows:
each row's extra_info has the bytes moved, GB/s and the fraction of its roofline).

Cold caches (as `python -m fastloss bench --cold`): set FASTLOSS_BENCH_COLD=1 and every round
is one call after an eviction of the caches (pedantic's setup: fastloss._bench.Evictor, not
timed), COLD_ROUNDS rounds; GB/s and the fraction of the roofline then use the medians (the
roofline's cold median, timed in C after the same eviction), and extra_info["mode"] says
"cold".  (pytest-benchmark has no hook to redo a disturbed round: run it on a quiet machine.)
"""
import os

from fastloss import _bench

ROOFLINE_C = os.path.join(os.path.dirname(os.path.abspath(__file__)), "roofline.c")
SMOKE_SIZES, SMOKE_SHAPES = (1_000,), ((256, 10),)
COLD = os.environ.get("FASTLOSS_BENCH_COLD", "") not in ("", "0")
COLD_ROUNDS = 60


def _disabled(config):
    bs = getattr(config, "_benchmarksession", None)
    if bs is not None:
        return bs.disabled
    return config.getoption("benchmark_disable", False) and not config.getoption("benchmark_enable", False)


def pytest_generate_tests(metafunc):
    """The (case, impl) list, chosen at collection: every size when benchmarks are enabled,
    the smallest otherwise (a smoke run of every row takes seconds, not minutes)."""
    if "case" not in metafunc.fixturenames:
        return
    smoke = _disabled(metafunc.config)
    cases = _bench.cases(sizes=SMOKE_SIZES if smoke else _bench.SIZES,
                         shapes=SMOKE_SHAPES if smoke else _bench.CE_SHAPES)
    params = [(c, impl) for c in cases for impl in c.impls() + ["roofline"]]
    metafunc.parametrize("case,impl", params,
                         ids=[f"{c.kernel}-{c.label.removeprefix('n=')}-{impl}" for c, impl in params])


_roofline_time = {}


def _roofline_seconds(case):
    if case not in _roofline_time:
        rl = _bench.load_roofline(ROOFLINE_C)
        _roofline_time[case] = (rl.cold_seconds(case.pattern, case.elements, _evictor(), samples=COLD_ROUNDS)
                                if COLD else rl.seconds(case.pattern, case.elements))[0]
    return _roofline_time[case]


_evictors = []


def _evictor():
    if not _evictors:
        _evictors.append(_bench.Evictor())
    return _evictors[0]


def bench_kernel(benchmark, case, impl):
    if impl == "roofline":
        f, detail = _bench.load_roofline(ROOFLINE_C).call(case.pattern, case.elements), str(case.pattern)
    else:
        f, detail = _bench.build(case, impl)
    benchmark.group = case.group
    benchmark.extra_info.update(bytes=case.nbytes, streams=case.pattern.streams, detail=detail,
                                mode="cold" if COLD else "warm")
    if COLD:
        benchmark.pedantic(f, setup=_evictor(), rounds=COLD_ROUNDS, warmup_rounds=1)
    else:
        benchmark(f)
    if not benchmark.disabled:
        best = benchmark.stats.stats.median if COLD else benchmark.stats.stats.min
        benchmark.extra_info["GB/s"] = case.nbytes / best / 1e9
        benchmark.extra_info["of_roofline"] = _roofline_seconds(case) / best
