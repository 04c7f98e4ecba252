"""Circuit elements as Equinox modules, each declaring its role by its base class.

An element module is a *group* of ``k`` elements of one kind (one resistor is a group of
one), so that a layer of a thousand resistors costs one vectorised co-content call. Nodes
are named by a str, an int or a tuple of them; the circuit binds names to indices.

The circuit, its topology and the SPICE exporter ask an element for its role and the role's
methods, never for its class: [`AbstractDissipative`][kirchhoff.AbstractDissipative]
(co-content of a voltage drop), [`AbstractSource`][kirchhoff.AbstractSource] (a fixed
injected current), [`AbstractHeld`][kirchhoff.AbstractHeld] (nodes held at set potentials or
inputs), [`AbstractDriven`][kirchhoff.AbstractDriven] (nodes driven by amplifiers) and
[`AbstractBounded`][kirchhoff.AbstractBounded] (a capped voltage drop). A new kind of element
is one subclass of a role; ``validate`` adds runtime checks and ``spice_cards`` writes it into
a netlist.
"""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._custom_types import (
    Array,
    ArrayLike,
    Bool,
    Float,
    NodeRef,
    as_names,
    check_real_dtype,
)
from ._shockley import (
    series_shockley_co_content,
    series_shockley_co_content_increment,
    series_shockley_current,
    shockley_co_content,
    shockley_co_content_increment,
    shockley_current,
)


def _as_values(value: ArrayLike, k: int, what: str, cls: str) -> Float[Array, " k"]:
    # a floating array keeps its dtype (a float32 circuit stays float32 under x64); ints
    # become JAX's default float; complex, strings and bools are refused
    dtype = check_real_dtype(value, f"{cls}: `{what}`")
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = float
    arr = jnp.asarray(value, dtype=jax.dtypes.canonicalize_dtype(dtype))
    if arr.ndim == 0:
        arr = jnp.full((k,), arr)
    if arr.shape != (k,):
        raise ValueError(
            f"{cls}: `{what}` has shape {arr.shape} but the group has {k} element(s); "
            f"give a scalar or an array of shape ({k},)."
        )
    return arr


def _concrete(x) -> np.ndarray | None:
    try:
        return np.asarray(x)
    except Exception:  # a tracer: checks happen at solve time instead
        return None


def _pair(anode, cathode, cls):
    a, c = as_names(anode), as_names(cathode)
    if len(a) != len(c):
        raise ValueError(f"{cls}: {len(a)} anode(s) but {len(c)} cathode(s); give as many of each.")
    for x, y in zip(a, c, strict=True):
        if x == y:
            raise ValueError(f"{cls}: both terminals are node {x!r}; an element needs two nodes.")
    return a, c


class AbstractElement(eqx.Module):
    """A group of ``k`` elements of one kind, attached to named nodes: the base of every element.

    A [`Circuit`][kirchhoff.Circuit] reads an element through its role, so a new kind of
    element subclasses one of the roles, not this class directly:
    [`AbstractDissipative`][kirchhoff.AbstractDissipative],
    [`AbstractSource`][kirchhoff.AbstractSource], [`AbstractHeld`][kirchhoff.AbstractHeld],
    [`AbstractDriven`][kirchhoff.AbstractDriven] or
    [`AbstractBounded`][kirchhoff.AbstractBounded]. Every element provides ``size`` (``k``) and
    ``terminal_names`` (its nodes; the two-terminal roles provide both from their ``anode`` and
    ``cathode`` fields). It may set the class variable ``trainable_fields`` (the names of its
    trainable array fields, e.g. ``("conductance",)``), override ``validate`` to add runtime
    checks of its parameters, and override ``spice_cards`` so that
    [`to_netlist`][kirchhoff.to_netlist] can export it.

    Node names are a str, an int or a tuple of them (``("h", 3)``); where an element takes one
    name or a sequence of names, a bare tuple is read as a sequence, so put a tuple name in a
    list (``[("h", 3)]``).
    """

    # field names of the trainable parameters of this element kind
    trainable_fields: ClassVar[tuple[str, ...]] = ()

    @property
    def size(self) -> int:
        """The number ``k`` of elements in the group."""
        raise NotImplementedError

    def terminal_names(self) -> tuple[tuple[NodeRef, ...], ...]:
        """The node names of each terminal: one tuple per terminal (the two-terminal roles:
        anodes, then cathodes), each of length ``size``."""
        raise NotImplementedError

    def validate(self, x):
        """``x`` behind runtime checks of the parameters (``eqx.error_if``, inside jit).

        [`Circuit.validate`][kirchhoff.Circuit.validate] threads the inputs through every
        element's ``validate`` before a solve; by default there is no check.

        Args:
            x: any array (the circuit's inputs), returned unchanged.

        Returns:
            ``x``, tied to the checks so that they run wherever ``x`` is used.
        """
        return x

    def spice_cards(self, writer, nodes: tuple[tuple[str, ...], ...]) -> None:
        """Write the group's SPICE cards through ``writer``, for
        [`to_netlist`][kirchhoff.to_netlist].

        By default there are none: this raises ValueError naming the element, so that the
        export refuses an element it cannot write.

        Args:
            writer: the exporter's card writer (``kirchhoff._spice._export.SpiceWriter``):
                card numbering, values as SPICE reads them, input sources and diode models.
            nodes: each terminal's SPICE node names, one tuple per terminal (shaped like
                ``terminal_names()``).
        """
        raise ValueError(
            f"kirchhoff SPICE export: no SPICE card for the element {type(self).__name__}."
        )


