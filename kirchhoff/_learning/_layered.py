"""EqProp for layered networks, fused for speed: the input drive is computed once and shared
by the free and nudged phases, and weight gradients are closed-form matmuls over the batch."""

import equinox as eqx
import jax
import jax.numpy as jnp

from .._cost import squared_error
from .._data._errors import InvalidInputError, InvalidInputTypeError
from .._layered import LayeredNetwork
from .._layered._checks import check_array, check_int, check_real
from .._solver._base import Equilibrium, Status
from .._solver._deviation import DeviationProblem
from .._solver._phase import PHASE_RTOL, free_phase, swept_equilibria, whole_nudged_phase
from .._solver._sweeps import input_drive, layer_sums, run_sweeps
from ._eqprop import Variant, check_variant


class LayeredPhases(eqx.Module):
    """Per-layer potentials of the free phase and the deviations of the nudged phases from it
    (batched), and each phase's [`Equilibrium`][kirchhoff.Equilibrium] (status, sweeps,
    residual per example): what [`layered_phases`][kirchhoff.layered_phases] returns.

    Attributes:
        free: The free phase per layer, ``[inputs, h1, …, out]``: the inputs as given,
            ``(batch, n_inputs)``, then each free layer's potentials, volts,
            ``(batch, n_m)``.
        positive: The deviations δ⁺ = v^β − v⁰ per free layer ``[h1, …, out]``, volts,
            ``(batch, n_m)`` each; None for the "negative" variant.
        negative: The deviations δ⁻ = v^{−β} − v⁰ per free layer, likewise; None for the
            "positive" variant.
        free_eq: The free phase as an [`Equilibrium`][kirchhoff.Equilibrium]: the layers
            joined, ``(batch, n_free)``, with each example's status, sweep count and KCL
            residual (amperes).
        positive_eq: The +β phase as an [`Equilibrium`][kirchhoff.Equilibrium] (``free``
            v⁰ + δ⁺, ``deviation`` δ⁺), or None.
        negative_eq: The −β phase likewise, or None.
    """

    free: list
    positive: list | None  # deviations δ⁺ = v^β − v⁰ per free layer [h1, …, out]
    negative: list | None  # deviations δ⁻ = v^{−β} − v⁰
    free_eq: Equilibrium
    positive_eq: Equilibrium | None
    negative_eq: Equilibrium | None

    def equilibria(self) -> dict:
        """The phases that ran, by name: a dict from "free", "positive" and "negative" (those
        that ran) to their [`Equilibrium`][kirchhoff.Equilibrium]."""
        eqs = {"free": self.free_eq, "positive": self.positive_eq, "negative": self.negative_eq}
        return {k: v for k, v in eqs.items() if v is not None}

    def converged(self):
        """Per example, whether every phase that ran reported SUCCESS: bools, ``(batch,)``."""
        ok = self.free_eq.status == Status.SUCCESS
        for eq in (self.positive_eq, self.negative_eq):
            if eq is not None:
                ok = ok & (eq.status == Status.SUCCESS)
        return ok


def check_batch(who: str, net, inputs, targets=None, *, batched: bool = True):
    """Raise, before anything is computed, unless ``net`` is a LayeredNetwork, ``inputs`` a
    floating (batch, n_inputs) array (or (n_inputs,) unless ``batched``) and ``targets``
    (where given) shaped like the outputs; concrete values must be finite. Shapes are known
    while tracing, so inside ``jit`` this costs nothing at run time.

    Returns ``(inputs, targets)`` cast to the network's dtype, as a circuit's solve casts its
    inputs (float32 data into a float64 network under x64 computes in float64)."""
    if not isinstance(net, LayeredNetwork):
        raise InvalidInputTypeError(
            f"{who}: net must be a LayeredNetwork (e.g. kirchhoff.drn(...)); got "
            f"{type(net).__name__}."
        )
    shape = check_array(who, "inputs", inputs, ndims=(2,) if batched else (1, 2), last=net.n_inputs)
    if batched and shape[0] == 0:
        raise InvalidInputError(f"{who}: inputs hold an empty batch (shape {shape}).")
    if targets is not None:
        want = (*shape[:-1], net.n_outputs)
        got = check_array(who, "targets", targets, ndims=(len(want),), floating=False)
        if got != want:
            raise InvalidInputError(
                f"{who}: targets have shape {got}; expected {want} (one row of "
                f"{net.n_outputs} output targets per input)."
            )
    dtype = net.dtype
    return (
        jnp.asarray(inputs, dtype),
        None if targets is None else jnp.asarray(targets, dtype),
    )


