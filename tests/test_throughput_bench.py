"""benchmarks/throughput.py's roofline arithmetic and its cost counting of the shipped step
(small sizes only: fast)."""

import jax.numpy as jnp
import pytest
from helpers import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("throughput")


def test_roofline_takes_the_slower_of_compute_and_memory(bench):
    # 1 GFLOP and 1 GB per step of 100 examples on 100 GFLOP/s and 10 GB/s: memory, 0.1 s
    r = bench.roofline(500.0, 100, 1e9, 1e9, 100e9, 10e9)
    assert r["bound_by"] == "memory"
    assert r["roofline_examples_per_s"] == pytest.approx(1000.0)
    assert r["fraction_of_roofline"] == pytest.approx(0.5)
    assert r["compute_bound_examples_per_s"] == pytest.approx(10_000.0)
    # ten times the FLOPs: compute-bound at the same 0.1 s
    r = bench.roofline(500.0, 100, 10e9, 1e8, 100e9, 10e9)
    assert r["bound_by"] == "compute" and r["roofline_examples_per_s"] == pytest.approx(1000.0)
    assert r["flops_per_example"] == 1e8 and r["bytes_per_example"] == 1e6


def test_bandwidth_at_uses_the_measured_size_that_holds_the_working_set(bench):
    curve = {1: 40e9, 16: 30e9, 256: 10e9}
    assert bench.bandwidth_at(curve, 0.5 * 2**20) == 40e9
    assert bench.bandwidth_at(curve, 12 * 2**20) == 30e9
    assert bench.bandwidth_at(curve, 2**30) == 10e9  # beyond every size: the largest's


def test_step_costs_count_the_shipped_step(bench):
    """XLA's count of the shipped step's FLOPs is at least the products any implementation
    must do, and it moves at least the conductances once."""
    step, params, opt_state = bench.make_step("drn:784-8-10", 4, 1.0, 2, 0.01, jnp.float32)
    x, y = jnp.zeros((4, 784)), jnp.zeros((4, 10))
    flops, nbytes, mem = bench.step_costs(step, params, opt_state, x, y, None)
    if flops is None:
        pytest.skip("this backend has no cost analysis")
    sizes = (784, 8, 10)
    assert flops >= 4 * bench.flops_per_example(sizes, 2) * 0.9
    weights = 4 * (2 * 784 * 8 + 8 * 10)  # float32 conductances
    assert nbytes >= weights and mem >= weights