class AbstractOneTerminal(AbstractElement):
    """Elements attached to one ``node`` each."""

    node: tuple[NodeRef, ...] = eqx.field(static=True)

    @property
    def size(self) -> int:
        return len(self.node)

    def terminal_names(self):
        return (self.node,)


class AbstractTwoTerminal(AbstractElement):
    """Elements between an ``anode`` and a ``cathode``; the voltage drop is
    v(anode) − v(cathode)."""

    anode: tuple[NodeRef, ...] = eqx.field(static=True)
    cathode: tuple[NodeRef, ...] = eqx.field(static=True)

    @property
    def size(self) -> int:
        return len(self.anode)

    def terminal_names(self):
        return (self.anode, self.cathode)


class AbstractDissipative(AbstractTwoTerminal):
    """Role: a two-terminal element whose current is a monotone function of its voltage drop;
    its co-content is its share of the energy.

    The voltage drop is u = v(anode) − v(cathode) in volts, and the current flows from anode
    to cathode. A subclass sets ``anode`` and ``cathode`` in its ``__init__`` and provides
    ``current`` and ``co_content`` (its integral), both elementwise over the group's ``k``
    elements; it may override ``co_content_increment`` with an accurate form,
    ``differential_conductance``, ``conducts``, and set the class variable ``is_linear`` to
    True when the current is linear in the drop (the energy then stays quadratic).
    [`Resistor`][kirchhoff.Resistor] and [`ShockleyDiode`][kirchhoff.ShockleyDiode] are the
    built-in ones.

    Attributes:
        anode: the anode node of each element (a tuple of ``k`` names).
        cathode: the cathode node of each element (a tuple of ``k`` names).
    """

    # True when the current is linear in the drop (a quadratic co-content)
    is_linear: ClassVar[bool] = False

    def current(self, voltage_drop: Float[Array, " k"]) -> Float[Array, " k"]:
        """Current from anode to cathode through each element, in amperes.

        Args:
            voltage_drop: u = v(anode) − v(cathode) of each element, volts, shape ``(k,)``.

        Returns:
            The currents, amperes, shape ``(k,)``.
        """
        raise NotImplementedError

    def co_content(self, voltage_drop: Float[Array, " k"]) -> Float[Array, " k"]:
        """The integral of the current from 0 to the voltage drop: each element's energy term.

        Args:
            voltage_drop: u of each element, volts, shape ``(k,)``.

        Returns:
            ∫₀ᵘ i(s) ds of each element, watts (joules per second), shape ``(k,)``.
        """
        raise NotImplementedError

    def differential_conductance(self, voltage_drop: Float[Array, " k"]) -> Float[Array, " k"]:
        """di/du at the voltage drop (volts, shape ``(k,)``), in siemens, shape ``(k,)``: the
        element's share of the energy's Hessian. By default by forward-mode autodiff."""
        # the current is elementwise in the drop, so one forward-mode pass gives all k
        return jax.jvp(self.current, (voltage_drop,), (jnp.ones_like(voltage_drop),))[1]

    def conducts(self) -> Bool[Array, " k"]:
        """Whether each element passes current at all, shape ``(k,)`` (False: an open circuit,
        such as a zero conductance). A node whose every path to a held node crosses an open
        element is cut off: its potential is undefined, and the circuit refuses it
        (``Status.DISCONNECTED`` in a solve). By default every element conducts."""
        return jnp.ones(self.size, bool)

    def co_content_increment(
        self, voltage_drop: Float[Array, " k"], change: Float[Array, " k"]
    ) -> Float[Array, " k"]:
        """``E(u + Δu) − E(u) − i(u)·Δu`` (the co-content's Bregman divergence), computed so
        that it is accurate relative to itself when Δu is tiny next to u; its derivative in Δu
        is the current change ``i(u + Δu) − i(u)``. Nudged phases are solved on this.

        The generic form subtracts nearly equal numbers; elements override it.

        Args:
            voltage_drop: u of each element, volts, shape ``(k,)``.
            change: Δu of each element, volts, shape ``(k,)``.

        Returns:
            The increment of each element, watts, shape ``(k,)``; ≥ 0 for a monotone current.
        """
        u, du = voltage_drop, change
        return self.co_content(u + du) - self.co_content(u) - self.current(u) * du


