"""Circuit elements as Equinox modules, each declaring its role by its base class.

An element module is a *group* of ``k`` elements of one kind (one resistor is a group of
one), so that a layer of a thousand resistors costs one vectorised co-content call. Nodes
are named by any hashable; the circuit binds names to indices.

The circuit, its topology and the SPICE exporter ask an element for its role and the role's
methods, never for its class: :class:`AbstractDissipative` (co-content of a voltage drop),
:class:`AbstractSource` (a fixed injected current), :class:`AbstractHeld` (nodes held at set
potentials or inputs), :class:`AbstractDriven` (nodes driven by amplifiers) and
:class:`AbstractBounded` (a capped voltage drop). A new kind of element is one subclass of a
role; ``validate`` adds runtime checks and ``spice_cards`` writes it into a netlist.
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
    """A group of elements of one kind, attached to named nodes."""

    # field names of the trainable parameters of this element kind
    trainable_fields: ClassVar[tuple[str, ...]] = ()

    @property
    def size(self) -> int:
        raise NotImplementedError

    def terminal_names(self) -> tuple[tuple[NodeRef, ...], ...]:
        """The node names of each terminal, one tuple per terminal (length ``size``)."""
        raise NotImplementedError

    def validate(self, x):
        """``x`` behind runtime checks of the parameters (``eqx.error_if``, inside jit)."""
        return x

    def spice_cards(self, writer, nodes: tuple[tuple[str, ...], ...]) -> None:
        """Write the group's SPICE cards through ``writer`` (``kirchhoff._spice._export``),
        ``nodes`` being each terminal's SPICE node names; by default there are none."""
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
    """Elements between an ``anode`` and a ``cathode``; the voltage drop is v(anode) - v(cathode)."""

    anode: tuple[NodeRef, ...] = eqx.field(static=True)
    cathode: tuple[NodeRef, ...] = eqx.field(static=True)

    @property
    def size(self) -> int:
        return len(self.anode)

    def terminal_names(self):
        return (self.anode, self.cathode)


class AbstractDissipative(AbstractTwoTerminal):
    """Role: a two-terminal element whose current is a monotone function of its voltage drop;
    its co-content is its share of the energy."""

    # True when the current is linear in the drop (a quadratic co-content)
    is_linear: ClassVar[bool] = False

    def current(self, voltage_drop: Float[Array, " k"]) -> Float[Array, " k"]:
        """Current from anode to cathode through the element, in amperes."""
        raise NotImplementedError

    def co_content(self, voltage_drop: Float[Array, " k"]) -> Float[Array, " k"]:
        """The integral of the current from 0 to the voltage drop, in joules per second."""
        raise NotImplementedError

    def differential_conductance(self, voltage_drop: Float[Array, " k"]) -> Float[Array, " k"]:
        """di/du at the voltage drop, in siemens (the element's share of the Hessian)."""
        # the current is elementwise in the drop, so one forward-mode pass gives all k
        return jax.jvp(self.current, (voltage_drop,), (jnp.ones_like(voltage_drop),))[1]

    def conducts(self) -> Bool[Array, " k"]:
        """Whether each element passes current at all (False: an open circuit, such as a zero
        conductance). A node whose every path to a held node crosses an open element is cut
        off: its potential is undefined, and the circuit refuses it (DISCONNECTED in a solve)."""
        return jnp.ones(self.size, bool)

    def co_content_increment(
        self, voltage_drop: Float[Array, " k"], change: Float[Array, " k"]
    ) -> Float[Array, " k"]:
        """``E(u + Δu) − E(u) − i(u)·Δu`` (the co-content's Bregman divergence), computed so
        that it is accurate relative to itself when Δu is tiny next to u; its derivative in Δu
        is the current change ``i(u + Δu) − i(u)``. Nudged phases are solved on this.

        The generic form below subtracts nearly equal numbers; elements override it."""
        u, du = voltage_drop, change
        return self.co_content(u + du) - self.co_content(u) - self.current(u) * du


