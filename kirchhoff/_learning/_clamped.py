"""Coupled learning and contrastive (Hebbian) learning for layered networks: two physical
learning rules that, like EqProp, compare the parameter gradients of the energy in two
equilibria of the same circuit, but reach the second by holding the outputs with voltage
sources instead of nudging them with currents.

- **Coupled learning** (Stern, Hexner, Rocks and Liu, PRX 11, 021045, 2021): free phase v⁰;
  clamped phase with the outputs held at v⁰_out + η·(y − v⁰_out), 0 < η ≤ 1, and the hidden
  layers re-equilibrated; estimate (∂E/∂θ(v^C) − ∂E/∂θ(v⁰))/η. For a conductance that is
  ((u^C)² − (u⁰)²)/2η: the voltage drop across the resistor in the two phases, as local as
  EqProp's. As η → 0 it tends to (dv⁰_out/dθ)ᵀ·S·(v⁰_out − y), S the Schur complement of the
  hidden block in the energy's Hessian (the conductance matrix the outputs see): the loss
  gradient (dv⁰_out/dθ)ᵀ(v⁰_out − y) with the output error weighted by S. It equals EqProp's
  limit only where S ∝ 1, but it is a descent direction in practice.
- **Contrastive (Hebbian) learning** (Movellan 1991; Baldi and Pineda 1991): the outputs held
  at the targets themselves; estimate ∂E/∂θ(v^C) − ∂E/∂θ(v⁰), no 1/η (coupled learning at
  η = 1). The clamped state moves by the whole output error, so the estimate is a finite
  difference, not a derivative: it is biased even for a linear network.

The estimates have EqProp's sign: they approximate the loss gradient, and go into the same
optimiser step. The clamped phase is solved for its deviation from the free state with the
outputs' deviation fixed (``ClampedProblem``), and the estimate is formed in the
difference form of ``_pair_gradient``, so that float32 is exact at small η too."""

import equinox as eqx
import jax
import jax.numpy as jnp

from .._cost import squared_error
from .._data._errors import InvalidInputError, InvalidInputTypeError
from .._layered._checks import check_choice, check_int, check_real, is_traced
from .._solver._base import Equilibrium, Status
from .._solver._clamped import ClampedProblem, run_held_sweeps, whole_clamped_phase
from .._solver._phase import PHASE_RTOL, free_phase, swept_equilibria
from .._solver._sweeps import input_drive, layer_sums, run_sweeps
from ._layered import _pair_gradient, as_gradient, check_batch, init_layers

RULES = ("eqprop", "coupled", "contrastive")
"""The layered learning rules, by name: EqProp (nudged phases,
[`layered_eqprop_gradient`][kirchhoff.layered_eqprop_gradient]), coupled learning
([`layered_coupled_gradient`][kirchhoff.layered_coupled_gradient]) and contrastive learning
([`layered_contrastive_gradient`][kirchhoff.layered_contrastive_gradient])."""


def check_rule(rule, who: str = "learning rule") -> str:
    """``rule``, checked ([`InvalidInputError`][kirchhoff.InvalidInputError], a ValueError)
    to be one of [`RULES`][kirchhoff.RULES]."""
    check_choice(who, "rule", rule, RULES)
    return rule


def check_eta(who: str, eta) -> None:
    """Raise unless η (coupled learning's clamping factor) is a real number in (0, 1]: the
    outputs are held that fraction of the way from their free potentials to the targets."""
    check_real(who, "eta", eta, above=0)
    if not is_traced(eta) and float(eta) > 1:
        raise InvalidInputError(
            f"{who}: eta must be in (0, 1] (the fraction of the way from the free outputs to the "
            f"targets at which the clamped phase holds them; 1 holds them at the targets); got "
            f"{float(eta):g}."
        )


def _check_settings(who: str, n_sweeps, rtol, skip_unconverged) -> None:
    check_int(who, "n_sweeps", n_sweeps, at_least=1)
    check_real(who, "rtol", rtol, above=0)
    if not isinstance(skip_unconverged, bool):
        raise InvalidInputTypeError(
            f"{who}: skip_unconverged must be True or False; got {skip_unconverged!r}."
        )