class AbstractSource(AbstractOneTerminal):
    """Role: injects into each node a current that the potentials do not change, so that its
    energy term is linear in the potential: −I·v.

    A subclass sets ``node`` in its ``__init__`` and provides ``injected_current``.
    [`CurrentSource`][kirchhoff.CurrentSource] is the built-in one.

    Attributes:
        node: the node each element injects into (a tuple of ``k`` names).
    """

    def injected_current(self) -> Float[Array, " k"]:
        """The current injected into each node, in amperes, shape ``(k,)`` (positive: into
        the node)."""
        raise NotImplementedError

    def co_content(self, potential: Float[Array, " k"]) -> Float[Array, " k"]:
        """The energy term −I·v of each element, watts, shape ``(k,)``, at the potential
        (volts, shape ``(k,)``) of its node."""
        return -self.injected_current() * potential


class AbstractHeld(AbstractElement):
    """Role: holds every node of its terminals at a potential set by its parameters or by the
    circuit's inputs (which the groups that take inputs share out in element order).

    A subclass provides ``size``, ``terminal_names`` and ``held_potentials``, and
    ``input_names`` when it takes inputs. Held nodes are not free: the solvers leave them
    where the element holds them, and a node may be held by one element only.
    [`VoltageSource`][kirchhoff.VoltageSource], [`Ground`][kirchhoff.Ground] and
    [`Input`][kirchhoff.Input] are the built-in ones.
    """

    def input_names(self) -> tuple[NodeRef, ...]:
        """One name per input value the group takes (none: its potentials are parameters).

        The circuit's ``input_names`` are those of its held groups, in element order."""
        return ()

    def held_potentials(self, inputs: Float[Array, " n"]) -> Float[Array, "terminals k"]:
        """The potentials at which the group holds its nodes.

        Args:
            inputs: the group's own slice of the circuit's inputs, volts, shape ``(n,)`` with
                ``n = len(input_names())`` (empty for a group that takes none).

        Returns:
            The potentials, volts, shaped like its terminals: ``(terminals, k)``.
        """
        raise NotImplementedError


