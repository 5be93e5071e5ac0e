"""`python -m fastloss bench --cold`: smoke tests (small sizes, few samples) of the cold-cache
mode and its bookkeeping.  No timing is asserted: the numbers depend on the machine's load."""
import csv
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from fastloss import _bench


def _cli(cwd, *args):
    return subprocess.run([sys.executable, "-m", "fastloss", *args], capture_output=True, text=True, cwd=cwd)


def test_cli_bench_cold_says_cold_everywhere(tmp_path):
    js, cs = tmp_path / "cold.json", tmp_path / "cold.csv"
    r = _cli(tmp_path, "bench", "--cold", "--quick", "--kernels", "mse,sgd", "--sizes", "1e3",
             "--samples", "2", "--evict-mb", "40", "--json", str(js), "--csv", str(cs))
    assert r.returncode == 0, r.stderr
    assert "COLD CACHES" in r.stdout and "MEDIAN" in r.stdout
    assert "mse n=1e3 · COLD caches" in r.stdout and "sgd n=1e3 · COLD caches" in r.stdout
    assert "targets, measured with COLD caches" in r.stdout and "[cold]" in r.stdout
    result = json.loads(js.read_text())
    meta = result["meta"]
    assert meta["mode"] == "cold" and meta["statistic"] == "median"
    assert meta["evict_bytes"] == 40 << 20 and meta["samples_per_row"] == 2
    assert result["rows"]
    for row in result["rows"]:
        assert row["mode"] == "cold" and row["stat"] == "median"
        if row["us"] is not None:
            assert row["samples"] + row["disturbed"] >= 2 and row["min_us"] <= row["us"] and row["redone"] >= 0
    with open(cs) as f:
        rows = list(csv.DictReader(f))
    assert rows and all(r["mode"] == "cold" and r["stat"] == "median" for r in rows)


def test_cli_bench_cold_options_need_cold(tmp_path):
    r = _cli(tmp_path, "bench", "--quick", "--samples", "3")
    assert r.returncode == 2 and "--cold" in r.stderr


def test_warm_rows_say_warm():
    lines = []
    result = _bench.run(kernels=["mse"], sizes=(1000,), quick=True, impls=["c", "roofline"], out=lines.append)
    assert result["meta"]["mode"] == "warm" and result["meta"]["statistic"] == "min"
    assert all(r["mode"] == "warm" and r["stat"] == "min" and r["samples"] is None for r in result["rows"])
    assert not any("COLD" in line or "[cold]" in line for line in lines)


def test_evictor_writes_its_buffer_and_stays_finite():
    ev = _bench.Evictor(2 << 20)
    assert ev.nbytes == 2 << 20 and ev.buf.size == (2 << 20) // 4
    for _ in range(50):
        ev()
    assert np.all(np.isfinite(ev.buf)) and np.all((ev.buf > 1.0) & (ev.buf <= 2.0))


def test_cold_samples_pool_and_summarize():
    case = _bench.cases(["adam"], sizes=(100_000,))[0]
    a = {"c": {"samples": [(3.0, True), (1.0, True), (50.0, False)], "redone": 1, "detail": "x", "threads": None},
         "torch": {"samples": None, "detail": "failed: E", "threads": None},
         "optax": {"samples": None, "detail": "failed: E", "threads": None},
         "roofline": {"by_threads": {1: [(5.0, True)], 2: [(2.0, True), (9.0, True)]}}}
    b = {"c": {"samples": [(2.0, True)], "redone": 2, "detail": "x", "threads": None},
         "torch": {"samples": [(1.0, False)], "detail": "y", "threads": None},
         "roofline": {"by_threads": {1: [(5.0, True), (5.0, True)], 2: [(1.0, True)]}}}
    m = _bench.summarize_cold(case, _bench.merge_cold(a, b))
    assert m["c"]["s"] == 2.0 and m["c"]["samples"] == 3 and m["c"]["min"] == 1.0 and m["c"]["redone"] == 3
    assert m["c"]["disturbed"] == 1                      # 50.0: left out
    assert m["torch"]["s"] == 1.0 and m["torch"]["detail"] == "y"   # failed in one pass only
    assert m["torch"]["disturbed"] == 1 and m["torch"]["samples"] == 1   # none clean: all kept, counted
    assert m["optax"]["s"] is None and m["optax"]["detail"] == "failed: E"
    assert m["roofline"]["threads"] == 2 and m["roofline"]["s"] == 2.0   # median 2.0 < 5.0
    rows = _bench.case_rows(case, m, "cold")
    by = {r["impl"]: r for r in rows}
    assert by["c"]["of_roofline"] == pytest.approx(1.0) and by["c"]["mode"] == "cold"
    assert by["c"]["q1_us"] == pytest.approx(1.5e6) and by["c"]["q3_us"] == pytest.approx(2.5e6)


