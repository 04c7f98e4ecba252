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


def test_sparse_newton_with_few_free_nodes_and_many_input_resistors():
    """The seed network's shape in miniature: 40 inputs into 3 diode-clamped nodes, so L is
    held dense (n² = 9 entries against 480 COO ones) — the same solution as the dense solver."""
    rng = np.random.default_rng(3)
    inputs = [f"x{k}" for k in range(40)]
    hidden = ["h0", "h1", "h2"]
    elements = [
        kh.Ground("gnd"),
        kh.Input(inputs),
        kh.Resistor([i for i in inputs for _ in hidden], hidden * 40, rng.uniform(1e-3, 1e-2, 120)),
        kh.ShockleyDiode(hidden, ["gnd"] * 3, saturation_current=1e-6),
        kh.ShockleyDiode(["gnd"] * 3, hidden, saturation_current=1e-6),
        kh.Resistor(hidden, ["out"] * 3, [0.01, 0.02, 0.03]),
        kh.Resistor("out", "gnd", 0.05),
    ]
    circuit = kh.Circuit(elements, outputs=["out"])
    x = jnp.asarray(rng.uniform(-2, 2, (2, 40)))
    eq_d, eq_s = kh.DampedNewton().solve(circuit, x), kh.SparseNewton().solve(circuit, x)
    assert np.all(eq_s.status == kh.Status.SUCCESS)
    assert float(jnp.max(jnp.abs(eq_s.free - eq_d.free))) < 1e-10