class AbstractDriven(AbstractElement):
    """Role: drives each ``drive`` node at ``gain`` (static) times its ``source`` node's
    potential, keeping an energy function: the elements downstream weigh 1/gain².

    A subclass sets the three fields in its ``__init__``. A driven node is not free: its
    potential follows its source node's. [`Amplifier`][kirchhoff.Amplifier] is the built-in
    one.

    Attributes:
        source: the node each element senses (a tuple of ``k`` names).
        drive: the node each element drives (a tuple of ``k`` names).
        gain: each element's voltage gain (a tuple of ``k`` non-zero floats; static).
    """

    source: tuple[NodeRef, ...] = eqx.field(static=True)
    drive: tuple[NodeRef, ...] = eqx.field(static=True)
    gain: tuple[float, ...] = eqx.field(static=True)

    @property
    def size(self) -> int:
        """The number ``k`` of elements in the group."""
        return len(self.source)

    def terminal_names(self):
        """The source nodes, then the drive nodes: ``(source, drive)``."""
        return (self.source, self.drive)


class AbstractBounded(AbstractTwoTerminal):
    """Role: caps the voltage drop at ``max_drop`` (current ``i ≥ 0`` flows only where the cap
    binds): a co-content of 0 up to the cap and +∞ beyond, a bound on the free potential at
    one end when the other is held or driven, which the box-QP solver enforces.

    A subclass sets ``anode`` and ``cathode`` in its ``__init__`` and may override
    ``max_drop`` (0 V by default: [`IdealDiode`][kirchhoff.IdealDiode]). A circuit with
    bounded elements is solved by [`BoxQP`][kirchhoff.BoxQP], which needs one end of each
    element held or amplifier-driven (and no Shockley diodes); the smooth solvers refuse it.

    Attributes:
        anode: the anode node of each element (a tuple of ``k`` names).
        cathode: the cathode node of each element (a tuple of ``k`` names).
    """

    def max_drop(self) -> tuple[float, ...]:
        """The largest drop anode − cathode each element allows, in volts (static: the
        topology reads it), one per element."""
        return (0.0,) * self.size


class Resistor(AbstractDissipative):
    """Linear resistors (programmable: the conductance is trainable), ``i = g·u``.

    Element ``j`` joins ``anode[j]`` to ``cathode[j]`` with conductance ``conductance[j]``; its
    co-content is ½·g·u². A zero conductance is an open circuit (allowed, unless it cuts a
    node off from every held node).

    Args:
        anode: one node name, or a sequence of ``k`` names (one per element).
        cathode: one node name, or a sequence of ``k`` names; each differs from its anode.
        conductance: siemens, ≥ 0 and finite: a scalar (shared by all ``k``) or one per
            element, shape ``(k,)``. Trainable; a floating array keeps its dtype, ints become
            JAX's default float.

    Raises:
        ValueError: anodes and cathodes differ in number, an element has both terminals on
            one node, ``conductance`` has another shape, or a conductance is negative or not
            finite.
        TypeError: ``conductance`` is not real numbers (complex, bool, str), or a node name
            is not a str, an int or a tuple of them.

    Examples:
        A divider: 1 V on ``in``, 1 mS to ``mid``, 3 mS from ``mid`` to ground.

        >>> import jax.numpy as jnp
        >>> import kirchhoff as kh
        >>> circuit = kh.Circuit(
        ...     [
        ...         kh.Input("in"),
        ...         kh.Resistor(["in", "mid"], ["mid", "gnd"], [1e-3, 3e-3]),
        ...         kh.Ground("gnd"),
        ...     ],
        ...     outputs=["mid"],
        ... )
        >>> eq = kh.DampedNewton().solve(circuit, jnp.array([1.0]))
        >>> print(f"{float(eq.free[0]):.3f}")  # v(mid) = 1 V · 1 mS / (1 mS + 3 mS)
        0.250
    """

    conductance: Float[Array, " k"]
    trainable_fields: ClassVar[tuple[str, ...]] = ("conductance",)
    is_linear: ClassVar[bool] = True

    def __init__(self, anode, cathode, conductance: ArrayLike):
        self.anode, self.cathode = _pair(anode, cathode, "Resistor")
        self.conductance = _as_values(conductance, len(self.anode), "conductance", "Resistor")
        g = _concrete(self.conductance)
        if g is not None and not np.all(np.isfinite(g)):
            raise ValueError("Resistor: conductances must be finite (siemens); got NaN or inf.")
        if g is not None and np.any(g < 0):
            raise ValueError(
                "Resistor: conductances must be non-negative (siemens); got "
                f"min {np.min(g):.3g}. A negative conductance is not a passive resistor."
            )

    def current(self, voltage_drop):
        """``g·u``: the current (amperes, shape ``(k,)``) at each drop u (volts, ``(k,)``)."""
        return self.conductance * voltage_drop

    def conducts(self):
        """True where the conductance is positive (a zero one is open), shape ``(k,)``."""
        return self.conductance > 0

    def co_content(self, voltage_drop):
        """``½·g·u²`` of each element (watts, shape ``(k,)``) at its drop u (volts)."""
        return 0.5 * self.conductance * voltage_drop**2

    def co_content_increment(self, voltage_drop, change):
        """``½·g·Δu²`` (watts, shape ``(k,)``): exact, independent of the drop u."""
        del voltage_drop
        return 0.5 * self.conductance * change**2

    def validate(self, x):
        """``x`` behind a runtime check (inside jit) that every conductance is finite and
        ≥ 0, as after a training update."""
        g = self.conductance
        return eqx.error_if(
            x,
            jnp.any(g < 0) | ~jnp.all(jnp.isfinite(g)),
            "kirchhoff: a conductance is negative or not finite; keep conductances "
            "≥ 0 (e.g. project them after each update).",
        )

    def spice_cards(self, writer, nodes):
        """``rk a c 1/g`` per element; a zero conductance (open) only as an annotation."""
        g = writer.concrete(self.conductance, "a conductance")
        for a, c, g_j in zip(*nodes, g, strict=True):
            k = writer.index("r")
            if g_j == 0.0:
                writer.comment(f"open r{k} {a} {c}")
            else:
                writer.card(f"r{k} {a} {c} {writer.value(1.0 / g_j)}")


