"""Circuit elements as Equinox modules: each contributes its co-content to the energy.

An element module is a *group* of ``k`` elements of one kind (one resistor is a group of
one), so that a layer of a thousand resistors costs one vectorised co-content call. Nodes
are named by any hashable; the circuit binds names to indices.
"""

from collections.abc import Sequence
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._custom_types import Array, ArrayLike, Float, NodeRef


def _as_names(nodes: NodeRef | Sequence[NodeRef]) -> tuple[NodeRef, ...]:
    if isinstance(nodes, str | int | np.integer):
        return (nodes.item() if isinstance(nodes, np.integer) else nodes,)
    if isinstance(nodes, np.ndarray):
        return tuple(n.item() if isinstance(n, np.generic) else n for n in nodes.reshape(-1))
    if isinstance(nodes, Sequence):
        return tuple(n.item() if isinstance(n, np.generic) else n for n in nodes)
    return (nodes,)


def _as_values(value: ArrayLike, k: int, what: str, cls: str) -> Float[Array, " k"]:
    # a floating array keeps its dtype (a float32 circuit stays float32 under x64); anything
    # else becomes JAX's default float
    dtype = getattr(value, "dtype", None)
    if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
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
    """A two-terminal element whose current is a monotone function of its voltage drop."""

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

    def co_content_increment(
        self, voltage_drop: Float[Array, " k"], change: Float[Array, " k"]
    ) -> Float[Array, " k"]:
        """``E(u + Δu) − E(u) − i(u)·Δu`` (the co-content's Bregman divergence), computed so
        that it is accurate relative to itself when Δu is tiny next to u; its derivative in Δu
        is the current change ``i(u + Δu) − i(u)``. Nudged phases are solved on this.

        The generic form below subtracts nearly equal numbers; elements override it."""
        u, du = voltage_drop, change
        return self.co_content(u + du) - self.co_content(u) - self.current(u) * du


def _pair(anode, cathode, cls):
    a, c = _as_names(anode), _as_names(cathode)
    if len(a) != len(c):
        raise ValueError(f"{cls}: {len(a)} anode(s) but {len(c)} cathode(s); give as many of each.")
    for x, y in zip(a, c, strict=True):
        if x == y:
            raise ValueError(f"{cls}: both terminals are node {x!r}; an element needs two nodes.")
    return a, c


class Resistor(AbstractDissipative):
    """Linear resistors (programmable: the conductance is trainable), ``i = g·u``."""

    conductance: Float[Array, " k"]
    trainable_fields: ClassVar[tuple[str, ...]] = ("conductance",)

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

    def co_content(self, voltage_drop):
        return 0.5 * self.conductance * voltage_drop**2

    def co_content_increment(self, voltage_drop, change):
        del voltage_drop
        return 0.5 * self.conductance * change**2


def shockley_current(u, saturation_current, ideality, thermal_voltage, max_exponent=40.0):
    """I_s (exp(u / n V_T) − 1), the exponential continued linearly past ``max_exponent``."""
    x = u / (ideality * thermal_voltage)
    # where, not minimum: at x == max_exponent jnp.minimum splits the derivative in half
    e = jnp.exp(jnp.where(x > max_exponent, max_exponent, x))
    # linear continuation of exp beyond the threshold: C1 current, C2 co-content
    ex = jnp.where(x > max_exponent, e * (1.0 + (x - max_exponent)), e)
    return saturation_current * (ex - 1.0)


def shockley_co_content(u, saturation_current, ideality, thermal_voltage, max_exponent=40.0):
    """∫₀ᵘ of :func:`shockley_current`."""
    nvt = ideality * thermal_voltage
    x = u / nvt
    e = jnp.exp(jnp.where(x > max_exponent, max_exponent, x))
    # ∫0^x (exp(s) - 1) ds, with exp continued as e^xm (1 + (s - xm)) past xm
    d = jnp.maximum(x - max_exponent, 0.0)
    integral = jnp.where(x > max_exponent, e * (1.0 + d + 0.5 * d**2), e) - 1.0 - x
    return saturation_current * nvt * integral


