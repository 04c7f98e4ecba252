"""Equilibrium Propagation: free phase, nudged phases, and the three gradient estimators."""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._circuit import AbstractCircuit, Circuit
from .._cost import check_examples, check_inputs, mean_cost
from .._elements import Resistor
from .._layered._checks import check_choice
from .._solver import AbstractSolver, Equilibrium, Status, check_beta
from .._solver._base import select_status

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


def energy_gradient_change(circuit: AbstractCircuit, free_potentials, change_a, change_b, inputs):
    """``∂E/∂θ(v⁰ + δa) − ∂E/∂θ(v⁰ + δb)`` for the trainable leaves θ (batch-averaged), formed
    from the deviations so that nothing cancels: J(m)·(δa − δb), with J = ∂²E/∂θ∂v at the
    midpoint m = v⁰ + (δa + δb)/2. Exact where ∂E/∂θ is at most quadratic in the potentials
    (conductances: ½u²; bias currents: −v), e.g. ((u+δa)² − (u+δb)²)/2 = (δa − δb)·(u + (δa+δb)/2)."""
    mid = free_potentials + 0.5 * (change_a + change_b)
    dE = lambda z: energy_gradient(circuit, z, inputs)
    return jax.jvp(dE, (mid,), (change_a - change_b,))[1]


def check_variant(variant, who: str = "eqprop"):
    """Raise (:class:`InvalidInputError`, a ValueError) unless ``variant`` is one of
    :data:`VARIANTS`: the one variant check of EqProp, general and layered."""
    check_choice(who, "variant", variant, VARIANTS)


def _flag_invalid_beta(eq: Equilibrium | None, valid) -> Equilibrium | None:
    if eq is None:
        return None
    return eqx.tree_at(lambda e: e.status, eq, select_status(valid, eq.status, Status.NONFINITE))


def eqprop_gradient(
    circuit: AbstractCircuit,
    solver: AbstractSolver,
    inputs,
    targets,
    beta,
    variant: Variant = "centered",
    free: Equilibrium | None = None,
) -> EqPropResult:
    """EqProp estimate of ∇θ mean_b ½‖v_out(x_b) − y_b‖².

    positive: (∂E/∂θ(v^β) − ∂E/∂θ(v⁰))/β; negative: (∂E/∂θ(v⁰) − ∂E/∂θ(v^{−β}))/β;
    centered: (∂E/∂θ(v^β) − ∂E/∂θ(v^{−β}))/2β. The nudged phases are solved for their
    deviations from the free phase (:meth:`AbstractSolver.solve_nudged`) and the differences
    formed from those deviations (:func:`energy_gradient_change`), so the estimate keeps its
    accuracy at small β in float32. ``beta`` may be a traced array (under jit or vmap); an
    invalid traced β gives NONFINITE statuses and a NaN gradient."""
    check_variant(variant)
    check_beta(beta, positive=True, who="eqprop")
    inputs, targets = check_examples(circuit, inputs, targets, "eqprop")
    beta = jnp.asarray(beta, inputs.dtype)
    if free is None:
        free = solver.solve(circuit, inputs)
    pos = neg = None
    if variant in ("positive", "centered"):
        pos = solver.solve_nudged(circuit, inputs, targets, beta, free)
    if variant in ("negative", "centered"):
        neg = solver.solve_nudged(circuit, inputs, targets, -beta, free)
    zero = jnp.zeros_like(free.free)
    if variant == "positive":
        a, b, scale = pos.deviation, zero, 1 / beta
    elif variant == "negative":
        a, b, scale = zero, neg.deviation, 1 / beta
    else:
        a, b, scale = pos.deviation, neg.deviation, 1 / (2 * beta)
    valid = jnp.isfinite(beta) & (beta > 0)
    scale = jnp.where(valid, scale, jnp.nan)
    change = energy_gradient_change(circuit, free.free, a, b, inputs)
    grad = jax.tree_util.tree_map(lambda g: g * scale, change)
    loss = mean_cost(circuit, free.free, inputs, targets)
    return EqPropResult(
        grad, loss, free, _flag_invalid_beta(pos, valid), _flag_invalid_beta(neg, valid)
    )