class ShockleyDiode(AbstractDissipative):
    """Shockley diodes, ``i = I_s (exp(u / n V_T) - 1)``, exponential continued linearly
    beyond ``max_exponent`` so that large forward bias never overflows; with a series
    resistance R_s > 0 (the bulk and contacts), ``u = i·R_s + n V_T ln(1 + i/I_s)`` instead
    (no continuation needed: the current grows as u/R_s).

    The current flows from anode to cathode (forward bias: u = v(anode) − v(cathode) > 0).
    The parameters are not trainable. Each of them is a scalar (shared by the group) or one
    per element, shape ``(k,)``.

    Args:
        anode: one node name, or a sequence of ``k`` names (one per element).
        cathode: one node name, or a sequence of ``k`` names; each differs from its anode.
        saturation_current: I_s, amperes, > 0 (default 1e-14 A).
        ideality: the ideality factor n, dimensionless, > 0 (default 1).
        thermal_voltage: V_T = k·T/q, volts, > 0 (default 0.025852 V, about 300 K).
        max_exponent: the exponent u/(n·V_T) past which the exponential is continued linearly
            (a static float > 0; default 40, i.e. about 1 V at the defaults). Unused where the
            series resistance is > 0.
        series_resistance: R_s, ohms, ≥ 0 and finite; None (the default) or all zero: the
            plain diode. Elements with R_s = 0 in a group with others > 0 stay plain.

    Raises:
        ValueError: anodes and cathodes differ in number, an element has both terminals on
            one node, a parameter has another shape, I_s, n or V_T is not finite and
            positive, ``max_exponent`` is not > 0, or R_s is negative or not finite.
        TypeError: a parameter is not real numbers, or a node name is not a str, an int or
            a tuple of them.
    """

    saturation_current: Float[Array, " k"]
    ideality: Float[Array, " k"]
    thermal_voltage: Float[Array, " k"]
    series_resistance: Float[Array, " k"] | None  # ohms; None: none (the plain diode)
    max_exponent: float = eqx.field(static=True)

    def __init__(
        self,
        anode,
        cathode,
        saturation_current: ArrayLike = 1e-14,
        ideality: ArrayLike = 1.0,
        thermal_voltage: ArrayLike = 0.025852,
        max_exponent: float = 40.0,
        series_resistance: ArrayLike | None = None,
    ):
        self.anode, self.cathode = _pair(anode, cathode, "ShockleyDiode")
        k = len(self.anode)
        self.saturation_current = _as_values(
            saturation_current, k, "saturation_current", "ShockleyDiode"
        )
        self.ideality = _as_values(ideality, k, "ideality", "ShockleyDiode")
        self.thermal_voltage = _as_values(thermal_voltage, k, "thermal_voltage", "ShockleyDiode")
        self.max_exponent = float(max_exponent)
        if not (np.isfinite(self.max_exponent) and self.max_exponent > 0):
            raise ValueError(f"ShockleyDiode: `max_exponent` = {max_exponent}; it must be > 0.")
        for name in ("saturation_current", "ideality", "thermal_voltage"):
            v = _concrete(getattr(self, name))
            if v is not None and (not np.all(np.isfinite(v)) or np.any(v <= 0)):
                raise ValueError(f"ShockleyDiode: `{name}` must be finite and positive.")
        self.series_resistance = None
        if series_resistance is not None:
            r = _as_values(series_resistance, k, "series_resistance", "ShockleyDiode")
            rc = _concrete(r)
            if rc is not None and (not np.all(np.isfinite(rc)) or np.any(rc < 0)):
                raise ValueError(
                    "ShockleyDiode: `series_resistance` must be finite and non-negative (ohms)."
                )
            # all zero: the plain diode, on exactly its own code path
            if rc is None or np.any(rc > 0):
                self.series_resistance = r

    def _constants(self):
        return (self.saturation_current, self.ideality, self.thermal_voltage, self.max_exponent)

    def _with_series(self, plain, series, *args):
        """``plain(*args, *constants)`` without a series resistance; else ``series`` where
        R_s > 0 and ``plain`` where R_s = 0 (each on safe values where it is not taken)."""
        if self.series_resistance is None:
            return plain(*args, *self._constants())
        r = self.series_resistance
        has_r = r > 0
        i_s, n, vt = self._constants()[:3]
        with_r = series(*args, i_s, n, vt, jnp.where(has_r, r, 1.0))
        return jnp.where(has_r, with_r, plain(*args, *self._constants()))

    def current(self, voltage_drop):
        """The diode current (amperes, shape ``(k,)``) at each drop u (volts, ``(k,)``)."""
        return self._with_series(shockley_current, series_shockley_current, voltage_drop)

    def co_content(self, voltage_drop):
        """∫₀ᵘ i(s) ds of each diode (watts, shape ``(k,)``) at its drop u (volts)."""
        return self._with_series(shockley_co_content, series_shockley_co_content, voltage_drop)

    def co_content_increment(self, voltage_drop, change):
        """``E(u + Δu) − E(u) − i(u)·Δu`` of each diode (watts, shape ``(k,)``) in closed
        form, accurate however small Δu (volts, ``(k,)``) is next to u (volts, ``(k,)``)."""
        return self._with_series(
            shockley_co_content_increment,
            series_shockley_co_content_increment,
            voltage_drop,
            change,
        )

    def validate(self, x):
        """``x`` behind a runtime check (inside jit) that every series resistance is finite
        and ≥ 0."""
        if self.series_resistance is None:
            return x
        r = self.series_resistance
        return eqx.error_if(
            x,
            jnp.any(r < 0) | ~jnp.all(jnp.isfinite(r)),
            "kirchhoff: a diode's series resistance is negative or not finite.",
        )

    def spice_cards(self, writer, nodes):
        """``dk a c model`` per element, one diode model per (I_s, n, V_T, R_s)."""
        i_s = writer.concrete(self.saturation_current, "a diode's saturation current")
        n = writer.concrete(self.ideality, "a diode's ideality")
        vt = writer.concrete(self.thermal_voltage, "a diode's thermal voltage")
        if self.series_resistance is None:
            rs = np.zeros_like(i_s)
        else:
            rs = writer.concrete(self.series_resistance, "a diode's series resistance")
        for a, c, *constants in zip(*nodes, i_s, n, vt, rs, strict=True):
            writer.diode(a, c, *(float(x) for x in constants))