@jax.custom_jvp
def _exp_remainder(x):
    """``exp(x) − 1 − x`` without cancellation (a series near 0); its derivative is expm1."""
    small = jnp.abs(x) < 0.5
    xs = jnp.where(small, x, 0.0)
    series = jnp.zeros_like(xs)
    for k in range(17, 1, -1):  # Σ_{k=2}^{17} x^k/k!: truncation < 1e-20 relative for |x| < ½
        series = (series + 1.0) * xs / k
    series = series * xs
    return jnp.where(small, series, jnp.expm1(jnp.where(small, 1.0, x)) - x)


@_exp_remainder.defjvp
def _exp_remainder_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return _exp_remainder(x), jnp.expm1(x) * dx


def shockley_co_content_increment(
    u, du, saturation_current, ideality, thermal_voltage, max_exponent=40.0
):
    """``E(u + Δu) − E(u) − i(u)·Δu`` for :func:`shockley_co_content`, accurate for tiny Δu:
    I_s·nV_T·e^x·(e^{Δx} − 1 − Δx) on the exponential branch, ½·I_s·nV_T·e^{x_m}·Δx² on the
    linear continuation, and the plain difference where a step crosses the threshold."""
    nvt = ideality * thermal_voltage
    x, dx = u / nvt, du / nvt
    below = (x <= max_exponent) & (x + dx <= max_exponent)
    above = (x > max_exponent) & (x + dx > max_exponent)
    xb = jnp.where(below, x, 0.0)
    exp_branch = jnp.exp(xb) * _exp_remainder(jnp.where(below, dx, 0.0))
    lin_branch = jnp.exp(max_exponent) * 0.5 * jnp.where(above, dx, 0.0) ** 2
    args = (saturation_current, ideality, thermal_voltage, max_exponent)
    crossing = (
        shockley_co_content(u + du, *args)
        - shockley_co_content(u, *args)
        - shockley_current(u, *args) * du
    )
    return jnp.where(
        below,
        saturation_current * nvt * exp_branch,
        jnp.where(above, saturation_current * nvt * lin_branch, crossing),
    )


class ShockleyDiode(AbstractDissipative):
    """Shockley diodes, ``i = I_s (exp(u / n V_T) - 1)``, exponential continued linearly
    beyond ``max_exponent`` so that large forward bias never overflows."""

    saturation_current: Float[Array, " k"]
    ideality: Float[Array, " k"]
    thermal_voltage: Float[Array, " k"]
    max_exponent: float = eqx.field(static=True)

    def __init__(
        self,
        anode,
        cathode,
        saturation_current: ArrayLike = 1e-14,
        ideality: ArrayLike = 1.0,
        thermal_voltage: ArrayLike = 0.025852,
        max_exponent: float = 40.0,
    ):
        self.anode, self.cathode = _pair(anode, cathode, "ShockleyDiode")
        k = len(self.anode)
        self.saturation_current = _as_values(
            saturation_current, k, "saturation_current", "ShockleyDiode"
        )
        self.ideality = _as_values(ideality, k, "ideality", "ShockleyDiode")
        self.thermal_voltage = _as_values(thermal_voltage, k, "thermal_voltage", "ShockleyDiode")
        self.max_exponent = float(max_exponent)
        for name in ("saturation_current", "ideality", "thermal_voltage"):
            v = _concrete(getattr(self, name))
            if v is not None and (not np.all(np.isfinite(v)) or np.any(v <= 0)):
                raise ValueError(f"ShockleyDiode: `{name}` must be finite and positive.")

    def current(self, voltage_drop):
        return shockley_current(
            voltage_drop,
            self.saturation_current,
            self.ideality,
            self.thermal_voltage,
            self.max_exponent,
        )

    def co_content(self, voltage_drop):
        return shockley_co_content(
            voltage_drop,
            self.saturation_current,
            self.ideality,
            self.thermal_voltage,
            self.max_exponent,
        )

    def co_content_increment(self, voltage_drop, change):
        return shockley_co_content_increment(
            voltage_drop,
            change,
            self.saturation_current,
            self.ideality,
            self.thermal_voltage,
            self.max_exponent,
        )