def check_phase_settings(who: str, beta, n_sweeps, rtol) -> None:
    """Raise unless β is finite and > 0, ``n_sweeps`` an integer ≥ 1 and ``rtol`` > 0."""
    check_real(who, "beta", beta, above=0)
    check_int(who, "n_sweeps", n_sweeps, at_least=1)
    check_real(who, "rtol", rtol, above=0)


def init_layers(net: LayeredNetwork, inputs):
    batch = inputs.shape[:-1]
    out = [inputs]
    for m, n in enumerate(net.sizes[1:], start=1):
        z = jnp.zeros((*batch, n), inputs.dtype)
        if m < net.n_layers and net.diode == "ideal":
            z = jnp.clip(z, net.lower[m - 1], net.upper[m - 1])
        out.append(z)
    return out


def _pair_gradient(net: LayeredNetwork, inputs, free, da, db, mask=None):
    """Batch-mean of ∂E/∂θ(v⁰ + δa) − ∂E/∂θ(v⁰ + δb) for weights and biases, in closed form
    and from the deviations: for a conductance ½(u+Δa)² − ½(u+Δb)² = (Δa − Δb)·ū with ū the
    mean drop u + (Δa + Δb)/2, so that nothing cancels. ``da``/``db`` list [h1, …, out].
    ``mask`` (batch,) keeps only those examples (the mean over them; zero if none).
    A closed form kept for speed, with the sweeps' (see ``layer_terms``: 1.9–2.2× the
    autodiff-derived step at batch 64), and proved equal to autodiff of the energy by
    ``tests/test_layered.py``; the derived form also cancels in float32 (E(v⁺) − E(v⁻))."""
    b = inputs.shape[0]
    gw = []
    d = [None, *(x - y for x, y in zip(da, db, strict=True))]  # Δa − Δb per layer
    mean = [None, *(v + 0.5 * (x + y) for v, x, y in zip(free[1:], da, db, strict=True))]
    if mask is not None:
        # every term below is linear in Δa − Δb: zero the dropped rows (NaN-safe) and rescale
        keep = lambda a: jnp.where(mask[:, None], a, 0.0)
        d = [None, *(keep(x) for x in d[1:])]
        mean = [None, *(keep(x) for x in mean[1:])]
        rescale = b / jnp.maximum(jnp.sum(mask), 1)
        d = [None, *(x * rescale.astype(x.dtype) for x in d[1:])]
    for k, w in enumerate(net.weights):
        wk = net.layer_weight(k + 1)
        # (Δa − Δb)·ū = (D_u − D_v)(ū − v̄) per (i, j): row and column terms plus two products
        col = jnp.mean(d[k + 1] * mean[k + 1], axis=0)
        if k == 0:
            # the sources are the same in every phase (D_u = 0): one (n_features × batch) @
            # (batch × h1) product for ±x together
            xt_dv = (net.input_gain / b) * (inputs.T @ d[1])
            g = jnp.concatenate([col[None, :] - xt_dv, col[None, :] + xt_dv], axis=0)
        else:
            a = net.drive_gain(k)
            row = jnp.mean(d[k] * mean[k], axis=0)
            cross = (d[k].T @ mean[k + 1] + mean[k].T @ d[k + 1]) / b
            g = a**2 * row[:, None] + col[None, :] - a * cross
        gw.append((wk * g).astype(w.dtype))
    gb = [-net.layer_weight(m) * jnp.mean(d[m], axis=0) for m in range(1, net.n_layers + 1)]
    return tuple(gw), tuple(gb)


def as_gradient(net: LayeredNetwork, gw, gb):
    """Weight and bias gradients as a pytree shaped like the trainable part of ``net``."""
    params = eqx.filter(net, net.trainable_filter())
    return eqx.tree_at(lambda n: (n.weights, n.biases), params, (tuple(gw), tuple(gb)))


