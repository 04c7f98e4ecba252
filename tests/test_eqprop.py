"""EqProp against autodiff: the three estimators converge to the implicit gradient at the
expected rates; the local conductance rule is the pytree gradient; the references agree."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import (
    NEWTON,
    QP,
    cosine,
    loglog_slope,
    random_circuit,
    random_ideal_diode_circuit,
    random_inputs,
    random_targets,
    rel_error,
    tree_allclose,
    tree_flat,
)

import kirchhoff as kh

SEEDS = (0, 1, 2)  # parameter seeds on one topology: one compilation for all


def _case(seed, make=random_circuit):
    circuit = make(seed, topology=0)
    return circuit, jnp.asarray(random_inputs(seed)), jnp.asarray(random_targets(seed))


def _eqprop(circuit, solver, x, y, beta, variant, free=None):
    return kh.eqprop_gradient(circuit, solver, x, y, beta, variant, free=free)


@pytest.fixture(scope="module")
def implicit():
    out = {}
    for seed in SEEDS:
        circuit, x, y = _case(seed)
        out[seed] = kh.implicit_gradient(circuit, NEWTON, x, y)
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_eqprop_matches_implicit_gradient(seed, implicit):
    circuit, x, y = _case(seed)
    reference = implicit[seed]
    assert np.linalg.norm(tree_flat(reference)) > 1e-2  # a gradient worth estimating
    free = NEWTON.solve(circuit, x)
    centered = _eqprop(circuit, NEWTON, x, y, 1e-4, "centered", free).gradient
    assert rel_error(centered, reference) <= 1e-6
    for variant in kh.VARIANTS:
        estimate = _eqprop(circuit, NEWTON, x, y, 1e-2, variant, free).gradient
        assert cosine(estimate, reference) >= (0.9999 if variant == "centered" else 0.999)


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_eqprop_bias_rates(seed, implicit):
    """Halving beta divides the centered error by 4 and the one-sided errors by 2. Betas from
    1e-3 to 3.2e-2: errors there are orders of magnitude above the round-off floor (≈1e-12/β)."""
    circuit, x, y = _case(seed)
    reference = implicit[seed]
    free = NEWTON.solve(circuit, x)
    betas = 1e-3 * 2.0 ** np.arange(6)
    errors = {
        v: [
            rel_error(_eqprop(circuit, NEWTON, x, y, b, v, free).gradient, reference) for b in betas
        ]
        for v in kh.VARIANTS
    }
    assert min(errors["centered"]) > 1e-8  # well above round-off: the fit measures the bias
    assert loglog_slope(betas, errors["centered"]) == pytest.approx(2.0, abs=0.1)
    assert loglog_slope(betas, errors["positive"]) == pytest.approx(1.0, abs=0.05)
    assert loglog_slope(betas, errors["negative"]) == pytest.approx(1.0, abs=0.05)
    # the one-sided biases are opposite: their mean is the centered estimate
    pos = _eqprop(circuit, NEWTON, x, y, 1e-2, "positive", free)
    neg = _eqprop(circuit, NEWTON, x, y, 1e-2, "negative", free)
    cen = _eqprop(circuit, NEWTON, x, y, 1e-2, "centered", free)
    mean = jax.tree_util.tree_map(lambda a, b: 0.5 * (a + b), pos.gradient, neg.gradient)
    assert tree_allclose(mean, cen.gradient, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("variant", kh.VARIANTS)
def test_local_conductance_rule_equals_pytree_gradient(variant):
    circuit, x, y = _case(0)
    beta = 0.05
    result = _eqprop(circuit, NEWTON, x, y, beta, variant)
    local = kh.local_conductance_gradients(circuit, result, x, beta, variant)
    resistor_groups = [k for k, e in enumerate(circuit.elements) if isinstance(e, kh.Resistor)]
    assert resistor_groups
    for k, (element, rule) in enumerate(zip(circuit.elements, local, strict=True)):
        if k in resistor_groups:
            pytree = result.gradient.elements[k].conductance
            np.testing.assert_allclose(rule, pytree, rtol=1e-10, atol=1e-12)
            assert np.max(np.abs(np.asarray(rule))) > 1e-3
        else:
            assert rule is None
        del element


def test_energy_gradient_is_local():
    """∂E/∂g = ½u² for each conductance, ∂E/∂I = −v for each current source."""
    circuit, x, _ = _case(0)
    free = NEWTON.solve(circuit, x).free
    grads = kh.energy_gradient(circuit, free, x)
    v = circuit.potentials(free, x)
    drops = circuit.voltage_drops(v)
    for k, e in enumerate(circuit.elements):
        if isinstance(e, kh.Resistor):
            np.testing.assert_allclose(
                grads.elements[k].conductance, 0.5 * drops[k] ** 2, rtol=1e-13
            )
        elif isinstance(e, kh.CurrentSource):
            nodes = [circuit.node_index(n) for n in e.node]
            np.testing.assert_allclose(
                grads.elements[k].current, -v[jnp.asarray(nodes)], rtol=1e-13
            )


@pytest.mark.offload  # slow and self-contained: the background process runs it
def test_batched_eqprop_is_the_mean_over_examples():
    circuit = random_circuit(0, topology=0)
    xs = jnp.asarray(random_inputs(7, batch=3))
    ys = jnp.asarray(random_targets(7, batch=3))
    beta = 1e-2
    batched = _eqprop(circuit, NEWTON, xs, ys, beta, "centered")
    singles = [_eqprop(circuit, NEWTON, xs[b], ys[b], beta, "centered") for b in range(3)]
    mean = jax.tree_util.tree_map(lambda *g: sum(g) / 3, *[s.gradient for s in singles])
    assert tree_allclose(batched.gradient, mean, rtol=1e-9, atol=1e-12)
    assert float(batched.loss) == pytest.approx(
        np.mean([float(s.loss) for s in singles]), rel=1e-12
    )
    # the local rule averages over the batch in the same way
    local = kh.local_conductance_gradients(circuit, batched, xs, beta)
    np.testing.assert_allclose(
        local[0], batched.gradient.elements[0].conductance, rtol=1e-10, atol=1e-13
    )
    assert isinstance(circuit.elements[0], kh.Resistor)


def test_implicit_unrolled_and_finite_differences_agree(implicit):
    circuit, x, y = _case(0)
    reference = implicit[0]
    unrolled = kh.unrolled_gradient(circuit, x, y)
    finite = kh.finite_difference_gradient(circuit, NEWTON, x, y)
    assert rel_error(unrolled, reference) <= 1e-9
    assert rel_error(finite, reference) <= 1e-7
    # the loss they differentiate is the one mean_loss reports
    out = circuit.output_potentials(NEWTON.solve(circuit, x).free, x)
    assert float(kh.mean_loss(circuit, NEWTON, x, y)) == pytest.approx(
        float(kh.squared_error(out, y)), rel=1e-14
    )


def test_ideal_diode_gradients_agree():
    """BoxQP: implicit differentiation through the projected optimality condition, finite
    differences and centered EqProp give the same gradient."""
    circuit, x, y = _case(0, random_ideal_diode_circuit)
    implicit = kh.implicit_gradient(circuit, QP, x, y)
    finite = kh.finite_difference_gradient(circuit, QP, x, y)
    assert np.linalg.norm(tree_flat(implicit)) > 1e-2
    assert rel_error(finite, implicit) <= 1e-6
    free = QP.solve(circuit, x)
    centered = _eqprop(circuit, QP, x, y, 1e-3, "centered", free).gradient
    assert rel_error(centered, implicit) <= 1e-5
    assert cosine(_eqprop(circuit, QP, x, y, 1e-2, "centered", free).gradient, implicit) >= 0.9999
    # the active diodes pin their nodes: the gradient is not that of the unconstrained circuit
    current = np.asarray(circuit.ideal_diode_currents(free.free, x))
    assert np.max(np.abs(current)) > 1e-3
