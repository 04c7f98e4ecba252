"""benchmarks/spice_speed.py's timing fit and output paths (no ngspice run: fast)."""

import os

import numpy as np
import pytest
from helpers import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("spice_speed")


def test_fit_recovers_startup_and_per_point(bench):
    sizes = [2, 34, 67, 100]
    noise = np.array([0.01, -0.02, 0.015, -0.005])  # small beside 0.37 s a point
    seconds = 7.5 + 0.37 * np.array(sizes) + noise
    fit = bench.fit_startup_and_per_point(sizes, seconds)
    assert fit["per_point_resolved"]
    assert fit["per_point_s"] == pytest.approx(0.37, rel=1e-3)
    assert fit["startup_s"] == pytest.approx(7.5, abs=0.05)
    assert fit["slope_stderr_s"] < 1e-3


def test_fit_exact_line_has_zero_stderr(bench):
    fit = bench.fit_startup_and_per_point([1, 2, 4], [3.0, 5.0, 9.0])
    assert fit["per_point_resolved"] and fit["slope_stderr_s"] == pytest.approx(0.0, abs=1e-12)
    assert (fit["per_point_s"], fit["startup_s"]) == pytest.approx((2.0, 1.0))


def test_fit_within_noise_is_flagged_never_negative(bench):
    # start-up dominates and the largest batch happened to run faster: the old difference of
    # two runs, (t[-1] - t[0]) / (n[-1] - n[0]), would give a negative time per point
    sizes, seconds = [2, 5, 8], [8.3, 8.1, 7.9]
    assert (seconds[-1] - seconds[0]) / (sizes[-1] - sizes[0]) < 0
    fit = bench.fit_startup_and_per_point(sizes, seconds)
    assert fit["slope_s"] < 0 and not fit["per_point_resolved"]
    # the fallback is an upper bound (start-up included), positive: the least time per point
    assert fit["per_point_s"] == pytest.approx(7.9 / 8)
    assert 0 <= fit["startup_s"] <= min(seconds)


def test_fit_positive_but_unresolved_slope_is_flagged(bench):
    # a positive slope smaller than its noise: not claimed as resolved
    fit = bench.fit_startup_and_per_point([2, 5, 8], [8.0, 8.6, 8.05])
    assert 0 < fit["slope_s"] < 2 * fit["slope_stderr_s"]
    assert not fit["per_point_resolved"] and fit["per_point_s"] > 0


def test_fit_needs_three_sizes(bench):
    with pytest.raises(ValueError):
        bench.fit_startup_and_per_point([2, 100], [8.0, 44.0])
    with pytest.raises(ValueError):
        bench.fit_startup_and_per_point([2, 2, 100], [8.0, 8.1, 44.0])


def test_quick_mode_writes_its_own_files(bench):
    quick, full = bench.output_paths(True), bench.output_paths(False)
    assert set(quick).isdisjoint(full)
    assert [os.path.basename(p) for p in full] == ["spice_speed.json", "spice_speed.png"]
    assert [os.path.basename(p) for p in quick] == [
        "spice_speed_quick.json",
        "spice_speed_quick.png",
    ]
    # every sweep size is ≥ 2 (a batch of one is an op, not a sweep) and there are ≥ 3 of them
    for sizes in bench.SWEEP_SIZES.values():
        assert len(set(sizes)) >= 3 and min(sizes) >= 2