def local_conductance_gradient(
    drop_free,
    change_positive=None,
    change_negative=None,
    *,
    beta,
    variant: Variant = "centered",
):
    """The seed paper's local rule: the loss gradient for each conductance from the voltage
    drop across that resistor only — at the free phase, u, and its changes in the nudged
    phases, Δ± = u^{±β} − u. Centered: ((u+Δ⁺)² − (u+Δ⁻)²)/4β, computed as
    (Δ⁺ − Δ⁻)·(2u + Δ⁺ + Δ⁻)/4β so that nothing cancels; positive and negative likewise
    with the free phase in place of the other nudged one.

    The update is Δg = −η·(this). For a resistor behind amplifiers of total gain A, multiply by
    its energy weight 1/A² (``Circuit.energy_weights``)."""
    check_variant(variant)
    check_beta(beta, positive=True, who="local_conductance_gradient")
    need = {"positive": ("change_positive",), "negative": ("change_negative",)}
    given = {"change_positive": change_positive, "change_negative": change_negative}
    for name in need.get(variant, ("change_positive", "change_negative")):
        if given[name] is None:
            raise ValueError(f"local_conductance_gradient: the {variant} rule needs `{name}`.")
    if variant == "centered":
        a, b, denominator = change_positive, change_negative, 4 * beta
    elif variant == "positive":
        a, b, denominator = change_positive, jnp.zeros_like(drop_free), 2 * beta
    else:
        a, b, denominator = jnp.zeros_like(drop_free), change_negative, 2 * beta
    return (a - b) * (2 * drop_free + a + b) / denominator


def local_conductance_gradients(
    circuit: Circuit, result: EqPropResult, inputs, beta, variant="centered"
):
    """Apply the local rule to every Resistor group of ``circuit`` from the phases in
    ``result``; returns one array per Resistor group (None elsewhere), batch-averaged."""
    check_inputs(circuit, inputs, "local_conductance_gradients")
    if np.shape(inputs)[:-1] != result.free.free.shape[:-1]:
        raise ValueError(
            f"local_conductance_gradients: inputs of shape {np.shape(inputs)} are not those of "
            f"the phases in `result` (free potentials of shape {result.free.free.shape})."
        )
    for phase in ("positive", "negative"):
        if variant in (phase, "centered") and getattr(result, f"nudged_{phase}") is None:
            raise ValueError(
                f"local_conductance_gradients: the {variant} rule needs the {phase} nudged "
                f"phase, which `result` lacks (compute it with variant={variant!r})."
            )
    inputs = jnp.asarray(inputs, dtype=circuit.dtype)
    batched = inputs.ndim == 2

    def drops(potentials):
        return (
            jax.vmap(circuit.voltage_drops)(potentials)
            if batched
            else circuit.voltage_drops(potentials)
        )

    free_v = (jax.vmap(circuit.potentials) if batched else circuit.potentials)(
        result.free.free, inputs
    )
    changes = jax.vmap(circuit.potential_changes) if batched else circuit.potential_changes

    def drop_changes(eq):
        return None if eq is None else drops(changes(eq.deviation))

    d_free = drops(free_v)
    d_pos, d_neg = drop_changes(result.nudged_positive), drop_changes(result.nudged_negative)
    out = []
    for i, (e, w) in enumerate(zip(circuit.elements, circuit.energy_weights, strict=True)):
        if not isinstance(e, Resistor):
            out.append(None)
            continue
        g = local_conductance_gradient(
            d_free[i],
            None if d_pos is None else d_pos[i],
            None if d_neg is None else d_neg[i],
            beta=beta,
            variant=variant,
        )
        g = jnp.mean(g, axis=0) if batched else g
        out.append(w * g)
    return tuple(out)