class AbstractSource(AbstractOneTerminal):
    """Role: injects into each node a current that the potentials do not change, so that its
    energy term is linear in the potential."""

    def injected_current(self) -> Float[Array, " k"]:
        """The current injected into each node, in amperes."""
        raise NotImplementedError

    def co_content(self, potential: Float[Array, " k"]) -> Float[Array, " k"]:
        return -self.injected_current() * potential


class AbstractHeld(AbstractElement):
    """Role: holds every node of its terminals at a potential set by its parameters or by the
    circuit's inputs (which the groups that take inputs share out in element order)."""

    def input_names(self) -> tuple[NodeRef, ...]:
        """One name per input value the group takes (none: its potentials are parameters)."""
        return ()

    def held_potentials(self, inputs: Float[Array, " n"]) -> Float[Array, "terminals k"]:
        """The potentials of its nodes, shaped like its terminals, in volts, from ``inputs``:
        its own slice of the circuit's inputs (as many values as ``input_names``)."""
        raise NotImplementedError


class AbstractDriven(AbstractElement):
    """Role: drives each ``drive`` node at ``gain`` (static) times its ``source`` node's
    potential, keeping an energy function: the elements downstream weigh 1/gain²."""

    source: tuple[NodeRef, ...] = eqx.field(static=True)
    drive: tuple[NodeRef, ...] = eqx.field(static=True)
    gain: tuple[float, ...] = eqx.field(static=True)

    @property
    def size(self) -> int:
        return len(self.source)

    def terminal_names(self):
        return (self.source, self.drive)


class AbstractBounded(AbstractTwoTerminal):
    """Role: caps the voltage drop at ``max_drop`` (current ``i ≥ 0`` flows only where the cap
    binds): a co-content of 0 up to the cap and +∞ beyond, a bound on the free potential at
    one end when the other is held or driven, which the box-QP solver enforces."""

    def max_drop(self) -> tuple[float, ...]:
        """The largest drop anode − cathode each element allows, in volts (static: the
        topology reads it)."""
        return (0.0,) * self.size


class Resistor(AbstractDissipative):
    """Linear resistors (programmable: the conductance is trainable), ``i = g·u``."""

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
        return self.conductance * voltage_drop

    def conducts(self):
        return self.conductance > 0

    def co_content(self, voltage_drop):
        return 0.5 * self.conductance * voltage_drop**2

    def co_content_increment(self, voltage_drop, change):
        del voltage_drop
        return 0.5 * self.conductance * change**2

    def validate(self, x):
        g = self.conductance
        return eqx.error_if(
            x,
            jnp.any(g < 0) | ~jnp.all(jnp.isfinite(g)),
            "kirchhoff: a conductance is negative or not finite; keep conductances "
            "≥ 0 (e.g. project them after each update).",
        )

    def spice_cards(self, writer, nodes):
        # ``rk a c 1/g``; a zero conductance (an open circuit) only as an annotation
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
    (no continuation needed: the current grows as u/R_s)."""

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
        return self._with_series(shockley_current, series_shockley_current, voltage_drop)

    def co_content(self, voltage_drop):
        return self._with_series(shockley_co_content, series_shockley_co_content, voltage_drop)

    def co_content_increment(self, voltage_drop, change):
        return self._with_series(
            shockley_co_content_increment,
            series_shockley_co_content_increment,
            voltage_drop,
            change,
        )

    def validate(self, x):
        if self.series_resistance is None:
            return x
        r = self.series_resistance
        return eqx.error_if(
            x,
            jnp.any(r < 0) | ~jnp.all(jnp.isfinite(r)),
            "kirchhoff: a diode's series resistance is negative or not finite.",
        )

    def spice_cards(self, writer, nodes):
        # ``dk a c model``, one diode model per (I_s, n, V_T, R_s)
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

    Their co-content is 0 on ``u ≤ 0`` and +∞ beyond, i.e. a constraint; the box-QP and
    block-coordinate solvers enforce it, the smooth solvers refuse circuits that have them."""

    def __init__(self, anode, cathode):
        self.anode, self.cathode = _pair(anode, cathode, "IdealDiode")

    def spice_cards(self, writer, nodes):
        # a steep Shockley diode (the exporter's ideal-diode model)
        model = writer.ideal_diode_model()
        for a, c in zip(*nodes, strict=True):
            writer.card(f"d{writer.index('d')} {a} {c} {model}")


