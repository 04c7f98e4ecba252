"""One crossbar layer with wire (line) resistance, built as a general
[`Circuit`][kirchhoff.Circuit]: the IR drop along its rows and columns, simulated exactly
(dense solves: arrays of a few thousand nodes), against the ideal crossbar's column currents
I_j = Σ_i g_ij·(v_i − V_col). The layout and node names are in ``crossbar_circuit``'s
docstring."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._circuit import Circuit
from ._custom_types import Array, ArrayLike, Float
from ._elements import Input, Resistor, VoltageSource
from ._solver import AbstractSolver


def _checked(conductances, wire_resistance, load_resistance):
    g = np.asarray(conductances, dtype=float)
    if g.ndim != 2 or 0 in g.shape:
        raise ValueError(
            f"crossbar: conductances must be a non-empty (rows, columns) matrix; got shape "
            f"{g.shape}."
        )
    if not np.all(np.isfinite(g)) or np.any(g < 0):
        raise ValueError("crossbar: conductances must be finite and non-negative (siemens).")
    r = float(wire_resistance)
    if not (np.isfinite(r) and r >= 0):
        raise ValueError(f"crossbar: wire_resistance must be finite and ≥ 0 ohms; got {r}.")
    if load_resistance is not None:
        load = float(load_resistance)
        if not (np.isfinite(load) and load > 0):
            raise ValueError(
                f"crossbar: load_resistance must be finite and > 0 ohms (None: the column's "
                f"end held at column_potential); got {load}."
            )
    return g.shape


def crossbar_circuit(
    conductances: Float[ArrayLike, "rows columns"],
    wire_resistance: float,
    column_potential: float = 0.0,
    load_resistance: float | None = None,
) -> Circuit:
    """One crossbar layer as a [`Circuit`][kirchhoff.Circuit], wire resistance included.

    Layout: n rows, m columns. Row i is driven by a voltage source (an
    [`Input`][kirchhoff.Input] at node ``("row", i)``) at its left end and runs right through
    its cross-points ``("r", i, j)``; column j runs down through its cross-points
    ``("c", i, j)`` to its end ``("col", j)`` at the bottom. Every wire segment between
    adjacent nodes — driver to the first cross-point, cross-point to cross-point, last
    cross-point to the column's end — is a resistor ``wire_resistance``; the cross-point
    (i, j) is the conductance g_ij from ``("r", i, j)`` to ``("c", i, j)``. A column's end is
    held at ``column_potential`` (a transimpedance amplifier's virtual ground), or, with a
    ``load_resistance``, the column runs to node ``("end", j)`` and the load joins it to the
    held ``("col", j)``. With ``wire_resistance`` 0 the wires are ideal: a row's cross-points
    are its driver's node and a column's its end.

    The circuit's inputs are the n row drivers' potentials (volts), in row order. Its first
    element is the cross-points' [`Resistor`][kirchhoff.Resistor] group, row-major
    (trainable as any). It has no output nodes.

    The farthest cross-point from both drivers and ends (row 0, column m − 1) sees the
    largest drop: the error grows with the array's size and with r_wire·g, to first order as
    r_wire·g·(n² + m²)/2 with every row driven. Measured (g uniform in [0.5, 1.5]·0.1 mS, all
    rows at 1 V, largest relative column-current error): 8×8 6 % at r_wire·g = 1e-3 and 40 %
    at 1e-2; 32×32 48 % and 92 %.

    Args:
        conductances: the cross-points' conductances g_ij, siemens, finite and ≥ 0, shape
            ``(n, m)`` (rows, columns).
        wire_resistance: the resistance of each wire segment, ohms, finite and ≥ 0 (0: ideal
            wires).
        column_potential: the potential at which each column's end is held, volts (default
            0 V).
        load_resistance: a load between each column's wire and its held end, ohms, finite
            and > 0; None (the default): no load, the column's end is held directly.

    Returns:
        The [`Circuit`][kirchhoff.Circuit], with n inputs (``("row", i)``).

    Raises:
        ValueError: ``conductances`` is not a non-empty 2-D matrix or holds a negative or
            non-finite value, ``wire_resistance`` is negative or not finite, or
            ``load_resistance`` is not finite and > 0.
    """
    n, m = _checked(conductances, wire_resistance, load_resistance)
    g = jnp.asarray(conductances)
    if not jnp.issubdtype(g.dtype, jnp.floating):
        g = g.astype(float)
    ii, jj = np.meshgrid(np.arange(n), np.arange(m), indexing="ij")
    wired = wire_resistance > 0
    # a column's end: held, or the node its load resistor hangs from
    end = (lambda j: ("col", j)) if load_resistance is None else (lambda j: ("end", j))
    row = (lambda i, j: ("r", i, j)) if wired else (lambda i, j: ("row", i))
    col = (lambda i, j: ("c", i, j)) if wired else (lambda i, j: end(j))
    pairs = list(zip(ii.ravel(), jj.ravel(), strict=True))
    elements: list = [
        Resistor([row(i, j) for i, j in pairs], [col(i, j) for i, j in pairs], g.ravel()),
        Input([("row", i) for i in range(n)]),
    ]
    if wired:
        anodes, cathodes = [], []
        for i in range(n):  # driver → first cross-point → … along each row
            anodes += [("row", i), *(("r", i, j) for j in range(m - 1))]
            cathodes += [("r", i, j) for j in range(m)]
        for j in range(m):  # down each column, to its end
            anodes += [("c", i, j) for i in range(n)]
            cathodes += [*(("c", i, j) for i in range(1, n)), end(j)]
        elements.append(Resistor(anodes, cathodes, jnp.full(len(anodes), 1.0 / wire_resistance)))
    if load_resistance is not None:
        elements.append(
            Resistor(
                [end(j) for j in range(m)], [("col", j) for j in range(m)], 1.0 / load_resistance
            )
        )
    elements.append(VoltageSource([("col", j) for j in range(m)], column_potential))
    return Circuit(elements)


def ideal_column_currents(
    conductances: Float[ArrayLike, "rows columns"],
    inputs: Float[ArrayLike, "*batch rows"],
    column_potential: float = 0.0,
) -> Float[Array, "*batch columns"]:
    """The ideal crossbar's column currents I_j = Σ_i g_ij·(v_i − V_col), amperes.

    No wire resistance: every cross-point sees its row's full drop to the column potential.

    Args:
        conductances: the cross-points' conductances g_ij, siemens, shape ``(n, m)``
            (rows, columns).
        inputs: the row potentials v_i, volts, shape ``(..., n)``: ``(n,)`` for one example,
            ``(batch, n)`` for a batch.
        column_potential: V_col, the potential of every column, volts (default 0 V).

    Returns:
        The column currents, amperes, shape ``(..., m)`` (positive: from the rows into the
            columns).
    """
    g = jnp.asarray(conductances)
    return (jnp.asarray(inputs, g.dtype) - column_potential) @ g


def column_currents(circuit: Circuit, free, inputs) -> Float[Array, "*batch columns"]:
    """The current each column of a [`crossbar_circuit`][kirchhoff.crossbar_circuit] delivers
    to its end, amperes: the sum of its cross-points' currents (equal to it by Kirchhoff's
    current law)."""
    cross = circuit.elements[0]  # the cross-points, row-major
    n = circuit.n_inputs

    def one(free, x):
        currents = circuit.branch_currents(circuit.potentials(free, x))[0]
        return jnp.sum(currents.reshape(n, cross.size // n), axis=0)

    if jnp.ndim(inputs) == 1:
        return one(free, inputs)
    return jax.vmap(one)(free, inputs)


class CrossbarSolution(eqx.Module):
    """A crossbar layer's solved state (batched like the inputs), as
    [`crossbar_column_currents`][kirchhoff.crossbar_column_currents] returns it.

    Attributes:
        column_currents: the current into each column's end, amperes, shape
            ``(..., m)``: ``(m,)`` for one example, ``(batch, m)`` for a batch.
        free: the free potentials of the
            [`crossbar_circuit`][kirchhoff.crossbar_circuit], volts, shape
            ``(..., n_free)``.
        residual: the largest |KCL residual| over the free nodes, amperes, shape ``(...)``
            (a scalar for one example): how exactly the solve met Kirchhoff's current law.
    """

    column_currents: Float[Array, "*batch columns"]  # amperes, into each column's end
    free: Float[Array, "*batch free"]  # the circuit's free potentials, volts
    residual: Float[Array, "*batch"]  # max |KCL residual| over the free nodes, amperes


@eqx.filter_jit
def _linear_solve(circuit: Circuit, inputs):
    """The free potentials of a linear circuit: one solve of its energy's Hessian (the
    weighted graph Laplacian of the free nodes) against its gradient at zero."""

    def one(x):
        zero = jnp.zeros(circuit.n_free, x.dtype)
        hessian = circuit.energy_hessian(zero, x)
        return -jnp.linalg.solve(hessian, jax.grad(circuit.energy)(zero, x))

    return one(inputs) if inputs.ndim == 1 else jax.vmap(one)(inputs)


def crossbar_column_currents(
    conductances: Float[ArrayLike, "rows columns"],
    inputs: Float[ArrayLike, "*batch rows"],
    wire_resistance: float,
    column_potential: float = 0.0,
    load_resistance: float | None = None,
    solver: AbstractSolver | None = None,
) -> CrossbarSolution:
    """The column currents of one crossbar layer with wire resistance (amperes), solved as
    its general circuit ([`crossbar_circuit`][kirchhoff.crossbar_circuit]): by default
    exactly, as the linear circuit it is (one dense solve of its energy's Hessian), or by
    ``solver`` (e.g. [`DampedNewton`][kirchhoff.DampedNewton]). Compare with
    [`ideal_column_currents`][kirchhoff.ideal_column_currents] for the IR drop.

    Args:
        conductances: the cross-points' conductances g_ij, siemens, finite and ≥ 0, shape
            ``(n, m)`` (rows, columns).
        inputs: the row drivers' potentials, volts, shape ``(n,)`` or ``(batch, n)``.
        wire_resistance: the resistance of each wire segment, ohms, ≥ 0 (0: ideal wires).
        column_potential: the potential of each column's end, volts (default 0 V).
        load_resistance: a load between each column's wire and its held end, ohms, > 0;
            None (the default): none.
        solver: an [`AbstractSolver`][kirchhoff.AbstractSolver] to solve the circuit with;
            None (the default): the exact dense linear solve.

    Returns:
        A [`CrossbarSolution`][kirchhoff.CrossbarSolution]: the column currents (amperes,
            ``(m,)`` or ``(batch, m)``), the free potentials and the KCL residual.

    Raises:
        ValueError: ``inputs`` is not shaped ``(n,)`` or ``(batch, n)``, or an argument of
            [`crossbar_circuit`][kirchhoff.crossbar_circuit] is invalid.
    """
    circuit = crossbar_circuit(conductances, wire_resistance, column_potential, load_resistance)
    x = jnp.asarray(inputs, circuit.dtype)
    if x.shape[-1:] != (circuit.n_inputs,) or x.ndim > 2:
        raise ValueError(
            f"crossbar: inputs have shape {x.shape}; give the {circuit.n_inputs} row "
            f"potentials, shape ({circuit.n_inputs},) or (batch, {circuit.n_inputs})."
        )
    free = _linear_solve(circuit, x) if solver is None else solver.solve(circuit, x).free
    kcl = circuit.kcl_residual if x.ndim == 1 else jax.vmap(circuit.kcl_residual)
    residual = jnp.max(jnp.abs(kcl(free, x)), axis=-1, initial=0.0)
    return CrossbarSolution(column_currents(circuit, free, x), free, residual)
