"""A clamped phase of a layered network: the output nodes held by voltage sources, the hidden
layers re-equilibrated by the same exact block coordinate descent as the free phase
(``_sweeps``). It is the second phase of coupled and contrastive learning.

A held output is a voltage source: it drives the last hidden layer through its conductances,
and its own KCL is not asked for (the source supplies whatever current balances it). So only
the hidden layers are swept, and only their KCL judges the phase. Given the outputs, the
hidden energy is the free phase's with the outputs as fixed potentials: strictly convex, and
its block coordinate descent the free phase's restricted to layers 1 … L.

The status certificate is ``_phase``'s: after a sweep over the hidden layers (odd, then
even) the even ones are exact, and an odd layer's residual comes from the last sweep's change
of its even neighbours alone (the held outputs do not change), so the bound on any node's next
correction is C/√w_m and on its residual S_m·C/√w_m, over the hidden layers only."""

import equinox as eqx
import jax
import jax.numpy as jnp

from .._layered import LayeredNetwork
from ._deviation import DeviationProblem
from ._sweeps import (
    energy_weights,
    layer_kcl,
    layer_sums,
    layer_terms,
    scan_sweeps,
    update_error,
    update_layer,
)


def held_sweep_bound(net: LayeredNetwork, sums):
    """(volts, amperes) per unit of the last sweep's weighted correction C, with the outputs
    held: ``_phase.sweep_bound`` over the hidden layers only (``sums`` per free layer)."""
    weights = energy_weights(net)[:-1]
    volts = 1.0 / min(weights) ** 0.5
    amps = jnp.max(
        jnp.stack([jnp.max(s) / w**0.5 for s, w in zip(sums[:-1], weights, strict=True)])
    )
    return volts, amps


def _with_held_scale(sweeps, held):
    """The sweeps' certificate with the phase's scale raised to max |held output|: the held
    outputs drive the hidden layers, so they set the potential scale the phase is judged by
    (a hidden layer held by its diodes then passes with a zero correction, not a 0 ≤ 0)."""
    correction, scale, *newton = sweeps
    return (correction, jnp.maximum(scale, jnp.max(jnp.abs(held), axis=-1)), *newton)


class ClampedProblem(eqx.Module):
    """A clamped phase of a layered network as block coordinate descent on the hidden layers'
    deviation δ_h = v_h − v⁰_h from the free state v⁰, with the outputs held at v⁰_out + δ_out
    (batched or not: every operation broadcasts).

    With δ_out fixed, each hidden layer's KCL is the nudged phases' (``DeviationProblem``)
    with no nudge: S·δ_m − ΔR(δ) (+ the diodes' current changes) = κ, the held outputs' δ_out
    among the neighbours' deviations. So its layer updates (and the ideal diodes' kept
    currents κ) are reused unchanged: v⁰ is an exact equilibrium and δ the response to the
    moved outputs alone, accurate in float32 however small δ_out is."""

    problem: DeviationProblem  # β = 0: no nudge, the outputs are held
    held: jax.Array  # δ_out (…, n_out), volts

    @classmethod
    def at_free_state(cls, net, free, drive, held, sums=None):
        """The clamped phase of the free state ``free`` ([inputs, h1, …, out]) with the
        outputs moved by ``held`` (δ_out, volts)."""
        problem = DeviationProblem.at_free_state(net, free, drive, free[-1], 0.0, sums)
        return cls(problem, jnp.asarray(held, free[-1].dtype))

    @property
    def net(self) -> LayeredNetwork:
        return self.problem.net

    def sweep(self, hidden, with_error=False):
        """One sweep over the hidden layers, odd then even (``hidden`` is [h1, …, hL]
        deviations); with ``with_error``, also the Newton updates' own error."""
        deltas, errors = [*hidden, self.held], []
        for parity in (1, 0):
            for m in range(1, self.net.n_layers):
                if m % 2 == parity:
                    deltas[m - 1], err = self.problem.update(deltas, m)
                    errors += [] if err is None else [err]
        if not with_error:
            return deltas[:-1]
        return deltas[:-1], update_error(errors, self.held.shape[:-1], self.held.dtype)

    def run(self, hidden, n_sweeps: int, corrections=False):
        """Exactly ``n_sweeps`` sweeps from ``hidden``; with ``corrections`` also what
        ``scan_sweeps`` returns to judge the phase by."""
        return scan_sweeps(self.sweep, hidden, n_sweeps, corrections, energy_weights(self.net)[:-1])

    def error(self, hidden):
        """|KCL residual| per hidden node (amperes; projected for ideal diodes). The held
        outputs have none to report: their sources balance them."""
        net = self.net
        n_hidden = net.n_free - net.n_outputs
        return self.problem.error([*hidden, self.held])[..., :n_hidden]

    def phase(self, hidden, sweeps):
        """This clamped phase after its sweeps (``sweeps`` from ``run``), as a phase for
        ``_phase.swept_equilibria``: its potentials are the free state's plus
        [δ_h, δ_out], judged on the hidden nodes against the scale max(|δ_h|, |δ_out|)."""
        sums = self.problem.sums
        exact = lambda: (self.error(hidden), self.net.join(sums[:-1]))
        sweeps = _with_held_scale(sweeps, self.held)
        bound = held_sweep_bound(self.net, sums)
        return self.problem.free[1:], [*hidden, self.held], sweeps, bound, exact


def run_held_sweeps(net: LayeredNetwork, layers, drive, n_sweeps: int, sums=None):
    """A clamped phase solved whole (not as a deviation: for conductances that differ from
    the free phase's, as with read noise): ``n_sweeps`` sweeps of the hidden layers of
    ``layers`` ([inputs, h1, …, hL, held outputs]), the outputs never updated. Returns
    (layers, what ``scan_sweeps`` returns to judge the phase by)."""
    sums = layer_sums(net) if sums is None else sums

    def step(hidden, with_error):
        full, errors = [layers[0], *hidden, layers[-1]], []
        for parity in (1, 0):
            for m in range(1, net.n_layers):
                if m % 2 == parity:
                    # the target and the nudge act on the output layer only, never updated here
                    full[m], err = update_layer(net, full, m, drive, None, 0.0, sums=sums)
                    errors += [] if err is None else [err]
        hidden = full[1:-1]
        if not with_error:
            return hidden
        return hidden, update_error(errors, layers[-1].shape[:-1], layers[-1].dtype)

    hidden, sweeps = scan_sweeps(step, layers[1:-1], n_sweeps, True, energy_weights(net)[:-1])
    return [layers[0], *hidden, layers[-1]], sweeps


def whole_clamped_phase(net: LayeredNetwork, layers, drive, sweeps, sums):
    """A clamped phase solved whole (``layers`` and ``sweeps`` from ``run_held_sweeps``)
    as a phase for ``_phase.swept_equilibria``: judged on the hidden nodes against
    max |v| (the held outputs' included)."""

    def exact():
        res = []
        for m in range(1, net.n_layers):
            s, r = layer_terms(net, layers, m, drive, None, 0.0, sums)
            res.append(layer_kcl(net, m, s, r, layers[m]))
        return net.join(res), net.join(sums[:-1])

    sweeps = _with_held_scale(sweeps, layers[-1])
    return layers[1:], None, sweeps, held_sweep_bound(net, sums), exact