class IdealDiode(AbstractBounded):
    """Ideal diodes: current ``i ≥ 0`` from anode to cathode, drop ``u ≤ 0``, ``i·u = 0``.

    Their co-content is 0 on ``u ≤ 0`` and +∞ beyond, i.e. a constraint: a bound on the free
    potential at one end when the other is held or amplifier-driven.
    [`BoxQP`][kirchhoff.BoxQP] enforces it; the smooth solvers
    ([`DampedNewton`][kirchhoff.DampedNewton], [`LBFGS`][kirchhoff.LBFGS]) refuse circuits
    that have them, and BoxQP refuses a diode between two free nodes.

    Args:
        anode: one node name, or a sequence of ``k`` names (one per element).
        cathode: one node name, or a sequence of ``k`` names; each differs from its anode.

    Raises:
        ValueError: anodes and cathodes differ in number, or an element has both terminals
            on one node.
        TypeError: a node name is not a str, an int or a tuple of them.
    """

    def __init__(self, anode, cathode):
        self.anode, self.cathode = _pair(anode, cathode, "IdealDiode")

    def spice_cards(self, writer, nodes):
        """A steep Shockley diode per element (the exporter's ideal-diode model)."""
        model = writer.ideal_diode_model()
        for a, c in zip(*nodes, strict=True):
            writer.card(f"d{writer.index('d')} {a} {c} {model}")


