"""Autodiff references for the loss gradient: implicit, unrolled and finite differences."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._circuit import AbstractCircuit
from .._cost import check_examples, mean_cost, squared_error
from .._solver import AbstractSolver, DampedNewton


def _loss_fn(circuit: AbstractCircuit, solver: AbstractSolver, inputs, targets):
    return mean_cost(circuit, solver.solve(circuit, inputs).free, inputs, targets)


def mean_loss(circuit, solver, inputs, targets):
    """Mean over the batch of ½‖v_out − y‖² at the free equilibrium: the loss L whose
    gradient [`implicit_gradient`][kirchhoff.implicit_gradient], the other references and
    EqProp estimate.

    Differentiable with respect to the circuit's parameters (implicitly, through the solve).

    Args:
        circuit: The circuit, whose trainable leaves θ the gradient is for.
        solver: The solver of the free phase (any [`AbstractSolver`][kirchhoff.AbstractSolver]).
        inputs: The input potentials, volts, shape ``(batch, n_inputs)``, or
            ``(n_inputs,)`` for one example.
        targets: The output targets y, volts, shape ``(batch, n_outputs)`` (like
            ``inputs``).

    Returns:
        The mean loss, volts², a scalar array.

    Raises:
        ValueError: Inputs or targets of the wrong shape, or NaN or infinite; a circuit
            without outputs.
        TypeError: Complex, boolean or non-numeric inputs or targets.
    """
    inputs, targets = check_examples(circuit, inputs, targets, "mean_loss")
    return _loss_fn(circuit, solver, inputs, targets)


def implicit_gradient(circuit: AbstractCircuit, solver: AbstractSolver, inputs, targets):
    """Loss gradient by implicit differentiation of the equilibrium (dv*/dθ = −H⁻¹ ∂²E/∂v∂θ)
    through jaxopt's custom_root: the exact gradient of
    [`mean_loss`][kirchhoff.mean_loss] at the solved equilibrium, the reference EqProp is
    checked against.

    Args:
        circuit: The circuit, whose trainable leaves θ the gradient is for.
        solver: The solver of the free phase (any [`AbstractSolver`][kirchhoff.AbstractSolver]).
        inputs: The input potentials, volts, shape ``(batch, n_inputs)``, or
            ``(n_inputs,)`` for one example.
        targets: The output targets y, volts, shape ``(batch, n_outputs)`` (like
            ``inputs``).

    Returns:
        A pytree shaped like the circuit: on each trainable leaf ∂L/∂θ shaped like it (V²
        per unit of the parameter), None elsewhere; comparable leaf by leaf with
        [`EqPropResult.gradient`][kirchhoff.EqPropResult].

    Raises:
        ValueError: Inputs or targets of the wrong shape, or NaN or infinite; a circuit
            without outputs.
        TypeError: Complex, boolean or non-numeric inputs or targets.
    """
    inputs, targets = check_examples(circuit, inputs, targets, "implicit_gradient")
    params, static = eqx.partition(circuit, circuit.trainable_filter())
    return jax.grad(lambda p: _loss_fn(eqx.combine(p, static), solver, inputs, targets))(params)


def unrolled_gradient(circuit: AbstractCircuit, inputs, targets, n_steps: int = 40):
    """Loss gradient by reverse-mode differentiation through ``n_steps`` damped Newton
    iterations (no implicit function theorem): the second reference.

    Runs ``DampedNewton(max_steps=n_steps).solve_unrolled`` per example
    ([`DampedNewton.solve_unrolled`][kirchhoff.DampedNewton.solve_unrolled]), from zero, with
    no convergence check: it differentiates the potentials after exactly ``n_steps`` steps,
    so it is the loss gradient only where those steps converged. Smooth circuits only.

    Args:
        circuit: The circuit (no ideal diodes), whose trainable leaves θ the gradient is
            for.
        inputs: The input potentials, volts, shape ``(batch, n_inputs)``, or
            ``(n_inputs,)`` for one example.
        targets: The output targets y, volts, shape ``(batch, n_outputs)`` (like
            ``inputs``).
        n_steps: The Newton steps to differentiate through, an integer ≥ 1.

    Returns:
        A pytree shaped like the circuit: on each trainable leaf ∂L/∂θ shaped like it (V²
        per unit of the parameter), None elsewhere; comparable leaf by leaf with
        [`EqPropResult.gradient`][kirchhoff.EqPropResult].

    Raises:
        ValueError: ``n_steps`` not an integer ≥ 1, a circuit with ideal diodes, or inputs
            or targets of the wrong shape, or NaN or infinite.
        TypeError: Complex, boolean or non-numeric inputs or targets.
    """
    inputs, targets = check_examples(circuit, inputs, targets, "unrolled_gradient")
    if isinstance(n_steps, bool) or not isinstance(n_steps, int | np.integer) or n_steps < 1:
        raise ValueError(f"unrolled_gradient: `n_steps` = {n_steps!r}; give an integer ≥ 1.")
    solver = DampedNewton(max_steps=n_steps)
    params, static = eqx.partition(circuit, circuit.trainable_filter())

    def loss_one(c, x, y):
        z = solver.solve_unrolled(c, x)
        return squared_error(c.output_potentials(z, x), y)

    def loss(p):
        c = eqx.combine(p, static)
        if inputs.ndim == 2:
            return jnp.mean(jax.vmap(loss_one, in_axes=(None, 0, 0))(c, inputs, targets))
        return loss_one(c, inputs, targets)

    return eqx.filter_jit(jax.grad(loss))(params)


def finite_difference_gradient(circuit, solver, inputs, targets, step: float = 1e-6):
    """Central finite differences of the mean loss, one trainable scalar at a time (relative
    step ``step``). For checks on small circuits only: 2 solves per parameter.

    Each scalar θ_k moves by ±h with h = ``step``·max(1, |θ_k|). The default step suits
    float64; a float32 loss (relative round-off ~1e-7) needs a far larger one, or the
    round-off over 2h swamps the difference.

    Args:
        circuit: The circuit, whose trainable leaves θ the gradient is for.
        solver: The solver of the free phase (any [`AbstractSolver`][kirchhoff.AbstractSolver]).
        inputs: The input potentials, volts, shape ``(batch, n_inputs)``, or
            ``(n_inputs,)`` for one example.
        targets: The output targets y, volts, shape ``(batch, n_outputs)`` (like
            ``inputs``).
        step: The relative step, a finite number > 0.

    Returns:
        A pytree shaped like the circuit: on each trainable leaf the estimate of ∂L/∂θ
        shaped like it (V² per unit of the parameter), None elsewhere.

    Raises:
        ValueError: ``step`` not finite and > 0; inputs or targets of the wrong shape, or
            NaN or infinite; a circuit without outputs.
        TypeError: Complex, boolean or non-numeric inputs or targets.
    """
    inputs, targets = check_examples(circuit, inputs, targets, "finite_difference_gradient")
    real = isinstance(step, int | float | np.integer | np.floating) and not isinstance(step, bool)
    if not real or not (np.isfinite(step) and step > 0):
        raise ValueError(f"finite_difference_gradient: `step` = {step!r}; give a finite step > 0.")
    params, static = eqx.partition(circuit, circuit.trainable_filter())
    leaves, treedef = jax.tree_util.tree_flatten(params)
    loss = eqx.filter_jit(lambda p: _loss_fn(eqx.combine(p, static), solver, inputs, targets))
    out = []
    for li, leaf in enumerate(leaves):
        flat = np.asarray(leaf, dtype=float).reshape(-1)
        g = np.zeros_like(flat)
        for k in range(flat.size):
            h = step * max(1.0, abs(flat[k]))
            vals = []
            for sign in (1, -1):
                x = flat.copy()
                x[k] += sign * h
                new = list(leaves)
                new[li] = jnp.asarray(x.reshape(np.shape(leaf)), dtype=leaf.dtype)
                vals.append(float(loss(jax.tree_util.tree_unflatten(treedef, new))))
            g[k] = (vals[0] - vals[1]) / (2 * h)
        out.append(jnp.asarray(g.reshape(np.shape(leaf))))
    return jax.tree_util.tree_unflatten(treedef, out)