def layered_phases(
    net, inputs, targets, beta, n_sweeps, variant: Variant = "centered", rtol=PHASE_RTOL
):
    """Free phase and the nudged phases the variant needs, ``n_sweeps`` sweeps each of exact
    block coordinate descent; the nudged phases are solved for their deviations from the
    free one (see ``DeviationProblem``), and all phases share one input drive. Each phase's
    status judges its residual against ``rtol`` (see ``PHASE_RTOL``). Compiled once per
    network structure, batch shape, sweep count and variant.

    Args:
        net: A [`LayeredNetwork`][kirchhoff.LayeredNetwork] whose weights are
            conductances (``net.read(key)`` for a non-ideal device).
        inputs: The input features x, a floating array of shape ``(batch, n_inputs)``; each
            drives two sources, at +γx and −γx volts (γ = ``net.input_gain``).
        targets: The output targets y, volts, shape ``(batch, n_outputs)``.
        beta: The nudge strength β > 0, siemens, a real scalar: a current source
            β·(y − v_out) into each output (β/w in place of β behind amplifiers, w the
            output layer's energy weight, 1/A² per amplifier upstream; see
            [`nudge_current`][kirchhoff.nudge_current]). Data to the compiled function: a
            new β is not a new compilation.
        n_sweeps: Sweeps per phase, an integer ≥ 1.
        variant: "positive", "negative" or "centered" (the default; see
            [`VARIANTS`][kirchhoff.VARIANTS]): which nudged phases run.
        rtol: The phases' tolerance, > 0 (default ``PHASE_RTOL`` = 1e-3): a phase is
            SUCCESS when the correction one more update of any node would make is at most
            this fraction of its potential scale (max |v| for the free phase, max |δ| for a
            nudged one).

    Returns:
        A [`LayeredPhases`][kirchhoff.LayeredPhases]: each layer's free potentials, the
        nudged phases' deviations and every phase's
        [`Equilibrium`][kirchhoff.Equilibrium].

    Raises:
        InvalidInputTypeError: ``net`` not a LayeredNetwork, inputs not a floating array, or
            a setting of the wrong type.
        InvalidInputError: Inputs or targets of the wrong shape, or NaN or infinite; an
            empty batch; a setting out of its range; an unknown ``variant``; a network
            whose weights are a device's state, not conductances.
    """
    inputs, targets = check_batch("layered_phases", net, inputs, targets)
    check_phase_settings("layered_phases", beta, n_sweeps, rtol)
    check_variant(variant, "layered_phases")
    net.require_read("layered_phases")
    return _phases_jit(net, inputs, targets, _as_data(beta), n_sweeps, variant, rtol)


def _as_data(beta):
    """β as an array (weakly typed, like the Python number it may be), so that a compiled
    function takes it as data: a new β is not a new compilation."""
    return jnp.asarray(beta)


def _layered_phases(net, inputs, targets, beta, n_sweeps, variant, rtol):
    """[`layered_phases`][kirchhoff.layered_phases] on arguments already checked."""
    drive = input_drive(net, inputs)
    sums = layer_sums(net)
    init = init_layers(net, inputs)
    free, sweeps = run_sweeps(net, init, drive, targets, 0.0, n_sweeps, sums, corrections=True)
    phases = [free_phase(net, free, drive, targets, sweeps, sums)]
    zeros = [jnp.zeros_like(v) for v in free[1:]]
    nudged = DeviationProblem.at_free_state(net, free, drive, targets, beta, sums)
    pos = neg = pos_eq = neg_eq = None
    if variant in ("positive", "centered"):
        pos, sweeps = nudged.run(zeros, n_sweeps, corrections=True)
        phases.append(nudged.phase(pos, sweeps))
    if variant in ("negative", "centered"):
        negative = nudged.with_beta(-beta)
        neg, sweeps = negative.run(zeros, n_sweeps, corrections=True)
        phases.append(negative.phase(neg, sweeps))
    free_eq, *nudged_eqs = swept_equilibria(net, phases, n_sweeps, rtol)
    if variant == "centered":
        pos_eq, neg_eq = nudged_eqs
    elif variant == "positive":
        (pos_eq,) = nudged_eqs
    else:
        (neg_eq,) = nudged_eqs
    return LayeredPhases(free, pos, neg, free_eq, pos_eq, neg_eq)


# Compiled once per network structure, batch shape, sweep count and variant (Python ints and
# strings are static to filter_jit; β is passed as data). Called eagerly, the sweeps ran op
# by op: seconds per call on a small network. Under an outer jit these are inlined.
_phases_jit = eqx.filter_jit(_layered_phases)