class ClampedPhases(eqx.Module):
    """Per-layer potentials of the free phase and the clamped phase's deviations from it
    (batched), and each phase's [`Equilibrium`][kirchhoff.Equilibrium] (status, sweeps,
    residual per example; the clamped phase's judged on its hidden nodes, the outputs being
    held): what [`layered_clamped_phases`][kirchhoff.layered_clamped_phases] returns.

    Attributes:
        free: The free phase per layer, ``[inputs, h1, …, out]``: the inputs as given,
            ``(batch, n_inputs)``, then each free layer's potentials, volts,
            ``(batch, n_m)``.
        clamped: The clamped phase's deviations δ = v^C − v⁰ per free layer
            ``[h1, …, out]``, volts, ``(batch, n_m)`` each; δ_out is the held one,
            η·(y − v⁰_out).
        free_eq: The free phase as an [`Equilibrium`][kirchhoff.Equilibrium] (the layers
            joined, ``(batch, n_free)``, with each example's status, sweep count and KCL
            residual in amperes).
        clamped_eq: The clamped phase as an [`Equilibrium`][kirchhoff.Equilibrium]
            (``free`` v⁰ + δ, ``deviation`` δ).
    """

    free: list  # [inputs, h1, …, out] at the free state
    clamped: list  # deviations δ = v^C − v⁰ per free layer [h1, …, out]; δ_out is the held one
    free_eq: Equilibrium
    clamped_eq: Equilibrium

    def equilibria(self) -> dict:
        """The phases by name: a dict from "free" and "clamped" to their
        [`Equilibrium`][kirchhoff.Equilibrium]."""
        return {"free": self.free_eq, "clamped": self.clamped_eq}

    def converged(self):
        """Per example, whether both phases reported SUCCESS: bools, ``(batch,)``."""
        return (self.free_eq.status == Status.SUCCESS) & (self.clamped_eq.status == Status.SUCCESS)


def layered_clamped_phases(net, inputs, targets, eta, n_sweeps=4, rtol=PHASE_RTOL):
    """The free phase and the clamped phase with the outputs held at v⁰_out + η·(y − v⁰_out)
    (η = 1: at the targets), ``n_sweeps`` sweeps each, sharing one input drive; the clamped
    phase is solved for its deviation from the free one (``ClampedProblem``). Each
    phase's status judges its residual against ``rtol`` (see ``PHASE_RTOL``).

    Args:
        net: A [`LayeredNetwork`][kirchhoff.LayeredNetwork] whose weights are
            conductances (``net.read(key)`` for a non-ideal device).
        inputs: The input features x, a floating array of shape ``(batch, n_inputs)``; each
            drives two sources, at +γx and −γx volts (γ = ``net.input_gain``).
        targets: The output targets y, volts, shape ``(batch, n_outputs)``.
        eta: The clamping factor η, a real number in (0, 1]: the outputs are held that
            fraction of the way from their free potentials to the targets (1: at them).
        n_sweeps: Sweeps per phase, an integer ≥ 1 (default 4).
        rtol: The phases' tolerance, > 0 (default ``PHASE_RTOL`` = 1e-3), as for
            [`layered_phases`][kirchhoff.layered_phases]; the clamped phase's is judged on
            its hidden nodes.

    Returns:
        A [`ClampedPhases`][kirchhoff.ClampedPhases]: each layer's free potentials, the
        clamped phase's deviations and both phases'
        [`Equilibrium`][kirchhoff.Equilibrium].

    Raises:
        InvalidInputTypeError: ``net`` not a LayeredNetwork, inputs not a floating array, or
            a setting of the wrong type.
        InvalidInputError: Inputs or targets of the wrong shape, or NaN or infinite; an
            empty batch; a setting out of its range (η outside (0, 1] among them); a network
            whose weights are a device's state, not conductances.
    """
    who = "layered_clamped_phases"
    inputs, targets = check_batch(who, net, inputs, targets)
    check_eta(who, eta)
    _check_settings(who, n_sweeps, rtol, False)
    net.require_read(who)
    return _clamped_phases(net, inputs, targets, eta, n_sweeps, rtol)


def _free(net, inputs, targets, n_sweeps):
    """The free phase: its layers, input drive, layer sums and phase for judging."""
    drive, sums = input_drive(net, inputs), layer_sums(net)
    free, sweeps = run_sweeps(
        net, init_layers(net, inputs), drive, targets, 0.0, n_sweeps, sums, corrections=True
    )
    return free, drive, sums, free_phase(net, free, drive, targets, sweeps, sums)


def _held_deviation(free, targets, eta):
    """δ_out = η·(y − v⁰_out), in the phases' dtype (a Python or float64 η must not promote
    float32 phases)."""
    dtype = free[-1].dtype
    return jnp.asarray(eta, dtype) * (jnp.asarray(targets, dtype) - free[-1])


def _clamped_phases(net, inputs, targets, eta, n_sweeps, rtol):
    """[`layered_clamped_phases`][kirchhoff.layered_clamped_phases] on arguments already checked."""
    free, drive, sums, free_ph = _free(net, inputs, targets, n_sweeps)
    held = _held_deviation(free, targets, eta)
    problem = ClampedProblem.at_free_state(net, free, drive, held, sums)
    zeros = [jnp.zeros_like(v) for v in free[1:-1]]
    hidden, sweeps = problem.run(zeros, n_sweeps, corrections=True)
    free_eq, clamped_eq = swept_equilibria(
        net, [free_ph, problem.phase(hidden, sweeps)], n_sweeps, rtol
    )
    return ClampedPhases(free, [*hidden, problem.held], free_eq, clamped_eq)


