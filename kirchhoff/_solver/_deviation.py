"""A nudged phase of a layered network, solved for its deviation from the free state by
the same exact block coordinate descent as the free phase (``_sweeps``)."""

import equinox as eqx
import jax
import jax.numpy as jnp

from .._layered import LayeredNetwork
from ._phase import nudged_bound
from ._sweeps import (
    bracketed_newton,
    energy_weights,
    layer_sums,
    layer_terms,
    scan_sweeps,
    update_error,
)


class DeviationProblem(eqx.Module):
    """A nudged phase of a layered network as block coordinate descent on the deviation
    δ = v − v⁰ from the free state v⁰ (batched or not: every operation broadcasts).

    Layer m's KCL reads S·δ − ΔR(δ) (+ diode current changes) = κ, with ΔR the current its
    neighbours' deviations (and the nudge) inject and κ the free state's own residual: kept
    where an ideal diode holds a node on its bound (the diode's current), dropped elsewhere,
    so that v⁰ is an exact equilibrium and δ the response to the nudge alone."""

    net: LayeredNetwork
    free: list  # [inputs, h1, …, out] at the free state
    kept: list  # κ/S per hidden layer (volts): ideal diodes' share of the free residual
    sums: list
    shifted_target: jax.Array  # y − v⁰_out
    beta: jax.Array

    @classmethod
    def at_free_state(cls, net, free, drive, target, beta, sums=None):
        sums = layer_sums(net) if sums is None else sums
        kept = []
        for m in range(1, net.n_layers):
            s, r = layer_terms(net, free, m, drive, target, 0.0, sums)
            if net.diode == "ideal":
                lo, hi = net.lower[m - 1] - free[m], net.upper[m - 1] - free[m]
                e = r / s - free[m]
                kept.append(e - jnp.clip(e, lo, hi))
            else:
                kept.append(jnp.zeros_like(free[m]))
        beta = jnp.asarray(beta, free[-1].dtype)  # a Python β must not promote float32 phases
        return cls(net, list(free), kept, list(sums), target - free[-1], beta)

    def with_beta(self, beta):
        """The same free state nudged by another β (e.g. −β): the kept currents do not
        depend on β, so both nudged phases share one ``at_free_state``."""
        return eqx.tree_at(lambda p: p.beta, self, jnp.asarray(beta, self.beta.dtype))

    def terms(self, deltas, m):
        """S and ΔR at layer m (``deltas`` is [h1, …, out] deviations)."""
        net = self.net
        layers = [None, *deltas]
        s = self.sums[m - 1]
        r = jnp.zeros_like(layers[m])
        if m > 1:
            r = r + net.drive_gain(m - 1) * (layers[m - 1] @ net.weights[m - 1])
        if m < net.n_layers:
            r = r + (layers[m + 1] @ net.weights[m].T) / net.drive_gain(m)
        else:
            scale = self.beta / net.layer_weight(m)
            s = s + scale
            r = r + scale * self.shifted_target
        return s, r

    def _diode_kcl(self, m, s, r, delta):
        """S·δ − ΔR + the diodes' current change i(v⁰ + δ) − i(v⁰), and its derivative in δ,
        per node (both derived from the diodes' co-content increment)."""
        v0 = self.free[m]
        f = lambda d: s * d - r + self.net.layer_diode_current_change(v0, d, m)
        return jax.jvp(f, (delta,), (jnp.ones_like(delta),))

    def update(self, deltas, m, n_newton=12):
        """Layer m's new deviations, and for a Shockley layer its KCL residual right after the
        update (as ``update_layer``)."""
        net = self.net
        s, r = self.terms(deltas, m)
        if m == net.n_layers:
            return r / s, None
        v0 = self.free[m]
        if net.diode == "ideal":
            lo, hi = net.lower[m - 1] - v0, net.upper[m - 1] - v0
            return jnp.clip(self.kept[m - 1] + r / s, lo, hi), None
        # the diodes' current changes have δ's sign, so the root lies between 0 and ΔR/S;
        # start from the linearised solution
        lin = r / s
        _, df0 = self._diode_kcl(m, s, r, jnp.zeros_like(r))
        delta = bracketed_newton(
            lambda d: self._diode_kcl(m, s, r, d),
            r / df0,
            jnp.minimum(lin, 0.0),
            jnp.maximum(lin, 0.0),
            n_newton,
        )
        return delta, (self._diode_kcl(m, s, r, delta)[0], s)

    def sweep(self, deltas, with_error=False):
        """One sweep, odd layers then even ones (with ``with_error``, also the Newton
        updates' own error, ``update_error``)."""
        deltas, errors = list(deltas), []
        for parity in (1, 0):
            for m in range(1, self.net.n_layers + 1):
                if m % 2 == parity:
                    deltas[m - 1], err = self.update(deltas, m)
                    errors += [] if err is None else [err]
        if not with_error:
            return deltas
        return deltas, update_error(errors, deltas[-1].shape[:-1], deltas[-1].dtype)

    def run(self, deltas, n_sweeps: int, corrections=False):
        """Exactly ``n_sweeps`` sweeps; with ``corrections`` also the last sweep's largest
        weighted correction and the largest |δ| per example (see ``scan_sweeps``)."""
        return scan_sweeps(self.sweep, deltas, n_sweeps, corrections, energy_weights(self.net))

    def error(self, deltas):
        """|KCL residual| per free node of the deviation problem, amperes (projected for
        ideal diodes)."""
        net = self.net
        out = []
        for m in range(1, net.n_layers + 1):
            s, r = self.terms(deltas, m)
            d = deltas[m - 1]
            if m == net.n_layers:
                out.append(s * d - r)
            elif net.diode == "ideal":
                lo, hi = net.lower[m - 1] - self.free[m], net.upper[m - 1] - self.free[m]
                out.append(s * (d - jnp.clip(self.kept[m - 1] + r / s, lo, hi)))
            else:
                out.append(self._diode_kcl(m, s, r, d)[0])
        return jnp.abs(net.join(out))

    def phase(self, deltas, sweeps):
        """This nudged phase after its sweeps (``sweeps`` from ``run``), as a phase for
        ``swept_equilibria``: certified by its last sweep's corrections, or judged by its
        exact residual."""
        bound, s_out = nudged_bound(self.net, self.sums, self.beta)
        # only traced inside the exact fallback's branch, where it is needed
        exact = lambda: (self.error(deltas), self.net.join([*self.sums[:-1], s_out]))
        return self.free[1:], deltas, sweeps, bound, exact

    def tolerance(self, solver, deltas):
        """Per node: atol + rtol·``current_scale``, amperes."""
        scale = self.current_scale(deltas)
        return solver.atol + solver.effective_rtol(scale.dtype) * scale

    def current_scale(self, deltas):
        """Per node, the currents of the deviation, the nudge and the held diodes (amperes)."""
        net = self.net
        free = net.join(self.free[1:])
        scale = net.current_scale(free, self.free[0], change=net.join(deltas))
        held = [self.sums[m - 1] * jnp.abs(k) for m, k in enumerate(self.kept, start=1)]
        nudge = (
            jnp.abs(self.beta)
            / net.layer_weight(net.n_layers)
            * jnp.abs(self.shifted_target - deltas[-1])
        )
        return scale + net.join([*held, nudge])