def _layered_phases_read_afresh(net, key, inputs, targets, beta, n_sweeps, variant, rtol):
    """``_layered_phases`` for a device with read noise: each phase reads the
    conductances afresh (its own key), so a nudged phase is solved whole, from the free
    state, with its own conductances, and its deviation is the difference of the two
    phases' potentials. Returns (the free phase's read network, phases)."""
    k_free, k_pos, k_neg = jax.random.split(key, 3)
    read = net.read(k_free)
    drive, sums = input_drive(read, inputs), layer_sums(read)
    free, sweeps = run_sweeps(
        read, init_layers(read, inputs), drive, targets, 0.0, n_sweeps, sums, corrections=True
    )
    phases, deviations = [free_phase(read, free, drive, targets, sweeps, sums)], {}
    for name, sign, k in (("positive", 1.0, k_pos), ("negative", -1.0, k_neg)):
        if variant not in (name, "centered"):
            continue
        nudged = net.read(k)
        b = jnp.asarray(sign * beta, inputs.dtype)
        n_drive, n_sums = input_drive(nudged, inputs), layer_sums(nudged)
        layers, sweeps = run_sweeps(
            nudged, free, n_drive, targets, b, n_sweeps, n_sums, corrections=True
        )
        phases.append(whole_nudged_phase(nudged, layers, n_drive, targets, b, sweeps, n_sums))
        deviations[name] = [v - f for v, f in zip(layers[1:], free[1:], strict=True)]
    free_eq, *eqs = swept_equilibria(read, phases, n_sweeps, rtol)
    pos = deviations.get("positive")
    neg = deviations.get("negative")
    pos_eq = eqs[0] if pos is not None else None
    neg_eq = eqs[-1] if neg is not None else None
    return read, LayeredPhases(free, pos, neg, free_eq, pos_eq, neg_eq)


def layered_eqprop_gradient(
    net,
    inputs,
    targets,
    beta,
    n_sweeps=4,
    variant: Variant = "centered",
    rtol=PHASE_RTOL,
    skip_unconverged: bool = False,
    key=None,
):
    """EqProp gradient of the mean loss for a LayeredNetwork with exact block coordinate
    descent (the phases of [`layered_phases`][kirchhoff.layered_phases]), the weight and
    bias gradients in closed form over the batch. Every phase's status is in the phases
    ([`LayeredPhases.equilibria`][kirchhoff.LayeredPhases.equilibria]); with
    ``skip_unconverged`` the gradient and the loss are means over the examples whose phases
    all converged only. All phases see the conductances ``net.read(key)`` presents, and the
    gradient is with respect to them; with read noise (``net.noisy_read``) each phase reads
    afresh, from its own part of ``key``, and the gradient is the local rule applied to what
    the phases measured. Compiled once per network structure, batch shape, sweep count and
    variant.

    Args:
        net: The [`LayeredNetwork`][kirchhoff.LayeredNetwork], with any device: every phase
            sees the conductances ``net.read(key)`` presents.
        inputs: The input features x, a floating array of shape ``(batch, n_inputs)``; each
            drives two sources, at +γx and −γx volts (γ = ``net.input_gain``).
        targets: The output targets y, volts, shape ``(batch, n_outputs)``.
        beta: The nudge strength β > 0, siemens, a real scalar: a current source
            β·(y − v_out) into each output (β/w in place of β behind amplifiers, w the
            output layer's energy weight, 1/A² per amplifier upstream; see
            [`nudge_current`][kirchhoff.nudge_current]). Data to the compiled function: a
            new β is not a new compilation.
        n_sweeps: Sweeps per phase, an integer ≥ 1 (default 4, as Scellier's).
        variant: "positive", "negative" or "centered" (the default; see
            [`VARIANTS`][kirchhoff.VARIANTS]): which nudged phases run.
        rtol: The phases' tolerance, > 0 (default ``PHASE_RTOL`` = 1e-3): a phase is
            SUCCESS when the correction one more update of any node would make is at most
            this fraction of its potential scale (max |v| for the free phase, max |δ| for a
            nudged one).
        skip_unconverged: Whether to leave out of the gradient and the loss the examples
            any of whose phases did not converge (their mean over the rest; zero if none).
        key: A PRNG key for the device's read (None: its noise-free read; an ideal
            device ignores it). With read noise (``net.noisy_read``) each phase reads
            afresh, from its own part of the key.

    Returns:
        A tuple (gradient, loss, phases): the gradient, a pytree shaped like the trainable
        part of ``net.read(key)`` (its weights, V²/S, and biases, V²/A; None elsewhere); the
        mean loss ½‖v_out − y‖² at the free phase, volts², a scalar; the
        [`LayeredPhases`][kirchhoff.LayeredPhases].

    Raises:
        InvalidInputTypeError: ``net`` not a LayeredNetwork, inputs not a floating array, or
            a setting of the wrong type.
        InvalidInputError: Inputs or targets of the wrong shape, or NaN or infinite; an
            empty batch; a setting out of its range; an unknown ``variant``.
    """
    inputs, targets = check_batch("layered_eqprop_gradient", net, inputs, targets)
    check_phase_settings("layered_eqprop_gradient", beta, n_sweeps, rtol)
    check_variant(variant, "layered_eqprop_gradient")
    return _eqprop_gradient_jit(
        net, inputs, targets, _as_data(beta), n_sweeps, variant, rtol, skip_unconverged, key
    )