def _clamped_phases_read_afresh(net, key, inputs, targets, eta, n_sweeps, rtol):
    """``_clamped_phases`` for a device with read noise: each phase reads the
    conductances afresh (its own key), so the clamped phase is solved whole, from the free
    state with the outputs moved, and its deviation is the difference of the two phases'
    potentials. Returns (the free phase's read network, phases)."""
    k_free, k_clamped = jax.random.split(key)
    read = net.read(k_free)
    free, _, _, free_ph = _free(read, inputs, targets, n_sweeps)
    clamped = net.read(k_clamped)
    drive, sums = input_drive(clamped, inputs), layer_sums(clamped)
    start = [*free[:-1], free[-1] + _held_deviation(free, targets, eta)]
    layers, sweeps = run_held_sweeps(clamped, start, drive, n_sweeps, sums)
    free_eq, clamped_eq = swept_equilibria(
        read, [free_ph, whole_clamped_phase(clamped, layers, drive, sweeps, sums)], n_sweeps, rtol
    )
    deviation = [v - f for v, f in zip(layers[1:], free[1:], strict=True)]
    return read, ClampedPhases(free, deviation, free_eq, clamped_eq)


def _clamped_gradient(net, inputs, targets, eta, n_sweeps, rtol, skip_unconverged, key):
    """(∂E/∂θ(v^C) − ∂E/∂θ(v⁰))/η for outputs held at v⁰_out + η·(y − v⁰_out), batch-mean;
    returns (gradient pytree, mean loss, phases)."""
    if net.noisy_read and key is not None:
        net, ph = _clamped_phases_read_afresh(net, key, inputs, targets, eta, n_sweeps, rtol)
    else:
        net = net.read(key)  # conductances, as an ideal device's network
        ph = _clamped_phases(net, inputs, targets, eta, n_sweeps, rtol)
    mask = ph.converged() if skip_unconverged else None
    zeros = [jnp.zeros_like(v) for v in ph.clamped]
    gw, gb = _pair_gradient(net, inputs, ph.free, ph.clamped, zeros, mask)
    # 1/η in the phases' dtype: the η that moved the outputs (_held_deviation), not a rounding
    # of it
    scale = 1.0 / jnp.asarray(eta, ph.free[-1].dtype)
    gw = [(g * scale).astype(g.dtype) for g in gw]
    gb = [(g * scale).astype(g.dtype) for g in gb]
    per_example = squared_error(ph.free[-1], targets)
    if mask is None:
        loss = jnp.mean(per_example)
    else:
        loss = jnp.sum(jnp.where(mask, per_example, 0.0)) / jnp.maximum(jnp.sum(mask), 1)
    return as_gradient(net, gw, gb), loss, ph


