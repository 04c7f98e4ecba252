"""Power and energy per phase of a layered network: what each element dissipates and what each
source delivers at a phase's potentials, per example, and the energy of a training step.

All quantities are *physical*: conductances in siemens, potentials in volts, currents in
amperes, powers in watts, energies in joules. They are not the network's energy function,
whose terms downstream of an amplifier carry the weight 1/A² (an equivalent minimisation
problem, not a power): the co-content of a resistor is ½·g·u², the power it dissipates g·u².

The circuit is the one ``LayeredNetwork.to_circuit`` builds. Its power budget at a phase's
potentials has these terms (``PhasePower``'s fields, each one number per example):

- **resistors** Σ g·(d − v)² over every conductance, d the potential driving it: a source
  (±γx), a hidden node (gain 1) or an amplifier's output A·v.
- **diodes** Σ i·u over the diodes to the rails. A Shockley diode dissipates i(u)·u ≥ 0. An
  ideal diode dissipates nothing: it conducts only at zero drop (u = 0, i ≥ 0) and blocks
  (i = 0) otherwise; the power that flows through it comes from its rail.
- **sources** Σ s·i over the input voltage sources (s = ±γx, i the current each delivers).
- **rails** Σ r·i over the bias rails the diodes end on (r the rail's potential, i the
  current it delivers into the diodes). Rails at 0 V (the DRNs' ground) deliver nothing; the
  seed network's rails at ±V do.
- **biases** Σ b·v over the bias current sources b at the potentials v of their nodes.
- **amplifiers** what the bidirectional amplifiers deliver: each is a VCVS that holds its
  output at A·v and supplies the current I that the next layer draws, delivering A·v·I, and
  a CCCS that draws I/A from v to ground, absorbing v·I/A; net (A − 1/A)·v·I. Positive where
  the amplifier pushes power downstream, negative where it absorbs it; 0 at A = 1.
- **nudge** Σ i·v over the nudging current sources at the outputs (0 in the free phase).

``dissipated`` = resistors + diodes, ``delivered`` = sources + rails + biases + amplifiers +
nudge. At an equilibrium (Kirchhoff's current law at every free node) the two are equal:
Tellegen's theorem, since they differ by Σ v·(net current leaving each free node). Away from
equilibrium they differ, and the difference is ``PhasePower.imbalance``.

The nudging sources are physical currents too: the nudged energy is E + β·C with E carrying
the output layer's weight w = 1/Π A², so Kirchhoff's law at an output reads
i_nudge = −(β/w)·∂C/∂v (``nudge_current``): β·A² per amplifier upstream, not β.
"""

import dataclasses
from collections.abc import Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._cost import squared_error
from .._custom_types import Array, Float, Scalar
from .._data._errors import InvalidInputError, InvalidInputTypeError
from ._checks import check_real
from ._network import LayeredNetwork