@eqx.filter_jit
def _eqprop_gradient_jit(
    net, inputs, targets, beta, n_sweeps, variant, rtol, skip_unconverged, key
):
    """[`layered_eqprop_gradient`][kirchhoff.layered_eqprop_gradient] on arguments already
    checked, compiled."""
    if net.noisy_read and key is not None:
        net, ph = _layered_phases_read_afresh(
            net, key, inputs, targets, beta, n_sweeps, variant, rtol
        )
    else:
        net = net.read(key)  # conductances, as an ideal device's network
        ph = _layered_phases(net, inputs, targets, beta, n_sweeps, variant, rtol)
    mask = ph.converged() if skip_unconverged else None
    zeros = [jnp.zeros_like(v) for v in ph.free[1:]]
    if variant == "centered":
        da, db, scale = ph.positive, ph.negative, 1.0 / (2 * beta)
    elif variant == "positive":
        da, db, scale = ph.positive, zeros, 1.0 / beta
    else:
        da, db, scale = zeros, ph.negative, 1.0 / beta
    gw, gb = _pair_gradient(net, inputs, ph.free, da, db, mask)
    gw = [g * scale for g in gw]
    gb = [g * scale for g in gb]
    per_example = squared_error(ph.free[-1], targets)
    if mask is None:
        loss = jnp.mean(per_example)
    else:
        loss = jnp.sum(jnp.where(mask, per_example, 0.0)) / jnp.maximum(jnp.sum(mask), 1)
    return as_gradient(net, gw, gb), loss, ph


def layered_backprop_gradient(net, inputs, targets, n_sweeps=4, rtol=PHASE_RTOL, key=None):
    """Truncated backprop baseline: differentiate the loss through ``n_sweeps`` sweeps with
    respect to the conductances ``net.read(key)`` presents (reverse mode through the
    sweeps, from zero); returns (gradient pytree, mean loss, the free phase as an
    [`Equilibrium`][kirchhoff.Equilibrium]). The gradient of what the sweeps computed:
    the loss gradient only where they converged.

    Args:
        net: The [`LayeredNetwork`][kirchhoff.LayeredNetwork], with any device: every phase
            sees the conductances ``net.read(key)`` presents.
        inputs: The input features x, a floating array of shape ``(batch, n_inputs)``; each
            drives two sources, at +γx and −γx volts (γ = ``net.input_gain``).
        targets: The output targets y, volts, shape ``(batch, n_outputs)``.
        n_sweeps: Sweeps to differentiate through, an integer ≥ 1 (default 4).
        rtol: The free phase's tolerance for its status, > 0 (default ``PHASE_RTOL`` =
            1e-3), as for [`layered_phases`][kirchhoff.layered_phases].
        key: A PRNG key for the device's read (None: its noise-free read; an ideal
            device ignores it).

    Returns:
        A tuple (gradient, loss, free): the gradient, a pytree shaped like the trainable
        part of ``net.read(key)`` (None off the weights and biases); the mean loss at the
        free phase, volts², a scalar; the free phase's
        [`Equilibrium`][kirchhoff.Equilibrium] with each example's status.

    Raises:
        InvalidInputTypeError: ``net`` not a LayeredNetwork, inputs not a floating array, or
            a setting of the wrong type.
        InvalidInputError: Inputs or targets of the wrong shape, or NaN or infinite; an
            empty batch; a setting out of its range.
    """
    inputs, targets = check_batch("layered_backprop_gradient", net, inputs, targets)
    check_int("layered_backprop_gradient", "n_sweeps", n_sweeps, at_least=1)
    check_real("layered_backprop_gradient", "rtol", rtol, above=0)
    net = net.read(key)
    params, static = eqx.partition(net, net.trainable_filter())

    def loss(p):
        n = eqx.combine(p, static)
        drive = input_drive(n, inputs)
        init = init_layers(n, inputs)
        layers, sweeps = run_sweeps(n, init, drive, targets, 0.0, n_sweeps, corrections=True)
        return jnp.mean(squared_error(layers[-1], targets)), (layers, drive, sweeps)

    (value, aux), grad = jax.value_and_grad(loss, has_aux=True)(params)
    layers, drive, sweeps = jax.lax.stop_gradient(aux)
    phase = free_phase(net, layers, drive, targets, sweeps, layer_sums(net))
    (free,) = swept_equilibria(net, [phase], n_sweeps, rtol)
    return grad, value, free
