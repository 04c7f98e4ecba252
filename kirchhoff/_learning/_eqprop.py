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
"""The EqProp estimators, by name, for the ``variant`` argument of
[`eqprop_gradient`][kirchhoff.eqprop_gradient],
[`layered_eqprop_gradient`][kirchhoff.layered_eqprop_gradient] and the local rules:
"positive" (a free and a +β phase) and "negative" (a free and a −β phase), each biased by
O(β), and "centered" (the ±β phases), biased by O(β²)."""


class EqPropResult(eqx.Module):
    """EqProp estimate of the mean-loss gradient, with the phases it came from: what
    [`eqprop_gradient`][kirchhoff.eqprop_gradient] returns.

    Attributes:
        gradient: The estimate of ∇θ of the mean loss, a pytree shaped like the circuit:
            on each trainable leaf an array shaped like it (V² per unit of the parameter:
            per siemens for a conductance, per ampere for a bias current), None elsewhere.
            Apply it as the autodiff gradient is applied (e.g. ``eqx.apply_updates``).
        loss: The mean over the batch of the free phase's cost ½‖v_out − y‖², volts², a
            scalar.
        free: The free phase (an [`Equilibrium`][kirchhoff.Equilibrium], batched like the
            inputs): the one passed in, or the one solved.
        nudged_positive: The phase nudged at +β (its ``deviation`` the δ⁺ the estimate is
            formed from), or None for the "negative" variant.
        nudged_negative: The phase nudged at −β, or None for the "positive" variant.
    """

    gradient: AbstractCircuit  # shaped like the circuit; None off the trainable leaves
    loss: jax.Array  # mean free-phase cost
    free: Equilibrium
    nudged_positive: Equilibrium | None
    nudged_negative: Equilibrium | None


