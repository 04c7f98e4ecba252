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
    """Mean over the batch of ½‖v_out − y‖² at the free equilibrium."""
    inputs, targets = check_examples(circuit, inputs, targets, "mean_loss")
    return _loss_fn(circuit, solver, inputs, targets)


def implicit_gradient(circuit: AbstractCircuit, solver: AbstractSolver, inputs, targets):
    """Loss gradient by implicit differentiation of the equilibrium (dv*/dθ = −H⁻¹ ∂²E/∂v∂θ)
    through jaxopt's custom_root; shaped like the circuit's trainable leaves."""
    inputs, targets = check_examples(circuit, inputs, targets, "implicit_gradient")
    params, static = eqx.partition(circuit, circuit.trainable_filter())
    return jax.grad(lambda p: _loss_fn(eqx.combine(p, static), solver, inputs, targets))(params)


def unrolled_gradient(circuit: AbstractCircuit, inputs, targets, n_steps: int = 40):
    """Loss gradient by reverse-mode differentiation through ``n_steps`` damped Newton
    iterations (no implicit function theorem): the second reference."""
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
    step ``step``). For checks on small circuits only: 2 solves per parameter."""
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