class PhasePower(eqx.Module):
    """Power budget of one phase of a [`LayeredNetwork`][kirchhoff.LayeredNetwork], per
    example: what each kind of element dissipates or delivers at the phase's potentials, as
    [`phase_power`][kirchhoff.phase_power] computes it.

    All terms are physical powers (watts) of the circuit
    [`to_circuit`][kirchhoff.LayeredNetwork.to_circuit] builds, not terms of the energy
    function (whose layers downstream of an amplifier carry the weight 1/A²): a resistor's
    co-content is ½·g·u², the power it dissipates g·u². ``dissipated`` = resistors + diodes,
    ``delivered`` = sources + rails + biases + amplifiers + nudge; at an equilibrium
    (Kirchhoff's current law at every free node) the two are equal (Tellegen's theorem), and
    away from it they differ by ``imbalance``.

    Attributes:
        resistors: Σ g·(d − v)² over every conductance, d the potential driving it: a source
            (±γx), a hidden node, or an amplifier's output A·v. Shape (batch,), watts.
        diodes: Σ i·u over the diodes to the rails: i(u)·u ≥ 0 for a Shockley diode, 0 for an
            ideal one (it conducts only at zero drop). Shape (batch,), watts.
        sources: Σ s·i over the input voltage sources (s = ±γx, i the current each
            delivers). Shape (batch,), watts.
        rails: Σ r·i over the bias rails the diodes end on (r the rail's potential, i the
            current it delivers into the diodes); 0 for rails at 0 V (the DRNs' ground), not
            for the seed network's ±V. Shape (batch,), watts.
        biases: Σ b·v over the bias current sources b at the potentials v of their nodes.
            Shape (batch,), watts.
        amplifiers: What the bidirectional amplifiers deliver, (A − 1/A)·v·I net (a VCVS
            that holds A·v and supplies the current I the next layer draws, and a CCCS that
            draws I/A from v): positive where they push power downstream, 0 at A = 1.
            Shape (batch,), watts.
        nudge: Σ i·v over the nudging current sources at the outputs (0 in the free phase).
            Shape (batch,), watts.
    """

    resistors: Float[Array, " batch"]
    diodes: Float[Array, " batch"]
    sources: Float[Array, " batch"]
    rails: Float[Array, " batch"]
    biases: Float[Array, " batch"]
    amplifiers: Float[Array, " batch"]
    nudge: Float[Array, " batch"]

    @property
    def dissipated(self) -> Float[Array, " batch"]:
        """Power turned into heat: resistors + diodes (watts, ≥ 0 term by term)."""
        return self.resistors + self.diodes

    @property
    def delivered(self) -> Float[Array, " batch"]:
        """Power the sources deliver: inputs, rails, biases, amplifiers, nudge (watts)."""
        return self.sources + self.rails + self.biases + self.amplifiers + self.nudge

    @property
    def imbalance(self) -> Float[Array, " batch"]:
        """delivered − dissipated (watts): 0 at equilibrium, to round-off (Tellegen)."""
        return self.delivered - self.dissipated

    def energy(self, phase_duration: float) -> Float[Array, " batch"]:
        """Joules per example for a phase held ``phase_duration`` seconds at these potentials:
        dissipated power × duration (steady state: the settling transient is not counted).

        Args:
            phase_duration: How long the phase is held (seconds).

        Returns:
            The energy per example (joules), shape (batch,).
        """
        return self.dissipated * phase_duration

    def means(self) -> dict[str, Scalar]:
        """The batch mean of every term and of ``dissipated`` and ``delivered`` (watts), by
        name: one number each, to log."""
        out = {f.name: jnp.mean(getattr(self, f.name)) for f in dataclasses.fields(self)}
        out["dissipated"] = jnp.mean(self.dissipated)
        out["delivered"] = jnp.mean(self.delivered)
        return out


def _resistor_flows(w, drive, v):
    """For one weight layer and a batch: per example, Σ g·(d − v)² (watts), the current leaving
    each driving node into the layer and the current entering each driven node (amperes).

    Two matmuls, as a sweep costs, rather than batch × n_k × n_k+1 drops (18× slower on CPU for
    DRN-1H at batch 64). The products cancel where drops are small next to potentials:
    the error is ~eps·Σ g·((d − c)² + (v − c)²), so the potentials are taken relative to a
    per-example centre c (drops, hence power and currents, do not depend on c). Measured in
    float32 on DRN-1H and the seed network: 1e-7 relative, as the element-wise sum."""
    centre = 0.5 * (jnp.mean(drive, axis=-1, keepdims=True) + jnp.mean(v, axis=-1, keepdims=True))
    d, p = drive - centre, v - centre
    out_current = d * jnp.sum(w, axis=1) - p @ w.T
    in_current = d @ w - p * jnp.sum(w, axis=0)
    power = jnp.sum(d * out_current, axis=-1) - jnp.sum(p * in_current, axis=-1)
    return power, out_current, in_current


def _input_flows(net: LayeredNetwork, inputs, v):
    """``_resistor_flows`` for the input layer from the input drive s·W = γx·(W₊ − W₋), one
    (batch × features) product: the products with the 2·features sources' side (s·W, v·Wᵀ)
    reduce to it and to W's row and column sums, so the input layer costs one matmul, not
    two of twice its size (4× a DRN-1H training step's time otherwise). Returns (power,
    power the sources deliver, current entering each first-layer node)."""
    w = net.weights[0]
    n = net.n_inputs
    s = net.source_potentials(inputs)
    drive = net.input_gain * (inputs @ (w[:n] - w[n:]))  # s·W
    rows, cols = jnp.sum(w, axis=1), jnp.sum(w, axis=0)
    centre = 0.5 * (jnp.mean(s, axis=-1, keepdims=True) + jnp.mean(v, axis=-1, keepdims=True))
    d, p = s - centre, v - centre
    dw = drive - centre * cols  # (s − c)·W
    power = (d * d) @ rows - 2.0 * jnp.sum(p * dw, axis=-1) + (p * p) @ cols
    delivered = (s * d) @ rows - jnp.sum(p * drive, axis=-1)
    return power, delivered, dw - p * cols