class CurrentSource(AbstractSource):
    """Current sources injecting ``current`` amperes into ``node`` (trainable biases).

    Each contributes −I·v(node) to the energy. A current source alone does not hold a node:
    every free node still needs a conducting path to a held one.

    Args:
        node: one node name, or a sequence of ``k`` names (one per element).
        current: amperes injected into each node (negative: drawn from it), finite: a scalar
            (shared by all ``k``) or one per element, shape ``(k,)``. Trainable.

    Raises:
        ValueError: ``current`` has another shape or is not finite.
        TypeError: ``current`` is not real numbers, or a node name is not a str, an int or a
            tuple of them.
    """

    current: Float[Array, " k"]
    trainable_fields: ClassVar[tuple[str, ...]] = ("current",)

    def __init__(self, node, current: ArrayLike):
        self.node = as_names(node)
        self.current = _as_values(current, len(self.node), "current", "CurrentSource")
        c = _concrete(self.current)
        if c is not None and not np.all(np.isfinite(c)):
            raise ValueError("CurrentSource: currents must be finite.")

    def injected_current(self):
        """``current``: amperes into each node, shape ``(k,)``."""
        return self.current

    def spice_cards(self, writer, nodes):
        """``ik 0 node I`` per element (SPICE's current flows from the first node into the
        second)."""
        amps = writer.concrete(self.current, "a source current")
        for node, amp in zip(nodes[0], amps, strict=True):
            writer.card(f"i{writer.index('i')} 0 {node} {writer.value(amp)}")


class VoltageSource(AbstractOneTerminal, AbstractHeld):
    """Ideal voltage sources holding ``node`` at ``volts`` (relative to the reference 0 V).

    [`Ground`][kirchhoff.Ground] is a ``VoltageSource(node, 0.0)``; bias rails are sources at
    other values. The potentials are parameters, not inputs (for potentials set per example,
    use [`Input`][kirchhoff.Input]); they are not trainable.

    Args:
        node: one node name, or a sequence of ``k`` names (one per element).
        volts: the potential of each node, volts, finite: a scalar (shared by all ``k``) or
            one per element, shape ``(k,)``; default 0 V.

    Raises:
        ValueError: ``volts`` has another shape or is not finite.
        TypeError: ``volts`` is not real numbers, or a node name is not a str, an int or a
            tuple of them.
    """

    volts: Float[Array, " k"]

    def __init__(self, node, volts: ArrayLike = 0.0):
        self.node = as_names(node)
        self.volts = _as_values(volts, len(self.node), "volts", "VoltageSource")
        v = _concrete(self.volts)
        if v is not None and not np.all(np.isfinite(v)):
            raise ValueError("VoltageSource: volts must be finite.")

    def held_potentials(self, inputs):
        """``volts`` as shape ``(1, k)`` (it takes no inputs: ``inputs`` is empty)."""
        return self.volts[None]

    def spice_cards(self, writer, nodes):
        """``vk node 0 volts`` per element; the node mapped to SPICE's reference needs none."""
        volts = writer.concrete(self.volts, "a VoltageSource's volts")
        for node, v in zip(nodes[0], volts, strict=True):
            if writer.is_ground(node):
                writer.comment("ground")
            else:
                writer.card(f"v{writer.index('v')} {node} 0 {writer.value(v)}")


