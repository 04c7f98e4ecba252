"""Solvers: agreement between them, batching (vmap) against a loop, warm starts, statuses."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import (
    LBFGS,
    NEWTON,
    QP,
    equilibrium_report,
    random_circuit,
    random_ideal_diode_circuit,
    random_inputs,
    random_targets,
)

import kirchhoff as kh


@pytest.mark.parametrize("seed", [0, 1])
def test_newton_and_lbfgs_reach_the_same_equilibrium(seed):
    circuit = random_circuit(seed, topology=0)
    x = random_inputs(seed)
    newton, lbfgs = NEWTON.solve(circuit, x), LBFGS.solve(circuit, x)
    assert bool(newton.status == kh.Status.SUCCESS) and bool(lbfgs.status == kh.Status.SUCCESS)
    np.testing.assert_allclose(lbfgs.free, newton.free, rtol=0, atol=1e-9)
    # Newton converges quadratically, L-BFGS superlinearly at best
    assert 0 < int(newton.n_steps) < int(lbfgs.n_steps)


@pytest.mark.parametrize(
    "solver, make_circuit",
    [(NEWTON, random_circuit), (QP, random_ideal_diode_circuit)],
    ids=["DampedNewton", "BoxQP"],
)
def test_batched_solve_equals_loop(solver, make_circuit):
    circuit = make_circuit(0, topology=0)
    xs = random_inputs(5, batch=4)
    ys = random_targets(5, batch=4)
    for beta, targets in ((0.0, None), (0.3, ys)):
        batched = solver.solve(circuit, xs, targets, beta)
        assert batched.free.shape == (4, circuit.n_free) and (
            batched.status == kh.Status.SUCCESS
        ).shape == (4,)
        for b in range(4):
            single = solver.solve(circuit, xs[b], None if targets is None else ys[b], beta)
            np.testing.assert_allclose(batched.free[b], single.free, rtol=0, atol=1e-11)
            assert bool((batched.status == kh.Status.SUCCESS)[b]) and bool(
                single.status == kh.Status.SUCCESS
            )
            assert int(batched.n_steps[b]) == int(single.n_steps)
        # the examples differ, so the batch is not one solve repeated
        assert np.ptp(np.asarray(batched.free), axis=0).max() > 0.1


def test_warm_start():
    circuit = random_circuit(0, topology=0)
    x, y = random_inputs(0), random_targets(0)
    free = NEWTON.solve(circuit, x)
    again = NEWTON.solve(circuit, x, init=free.free)
    assert int(again.n_steps) == 0
    np.testing.assert_array_equal(again.free, free.free)
    # a small nudge from the free state takes fewer steps than from zero
    cold = NEWTON.solve(circuit, x, y, 1e-3)
    warm = NEWTON.solve(circuit, x, y, 1e-3, init=free.free)
    assert int(warm.n_steps) < int(cold.n_steps)
    np.testing.assert_allclose(warm.free, cold.free, rtol=0, atol=1e-12)
    # and the nudge moves the outputs towards the target
    out = lambda eq: np.asarray(circuit.output_potentials(eq.free, jnp.asarray(x)))
    assert np.linalg.norm(out(warm) - y) < np.linalg.norm(out(free) - y)


def test_newton_survives_float32_cold_start():
    """From zero potentials a diode facing a 3 V input is ~100 thermal voltages into forward
    bias: in float32 the Hessian is then numerically singular. The damped Newton step must
    fall back to a safe direction instead of stepping into NaN (this case once did)."""
    x64 = random_inputs(3, batch=3)[2]
    with jax.enable_x64(False):
        circuit = random_circuit.__wrapped__(2, 2)  # built afresh, in float32
        x = jnp.asarray(x64, jnp.float32)
        eq = kh.DampedNewton().solve(circuit, x)
        assert eq.free.dtype == jnp.float32
        assert bool(eq.status == kh.Status.SUCCESS)
        free = np.asarray(eq.free, np.float64)
    # KCL in float64 at the float32 solution: as good as float32 allows
    circuit = random_circuit(2, 2)
    kcl = np.asarray(equilibrium_report(circuit, jnp.asarray(free), x64)["kcl"])
    assert np.max(np.abs(kcl)) < 1e-3
    assert np.max(np.abs(free)) > 0.5


def test_assembled_hessian_equals_autodiff():
    # the element-by-element Laplacian + diode assembly against jax.hessian of the energy,
    # on a random nonlinear circuit and on one with amplifiers (gains and 1/A² weights)
    circuit = random_circuit(0, 0)
    x = jnp.asarray(random_inputs(1, circuit.n_inputs))
    z = jax.random.normal(jax.random.PRNGKey(3), (circuit.n_free,)) * 0.3
    ref = jax.hessian(circuit.energy)(z, x)
    np.testing.assert_allclose(circuit.energy_hessian(z, x), ref, rtol=1e-12, atol=1e-14)
    amp = kh.Circuit(
        [
            kh.Ground("gnd"),
            kh.Input("in"),
            kh.Resistor(["in", "a"], ["a", "gnd"], [1.0, 2.0]),
            kh.Amplifier("a", "b", 3.0),
            kh.Resistor("b", "c", 0.7),
            kh.ShockleyDiode("c", "gnd", 1e-4),
            kh.Amplifier("c", "d", -0.5),
            kh.Resistor(["d", "e"], ["e", "gnd"], [0.4, 1.5]),
        ],
        outputs=["e"],
    )
    za = jnp.array([0.3, 0.2, -0.1])
    xa = jnp.array([1.0])
    np.testing.assert_allclose(
        amp.energy_hessian(za, xa), jax.hessian(amp.energy)(za, xa), rtol=1e-12, atol=1e-14
    )