def layered_coupled_gradient(
    net,
    inputs,
    targets,
    eta,
    n_sweeps=4,
    rtol=PHASE_RTOL,
    skip_unconverged: bool = False,
    key=None,
):
    """Coupled learning's estimate of the mean loss's gradient for a LayeredNetwork (Stern et
    al. 2021): (∂E/∂θ(v^C) − ∂E/∂θ(v⁰))/η, batch mean, where v⁰ is the free state and v^C
    the clamped state, the outputs held by voltage sources at v⁰_out + η·(y − v⁰_out),
    0 < η ≤ 1, and the hidden layers re-equilibrated (``n_sweeps`` exact block coordinate
    sweeps each phase). For a conductance it is ((u^C)² − (u⁰)²)/2η, from the resistor's
    voltage drops alone; for a bias current source, −(v^C − v⁰)/η at its node.

    As η → 0 the estimate tends to the loss gradient with the output error weighted by the
    conductance matrix the outputs see, (dv⁰_out/dθ)ᵀ·S·(v⁰_out − y) with S the Schur
    complement of the hidden block in the energy's Hessian: a descent direction, but the
    gradient itself only where S ∝ 1. With ``skip_unconverged`` the gradient and the loss
    are means over the examples whose phases both converged. All phases see the
    conductances ``net.read(key)`` presents (with read noise, each phase its own read), and
    the gradient is with respect to them.

    Args:
        net: The [`LayeredNetwork`][kirchhoff.LayeredNetwork], with any device: every phase
            sees the conductances ``net.read(key)`` presents.
        inputs: The input features x, a floating array of shape ``(batch, n_inputs)``; each
            drives two sources, at +γx and −γx volts (γ = ``net.input_gain``).
        targets: The output targets y, volts, shape ``(batch, n_outputs)``.
        eta: The clamping factor η, a real number in (0, 1]: the outputs are held that
            fraction of the way from their free potentials to the targets (1: at them).
        n_sweeps: Sweeps per phase, an integer ≥ 1 (default 4).
        rtol: The phases' tolerance, > 0 (default ``PHASE_RTOL`` = 1e-3), as for
            [`layered_phases`][kirchhoff.layered_phases]; the clamped phase's is judged on
            its hidden nodes.
        skip_unconverged: Whether to leave out of the gradient and the loss the examples
            either of whose phases did not converge (their mean over the rest; zero if
            none).
        key: A PRNG key for the device's read (None: its noise-free read; an ideal
            device ignores it). With read noise (``net.noisy_read``) each phase reads
            afresh, from its own part of the key.

    Returns:
        A tuple (gradient, loss, phases): the gradient, a pytree shaped like the trainable
        part of ``net.read(key)`` (its weights, V²/S, and biases, V²/A; None elsewhere); the
        mean loss ½‖v_out − y‖² at the free phase, volts², a scalar; the
        [`ClampedPhases`][kirchhoff.ClampedPhases] with each phase's status.

    Raises:
        InvalidInputTypeError: ``net`` not a LayeredNetwork, inputs not a floating array, or
            a setting of the wrong type.
        InvalidInputError: Inputs or targets of the wrong shape, or NaN or infinite; an
            empty batch; a setting out of its range (η outside (0, 1] among them).
    """
    who = "layered_coupled_gradient"
    inputs, targets = check_batch(who, net, inputs, targets)
    check_eta(who, eta)
    _check_settings(who, n_sweeps, rtol, skip_unconverged)
    return _clamped_gradient(net, inputs, targets, eta, n_sweeps, rtol, skip_unconverged, key)


def layered_contrastive_gradient(
    net,
    inputs,
    targets,
    n_sweeps=4,
    rtol=PHASE_RTOL,
    skip_unconverged: bool = False,
    key=None,
):
    """Contrastive (Hebbian) learning's estimate for a LayeredNetwork: ∂E/∂θ(v^C) −
    ∂E/∂θ(v⁰), batch mean, the clamped state v^C having the outputs held at the targets y by
    voltage sources and the hidden layers re-equilibrated. For a conductance it is
    ((u^C)² − (u⁰)²)/2: "Hebbian" in the clamped phase, "anti-Hebbian" in the free one.

    The same as [`layered_coupled_gradient`][kirchhoff.layered_coupled_gradient] at η = 1,
    with the same returns and options. The clamped state differs from the free one by the
    whole output error, so this is a finite difference, biased unless the error is small;
    it vanishes where the outputs already equal the targets.

    Args:
        net: The [`LayeredNetwork`][kirchhoff.LayeredNetwork], with any device: every phase
            sees the conductances ``net.read(key)`` presents.
        inputs: The input features x, a floating array of shape ``(batch, n_inputs)``; each
            drives two sources, at +γx and −γx volts (γ = ``net.input_gain``).
        targets: The output targets y, volts, shape ``(batch, n_outputs)``.
        n_sweeps: Sweeps per phase, an integer ≥ 1 (default 4).
        rtol: The phases' tolerance, > 0 (default ``PHASE_RTOL`` = 1e-3), as for
            [`layered_phases`][kirchhoff.layered_phases]; the clamped phase's is judged on
            its hidden nodes.
        skip_unconverged: Whether to leave out of the gradient and the loss the examples
            either of whose phases did not converge (their mean over the rest; zero if
            none).
        key: A PRNG key for the device's read (None: its noise-free read; an ideal
            device ignores it). With read noise (``net.noisy_read``) each phase reads
            afresh, from its own part of the key.

    Returns:
        A tuple (gradient, loss, phases): the gradient, a pytree shaped like the trainable
        part of ``net.read(key)`` (its weights, V²/S, and biases, V²/A; None elsewhere); the
        mean loss ½‖v_out − y‖² at the free phase, volts², a scalar; the
        [`ClampedPhases`][kirchhoff.ClampedPhases] with each phase's status.

    Raises:
        InvalidInputTypeError: ``net`` not a LayeredNetwork, inputs not a floating array, or
            a setting of the wrong type.
        InvalidInputError: Inputs or targets of the wrong shape, or NaN or infinite; an
            empty batch; a setting out of its range.
    """
    who = "layered_contrastive_gradient"
    inputs, targets = check_batch(who, net, inputs, targets)
    _check_settings(who, n_sweeps, rtol, skip_unconverged)
    return _clamped_gradient(net, inputs, targets, 1.0, n_sweeps, rtol, skip_unconverged, key)