class _FakeWaits:
    """RunQueueWait stand-in: the run-queue wait grows by the given ns across each call."""

    def __init__(self, waits):
        self.waits, self.now, self.reads = list(waits), 0, 0

    def total(self):
        self.reads += 1
        if self.reads % 2 == 0:              # the read after the call
            self.now += self.waits.pop(0)
        return self.now


def test_cold_sample_redoes_disturbed_calls():
    evictions = []
    times = iter([0.008, 0.009, 0.0001, 1.0])
    waits = _FakeWaits([8_000_000, 16_000_000, 1_000])     # 8 ms, 16 ms: disturbed; 1 us: not
    s, redone, clean = _bench.cold_sample(lambda: next(times), lambda: evictions.append(1), waits)
    assert (s, redone, clean, len(evictions)) == (0.0001, 2, True, 3)
    # every try disturbed: the last is kept, counted
    s, redone, clean = _bench.cold_sample(lambda: 0.01, lambda: None, _FakeWaits([10**7] * 3), retries=2)
    assert (s, redone, clean) == (0.01, 2, False)
    # no schedstat: nothing is redone
    s, redone, clean = _bench.cold_sample(lambda: 0.01, lambda: None, type("W", (), {"total": lambda self: None})())
    assert (s, redone, clean) == (0.01, 0, True)


def test_run_queue_wait_reads_this_process():
    """Where Linux has schedstat the total only grows and the thread files are held open;
    where it has none total() says so with None (no skip either way)."""
    w = _bench.RunQueueWait()
    a = w.total()
    if os.path.exists("/proc/self/task/%d/schedstat" % threading.get_native_id()):
        assert isinstance(a, int) and w.total() >= a and w.fds
    else:
        assert a is None and w.total() is None and not w.fds
    w.close()


def test_dram_bound_rows_use_the_roofline_timed_next_to_them(monkeypatch):
    """Past twice the last-level cache each row's fraction is the median ratio of single
    calls timed back to back with a roofline pass (the host's DRAM bandwidth drifts);
    smaller cases keep the ratio of the best times."""
    case = _bench.cases(["adam"], sizes=(100_000,))[0]       # 2.8 MB per call
    a = {"c": {"s": 2.0, "pair_ratio": 0.8, "detail": "x", "threads": None},
         "numba": {"s": 4.0, "detail": "x", "threads": None},
         "roofline": {"s": 0.5, "threads": 2, "detail": "copy"}}
    by = {r["impl"]: r for r in _bench.case_rows(case, a)}
    assert by["c"]["of_roofline"] == pytest.approx(0.8) and by["c"]["roofline_paired"]
    assert by["numba"]["of_roofline"] == pytest.approx(0.125) and not by["numba"]["roofline_paired"]
    assert by["roofline"]["of_roofline"] == pytest.approx(1.0)
    assert "DRAM-bound" in _bench.format_case(case, list(by.values()))
    a["c"]["speedup"] = {"torch": 3.0, "numba": 1.5}
    a["torch"] = {"s": 5.0, "detail": "t", "threads": None}
    by = {r["impl"]: r for r in _bench.case_rows(case, a)}
    assert _bench.speedup_of(by["c"], by["torch"]) == 3.0 and by["numba"]["vs_c"] == 1.5   # paired
    assert _bench.speedup_of(by["numba"], by["torch"]) == pytest.approx(1.25)           # 5.0 / 4.0
    seq = iter([3.0, 1.0, 4.0, 2.0, 5.0, 10.0])     # ref, run / run, ref / ref, run: 3, 0.5, 0.5
    assert _bench.pair_ratio(lambda: next(seq), lambda: next(seq), pairs=3, gap=0.0) == pytest.approx(0.5)
    for llc, paired in ((1 << 20, True), (64 << 20, False)):
        monkeypatch.setattr(_bench, "largest_cache_bytes", lambda llc=llc: llc)
        m = _bench.measure_case(case, impls=["c", "numba", "textbook", "roofline"], min_time=0.001,
                                repeats=2, rounds=2)
        assert ("pair_ratio" in m["c"]) == paired and m["c"]["s"] > 0 and m["roofline"]["s"] > 0
        if paired:
            # which rows were paired, not how fast anything was (no timing is asserted)
            assert np.isfinite(m["c"]["pair_ratio"]) and m["c"]["pair_ratio"] > 0
            assert set(m["c"]["speedup"]) == {"numba", "textbook"}
            assert set(m["numba"]["speedup"]) == {"textbook"} and "speedup" not in m["textbook"]
            assert all(np.isfinite(v) and v > 0 for v in m["c"]["speedup"].values())
        else:
            assert "speedup" not in m["c"]
