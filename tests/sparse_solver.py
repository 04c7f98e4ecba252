"""SparseNewton: Newton with preconditioned conjugate gradients and the resistors' Laplacian
built once per solve (memory linear in the elements), and DampedNewton handing large circuits
to it. Against the dense solver on a circuit with every kind of element.

Not collected by name: ``test_sparse.py`` runs this file in a background process (float64),
as its compilations take minutes on two cores. Alone:
``python -m pytest tests/sparse_solver.py``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kirchhoff as kh


def _mixed_circuit(seed=0, n=30):
    """Random resistor graph with diodes to a rail and between free nodes, a current source,
    an amplifier driving a diode-loaded branch, inputs and outputs."""
    rng = np.random.default_rng(seed)
    names = [f"n{i}" for i in range(n)]
    a, b = rng.integers(0, n, 80), rng.integers(0, n, 80)
    keep = a != b
    elements = [
        kh.Ground("gnd"),
        kh.Input(["i0", "i1"]),
        kh.VoltageSource("rail", 0.3),
        kh.Resistor(
            [names[i] for i in a[keep]],
            [names[j] for j in b[keep]],
            rng.uniform(0.1, 1, keep.sum()),
        ),
        kh.Resistor(["i0", "i1"] + names[:10], names[5:7] + ["gnd"] * 10, rng.uniform(0.1, 1, 12)),
        kh.Resistor(names, ["gnd"] * n, rng.uniform(0.01, 0.1, n)),
        kh.ShockleyDiode(names[10:20], ["rail"] * 10, saturation_current=1e-6),
        kh.ShockleyDiode(names[20:25], names[25:30], saturation_current=1e-5),
        kh.CurrentSource(names[3], 0.05),
        kh.Amplifier(names[0], "amp", 2.0),
        kh.Resistor(["amp", "z"], ["z", "gnd"], [0.5, 1.0]),
        kh.ShockleyDiode("z", "gnd", saturation_current=1e-6),
    ]
    circuit = kh.Circuit(elements, outputs=names[-2:] + ["z"])
    x = jnp.asarray(rng.uniform(-1, 1, (3, 2)))
    y = jnp.asarray(rng.uniform(-0.1, 0.1, (3, 3)))
    return circuit, x, y


def _flat(tree):
    return jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree.leaves(tree)])


def test_sparse_newton_matches_dense_newton_free_nudged_and_implicit():
    circuit, x, y = _mixed_circuit()
    dense, sparse = kh.DampedNewton(), kh.SparseNewton()
    eq_d, eq_s = dense.solve(circuit, x), sparse.solve(circuit, x)
    assert np.all(eq_s.status == kh.Status.SUCCESS)
    assert float(jnp.max(jnp.abs(eq_s.free - eq_d.free))) < 1e-10
    assert float(jnp.max(eq_s.residual)) < 1e-10  # amperes: KCL at every free node
    # EqProp through the sparse nudged phases (deviation problems) and the implicit gradient
    # by conjugate gradients agree with the dense solver's
    ep_d = kh.eqprop_gradient(circuit, dense, x, y, 1e-3).gradient
    ep_s = kh.eqprop_gradient(circuit, sparse, x, y, 1e-3).gradient
    scale = float(jnp.max(jnp.abs(_flat(ep_d))))
    assert float(jnp.max(jnp.abs(_flat(ep_s) - _flat(ep_d)))) < 1e-6 * scale
    im_d, im_s = (
        kh.implicit_gradient(circuit, dense, x, y),
        kh.implicit_gradient(circuit, sparse, x, y),
    )
    assert float(jnp.max(jnp.abs(_flat(im_s) - _flat(im_d)))) < 1e-8 * scale


def test_dense_newton_hands_large_circuits_to_the_sparse_path():
    circuit, x, _ = _mixed_circuit()
    assert circuit.n_free > 8
    handed = kh.DampedNewton(dense_limit=8).solve(circuit, x)
    sparse = kh.SparseNewton().solve(circuit, x)
    np.testing.assert_array_equal(handed.free, sparse.free)  # the same computation
    np.testing.assert_array_equal(handed.n_steps, sparse.n_steps)


def test_sparse_newton_refuses_what_it_cannot_solve():
    net = kh.drn(jax.random.PRNGKey(0), (3, 2, 1))
    with pytest.raises(ValueError, match="SparseNewton solves a kirchhoff.Circuit"):
        kh.SparseNewton().solve(net, jnp.ones((1, 3)))
    clamped = kh.Circuit(
        [kh.Ground(), kh.Input("in"), kh.Resistor("in", "a", 1.0), kh.IdealDiode("a", "gnd")],
        outputs=["a"],
    )
    with pytest.raises(ValueError, match="ideal diodes"):
        kh.SparseNewton().solve(clamped, jnp.ones((1, 1)))
    with pytest.raises(ValueError, match="cg_rtol"):
        kh.SparseNewton(cg_rtol=-1.0)


def _seed_miniature():
    """The seed network's shape in miniature, with every kind of element: 12 inputs into 3
    diode-clamped nodes (dense rows of 6 × 20 entries against 42 resistors, so the linear
    block is taken by default), a diode between two of them, a bias current, an inverting amplifier
    (its potential bound is |H⁻¹|·t, not H⁻¹·t) driving a diode-loaded branch, two outputs."""
    rng = np.random.default_rng(3)
    inputs = [f"x{k}" for k in range(12)]
    hidden = ["h0", "h1", "h2"]
    elements = [
        kh.Ground("gnd"),
        kh.Input(inputs),
        kh.Resistor([i for i in inputs for _ in hidden], hidden * 12, rng.uniform(1e-3, 1e-2, 36)),
        kh.ShockleyDiode(hidden + ["h0"], ["gnd"] * 3 + ["h1"], saturation_current=1e-6),
        kh.ShockleyDiode(["gnd"] * 3, hidden, saturation_current=1e-6),
        kh.CurrentSource("h2", 1e-3),
        kh.Resistor(hidden, ["out"] * 3, [0.01, 0.02, 0.03]),
        kh.Resistor("out", "gnd", 0.05),
        kh.Amplifier("h0", "amp", -2.0),
        kh.Resistor(["amp", "z"], ["z", "gnd"], [0.05, 0.1]),
        kh.ShockleyDiode("z", "gnd", saturation_current=1e-6),
    ]
    circuit = kh.Circuit(elements, outputs=["out", "z"])
    x = jnp.asarray(rng.uniform(-2, 2, (2, 12)))
    y = jnp.asarray(rng.uniform(-0.1, 0.1, (2, 2)))
    return circuit, x, y


@jax.jit
def _block_terms(solver, circuit, free, x, y, beta):
    """Per example: KCL error and current scale through the block and element by element,
    and the block's lower and exact resistor scales."""

    def one(f, xi, yi):
        block = circuit.linear_block()
        return (
            solver.kcl_error(circuit, f, xi, yi, beta),
            solver.current_scale(circuit, f, xi, yi, beta),
            kh.AbstractSolver.kcl_error(solver, circuit, f, xi, yi, beta),
            kh.AbstractSolver.current_scale(solver, circuit, f, xi, yi, beta),
            circuit.linear_block_terms(block, f, xi, exact=False)[1],
            circuit.linear_block_terms(block, f, xi)[1],
        )

    return jax.vmap(one)(free, x, y)