def energy_gradient(circuit: AbstractCircuit, free_potentials, inputs):
    """∂E/∂θ at fixed potentials, for the trainable leaves θ, averaged over a batch when the
    potentials are batched. Only local quantities enter (e.g. ½u² for a conductance, u the
    voltage drop across it; −v for a bias current into a node at v).

    EqProp's estimate is a difference of this at two phases over β, which
    [`eqprop_gradient`][kirchhoff.eqprop_gradient] forms from the deviations instead (nothing
    cancels there in float32).

    Args:
        circuit: The circuit, whose trainable leaves θ the derivative is taken for.
        free_potentials: The free nodes' potentials, volts, shape ``(batch, n_free)`` (e.g.
            an [`Equilibrium`][kirchhoff.Equilibrium]'s ``free``), or ``(n_free,)``.
        inputs: The input potentials, volts, shape ``(batch, n_inputs)`` or
            ``(n_inputs,)``, batched like ``free_potentials``.

    Returns:
        A pytree shaped like the circuit: on each trainable leaf ∂E/∂θ (the energy E in
        watts per unit of the parameter), batch-averaged; None elsewhere.
    """
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
    (conductances: ½u²; bias currents: −v), e.g.
    ((u+δa)² − (u+δb)²)/2 = (δa − δb)·(u + (δa+δb)/2)."""
    mid = free_potentials + 0.5 * (change_a + change_b)
    dE = lambda z: energy_gradient(circuit, z, inputs)
    return jax.jvp(dE, (mid,), (change_a - change_b,))[1]


def check_variant(variant, who: str = "eqprop"):
    """Raise ([`InvalidInputError`][kirchhoff.InvalidInputError], a ValueError) unless
    ``variant`` is one of [`VARIANTS`][kirchhoff.VARIANTS]: the one variant check of EqProp,
    general and layered."""
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
    """EqProp estimate of ∇θ mean_b ½‖v_out(x_b) − y_b‖², from a free phase and one or two
    nudged phases of the circuit itself.

    positive: (∂E/∂θ(v^β) − ∂E/∂θ(v⁰))/β; negative: (∂E/∂θ(v⁰) − ∂E/∂θ(v^{−β}))/β;
    centered: (∂E/∂θ(v^β) − ∂E/∂θ(v^{−β}))/2β. The first two are biased by O(β), the
    centered one by O(β²). The nudged phases are solved for their deviations from the free
    phase ([`AbstractSolver.solve_nudged`][kirchhoff.AbstractSolver.solve_nudged]) and the
    differences formed from those deviations (``energy_gradient_change``), so the estimate
    keeps its accuracy at small β in float32. ``beta`` may be a traced array (under jit or
    vmap); an invalid traced β gives NONFINITE statuses and a NaN gradient.

    Args:
        circuit: The circuit (e.g. a [`Circuit`][kirchhoff.Circuit]), whose trainable
            leaves θ the gradient is for.
        solver: The solver for every phase (e.g. [`DampedNewton`][kirchhoff.DampedNewton]);
            with ``throw=True`` a phase that does not converge raises.
        inputs: The input potentials, volts, shape ``(batch, n_inputs)``, or
            ``(n_inputs,)`` for one example.
        targets: The output targets y, volts, shape ``(batch, n_outputs)`` (like
            ``inputs``).
        beta: The nudge strength β > 0, siemens, a scalar: each nudged phase adds a current
            source ±β·(y − v_out) into each output (β·A² behind amplifiers of total gain
            A): small next to the conductances at the outputs, as the bias grows with β.
        variant: Which estimator: "positive", "negative" or "centered" (the default; see
            [`VARIANTS`][kirchhoff.VARIANTS]).
        free: The free phase, if already solved: ``solver.solve(circuit, inputs)`` for
            these inputs; None solves it.

    Returns:
        An [`EqPropResult`][kirchhoff.EqPropResult]: the gradient estimate (shaped like the
        circuit), the mean loss and the phases with their statuses.

    Raises:
        InvalidInputError: An unknown ``variant``.
        ValueError: A concrete β that is not finite and > 0; inputs or targets of the wrong
            shape, or NaN or infinite; a circuit without outputs.
        TypeError: Complex, boolean or non-numeric inputs, targets or β.
        NotConvergedError: With a solver's ``throw=True``, a phase that did not converge.

    Examples:
        The centered estimate against implicit differentiation of the solve
        ([`implicit_gradient`][kirchhoff.implicit_gradient]), in float32:

        >>> import jax
        >>> import jax.numpy as jnp
        >>> import kirchhoff as kh
        >>> circuit = kh.Circuit(
        ...     [
        ...         kh.Ground("gnd"),
        ...         kh.Input("in"),
        ...         kh.Resistor("in", "a", 1.0),
        ...         kh.ShockleyDiode("a", "gnd", saturation_current=1e-6),
        ...         kh.Resistor("a", "out", 0.5),
        ...         kh.Resistor("out", "gnd", 2.0),
        ...         kh.CurrentSource("out", 0.01),
        ...     ],
        ...     outputs=["out"],
        ... )
        >>> x = jnp.array([[1.0], [2.0]])  # (batch, n_inputs), volts
        >>> y = jnp.array([[0.2], [0.4]])  # (batch, n_outputs), volts
        >>> solver = kh.DampedNewton()
        >>> result = kh.eqprop_gradient(circuit, solver, x, y, beta=1e-3)
        >>> result.nudged_positive.messages()
        ['converged', 'converged']
        >>> reference = kh.implicit_gradient(circuit, solver, x, y)
        >>> pairs = zip(jax.tree.leaves(result.gradient), jax.tree.leaves(reference))
        >>> print(all(bool(jnp.allclose(e, a, rtol=1e-4, atol=1e-6)) for e, a in pairs))
        True
    """
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
    with the free phase in place of the other nudged one (((u+Δ⁺)² − u²)/2β and
    (u² − (u+Δ⁻)²)/2β).

    The update is Δg = −η·(this). For a resistor behind amplifiers of total gain A, multiply by
    its energy weight 1/A² (``Circuit.energy_weights``);
    [`local_conductance_gradients`][kirchhoff.local_conductance_gradients] does that for a
    whole circuit. Elementwise: any shape, e.g. ``(batch, n_resistors)``, no averaging.

    Args:
        drop_free: The voltage drops u across the resistors in the free phase, volts, any
            shape.
        change_positive: Their changes Δ⁺ in the phase nudged at +β, volts, shaped like
            ``drop_free``; needed by "positive" and "centered".
        change_negative: Their changes Δ⁻ in the phase nudged at −β, volts, shaped like
            ``drop_free``; needed by "negative" and "centered".
        beta: The β the nudged phases were solved at, siemens, > 0 (keyword only).
        variant: "positive", "negative" or "centered" (the default; see
            [`VARIANTS`][kirchhoff.VARIANTS]) (keyword only).

    Returns:
        The estimate of ∂L/∂g for each conductance, V²/S, shaped like ``drop_free``.

    Raises:
        InvalidInputError: An unknown ``variant``.
        ValueError: A change the variant needs is None, or β is not finite and > 0.
    """
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
    """Apply the local rule ([`local_conductance_gradient`][kirchhoff.local_conductance_gradient])
    to every [`Resistor`][kirchhoff.Resistor] group of ``circuit`` from the phases in
    ``result``: each resistor's estimate from its own voltage drops only, times its energy
    weight. It equals the conductance leaves of ``result.gradient`` (up to round-off).

    Args:
        circuit: The [`Circuit`][kirchhoff.Circuit] the phases were solved for.
        result: What [`eqprop_gradient`][kirchhoff.eqprop_gradient] returned for this
            circuit and these inputs; it must hold the nudged phases ``variant`` needs.
        inputs: The input potentials the phases were solved for, volts, shape
            ``(batch, n_inputs)`` or ``(n_inputs,)``.
        beta: The β the phases were solved at, siemens, > 0 (not read from ``result``).
        variant: "positive", "negative" or "centered" (the default; see
            [`VARIANTS`][kirchhoff.VARIANTS]).

    Returns:
        A tuple with one entry per element group of ``circuit.elements``: for a Resistor
        group an array shaped like its conductances (V²/S, batch-averaged), None for
        every other group.

    Raises:
        ValueError: Inputs of the wrong shape or not batched like ``result``'s phases, a
            nudged phase the variant needs missing from ``result``, or an invalid β.
        InvalidInputError: An unknown ``variant``.
    """
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