class IdealDiode(AbstractTwoTerminal):
    """Ideal diodes: current ``i ≥ 0`` from anode to cathode, drop ``u ≤ 0``, ``i·u = 0``.

    Their co-content is 0 on ``u ≤ 0`` and +∞ beyond, i.e. a constraint; the box-QP and
    block-coordinate solvers enforce it, the smooth solvers refuse circuits that have them."""

    def __init__(self, anode, cathode):
        self.anode, self.cathode = _pair(anode, cathode, "IdealDiode")


class CurrentSource(AbstractElement):
    """Current sources injecting ``current`` amperes into ``node`` (trainable biases)."""

    node: tuple[NodeRef, ...] = eqx.field(static=True)
    current: Float[Array, " k"]
    trainable_fields: ClassVar[tuple[str, ...]] = ("current",)

    def __init__(self, node, current: ArrayLike):
        self.node = _as_names(node)
        self.current = _as_values(current, len(self.node), "current", "CurrentSource")
        c = _concrete(self.current)
        if c is not None and not np.all(np.isfinite(c)):
            raise ValueError("CurrentSource: currents must be finite.")

    @property
    def size(self):
        return len(self.node)

    def terminal_names(self):
        return (self.node,)

    def co_content(self, potential: Float[Array, " k"]) -> Float[Array, " k"]:
        return -self.current * potential


class VoltageSource(AbstractElement):
    """Ideal voltage sources holding ``node`` at ``volts`` (relative to the reference 0 V).

    Ground is a ``VoltageSource(node, 0.0)``; bias rails are sources at other values."""

    node: tuple[NodeRef, ...] = eqx.field(static=True)
    volts: Float[Array, " k"]

    def __init__(self, node, volts: ArrayLike = 0.0):
        self.node = _as_names(node)
        self.volts = _as_values(volts, len(self.node), "volts", "VoltageSource")
        v = _concrete(self.volts)
        if v is not None and not np.all(np.isfinite(v)):
            raise ValueError("VoltageSource: volts must be finite.")

    @property
    def size(self):
        return len(self.node)

    def terminal_names(self):
        return (self.node,)


def Ground(node: NodeRef = "gnd") -> VoltageSource:
    """The reference node, held at 0 V."""
    return VoltageSource(node, 0.0)


class Input(AbstractElement):
    """Voltage sources whose values are the circuit's inputs, set per example at solve time."""

    node: tuple[NodeRef, ...] = eqx.field(static=True)

    def __init__(self, node):
        self.node = _as_names(node)

    @property
    def size(self):
        return len(self.node)

    def terminal_names(self):
        return (self.node,)


class Amplifier(AbstractElement):
    """Bidirectional amplifiers (Kendall et al. 2020): a VCVS drives ``drive = gain·source``
    and a CCCS of gain 1/gain feeds the current drawn from ``drive`` back into ``source``.

    The circuit stays energy-based: elements downstream of an amplifier have their energy
    scaled by 1/gain²; the circuit works this scaling out when it is built."""

    source: tuple[NodeRef, ...] = eqx.field(static=True)
    drive: tuple[NodeRef, ...] = eqx.field(static=True)
    gain: tuple[float, ...] = eqx.field(static=True)

    def __init__(self, source, drive, gain):
        self.source, self.drive = _pair(source, drive, "Amplifier")
        g = np.broadcast_to(np.asarray(gain, dtype=float), (len(self.source),))
        if not np.all(np.isfinite(g)) or np.any(g == 0):
            raise ValueError("Amplifier: gains must be finite and non-zero.")
        self.gain = tuple(float(x) for x in g)

    @property
    def size(self):
        return len(self.source)

    def terminal_names(self):
        return (self.source, self.drive)