class CurrentSource(AbstractSource):
    """Current sources injecting ``current`` amperes into ``node`` (trainable biases)."""

    current: Float[Array, " k"]
    trainable_fields: ClassVar[tuple[str, ...]] = ("current",)

    def __init__(self, node, current: ArrayLike):
        self.node = as_names(node)
        self.current = _as_values(current, len(self.node), "current", "CurrentSource")
        c = _concrete(self.current)
        if c is not None and not np.all(np.isfinite(c)):
            raise ValueError("CurrentSource: currents must be finite.")

    def injected_current(self):
        return self.current

    def spice_cards(self, writer, nodes):
        # ``ik 0 node I``: SPICE's current flows from the first node into the second
        amps = writer.concrete(self.current, "a source current")
        for node, amp in zip(nodes[0], amps, strict=True):
            writer.card(f"i{writer.index('i')} 0 {node} {writer.value(amp)}")


class VoltageSource(AbstractOneTerminal, AbstractHeld):
    """Ideal voltage sources holding ``node`` at ``volts`` (relative to the reference 0 V).

    Ground is a ``VoltageSource(node, 0.0)``; bias rails are sources at other values."""

    volts: Float[Array, " k"]

    def __init__(self, node, volts: ArrayLike = 0.0):
        self.node = as_names(node)
        self.volts = _as_values(volts, len(self.node), "volts", "VoltageSource")
        v = _concrete(self.volts)
        if v is not None and not np.all(np.isfinite(v)):
            raise ValueError("VoltageSource: volts must be finite.")

    def held_potentials(self, inputs):
        return self.volts[None]

    def spice_cards(self, writer, nodes):
        # ``vk node 0 volts``; the node mapped to SPICE's reference needs none
        volts = writer.concrete(self.volts, "a VoltageSource's volts")
        for node, v in zip(nodes[0], volts, strict=True):
            if writer.is_ground(node):
                writer.comment("ground")
            else:
                writer.card(f"v{writer.index('v')} {node} 0 {writer.value(v)}")


def Ground(node: NodeRef = "gnd") -> VoltageSource:
    """The reference node, held at 0 V."""
    return VoltageSource(node, 0.0)


class Input(AbstractOneTerminal, AbstractHeld):
    """Voltage sources whose values are the circuit's inputs, set per example at solve time."""

    def __init__(self, node):
        self.node = as_names(node)

    def input_names(self):
        return self.node

    def held_potentials(self, inputs):
        return inputs[None]

    def spice_cards(self, writer, nodes):
        for node in nodes[0]:
            writer.input_source(node)


class Amplifier(AbstractDriven):
    """Bidirectional amplifiers (Kendall et al. 2020): a VCVS drives ``drive = gain·source``
    and a CCCS of gain 1/gain feeds the current drawn from ``drive`` back into ``source``.

    The circuit stays energy-based: elements downstream of an amplifier have their energy
    scaled by 1/gain²; the circuit works this scaling out when it is built."""

    def __init__(self, source, drive, gain):
        self.source, self.drive = _pair(source, drive, "Amplifier")
        check_real_dtype(gain, "Amplifier: `gain`")
        g = np.broadcast_to(np.asarray(gain, dtype=float), (len(self.source),))
        if not np.all(np.isfinite(g)) or np.any(g == 0):
            raise ValueError("Amplifier: gains must be finite and non-zero.")
        self.gain = tuple(float(x) for x in g)

    def spice_cards(self, writer, nodes):
        # VCVS ``ek d_int 0 s 0 A``, a 0 V ammeter ``vsensek d_int d 0`` into the drive node,
        # and CCCS ``fk s 0 vsensek 1/A`` drawing the drive current / A from the source node
        for s, d, gain in zip(*nodes, self.gain, strict=True):
            k = writer.index("e")
            internal = writer.unique_node(f"{d}_amp")
            writer.card(f"e{k} {internal} 0 {s} 0 {writer.value(gain)}")
            writer.card(f"vsense{k} {internal} {d} 0")
            writer.card(f"f{k} {s} 0 vsense{k} {writer.value(1.0 / gain)}")
