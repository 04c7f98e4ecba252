"""A general nonlinear resistive circuit: a graph of elements whose energy is the total
co-content, minimised over the free node potentials at equilibrium (Millar's theorem)."""

import abc
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._custom_types import (
    Array,
    Bool,
    Float,
    FreePotentials,
    Inputs,
    Int,
    NodeRef,
    Potentials,
    Scalar,
)
from ._elements import (
    AbstractBounded,
    AbstractDissipative,
    AbstractElement,
    AbstractSource,
    AbstractTwoTerminal,
)
from ._topology import (
    check_values,
    compile_topology,
    cut_off_free,
    held_bound_violations,
    held_order,
)


class AbstractCircuit(eqx.Module):
    """Anything with an energy over a vector of free potentials: what solvers and EqProp need.

    [`Circuit`][kirchhoff.Circuit] (a general graph of elements) and
    [`LayeredNetwork`][kirchhoff.LayeredNetwork] are the two kinds. A subclass provides the
    sizes ``n_free``, ``n_inputs`` and ``n_outputs``, and ``energy``, ``output_potentials``,
    ``node_weight_free``, ``free_bounds``, ``trainable_filter`` and ``validate``, all for one
    example (the solvers ``vmap`` them over a batch); the other methods have generic forms
    (by autodiff) that a subclass may override with faster or more accurate ones. The free
    potentials are a vector of shape ``(n_free,)``, the inputs one of shape ``(n_inputs,)``,
    both in volts.
    """

    @property
    @abc.abstractmethod
    def n_free(self) -> int:
        """The number of free potentials (the unknowns of a solve)."""

    @property
    @abc.abstractmethod
    def n_inputs(self) -> int:
        """The number of input values per example."""

    @property
    @abc.abstractmethod
    def n_outputs(self) -> int:
        """The number of output nodes (the length of a target)."""

    @abc.abstractmethod
    def energy(self, free: FreePotentials, inputs: Inputs) -> Scalar:
        """Total (domain-weighted) co-content, in watts: what a free phase minimises.

        Args:
            free: the free potentials, volts, shape ``(n_free,)``.
            inputs: the input potentials, volts, shape ``(n_inputs,)``.

        Returns:
            The energy, watts, a scalar.
        """

    @abc.abstractmethod
    def output_potentials(self, free: FreePotentials, inputs: Inputs) -> Float[Array, " outputs"]:
        """Potentials of the output nodes, in volts.

        Args:
            free: the free potentials, volts, shape ``(n_free,)``.
            inputs: the input potentials, volts, shape ``(n_inputs,)``.

        Returns:
            The output potentials, volts, shape ``(n_outputs,)``.
        """

    @abc.abstractmethod
    def node_weight_free(self) -> Float[Array, " free"]:
        """Energy weight of each free node's domain, shape ``(n_free,)`` (1 without
        amplifiers; 1/A² behind amplifiers of total gain A): ∂E/∂v divided by it is the net
        current leaving the node, in amperes."""

    @abc.abstractmethod
    def free_bounds(self, inputs: Inputs) -> tuple[Float[Array, " free"], Float[Array, " free"]]:
        """Lower and upper bounds on the free potentials set by ideal diodes (±inf if none):
        two arrays of shape ``(n_free,)``, volts, from the inputs (volts, ``(n_inputs,)``)."""

    @abc.abstractmethod
    def trainable_filter(self):
        """A pytree of bools shaped like the circuit: True on trainable parameters (for
        ``eqx.partition`` and the gradients, which are pytrees shaped like the circuit)."""

    @abc.abstractmethod
    def validate(self, inputs: Inputs) -> Inputs:
        """Runtime checks (inside jit): raise on NaN/inf inputs or invalid parameters.

        Args:
            inputs: the input potentials, volts, shape ``(n_inputs,)``.

        Returns:
            ``inputs``, tied to the checks (``eqx.error_if``) so that they run where it is
                used.
        """

    def energy_hessian(self, free: FreePotentials, inputs: Inputs) -> Float[Array, "free free"]:
        """∂²E/∂v² over the free potentials (by autodiff unless a circuit knows better):
        shape ``(n_free, n_free)``, siemens (times the domains' weights), at ``free`` and
        ``inputs`` (volts, ``(n_free,)`` and ``(n_inputs,)``)."""
        return jax.hessian(self.energy)(free, inputs)

    def potential_scale(self, free: FreePotentials, inputs: Inputs) -> Scalar:
        """The size of the potentials (volts, a scalar), against which their accuracy is
        judged: here the largest |free potential| or |input|."""
        return jnp.maximum(
            jnp.max(jnp.abs(free), initial=0.0), jnp.max(jnp.abs(inputs), initial=0.0)
        )

    @property
    def dtype(self):
        """The floating dtype of the circuit's parameters: every solve runs in it."""
        leaves = jax.tree_util.tree_leaves(eqx.filter(self, eqx.is_inexact_array))
        return jnp.result_type(*leaves) if leaves else jnp.result_type(float)

    def astype(self, dtype):
        """The same circuit with every floating array (parameters included) cast to ``dtype``
        (a floating dtype, e.g. ``jnp.float32``; TypeError for any other)."""
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"astype: a circuit computes in a floating dtype, not {dtype}.")
        return cast_floats(self, jax.dtypes.canonicalize_dtype(dtype))

    def energy_increment(
        self, free: FreePotentials, change: FreePotentials, inputs: Inputs
    ) -> Scalar:
        """``E(v + δ) − E(v) − ∇E(v)·δ``: the energy of a deviation δ from ``free`` with the
        linear part removed (zero and flat at δ = 0). Nudged phases minimise it, plus the
        nudge, to resolve changes far below the potentials' round-off. Circuits override
        this generic form, which subtracts nearly equal numbers, with an accurate one.

        Args:
            free: the free potentials v, volts, shape ``(n_free,)``.
            change: the deviation δ of the free potentials, volts, shape ``(n_free,)``.
            inputs: the input potentials, volts, shape ``(n_inputs,)``.

        Returns:
            The increment, watts, a scalar.
        """
        e0, g0 = jax.value_and_grad(self.energy)(free, inputs)
        return self.energy(free + change, inputs) - e0 - jnp.dot(g0, change)

    def current_scale(
        self, free: FreePotentials, inputs: Inputs, change: FreePotentials | None = None
    ) -> Float[Array, " free"]:
        """Per free node, the size of the currents that meet there (amperes, shape
        ``(n_free,)``): the scale its KCL residual is judged against, and the round-off its
        computation carries. With ``change`` (volts, ``(n_free,)``), the same for the
        deviation problem at ``free + change``.

        This generic form (|∂²E/∂v²| times the largest potential) is coarse; circuits
        override it with one summed element by element."""
        x = free if change is None else change
        h = self.energy_hessian(free if change is None else free + change, inputs)
        v_scale = jnp.max(jnp.abs(x), initial=0.0)
        if change is None:
            v_scale = jnp.maximum(v_scale, jnp.max(jnp.abs(inputs), initial=0.0))
        return jnp.sum(jnp.abs(h), axis=1) * v_scale / self.node_weight_free()

    @property
    def has_ideal_diodes(self) -> bool:
        """Whether the circuit has ideal diodes (bounded elements), which the smooth solvers
        ([`DampedNewton`][kirchhoff.DampedNewton], [`LBFGS`][kirchhoff.LBFGS]) refuse."""
        return False

    def cut_off(self) -> Bool[Array, " free"] | None:
        """Per free node, True where no conducting element joins it to a held node (e.g. its
        links are zero conductances), computed inside jit: shape ``(n_free,)``; None: this
        circuit cannot be cut off."""
        return None

    def infeasible(self, inputs: Inputs) -> Bool[Array, ""]:
        """True (a scalar bool) where the ideal diodes contradict (a lower bound above an
        upper one) at ``inputs`` (volts, shape ``(n_inputs,)``)."""
        lo, hi = self.free_bounds(inputs)
        return jnp.any(lo > hi)

    @property
    def is_quadratic(self) -> bool:
        """True when the energy is quadratic in the free potentials (no Shockley diodes)."""
        return False

    def kcl_residual(self, free: FreePotentials, inputs: Inputs) -> Float[Array, " free"]:
        """Net current leaving each free node through its elements, in amperes (0 at equilibrium
        for circuits without ideal diodes): ∂E/∂v over ``node_weight_free``.

        Args:
            free: the free potentials, volts, shape ``(n_free,)``.
            inputs: the input potentials, volts, shape ``(n_inputs,)``.

        Returns:
            The residual of Kirchhoff's current law at each free node, amperes, shape
                ``(n_free,)``.
        """
        return jax.grad(self.energy)(free, inputs) / self.node_weight_free()


