"""Equilibrium Propagation: free phase, nudged phases, and the three gradient estimators."""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp

from .._circuit import AbstractCircuit, Circuit
from .._cost import squared_error
from .._elements import Resistor
from .._solver import AbstractSolver, Equilibrium

Variant = Literal["positive", "negative", "centered"]
VARIANTS: tuple[Variant, ...] = ("positive", "negative", "centered")


class EqPropResult(eqx.Module):
    """EqProp estimate of the mean-loss gradient, with the phases it came from."""

    gradient: AbstractCircuit  # shaped like the circuit; None off the trainable leaves
    loss: jax.Array  # mean free-phase cost
    free: Equilibrium
    nudged_positive: Equilibrium | None
    nudged_negative: Equilibrium | None


def energy_gradient(circuit: AbstractCircuit, free_potentials, inputs):
    """∂E/∂θ at fixed potentials, for the trainable leaves θ, averaged over a batch when the
    potentials are batched. Only local quantities enter (e.g. ½u² for a conductance)."""
    params, static = eqx.partition(circuit, circuit.trainable_filter())

    def e(p, z, x):
        return eqx.combine(p, static).energy(z, x)

    if jnp.ndim(inputs) == 2:
        # differentiate the batch mean (not the mean of per-example gradients): for a weight
        # matrix this is one matmul over the batch instead of a stack of outer products
        mean_e = lambda p: jnp.mean(jax.vmap(e, in_axes=(None, 0, 0))(p, free_potentials, inputs))
        return jax.grad(mean_e)(params)
    return jax.grad(e)(params, free_potentials, inputs)


def _check_variant(variant):
    if variant not in VARIANTS:
        raise ValueError(f"eqprop: unknown variant {variant!r}; choose one of {VARIANTS}.")


def eqprop_gradient(
    circuit: AbstractCircuit,
    solver: AbstractSolver,
    inputs,
    targets,
    beta: float,
    variant: Variant = "centered",
    free: Equilibrium | None = None,
) -> EqPropResult:
    """EqProp estimate of ∇θ mean_b ½‖v_out(x_b) − y_b‖².

    positive: (∂E/∂θ(v^β) − ∂E/∂θ(v⁰))/β; negative: (∂E/∂θ(v⁰) − ∂E/∂θ(v^{−β}))/β;
    centered: (∂E/∂θ(v^β) − ∂E/∂θ(v^{−β}))/2β. Nudged phases are warm-started from the free one."""
    _check_variant(variant)
    if not beta > 0:
        raise ValueError(f"eqprop: beta must be positive, got {beta}.")
    inputs = jnp.asarray(inputs, dtype=jnp.result_type(float))
    targets = jnp.asarray(targets, dtype=inputs.dtype)
    if free is None:
        free = solver.solve(circuit, inputs)
    # warm start: the nudged states are close to the free one
    pos = neg = None
    if variant in ("positive", "centered"):
        pos = solver.solve(circuit, inputs, targets, beta, init=free.free)
    if variant in ("negative", "centered"):
        neg = solver.solve(circuit, inputs, targets, -beta, init=free.free)

    def dE(eq):
        return energy_gradient(circuit, eq.free, inputs)

    if variant == "positive":
        grad = jax.tree_util.tree_map(lambda a, b: (a - b) / beta, dE(pos), dE(free))
    elif variant == "negative":
        grad = jax.tree_util.tree_map(lambda a, b: (a - b) / beta, dE(free), dE(neg))
    else:
        grad = jax.tree_util.tree_map(lambda a, b: (a - b) / (2 * beta), dE(pos), dE(neg))
    loss = _mean_loss(circuit, free.free, inputs, targets)
    return EqPropResult(grad, loss, free, pos, neg)


def _mean_loss(circuit, free_potentials, inputs, targets):
    if inputs.ndim == 2:
        out = jax.vmap(circuit.output_potentials)(free_potentials, inputs)
        return jnp.mean(jax.vmap(squared_error)(out, targets))
    return squared_error(circuit.output_potentials(free_potentials, inputs), targets)


def local_conductance_gradient(
    drop_positive, drop_negative, beta: float, drop_free=None, variant: Variant = "centered"
):
    """The seed paper's local rule: the loss gradient for each conductance from the voltage
    drops across that resistor only, e.g. centered ((u^β)² − (u^{−β})²)/(4β).

    The update is Δg = −η·(this). For a resistor behind amplifiers of total gain A, multiply by
    its energy weight 1/A² (``Circuit.energy_weights``)."""
    _check_variant(variant)
    if variant == "centered":
        return (drop_positive**2 - drop_negative**2) / (4 * beta)
    if variant == "positive":
        return (drop_positive**2 - drop_free**2) / (2 * beta)
    return (drop_free**2 - drop_negative**2) / (2 * beta)


def local_conductance_gradients(
    circuit: Circuit, result: EqPropResult, inputs, beta, variant="centered"
):
    """Apply the local rule to every Resistor group of ``circuit`` from the phases in
    ``result``; returns one array per Resistor group (None elsewhere), batch-averaged."""
    inputs = jnp.asarray(inputs, dtype=jnp.result_type(float))

    def drops(eq):
        if eq is None:
            return None
        if inputs.ndim == 2:
            v = jax.vmap(circuit.potentials)(eq.free, inputs)
            return jax.vmap(circuit.voltage_drops)(v)
        return circuit.voltage_drops(circuit.potentials(eq.free, inputs))

    d_pos, d_neg, d_free = (
        drops(result.nudged_positive),
        drops(result.nudged_negative),
        drops(result.free),
    )
    out = []
    for i, (e, w) in enumerate(zip(circuit.elements, circuit.energy_weights, strict=True)):
        if not isinstance(e, Resistor):
            out.append(None)
            continue
        g = local_conductance_gradient(
            None if d_pos is None else d_pos[i],
            None if d_neg is None else d_neg[i],
            beta,
            d_free[i],
            variant,
        )
        g = jnp.mean(g, axis=0) if inputs.ndim == 2 else g
        out.append(w * g)
    return tuple(out)