def _on_rail(v, rail, scale):
    """Whether a node sits on its ideal diode's rail: to within round-off of the potentials
    (a nudged phase is free + deviation, and that sum rounds)."""
    tol = 16 * jnp.finfo(v.dtype).eps * scale
    return jnp.isfinite(rail) & (jnp.abs(v - jnp.where(jnp.isfinite(rail), rail, 0.0)) <= tol)


def _diode_power(net: LayeredNetwork, potentials, inflow, outflow):
    """Per example: power the diodes dissipate and power their rails deliver (watts).

    A Shockley diode from rail ``lo`` to node v carries i(lo − v) into the node, one from v to
    rail ``hi`` carries i(v − hi) out of it. An ideal diode carries the current Kirchhoff's
    law leaves over at a node on its rail (its Lagrange multiplier, ≥ 0), nothing elsewhere."""
    batch = potentials[0].shape[0]
    dtype = potentials[0].dtype
    diodes = jnp.zeros(batch, dtype)
    rails = jnp.zeros(batch, dtype)
    scale = jnp.max(jnp.stack([jnp.max(jnp.abs(p), axis=-1) for p in potentials]), axis=0)
    for m in range(1, net.n_layers):
        v = potentials[m]
        lo, hi = net.lower[m - 1], net.upper[m - 1]
        lo_ok, hi_ok = jnp.isfinite(lo), jnp.isfinite(hi)
        lo0, hi0 = jnp.where(lo_ok, lo, 0.0), jnp.where(hi_ok, hi, 0.0)
        if net.diode == "shockley":
            u_lo, u_hi = lo0 - v, v - hi0
            # rail lo → node, node → rail hi (each diode's own I_s and series resistance: i·u
            # is what the junction and R_s dissipate together)
            i_lo, i_hi = net.rail_diode_currents(v, m)
            diodes = diodes + jnp.sum(i_lo * u_lo + i_hi * u_hi, axis=-1)
        else:
            # the current every other element brings into the node: the diodes carry it off
            excess = inflow[m] - outflow[m] / net.drive_gain(m) + net.biases[m - 1]
            node_scale = jnp.maximum(scale[:, None], jnp.maximum(jnp.abs(lo0), jnp.abs(hi0)))
            i_lo = jnp.where(_on_rail(v, lo, node_scale), jnp.maximum(-excess, 0.0), 0.0)
            i_hi = jnp.where(_on_rail(v, hi, node_scale), jnp.maximum(excess, 0.0), 0.0)
        rails = rails + jnp.sum(lo0 * i_lo - hi0 * i_hi, axis=-1)
    return diodes, rails


def _check_arrays(who, net, inputs, layers, nudge):
    """Raise unless ``net`` is a read LayeredNetwork and the arrays are shaped for it."""
    if not isinstance(net, LayeredNetwork):
        raise InvalidInputTypeError(
            f"{who}: net must be a LayeredNetwork (e.g. kirchhoff.drn(...)); got "
            f"{type(net).__name__}."
        )
    net.require_read(who)
    shape = np.shape(inputs)
    if len(shape) != 2 or shape[-1] != net.n_inputs:
        raise InvalidInputError(
            f"{who}: inputs have shape {shape}; give a batch of shape (batch, {net.n_inputs})."
        )
    if isinstance(layers, str) or not isinstance(layers, Sequence):
        raise InvalidInputTypeError(
            f"{who}: layers must be a sequence of per-layer potentials [h1, …, out]; got "
            f"{type(layers).__name__}."
        )
    want = [(shape[0], n) for n in net.sizes[1:]]
    got = [np.shape(x) for x in layers]
    if got != want:
        hint = ""
        if len(got) == len(want) + 1:
            hint = " (the sweeps' [inputs, h1, …, out] includes the inputs: pass layers[1:])"
        raise InvalidInputError(
            f"{who}: layers must be the free potentials [h1, …, out] of shapes {want}; got "
            f"{got}{hint}."
        )
    if nudge is not None and np.shape(nudge) != want[-1]:
        raise InvalidInputError(
            f"{who}: nudge_current must have the outputs' shape {want[-1]}; got {np.shape(nudge)}."
        )