def Ground(node: NodeRef = "gnd") -> VoltageSource:
    """The reference node, held at 0 V.

    Every circuit needs a held node (a ground, a rail or an input) so that its potentials
    are defined.

    Args:
        node: the ground node's name (default ``"gnd"``), or a sequence of names to hold
            several nodes at 0 V.

    Returns:
        A [`VoltageSource`][kirchhoff.VoltageSource] holding ``node`` at 0 V.
    """
    return VoltageSource(node, 0.0)


class Input(AbstractOneTerminal, AbstractHeld):
    """Voltage sources whose values are the circuit's inputs, set per example at solve time.

    A circuit's input vector (shape ``(n_inputs,)``, volts) holds one value per input node:
    those of its ``Input`` groups (and of any other held element that takes inputs), in
    element order and, within a group, in ``node`` order; ``Circuit.input_names`` lists them.

    Args:
        node: one node name, or a sequence of ``k`` names (one input each).

    Raises:
        TypeError: a node name is not a str, an int or a tuple of them.
    """

    def __init__(self, node):
        self.node = as_names(node)

    def input_names(self):
        """The input nodes, ``node``: one input value each."""
        return self.node

    def held_potentials(self, inputs):
        """The group's inputs (volts, shape ``(k,)``) as its nodes' potentials, ``(1, k)``."""
        return inputs[None]

    def spice_cards(self, writer, nodes):
        """An input source ``vink node 0 x_k`` per element."""
        for node in nodes[0]:
            writer.input_source(node)


class Amplifier(AbstractDriven):
    """Bidirectional amplifiers (Kendall et al. 2020): a VCVS drives ``drive = gain·source``
    and a CCCS of gain 1/gain feeds the current drawn from ``drive`` back into ``source``.

    The circuit stays energy-based: elements downstream of an amplifier have their energy
    scaled by 1/gain²; the circuit works this scaling out when it is built. A driven node is
    not free, and may not also be held or driven by another amplifier; amplifiers may not
    form a loop.

    Args:
        source: one node name, or a sequence of ``k`` names: the nodes sensed.
        drive: one node name, or a sequence of ``k`` names: the nodes driven, each different
            from its source.
        gain: the voltage gain A (dimensionless, finite, non-zero; negative inverts): a
            scalar or one per element. Static: stored as Python floats, not trainable.

    Raises:
        ValueError: sources and drives differ in number, an element drives its own source,
            or a gain is zero or not finite.
        TypeError: ``gain`` is not real numbers, or a node name is not a str, an int or a
            tuple of them.
    """

    def __init__(self, source, drive, gain):
        self.source, self.drive = _pair(source, drive, "Amplifier")
        check_real_dtype(gain, "Amplifier: `gain`")
        g = np.broadcast_to(np.asarray(gain, dtype=float), (len(self.source),))
        if not np.all(np.isfinite(g)) or np.any(g == 0):
            raise ValueError("Amplifier: gains must be finite and non-zero.")
        self.gain = tuple(float(x) for x in g)

    def spice_cards(self, writer, nodes):
        """A VCVS, a 0 V ammeter and a CCCS per element (``e``, ``vsense``, ``f`` cards)."""
        # VCVS ``ek d_int 0 s 0 A``, a 0 V ammeter ``vsensek d_int d 0`` into the drive node,
        # and CCCS ``fk s 0 vsensek 1/A`` drawing the drive current / A from the source node
        for s, d, gain in zip(*nodes, self.gain, strict=True):
            k = writer.index("e")
            internal = writer.unique_node(f"{d}_amp")
            writer.card(f"e{k} {internal} 0 {s} 0 {writer.value(gain)}")
            writer.card(f"vsense{k} {internal} {d} 0")
            writer.card(f"f{k} {s} 0 vsense{k} {writer.value(1.0 / gain)}")
