"""Costs on output potentials; the nudged phases add ``beta * cost`` to the energy. Also the
one check of the examples (inputs, targets) that the loss, its gradients and EqProp share."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._custom_types import Array, Float, Scalar, check_real_dtype


def squared_error(
    outputs: Float[Array, "*batch outputs"], target: Float[Array, "*batch outputs"]
) -> Scalar:
    """``C = ½‖v_out − y‖²`` (volts²) over the last axis: a scalar for one example, one value
    per example for a batch. The one definition of the cost; everything else calls it.

    A nudged phase adds β·C to the energy (β in siemens, so β·C is in watts): a current
    β·(y − v_out) into each output node.

    Args:
        outputs: the output potentials v_out, volts, shape ``(..., n_outputs)`` (e.g.
            [`Circuit.output_potentials`][kirchhoff.Circuit.output_potentials]).
        target: the targets y, volts, the same shape.

    Returns:
        The cost, volts², shape ``(...)``: a scalar for one example, ``(batch,)`` for a
            batch.
    """
    return 0.5 * jnp.sum((outputs - target) ** 2, axis=-1)


def mean_cost(circuit, free, inputs, targets) -> Scalar:
    """The cost of a circuit's output potentials at ``free``: for a batch (2-D inputs), the
    mean of [`squared_error`][kirchhoff.squared_error] over the examples."""
    if inputs.ndim == 2:
        out = jax.vmap(circuit.output_potentials)(free, inputs)
        return jnp.mean(squared_error(out, targets))
    return squared_error(circuit.output_potentials(free, inputs), targets)


def check_inputs(circuit, inputs, who: str = "kirchhoff") -> None:
    """TypeError unless ``inputs`` are real numbers; ValueError unless shaped (n_inputs,) or
    (batch, n_inputs) (a circuit's own ``check_inputs_shape`` words it, where it has one)."""
    check_real_dtype(inputs, f"{who}: inputs")
    own = getattr(circuit, "check_inputs_shape", None)
    if own is not None:
        return own(inputs)
    shape, n = np.shape(inputs), circuit.n_inputs
    if len(shape) not in (1, 2) or shape[-1] != n:
        names = list(getattr(circuit, "input_names", ()))[:8]
        raise ValueError(
            f"{who}: inputs have shape {shape}, but the circuit has {n} input node(s) {names}; "
            f"give shape ({n},) or (batch, {n})."
        )


def check_examples(circuit, inputs, targets, who: str):
    """The shared argument check of [`mean_loss`][kirchhoff.mean_loss], the autodiff
    gradients and EqProp: real inputs shaped for the circuit (``check_inputs``), real targets
    shaped (…, n_outputs) like them, and finite values (concrete: ValueError naming the
    examples; traced targets: a runtime error inside jit). Returns both in the circuit's
    dtype."""
    check_inputs(circuit, inputs, who)
    check_real_dtype(targets, f"{who}: targets")
    if circuit.n_outputs == 0:
        raise ValueError(f"{who}: the circuit has no output nodes, so the loss is 0; name them.")
    want = (*np.shape(inputs)[:-1], circuit.n_outputs)
    if np.shape(targets) != want:
        raise ValueError(
            f"{who}: targets have shape {np.shape(targets)}, but the circuit has "
            f"{circuit.n_outputs} output node(s): inputs of shape {np.shape(inputs)} need "
            f"targets of shape {want} (no broadcasting)."
        )
    inputs = jnp.asarray(inputs, circuit.dtype)
    targets = jnp.asarray(targets, circuit.dtype)
    for what, x in (("input", inputs), ("target", targets)):
        if isinstance(x, jax.core.Tracer):
            if what == "target":  # inputs: the solve's own runtime check
                x = eqx.error_if(x, ~jnp.all(jnp.isfinite(x)), f"{who}: a target is NaN or inf.")
                targets = x
            continue
        rows = np.asarray(x).reshape(-1, x.shape[-1]) if x.shape[-1] else np.zeros((1, 0))
        bad = np.flatnonzero(~np.all(np.isfinite(rows), axis=1))
        if bad.size:
            where = f"example(s) {bad[:10].tolist()}" if x.ndim == 2 else "the example"
            raise ValueError(f"{who}: the {what}s of {where} are NaN or infinite.")
    return inputs, targets