def phase_power(
    net: LayeredNetwork,
    inputs: Float[Array, "batch features"],
    layers: Sequence[Float[Array, "batch n_m"]],
    nudge_current: Float[Array, "batch outputs"] | None = None,
) -> PhasePower:
    """The power budget of ``net`` at one phase's potentials: what every resistor and diode
    dissipates and every source, rail, amplifier and nudge delivers, per example.

    Args:
        net: The network, presenting conductances (one with a non-ideal device is passed as
            ``net.read(key)``).
        inputs: The raw features, shape (batch, n_inputs); the sources hold ±γ·``inputs``.
        layers: The phase's free potentials [h1, …, out] (volts), of shapes (batch, n_m), as
            the sweeps produce them without the inputs; a nudged phase's are free +
            deviation.
        nudge_current: The current injected into each output (amperes), shape
            (batch, n_outputs), as [`nudge_current`][kirchhoff.nudge_current] gives it; None
            in the free phase.

    Returns:
        The [`PhasePower`][kirchhoff.PhasePower], each term of shape (batch,) in watts.

    Raises:
        kirchhoff.InvalidInputError: If the shapes do not fit ``net``, or its device does not
            read its state as conductance.
        kirchhoff.InvalidInputTypeError: If ``net`` is not a
            [`LayeredNetwork`][kirchhoff.LayeredNetwork] or ``layers`` not a sequence.
    """
    _check_arrays("phase_power", net, inputs, layers, nudge_current)
    dtype = net.dtype
    inputs = jnp.asarray(inputs, dtype)
    layers = [jnp.asarray(v, dtype) for v in layers]
    if nudge_current is None:
        nudge_current = jnp.zeros_like(layers[-1])
    return _phase_power(net, inputs, layers, jnp.asarray(nudge_current, dtype))


@eqx.filter_jit
def _phase_power(net, inputs, layers, nudge_current):
    """``phase_power`` on checked arguments (one compilation per network and shape; inside a
    jitted training step it is inlined)."""
    dtype = net.dtype
    potentials = [net.source_potentials(inputs), *layers]
    batch = potentials[0].shape[0]
    zero = jnp.zeros(batch, dtype)
    amplifiers = zero
    inflow = [None] * (net.n_layers + 1)  # into each node from its upstream resistors
    outflow = [None] * (net.n_layers + 1)  # out of each node's drive into downstream ones
    resistors, sources, inflow[1] = _input_flows(net, inputs, potentials[1])
    for k in range(1, net.n_layers):
        w, a = net.weights[k], net.drive_gain(k)
        power, outflow[k], inflow[k + 1] = _resistor_flows(w, a * potentials[k], potentials[k + 1])
        resistors = resistors + power
        # VCVS: A·v·I out; CCCS: v·I/A in (the current it feeds back into v)
        delivered = jnp.sum(potentials[k] * outflow[k], axis=-1)
        amplifiers = amplifiers + (a - 1.0 / a) * delivered
    biases = sum(
        (jnp.sum(b * v, axis=-1) for b, v in zip(net.biases, potentials[1:], strict=True)), zero
    )
    nudge = jnp.sum(nudge_current * potentials[-1], axis=-1)
    diodes, rails = _diode_power(net, potentials, inflow, outflow)
    return PhasePower(resistors, diodes, sources, rails, biases, amplifiers, nudge)


def nudge_current(
    net: LayeredNetwork,
    outputs: Float[Array, "batch outputs"],
    targets: Float[Array, "batch outputs"],
    beta,
) -> Float[Array, "batch outputs"]:
    """Current the nudging sources inject into the output nodes: what Kirchhoff's law at an
    output of the nudged phase E + β·C asks of a physical source.

    It is −(β/w)·∂C/∂v_out = (β/w)·(y − v_out), with C = ½‖v_out − y‖²
    ([`squared_error`][kirchhoff.squared_error]) and w the output layer's energy weight (1/A²
    per amplifier upstream): β·A² per amplifier, not β.

    Args:
        net: The network (for its amplifier gains).
        outputs: The output potentials v_out (volts), shape (batch, n_outputs).
        targets: The targets y (volts), shaped like ``outputs``.
        beta: The nudge strength β (siemens); < 0 for the negative phase.

    Returns:
        The currents into the outputs (amperes), shaped like ``outputs``.
    """
    grad = jax.grad(lambda o: jnp.sum(squared_error(o, targets)))(outputs)
    return -(beta / net.layer_weight(net.n_layers)) * grad