@jax.jit
def _deviation_terms(solver, circuit, free0, deviation, x, y, beta):
    """Per example, for the nudged phase's deviation problem: KCL error and current scale
    through the block and element by element."""
    from kirchhoff._solver._nudged import _Deviation, bound_multipliers

    def one(f0, d, xi, yi):
        problem = _Deviation(circuit, f0, bound_multipliers(circuit, f0, xi))
        shifted = yi - circuit.output_potentials(f0, xi)
        return (
            solver.kcl_error(problem, d, xi, shifted, beta),
            solver.current_scale(problem, d, xi, shifted, beta),
            kh.AbstractSolver.kcl_error(solver, problem, d, xi, shifted, beta),
            kh.AbstractSolver.current_scale(solver, problem, d, xi, shifted, beta),
        )

    return jax.vmap(one)(free0, deviation, x, y)


def test_linear_block_path_matches_the_element_by_element_one():
    """Few free nodes and many input resistors (the seed network's shape): L is held dense
    and the resistors as dense rows. The same potentials, KCL errors and current scales as
    element by element and as the dense solver, free, nudged (β at a target) and in the
    nudged phases' deviations, all SUCCESS."""
    from kirchhoff._solver import _sparse

    circuit, x, y = _seed_miniature()
    assert _sparse.uses_linear_block(circuit)
    sparse, dense = kh.SparseNewton(), kh.DampedNewton()
    for beta in (0.0, 0.5):
        eq_d = dense.solve(circuit, x, y, beta)
        eq_s = sparse.solve(circuit, x, y, beta)
        assert np.all(eq_s.status == kh.Status.SUCCESS)
        assert float(jnp.max(jnp.abs(eq_s.free - eq_d.free))) < 1e-10
        block_err, block_scale, err, scale, lower, exact = _block_terms(
            sparse, circuit, eq_s.free, x, y, beta
        )
        np.testing.assert_allclose(block_scale, scale, rtol=1e-12)
        assert float(jnp.max(jnp.abs(block_err - err))) < 1e-14 * float(jnp.max(scale))
        # the loop's tolerance comes from a lower bound on the scale, within 2× of it
        assert bool(jnp.all(lower <= exact * (1 + 1e-12)))
        assert bool(jnp.all(2 * lower >= exact * (1 - 1e-12)))
    free = dense.solve(circuit, x)
    for beta in (1e-3, -1e-3):
        nd_d = dense.solve_nudged(circuit, x, y, beta, free)
        nd_s = sparse.solve_nudged(circuit, x, y, beta, free)
        assert np.all(nd_s.status == kh.Status.SUCCESS)
        scale_dev = float(jnp.max(jnp.abs(nd_d.deviation)))
        assert float(jnp.max(jnp.abs(nd_s.deviation - nd_d.deviation))) < 1e-8 * scale_dev
        block_err, block_scale, err, scale = _deviation_terms(
            sparse, circuit, free.free, nd_s.deviation, x, y, beta
        )
        np.testing.assert_allclose(block_scale, scale, rtol=1e-12)
        assert float(jnp.max(jnp.abs(block_err - err))) < 1e-14 * float(jnp.max(scale))


def test_dense_newton_hands_many_resistor_circuits_to_the_block_path():
    """``block_elements``: the miniature (42 resistors) is solved as SparseNewton solves it
    from 42 resistors on; the default (10⁴) keeps it dense."""
    from kirchhoff._solver import _sparse

    circuit, x, _ = _seed_miniature()
    sparse = kh.SparseNewton().solve(circuit, x)
    handed = kh.DampedNewton(block_elements=42).solve(circuit, x)
    np.testing.assert_array_equal(handed.free, sparse.free)  # the same computation
    np.testing.assert_array_equal(handed.n_steps, sparse.n_steps)
    assert _sparse.uses_linear_block(circuit)
    assert kh.DampedNewton()._sparse(circuit) is None
    assert kh.DampedNewton(block_elements=43)._sparse(circuit) is None
    with pytest.raises(ValueError, match="block_elements"):
        kh.DampedNewton(block_elements=0)