def cast_floats(tree, dtype):
    """``tree`` with every floating array cast to ``dtype``."""
    return jax.tree_util.tree_map(lambda x: x.astype(dtype) if eqx.is_inexact_array(x) else x, tree)


class Circuit(AbstractCircuit):
    """A nonlinear resistive circuit: elements between named nodes, inputs held by sources,
    some nodes read as outputs. Parameters are ordinary pytree leaves.

    Each element is a group of elements of one kind (e.g. one
    [`Resistor`][kirchhoff.Resistor] group for a whole layer). A node is held (by a
    [`VoltageSource`][kirchhoff.VoltageSource], [`Ground`][kirchhoff.Ground] or
    [`Input`][kirchhoff.Input]), driven (by an [`Amplifier`][kirchhoff.Amplifier]) or free;
    the free potentials, in node order, are what a solver finds: the minimiser of the energy
    (the total co-content, Millar's theorem), where Kirchhoff's current law holds. The
    circuit's inputs are the potentials of its input nodes (``input_names``), one vector of
    shape ``(n_inputs,)`` per example, in volts.

    The circuit computes in one floating dtype (``dtype``): that of its trainable
    parameters (conductances, bias currents), else of any parameter; the others are cast
    to it. Its methods take one example; the solvers batch them.
    [`Resistor`][kirchhoff.Resistor] has an example: a divider, built and solved.

    Args:
        elements: the element groups, a sequence of
            [`AbstractElement`][kirchhoff.AbstractElement] (a list, even of one).
        outputs: the names of the output nodes, in the order of the output potentials and
            the targets; nodes not held by a source, each named once (default: none).
        nodes: the names of all nodes, in the order of ``node_names`` and of the potentials;
            by default their order of first appearance in the elements' terminals.

    Attributes:
        elements: the element groups, their floating arrays cast to the circuit's dtype; a
            gradient is a pytree shaped like the circuit, so ``grad.elements[i]`` holds
            the gradient of element group ``i``.
        node_names: every node's name, in node order (the order of ``potentials``).
        input_names: the input nodes' names, in the order of the inputs vector.
        output_names: the output nodes' names, in the order of ``output_potentials``.

    Raises:
        TypeError: ``elements`` is one element rather than a sequence of them.
        ValueError: an entry of ``elements`` is not an element; a node is listed twice in
            ``nodes`` or ``outputs``, or an element or output names a node missing from
            ``nodes``; no node is held; a node is held by two sources, or driven and held;
            amplifiers form a loop or reach a node with different total gains; a free
            node floats (no path of resistors, Shockley diodes or amplifiers to a held node) or is
            cut off by zero conductances; an output node is held; ideal diodes contradict
            or join two held nodes that bias them forward.
    """

    elements: tuple[AbstractElement, ...]
    terminals: tuple[Int[Array, "terminals k"], ...]
    energy_weights: tuple[Float[Array, " k"], ...]
    node_names: tuple[NodeRef, ...] = eqx.field(static=True)
    input_names: tuple[NodeRef, ...] = eqx.field(static=True)
    output_names: tuple[NodeRef, ...] = eqx.field(static=True)
    n_free_nodes: int = eqx.field(static=True)
    coupled_ideal_diodes: bool = eqx.field(static=True)
    free_nodes: Int[Array, " free"]
    output_nodes: Int[Array, " outputs"]
    node_root: Int[Array, " nodes"]
    node_gain: Float[Array, " nodes"]
    node_weight: Float[Array, " nodes"]
    bound_node: Int[Array, " diodes"]
    bound_ref: Int[Array, " diodes"]
    bound_scale: Float[Array, " diodes"]
    bound_offset: Float[Array, " diodes"]
    bound_upper: Bool[Array, " diodes"]

    def __init__(
        self,
        elements: Sequence[AbstractElement],
        outputs: Sequence[NodeRef] = (),
        nodes: Sequence[NodeRef] | None = None,
    ):
        topo = compile_topology(elements, outputs, nodes)
        # one dtype for the whole circuit: that of the trainable parameters (conductances,
        # bias currents), else of any parameter; the rest (diode constants, rails given as
        # Python floats) is cast to it, so float32 conductances give a float32 circuit under x64
        elements = topo.elements
        trainable = [getattr(e, f) for e in elements for f in type(e).trainable_fields]
        params = trainable or jax.tree_util.tree_leaves(eqx.filter(elements, eqx.is_inexact_array))
        dtype = jnp.result_type(*params) if params else jnp.result_type(float)
        b_node, b_ref, b_scale, b_offset, b_upper = topo.bounds
        self.elements = cast_floats(elements, dtype)
        self.terminals = tuple(jnp.asarray(t) for t in topo.terminals)
        self.energy_weights = tuple(jnp.asarray(w, dtype) for w in topo.energy_weights)
        self.node_names = tuple(topo.names)
        self.input_names = tuple(topo.input_names)
        self.output_names = topo.outputs
        self.n_free_nodes = len(topo.free)
        self.coupled_ideal_diodes = topo.coupled
        self.free_nodes = jnp.asarray(np.array(topo.free, dtype=np.int64))
        self.output_nodes = jnp.asarray(topo.out_idx)
        self.node_root = jnp.asarray(topo.root)
        self.node_gain = jnp.asarray(topo.gain, dtype)
        self.node_weight = jnp.asarray(topo.node_weight, dtype)
        self.bound_node = jnp.asarray(np.array(b_node, dtype=np.int64))
        self.bound_ref = jnp.asarray(np.array(b_ref, dtype=np.int64))
        self.bound_scale = jnp.asarray(np.array(b_scale, dtype=float), dtype)
        self.bound_offset = jnp.asarray(np.array(b_offset, dtype=float), dtype)
        self.bound_upper = jnp.asarray(np.array(b_upper, dtype=bool))
        # parameter values known now (not traced): refuse what a solve could not answer
        unknown = jnp.full(self.n_inputs, jnp.nan, dtype)  # bounds set by inputs: unknown
        bounds = self.free_bounds(unknown) if b_node else None
        held = held_bound_violations(self, unknown) if self.has_ideal_diodes else None
        check_values(topo, self.elements, bounds, held)

    # ---- sizes -------------------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        """The number of nodes (held, driven and free): the length of ``potentials``."""
        return len(self.node_names)

    @property
    def n_free(self) -> int:
        """The number of free nodes: the length of the free potentials a solve finds."""
        return self.n_free_nodes

    @property
    def n_inputs(self) -> int:
        """The number of input nodes: the length of an example's inputs."""
        return len(self.input_names)

    @property
    def n_outputs(self) -> int:
        """The number of output nodes: the length of an example's target."""
        return len(self.output_names)

    @property
    def has_ideal_diodes(self) -> bool:
        """Whether any element is bounded (an [`IdealDiode`][kirchhoff.IdealDiode]): then only
        [`BoxQP`][kirchhoff.BoxQP] solves the circuit."""
        return any(isinstance(e, AbstractBounded) for e in self.elements)

    @property
    def is_quadratic(self) -> bool:
        """True when every dissipative element is linear (no Shockley diodes), so that the
        energy is quadratic in the free potentials."""
        return all(e.is_linear for e in self.elements if isinstance(e, AbstractDissipative))

    def cut_off(self):
        """Per free node (shape ``(n_free,)``), True where no conducting element (e.g. only
        zero conductances) joins it to a held node, computed inside jit; None for a circuit
        without dissipative elements or free nodes."""
        return cut_off_free(self)

    def infeasible(self, inputs):
        """True (a scalar bool) where, at ``inputs`` (volts, ``(n_inputs,)``), the ideal
        diodes contradict at a node, or one joins two held nodes that bias it forward."""
        return super().infeasible(inputs) | jnp.any(held_bound_violations(self, inputs))

    def node_index(self, name: NodeRef) -> int:
        """The index of the node ``name`` in ``node_names`` and in ``potentials``; ValueError
        for an unknown name."""
        try:
            return self.node_names.index(name)
        except ValueError:
            raise ValueError(f"Circuit: unknown node {name!r}.") from None

    # ---- potentials and energy ----------------------------------------------------------
    def _held_values(self, inputs: Inputs) -> Float[Array, " held"]:
        """Potentials of the held slots, group by group in ``held_order``, from ``inputs``."""
        dtype = self.node_gain.dtype
        inputs, values, start = jnp.asarray(inputs, dtype=dtype), [], 0
        for _, e in held_order(self.elements):
            n = len(e.input_names())
            v = e.held_potentials(inputs[start : start + n])
            values.append(jnp.asarray(v, dtype=dtype).reshape(-1))
            start += n
        return jnp.concatenate(values)

    def potentials(self, free: FreePotentials, inputs: Inputs) -> Potentials:
        """All node potentials (volts) from the free ones and the inputs.

        Args:
            free: the free potentials, volts, shape ``(n_free,)`` (e.g. an
                [`Equilibrium`][kirchhoff.Equilibrium]'s ``free`` for one example).
            inputs: the input potentials, volts, shape ``(n_inputs,)``.

        Returns:
            Every node's potential, volts, shape ``(n_nodes,)``, in the order of
                ``node_names`` (see ``node_index``).
        """
        base = jnp.concatenate([free, self._held_values(inputs)])
        return self.node_gain * base[self.node_root]

    def free_potentials(self, potentials: Potentials) -> FreePotentials:
        """The free nodes' entries (shape ``(n_free,)``) of all node potentials (volts, shape
        ``(n_nodes,)``): the inverse of ``potentials`` on the free nodes."""
        return potentials[self.free_nodes]

    def output_potentials(self, free, inputs):
        """The output nodes' potentials, volts, shape ``(n_outputs,)``, in the order of
        ``output_names``, from the free potentials (volts, ``(n_free,)``) and the inputs
        (volts, ``(n_inputs,)``)."""
        base = jnp.concatenate([free, self._held_values(inputs)])
        return self.node_gain[self.output_nodes] * base[self.node_root[self.output_nodes]]

    def _groups(self, linear: bool | None):
        """(element, terminals, weight) of the groups the energy sums: all (None), the
        linear ones (True: linear dissipative elements and current sources, whose energy is
        quadratic in the potentials) or the others (False: the nonlinear dissipative ones)."""
        for e, t, w in zip(self.elements, self.terminals, self.energy_weights, strict=True):
            if not isinstance(e, (AbstractDissipative, AbstractSource)):
                continue
            is_linear = isinstance(e, AbstractSource) or e.is_linear
            if linear is None or linear == is_linear:
                yield e, t, w

    def energy_of_potentials(self, v: Potentials, linear: bool | None = None) -> Scalar:
        """The energy (watts, a scalar) at all node potentials ``v`` (volts, shape
        ``(n_nodes,)``): the co-contents of the dissipative elements and current sources,
        each weighted by its amplifier domain's 1/A² (``linear``: only the linear groups, or
        only the others; see ``linear_laplacian``)."""
        total = jnp.zeros((), v.dtype)
        for e, t, w in self._groups(linear):
            if isinstance(e, AbstractDissipative):
                total = total + jnp.sum(w * e.co_content(v[t[0]] - v[t[1]]))
            else:
                total = total + jnp.sum(w * e.co_content(v[t[0]]))
        return total

    def _free_incidence(self, t):
        """For a two-terminal group: each end's free index (``n_free`` where the node is held)
        and gain from it."""
        n = self.n_free
        root = jnp.where(self.node_root < n, self.node_root, n)
        return root[t[0]], root[t[1]], self.node_gain[t[0]], self.node_gain[t[1]]

    def linear_laplacian(self):
        """The Hessian of the linear elements' energy over the free potentials, which does
        not depend on them, as COO entries ``(rows, cols, values)`` (siemens, each of shape
        ``(4·k,)`` for the k linear elements; duplicates add up, and entries of a held end
        carry the index ``n_free`` and are to be dropped). With ``g0`` the gradient of the
        linear energy at zero free potentials, that energy's gradient is ``L·v + g0``: what a
        sparse solve assembles once per solve instead of once per step."""
        rows, cols, vals = [], [], []
        for e, t, w in self._groups(True):
            if not isinstance(e, AbstractDissipative):
                continue
            c = w * e.differential_conductance(jnp.zeros(t.shape[1], self.dtype))
            ra, rb, ga, gb = self._free_incidence(t)
            rows += [ra, rb, ra, rb]
            cols += [ra, rb, rb, ra]
            vals += [c * ga * ga, c * gb * gb, -c * ga * gb, -c * ga * gb]
        if not rows:
            empty = jnp.zeros(0, jnp.int32)
            return empty, empty, jnp.zeros(0, self.dtype)
        return jnp.concatenate(rows), jnp.concatenate(cols), jnp.concatenate(vals)

    def _n_rooted_bound(self) -> int:
        """An upper bound, known from shapes alone, on the nodes whose potential follows a
        free one (free nodes and the nodes amplifiers drive from them): every node less the
        held slots, each of which holds a node of its own."""
        held = jax.eval_shape(self._held_values, jax.ShapeDtypeStruct((self.n_inputs,), self.dtype))
        return self.n_nodes - held.shape[0]

    def n_linear_elements(self) -> int:
        """The number of linear dissipative elements (resistors), from shapes alone."""
        return sum(
            t.shape[1] for e, t, _ in self._groups(True) if isinstance(e, AbstractDissipative)
        )

    def linear_block_size(self) -> int:
        """The entries of ``linear_block``'s matrix, from shapes alone (for choosing it)."""
        return self._n_rooted_bound() * self.n_nodes

    def linear_block(self):
        """The linear dissipative elements' conductances as dense rows: ``(rows, block)``,
        ``rows`` the nodes whose potential follows a free one (shape ``(m,)``, padded with
        ``n_nodes``) and ``block[p, j]`` the total weighted conductance between node
        ``rows[p]`` and node ``j`` (siemens, ``(m, n_nodes)``). Where few nodes are free and
        many resistors reach held ones (a network's input layer), the resistors' currents and
        current scales at the free nodes are then dense row operations
        (``linear_block_terms``), with no scatter over the elements."""
        m, n_nodes = self._n_rooted_bound(), self.n_nodes
        rows = jnp.nonzero(self.node_root < self.n_free, size=m, fill_value=n_nodes)[0]
        pos = jnp.full(n_nodes + 1, m).at[rows].set(jnp.arange(m))
        block = jnp.zeros((m + 1, n_nodes), self.dtype)
        for e, t, w in self._groups(True):
            if isinstance(e, AbstractDissipative):
                c = w * e.differential_conductance(jnp.zeros(t.shape[1], self.dtype))
                block = block.at[pos[t[0]], t[1]].add(c).at[pos[t[1]], t[0]].add(c)
        return rows, block[:m]

    def linear_block_terms(self, block, free, inputs, exact: bool = True, change=None):
        """The linear groups' share of the energy's gradient over the free potentials and of
        ``current_scale`` (each ``(n_free,)``), the resistors' from ``block`` (what
        ``linear_block`` returned) by dense row operations, the current sources' element by
        element: with the nonlinear groups' (``linear=False``), the whole of each. With
        ``exact=False`` the scale is a lower bound, from matrix products alone: each node's
        |net resistor current| in place of the sum of the resistors' |currents|. With
        ``change``, the same for the energy's increment along it (``energy_increment``: the
        current sources have none) and ``current_scale(free, inputs, change)``: exact, from
        matrix products alone."""
        rows, g = block
        n = self.n_free
        total = jnp.sum(g, axis=1)
        root = jnp.concatenate([jnp.where(self.node_root < n, self.node_root, n), jnp.array([n])])
        gain = jnp.concatenate([self.node_gain, jnp.zeros(1, self.dtype)])
        at, a = root[rows], gain[rows]
        weight = self.node_weight_free()
        # the potentials (or, with change, their changes) at every node and at the rows
        v = self.potentials(free, inputs) if change is None else self.potential_changes(change)
        vr = jnp.concatenate([v, jnp.zeros(1, v.dtype)])[rows]
        # products (batched: matrix products) wherever the sum allows them
        current = vr * total - g @ v
        if change is not None:
            # a resistor's conductance at both ends of the step: 2c·(|x_a| + |x_b|)
            size = 2 * (jnp.abs(vr) * total + g @ jnp.abs(v))
        else:
            # as current_scale: c·(|v_a| + |v_b|) bounds the round-off, plus |current|
            if exact:
                drops = jnp.sum(g * jnp.abs(vr[:, None] - v[None, :]), axis=1)
            else:
                drops = jnp.abs(current)  # ≤ the sum of |c·(v_a − v_b)|
            size = jnp.abs(vr) * total + g @ jnp.abs(v) + drops
        grad = jnp.zeros(n + 1, v.dtype).at[at].add(a * current)[:n]
        scale = jnp.zeros(n + 1, v.dtype).at[at].add(jnp.abs(a) * size)[:n]
        if change is not None:
            return grad, scale / weight  # the current sources have no increment
        sources = [(e, t, w) for e, t, w in self._groups(True) if isinstance(e, AbstractSource)]
        if sources:

            def source_energy(z):
                u = self.potentials(z, inputs)
                return sum(jnp.sum(w * e.co_content(u[t[0]])) for e, t, w in sources)

            grad = grad + jax.grad(source_energy)(free)
            node = jnp.zeros(self.n_nodes, v.dtype)
            for e, t, w in sources:
                node = node.at[t[0]].add(w * jnp.abs(e.injected_current()))
            scale = (
                scale
                + jnp.zeros(n + 1, v.dtype).at[root[:-1]].add(jnp.abs(self.node_gain) * node)[:n]
            )
        return grad, scale / weight

    def hessian_diagonal(self, free, inputs, linear: bool | None = None):
        """The diagonal of the energy's Hessian over the free potentials (siemens, shape
        ``(n_free,)``), element by element (``linear`` as in ``energy_of_potentials``)."""
        v = self.potentials(free, inputs)
        n = self.n_free
        d = jnp.zeros(n + 1, v.dtype)
        for e, t, w in self._groups(linear):
            if isinstance(e, AbstractDissipative):
                c = w * e.differential_conductance(v[t[0]] - v[t[1]])
                ra, rb, ga, gb = self._free_incidence(t)
                same = ra == rb  # both ends on one root: (ga − gb)² c
                d = d.at[ra].add(jnp.where(same, c * (ga - gb) ** 2, c * ga * ga))
                d = d.at[rb].add(jnp.where(same, 0.0, c * gb * gb))
        return d[:n]

    def energy(self, free, inputs):
        """The circuit's energy: the total (domain-weighted) co-content, which the free
        potentials minimise at equilibrium.

        Args:
            free: the free potentials, volts, shape ``(n_free,)``.
            inputs: the input potentials, volts, shape ``(n_inputs,)``.

        Returns:
            The energy, watts, a scalar; its gradient in ``free`` over
                ``node_weight_free()`` is the KCL residual (``kcl_residual``), amperes.
        """
        return self.energy_of_potentials(self.potentials(free, inputs))

    @property
    def dtype(self):
        """The floating dtype in which the circuit computes (that of its trainable
        parameters, when it was built)."""
        return self.node_gain.dtype

    def potential_scale(self, free, inputs):
        """The largest |potential| over all nodes (volts, a scalar), against which the
        potentials' accuracy is judged."""
        return jnp.max(jnp.abs(self.potentials(free, inputs)), initial=0.0)

    def potential_changes(self, change: FreePotentials) -> Potentials:
        """Changes of all node potentials for a change of the free ones (held nodes: 0)."""
        base = jnp.concatenate([change, jnp.zeros(self.n_nodes, change.dtype)])
        return self.node_gain * base[self.node_root]

    def energy_increment(self, free, change, inputs):
        """``E(v + δ) − E(v) − ∇E(v)·δ``, summed element by element from their accurate
        increments (exact for resistors): what a nudged phase minimises.

        Args:
            free: the free potentials v, volts, shape ``(n_free,)``.
            change: the deviation δ of the free potentials, volts, shape ``(n_free,)``.
            inputs: the input potentials, volts, shape ``(n_inputs,)``.

        Returns:
            The increment, watts, a scalar (≥ 0).
        """
        return self.energy_increment_of(free, change, inputs)

    def energy_increment_of(self, free, change, inputs, linear: bool | None = None):
        """``energy_increment`` over the groups ``linear`` selects (as in
        ``energy_of_potentials``)."""
        v, dv = self.potentials(free, inputs), self.potential_changes(change)
        total = jnp.zeros((), v.dtype)
        # current sources are linear in the potentials: no increment
        for e, t, w in self._groups(linear):
            if isinstance(e, AbstractDissipative):
                u, du = v[t[0]] - v[t[1]], dv[t[0]] - dv[t[1]]
                total = total + jnp.sum(w * e.co_content_increment(u, du))
        return total

    def current_scale(self, free, inputs, change=None):
        """Per free node, the size of the currents that meet there (amperes, shape
        ``(n_free,)``), summed element by element: the scale against which its KCL residual
        is judged. With ``change`` (volts, ``(n_free,)``), the size of the current changes
        along the deviation from ``free`` to ``free + change``."""
        v = self.potentials(free, inputs)
        x = v if change is None else self.potential_changes(change)
        at = v if change is None else v + x
        node = jnp.zeros(self.n_nodes, v.dtype)
        for e, t, w in zip(self.elements, self.terminals, self.energy_weights, strict=True):
            if isinstance(e, AbstractDissipative):
                # c·(|v_a| + |v_c|) bounds both the current and the round-off in it; with a
                # change, c at both ends bounds the current change along the step
                u = at[t[0]] - at[t[1]]
                c = jnp.abs(e.differential_conductance(u))
                if change is None:
                    i = jnp.abs(e.current(u))
                else:
                    c = c + jnp.abs(e.differential_conductance(v[t[0]] - v[t[1]]))
                    i = 0.0
                s = w * (c * (jnp.abs(x[t[0]]) + jnp.abs(x[t[1]])) + i)
                node = node.at[t[0]].add(s).at[t[1]].add(s)
            elif isinstance(e, AbstractSource) and change is None:
                node = node.at[t[0]].add(w * jnp.abs(e.injected_current()))
        n = self.n_free
        root = jnp.where(self.node_root < n, self.node_root, n)
        free_scale = jnp.zeros(n + 1, v.dtype).at[root].add(jnp.abs(self.node_gain) * node)[:n]
        return free_scale / self.node_weight_free()

    def voltage_drops(self, v: Potentials) -> tuple[Float[Array, " k"] | None, ...]:
        """Voltage drop anode − cathode of every two-terminal element (None for others)."""
        return tuple(
            v[t[0]] - v[t[1]] if isinstance(e, AbstractTwoTerminal) else None
            for e, t in zip(self.elements, self.terminals, strict=True)
        )

    def branch_currents(self, v: Potentials) -> tuple[Float[Array, " k"] | None, ...]:
        """Current through each dissipative element (anode → cathode) or injected by each
        current source, in amperes; None for elements whose current the energy does not set."""
        out = []
        for e, t in zip(self.elements, self.terminals, strict=True):
            if isinstance(e, AbstractDissipative):
                out.append(e.current(v[t[0]] - v[t[1]]))
            elif isinstance(e, AbstractSource):
                out.append(e.injected_current())
            else:
                out.append(None)
        return tuple(out)

    def net_current(self, v: Potentials) -> Float[Array, " nodes"]:
        """Current leaving every node through dissipative elements, minus current injected by
        current sources (amplifier and voltage-source currents excluded), in amperes."""
        net = jnp.zeros(self.n_nodes, v.dtype)
        for e, t, i in zip(self.elements, self.terminals, self.branch_currents(v), strict=True):
            if isinstance(e, AbstractDissipative):
                net = net.at[t[0]].add(i).at[t[1]].add(-i)
            elif isinstance(e, AbstractSource):
                net = net.at[t[0]].add(-i)
        return net

    def energy_hessian(self, free, inputs):
        """The weighted graph Laplacian plus diode terms, assembled element by element:
        O(elements) scatter-adds instead of one reverse pass per free node."""
        v = self.potentials(free, inputs)
        n = self.n_free
        # potentials are gain·base[root]; roots beyond the free block are held (no row)
        h = jnp.zeros((n + 1, n + 1), v.dtype)
        for e, t, w in zip(self.elements, self.terminals, self.energy_weights, strict=True):
            if isinstance(e, AbstractDissipative):
                c = w * e.differential_conductance(v[t[0]] - v[t[1]])
                ra, rb, ga, gb = self._free_incidence(t)
                h = h.at[ra, ra].add(c * ga * ga).at[rb, rb].add(c * gb * gb)
                h = h.at[ra, rb].add(-c * ga * gb).at[rb, ra].add(-c * ga * gb)
        return h[:n, :n]

    def node_weight_free(self):
        """The energy weight of each free node's domain, shape ``(n_free,)``: 1, or 1/A²
        behind amplifiers of total gain A."""
        return self.node_weight[self.free_nodes]

    def free_bounds(self, inputs):
        """The bounds that ideal diodes to held or driven nodes put on the free potentials.

        Args:
            inputs: the input potentials, volts, shape ``(n_inputs,)`` (a diode to an input
                node is bounded by the input).

        Returns:
            ``(lower, upper)``, volts, each of shape ``(n_free,)``; −inf and +inf where no
                diode bounds a node.
        """
        dtype = self.dtype
        lo = jnp.full(self.n_free, -jnp.inf, dtype)
        hi = jnp.full(self.n_free, jnp.inf, dtype)
        if self.bound_node.shape[0] == 0:
            return lo, hi
        held = self._held_values(inputs)
        value = self.bound_scale * held[self.bound_ref - self.n_free] + self.bound_offset
        lo = lo.at[self.bound_node].max(jnp.where(self.bound_upper, -jnp.inf, value))
        hi = hi.at[self.bound_node].min(jnp.where(self.bound_upper, value, jnp.inf))
        return lo, hi

    def ideal_diode_currents(self, free: FreePotentials, inputs: Inputs) -> Float[Array, " free"]:
        """Current drawn from each free node by its ideal diodes at a constrained equilibrium
        (amperes): the Lagrange multiplier of its bound, ≥ 0 into a rail diode when active."""
        g = jax.grad(self.energy)(free, inputs) / self.node_weight_free()
        return -g

    # ---- training ------------------------------------------------------------------------
    def trainable_filter(self):
        """A pytree shaped like the circuit, True on the trainable parameters (each element
        kind's ``trainable_fields``: conductances, source currents), False elsewhere: the
        filter for ``eqx.partition`` that splits the parameters from the rest."""
        spec = jax.tree_util.tree_map(lambda _: False, self)

        def mark(e):
            return eqx.tree_at(
                lambda x: [getattr(x, f) for f in type(e).trainable_fields],
                e,
                [True] * len(type(e).trainable_fields),
            )

        marked = tuple(
            mark(e_spec) if type(e).trainable_fields else e_spec
            for e, e_spec in zip(self.elements, spec.elements, strict=True)
        )
        return eqx.tree_at(lambda c: c.elements, spec, marked)

    def validate(self, inputs):
        """Runtime checks inside jit, as every solve makes: the inputs are finite, and each
        element's ``validate`` (e.g. conductances finite and ≥ 0).

        Args:
            inputs: the input potentials, volts, shape ``(n_inputs,)``.

        Returns:
            ``inputs``, tied to the checks (``eqx.error_if``), which raise when it is used.
        """
        inputs = eqx.error_if(
            inputs,
            ~jnp.all(jnp.isfinite(inputs)),
            "kirchhoff: an input potential is NaN or infinite.",
        )
        for e in self.elements:
            inputs = e.validate(inputs)
        return inputs