def eqprop_phase_powers(
    net: LayeredNetwork,
    inputs: Float[Array, "batch features"],
    targets: Float[Array, "batch outputs"],
    beta,
    free: Sequence[Float[Array, "batch n_m"]],
    positive: Sequence[Float[Array, "batch n_m"]] | None = None,
    negative: Sequence[Float[Array, "batch n_m"]] | None = None,
) -> dict[str, PhasePower]:
    """The power budget of each phase of an EqProp step, by name.

    With ``phases = kh.layered_phases(net, x, y, β, ...)`` (see
    [`layered_phases`][kirchhoff.layered_phases]):
    ``eqprop_phase_powers(net, x, y, β, phases.free[1:], phases.positive, phases.negative)``.

    Args:
        net: The network, presenting conductances (``net.read(key)`` for a non-ideal
            device).
        inputs: The raw features, shape (batch, n_inputs).
        targets: The targets (volts), shape (batch, n_outputs).
        beta: The nudge strength β (siemens); the positive phase is nudged by +β, the
            negative by −β.
        free: The free phase's potentials [h1, …, out] (volts), of shapes (batch, n_m).
        positive: The positive phase's deviations from the free one, v^β − v⁰, per layer
            (as [`LayeredPhases`][kirchhoff.LayeredPhases] holds them); None if not run.
        negative: The negative phase's deviations, v^{−β} − v⁰; None if not run.

    Returns:
        A dict from phase name (``"free"``, and ``"positive"``, ``"negative"`` for those
        given) to its [`PhasePower`][kirchhoff.PhasePower].

    Raises:
        kirchhoff.InvalidInputError: If the deviations do not match ``free`` layer for layer,
            or the shapes do not fit ``net``.
        kirchhoff.InvalidInputTypeError: If ``beta`` is not a real number, or a deviation
            not a sequence.
    """
    check_real("eqprop_phase_powers", "beta", beta)
    out = {"free": phase_power(net, inputs, free)}
    for name, sign, deviation in (("positive", 1.0, positive), ("negative", -1.0, negative)):
        if deviation is None:
            continue
        if isinstance(deviation, str) or not isinstance(deviation, Sequence):
            raise InvalidInputTypeError(
                f"eqprop_phase_powers: {name} must be a sequence of per-layer deviations; got "
                f"{type(deviation).__name__}."
            )
        if len(deviation) != len(free):
            raise InvalidInputError(
                f"eqprop_phase_powers: {name} holds {len(deviation)} layer(s) of deviations; "
                f"free holds {len(free)}."
            )
        layers = [v + d for v, d in zip(free, deviation, strict=True)]
        current = nudge_current(net, layers[-1], targets, sign * beta)
        out[name] = phase_power(net, inputs, layers, current)
    return out


def step_energy(
    powers: Mapping[str, PhasePower] | Sequence[PhasePower],
    phase_duration: float | Mapping[str, float],
) -> Scalar:
    """Joules one training step dissipates: Σ over the phases run, Σ over the batch's
    examples, of the dissipated power × the phase's duration.

    Each example is one settled circuit held for ``phase_duration`` per phase, so a step on a
    batch of B costs B times one example's energy: the sum, not the mean (divide by the batch
    size for joules per example). Steady state only: the energy of settling (node
    capacitances) and the amplifiers' quiescent supply current are not counted. At
    equilibrium the dissipated power is also the delivered one (Tellegen).

    Args:
        powers: The phases' [`PhasePower`][kirchhoff.PhasePower]s: a mapping by phase name
            (as [`eqprop_phase_powers`][kirchhoff.eqprop_phase_powers] returns) or a
            sequence.
        phase_duration: How long each phase is held (seconds, ≥ 0): one number for all
            phases, or a mapping from phase name when ``powers`` is a mapping.

    Returns:
        The energy of the step (joules), a scalar.

    Raises:
        kirchhoff.InvalidInputError: If ``powers`` is empty or a phase has no duration.
        kirchhoff.InvalidInputTypeError: If a phase is not a
            [`PhasePower`][kirchhoff.PhasePower].
    """
    if isinstance(powers, Mapping):
        items = [(str(name), p) for name, p in powers.items()]
    else:
        items = [(f"#{k}", p) for k, p in enumerate(powers)]
    if not items:
        raise InvalidInputError("step_energy: powers is empty; give at least one phase.")
    total = jnp.zeros((), items[0][1].resistors.dtype)
    for name, p in items:
        if not isinstance(p, PhasePower):
            raise InvalidInputTypeError(
                f"step_energy: phase {name} must be a PhasePower; got {type(p).__name__}."
            )
        if isinstance(phase_duration, Mapping):
            if not isinstance(powers, Mapping) or name not in phase_duration:
                raise InvalidInputError(
                    f"step_energy: phase_duration gives no duration for phase {name}; give "
                    "one number for all phases or one per phase name."
                )
            t = phase_duration[name]
        else:
            t = phase_duration
        check_real("step_energy", "phase_duration", t, at_least=0)
        total = total + jnp.sum(p.energy(t))
    return total
