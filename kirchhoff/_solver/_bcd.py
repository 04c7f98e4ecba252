"""Exact block coordinate descent for layered networks (Scellier 2024).

Given its two neighbouring layers, the energy is separable over a layer's nodes, so each
layer has a closed-form minimiser: v = clip((Σ g·v_nbr + I)/Σ g, lo, hi) for ideal diodes,
a safeguarded 1-D Newton solve per node for Shockley diodes. Sweeping odd layers then even
layers is exact coordinate descent on the (strictly convex) energy."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp

from .._elements import shockley_co_content_increment
from .._layered import LayeredNetwork
from ._base import (
    AbstractSolver,
    Equilibrium,
    Status,
    _Deviation,
    _max_ratio,
    _status,
    bound_multipliers,
    iterate_until_converged,
)
from ._jaxopt import linear_solve

PHASE_RTOL = 1e-3
"""Default tolerance of a training phase run for a fixed number of sweeps: SUCCESS when every
node's KCL residual, divided by the node's total conductance (the potential correction one more
update of that node would make), is at most this fraction of the phase's potential scale
(max |v| for the free phase, max |δ| for a nudged one). Four sweeps of DRN-XS or the seed
network reach 2e-8 (free) and 4e-5 (nudged) at initialisation."""


def phase_status(values, residual, conductance, rtol):
    """Per example (last axis: nodes): SUCCESS when max |r|/S ≤ rtol·max |values| (0 V residual
    always passes), MAX_STEPS otherwise, NONFINITE for a NaN or infinite value or residual."""
    r = jnp.abs(residual)
    # a node cut off by zero conductances passes only with zero residual
    correction = jnp.max(jnp.where(r == 0, 0.0, r / conductance), axis=-1)
    scale = jnp.max(jnp.abs(values), axis=-1)
    finite = jnp.all(jnp.isfinite(values), axis=-1) & jnp.isfinite(correction)
    ok = correction <= rtol * scale
    status = jnp.where(ok, Status.SUCCESS, Status.MAX_STEPS)
    return jnp.where(finite, status, Status.NONFINITE)


def phase_equilibrium(free, deviation, residual, conductance, n_sweeps, rtol):
    """A training phase after ``n_sweeps`` sweeps as an :class:`Equilibrium` (batched):
    ``deviation`` is None for a free phase; ``residual`` is its KCL residual per node and
    ``conductance`` the total conductance S of each node's KCL."""
    values = free if deviation is None else deviation
    status = phase_status(values, residual, conductance, rtol)
    return Equilibrium(
        free=free if deviation is None else free + deviation,
        status=status,
        n_steps=jnp.full(status.shape, n_sweeps),
        residual=jnp.max(jnp.abs(residual), axis=-1),
        deviation=deviation,
    )


def free_phase_equilibrium(net, layers, drive, target, n_sweeps, rtol, sums=None):
    """The free phase ``layers`` ([inputs, h1, …, out]) after ``n_sweeps`` sweeps as an
    :class:`Equilibrium`, judged by :func:`phase_status`."""
    sums = layer_sums(net) if sums is None else sums
    res = net.join(layer_residuals(net, layers, drive, target, 0.0, sums))
    return phase_equilibrium(net.join(layers[1:]), None, res, net.join(sums), n_sweeps, rtol)


def input_drive(net: LayeredNetwork, inputs):
    """The constant input contribution Σ_i g_ij·v_i into the first hidden layer (…, h1):
    computed once per example and shared by all sweeps and phases. The sources are ±γx, so
    this is γ·x @ (W₊ − W₋): one (n_features × h1) product, half the work of the 2n sources."""
    n = net.n_inputs
    w = net.weights[0]
    return net.input_gain * (inputs @ (w[:n] - w[n:]))


def layer_sums(net: LayeredNetwork):
    """Σ g over each free node's resistors, per layer (constant across sweeps and phases)."""
    out = []
    for m in range(1, net.n_layers + 1):
        s = jnp.sum(net.weights[m - 1], axis=0)
        if m < net.n_layers:
            s = s + jnp.sum(net.weights[m], axis=1)
        out.append(s)
    return out


def layer_terms(net: LayeredNetwork, layers, m, drive, target, beta, sums=None):
    """Total conductance S and injected current R at layer m (per unit of its energy weight):
    KCL at layer m reads S·v − R (+ diode currents) = 0. ``sums`` caches :func:`layer_sums`."""
    L1 = net.n_layers
    w_in = net.weights[m - 1]
    s = layer_sums(net)[m - 1] if sums is None else sums[m - 1]
    r = drive if m == 1 else net.drive_gain(m - 1) * (layers[m - 1] @ w_in)
    if m < L1:
        w_out = net.weights[m]
        r = r + (layers[m + 1] @ w_out.T) / net.drive_gain(m)
    r = r + net.biases[m - 1]
    if m == L1:
        scale = beta / net.layer_weight(m)
        s = s + scale
        r = r + scale * target
    return s, r


def _bracketed_newton(f_and_df, x0, a, b, n_iter):
    """Root of an increasing function per node: Newton steps kept inside the bracket [a, b]
    (shrunk as signs are seen), bisection where a step would leave it."""

    def body(_, carry):
        x, a, b = carry
        f, df = f_and_df(x)
        a = jnp.where(f <= 0, x, a)
        b = jnp.where(f >= 0, x, b)
        newton = x - f / df
        # inclusive: at convergence the step rounds onto the bracket end it came from, and
        # bisecting then would throw the converged value away
        inside = (newton >= a) & (newton <= b) & jnp.isfinite(newton)
        return jnp.where(inside, newton, 0.5 * (a + b)), a, b

    x, _, _ = jax.lax.fori_loop(0, n_iter, body, (jnp.clip(x0, a, b), a, b))
    return x


def _shockley_layer(net, s, r, lo, hi, n_iter):
    """Root of S·v − R − i(lo − v) + i(v − hi) per node: Newton kept inside a bracket."""
    has_lo, has_hi = jnp.isfinite(lo), jnp.isfinite(hi)
    v_hat = r / s
    # f ≤ 0 at the smallest and ≥ 0 at the largest of v̂ and the rails: the root lies between
    lo_or, hi_or = jnp.where(has_lo, lo, v_hat), jnp.where(has_hi, hi, v_hat)
    a = jnp.minimum(v_hat, jnp.minimum(lo_or, hi_or))
    b = jnp.maximum(v_hat, jnp.maximum(lo_or, hi_or))

    def f_and_df(v):
        f = lambda v: (
            s * v
            - r
            - jnp.where(has_lo, net.diode_current(lo - v), 0.0)
            + jnp.where(has_hi, net.diode_current(v - hi), 0.0)
        )
        return jax.jvp(f, (v,), (jnp.ones_like(v),))

    # start on the far side of the root where the diode alone would carry the excess current:
    # Newton then converges monotonically on the convex (concave) branch, in a few steps
    nvt = net.ideality * net.thermal_voltage
    i_s = net.saturation_current
    above = has_hi & (v_hat > hi)
    below = has_lo & (v_hat < lo)
    guess_hi = hi + nvt * jnp.log1p(jnp.where(above, s * (v_hat - hi), 0.0) / i_s)
    guess_lo = lo - nvt * jnp.log1p(jnp.where(below, s * (lo - v_hat), 0.0) / i_s)
    v0 = jnp.where(
        above, jnp.minimum(v_hat, guess_hi), jnp.where(below, jnp.maximum(v_hat, guess_lo), v_hat)
    )
    return _bracketed_newton(f_and_df, v0, a, b, n_iter)


def update_layer(net: LayeredNetwork, layers, m, drive, target, beta, n_newton=12, sums=None):
    s, r = layer_terms(net, layers, m, drive, target, beta, sums)
    if m == net.n_layers:
        return r / s
    lo, hi = net.lower[m - 1], net.upper[m - 1]
    if net.diode == "ideal":
        return jnp.clip(r / s, lo, hi)
    return _shockley_layer(net, s, r, lo, hi, n_newton)


def sweep(net: LayeredNetwork, layers, drive, target, beta, sums=None):
    """One sweep: odd layers (independent given the even ones), then even layers.
    ``layers`` is [inputs, h1, …, out]; index 0 is never updated."""
    layers = list(layers)
    sums = layer_sums(net) if sums is None else sums
    for parity in (1, 0):
        for m in range(1, net.n_layers + 1):
            if m % 2 == parity:
                layers[m] = update_layer(net, layers, m, drive, target, beta, sums=sums)
    return layers


def layer_residuals(net: LayeredNetwork, layers, drive, target, beta, sums=None):
    """Per-layer KCL residual in amperes (projected onto the diode bounds for ideal diodes)."""
    out = []
    sums = layer_sums(net) if sums is None else sums
    for m in range(1, net.n_layers + 1):
        s, r = layer_terms(net, layers, m, drive, target, beta, sums)
        v = layers[m]
        if m == net.n_layers:
            out.append(s * v - r)
        elif net.diode == "ideal":
            out.append(s * (v - jnp.clip(r / s, net.lower[m - 1], net.upper[m - 1])))
        else:
            lo, hi = net.lower[m - 1], net.upper[m - 1]
            out.append(
                s * v
                - r
                - jnp.where(jnp.isfinite(lo), net.diode_current(lo - v), 0.0)
                + jnp.where(jnp.isfinite(hi), net.diode_current(v - hi), 0.0)
            )
    return out


def run_sweeps(net, layers, drive, target, beta, n_sweeps: int, sums=None):
    """Exactly ``n_sweeps`` sweeps (lax.scan: differentiable by unrolling)."""
    sums = layer_sums(net) if sums is None else sums

    def body(free_layers, _):
        new = sweep(net, [layers[0], *free_layers], drive, target, beta, sums)
        return new[1:], None

    # unrolled: a handful of sweeps of small ops, which XLA fuses better without a loop
    free_layers, _ = jax.lax.scan(
        body, list(layers[1:]), None, length=n_sweeps, unroll=n_sweeps if n_sweeps <= 8 else 1
    )
    return [layers[0], *free_layers]


class BlockCoordinateDescent(AbstractSolver):
    """Exact layered block coordinate descent for :class:`LayeredNetwork`.

    With ``n_sweeps`` set, runs exactly that many sweeps (training mode, as Scellier's 4);
    otherwise sweeps until the KCL residual is below tolerance or ``max_steps`` sweeps."""

    max_steps: int = eqx.field(static=True, default=5000)
    atol: float = eqx.field(static=True, default=1e-12)
    rtol: float = eqx.field(static=True, default=1e-12)
    throw: bool = eqx.field(static=True, default=False)
    vtol: float | None = eqx.field(static=True, default=1e-6)
    """As for every solver, but checked only up to 512 free nodes: the bound needs the dense
    layered Hessian (by autodiff), too costly per example beyond that."""
    n_sweeps: int | None = eqx.field(static=True, default=None)

    def _check_circuit(self, circuit):
        if not isinstance(circuit, LayeredNetwork):
            raise ValueError(
                "BlockCoordinateDescent solves LayeredNetwork models; for a general Circuit use "
                "DampedNewton, LBFGS or BoxQP (or build the network with kirchhoff.drn)."
            )
        circuit.require_read("BlockCoordinateDescent")

    def optimality(self, circuit, free, inputs, target, beta):
        layers = [inputs, *circuit.split(free)]
        return circuit.join(
            layer_residuals(circuit, layers, input_drive(circuit, inputs), target, beta)
        )

    def _bounds_potentials(self, circuit):
        return self.vtol is not None and circuit.n_free <= 512

    def linear_solve(self, circuit):
        if circuit.n_free <= 512:
            return linear_solve.solve_lu
        return functools.partial(linear_solve.solve_gmres, tol=1e-10, maxiter=500)

    def _run(self, circuit, init, inputs, target, beta):
        drive = input_drive(circuit, inputs)
        layers = [inputs, *circuit.split(init)]
        if self.n_sweeps is not None:
            layers = run_sweeps(circuit, layers, drive, target, beta, self.n_sweeps)
            return circuit.join(layers[1:]), (jnp.array(self.n_sweeps), jnp.array(0.0))
        sums = layer_sums(circuit)

        def ratio(free_layers):
            r = layer_residuals(circuit, [inputs, *free_layers], drive, target, beta, sums)
            err = jnp.abs(circuit.join(r))
            tol = self.tolerance(circuit, circuit.join(free_layers), inputs, target, beta)
            return _max_ratio(err, tol)

        def step(free_layers):
            return sweep(circuit, [inputs, *free_layers], drive, target, beta, sums)[1:]

        n, free_layers, r = iterate_until_converged(step, ratio, layers[1:], self.max_steps)
        return circuit.join(free_layers), (n, r)

    def _solve_nudged_one(self, circuit, inputs, target, beta, free0):
        inputs = circuit.validate(inputs)
        free0 = jax.lax.stop_gradient(free0)
        drive = input_drive(circuit, inputs)
        sums = layer_sums(circuit)
        problem = DeviationProblem.at_free_state(
            circuit, [inputs, *circuit.split(free0)], drive, target, beta, sums
        )
        zeros = [jnp.zeros_like(v) for v in problem.free[1:]]
        if self.n_sweeps is not None:
            deltas = problem.run(zeros, self.n_sweeps)
            n = jnp.array(self.n_sweeps)
        else:
            ratio = lambda d: _max_ratio(problem.error(d), problem.tolerance(self, d))
            n, deltas, _ = iterate_until_converged(problem.sweep, ratio, zeros, self.max_steps)
        err = problem.error(deltas)
        scale = problem.current_scale(deltas)
        tol = self.atol + self.effective_rtol(err.dtype) * scale
        delta = circuit.join(deltas)
        status = _status(delta, err, tol, beta)
        # the same deviation problem as the general solvers see, for the potentials' bound
        general = _Deviation(circuit, free0, bound_multipliers(circuit, free0, inputs))
        shifted = target - circuit.output_potentials(free0, inputs)
        status = self._flag_ill_conditioned(
            general, delta, inputs, shifted, beta, err, scale, status
        )
        delta = self._raise_unless_success(delta, status)
        return Equilibrium(
            free=free0 + delta,
            status=status,
            n_steps=n,
            residual=jnp.max(err, initial=0.0),
            deviation=delta,
        )


def _current_change(net: LayeredNetwork, u, du):
    """i(u + Δu) − i(u) for the network's Shockley diodes, accurate for tiny Δu."""
    args = (net.saturation_current, net.ideality, net.thermal_voltage)
    f = lambda d: shockley_co_content_increment(u, d, *args)
    return jax.jvp(f, (du,), (jnp.ones_like(du),))[1]


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
        depend on β, so both nudged phases share one :meth:`at_free_state`."""
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
        """S·δ − ΔR + Δi(v⁰ − hi) − Δi(lo − v⁰) and its derivative, per node."""
        net, v0 = self.net, self.free[m]
        lo, hi = net.lower[m - 1], net.upper[m - 1]
        has_lo, has_hi = jnp.isfinite(lo), jnp.isfinite(hi)
        u_lo = jnp.where(has_lo, lo - v0, 0.0)
        u_hi = jnp.where(has_hi, v0 - hi, 0.0)
        conductance = lambda u: jax.jvp(net.diode_current, (u,), (jnp.ones_like(u),))[1]
        f = (
            s * delta
            - r
            + jnp.where(has_hi, _current_change(net, u_hi, delta), 0.0)
            - jnp.where(has_lo, _current_change(net, u_lo, -delta), 0.0)
        )
        df = (
            s
            + jnp.where(has_hi, conductance(u_hi + delta), 0.0)
            + jnp.where(has_lo, conductance(u_lo - delta), 0.0)
        )
        return f, df

    def update(self, deltas, m, n_newton=12):
        net = self.net
        s, r = self.terms(deltas, m)
        if m == net.n_layers:
            return r / s
        v0 = self.free[m]
        if net.diode == "ideal":
            lo, hi = net.lower[m - 1] - v0, net.upper[m - 1] - v0
            return jnp.clip(self.kept[m - 1] + r / s, lo, hi)
        # the diodes' current changes have δ's sign, so the root lies between 0 and ΔR/S;
        # start from the linearised solution
        lin = r / s
        _, df0 = self._diode_kcl(m, s, r, jnp.zeros_like(r))
        return _bracketed_newton(
            lambda d: self._diode_kcl(m, s, r, d),
            r / df0,
            jnp.minimum(lin, 0.0),
            jnp.maximum(lin, 0.0),
            n_newton,
        )

    def sweep(self, deltas):
        deltas = list(deltas)
        for parity in (1, 0):
            for m in range(1, self.net.n_layers + 1):
                if m % 2 == parity:
                    deltas[m - 1] = self.update(deltas, m)
        return deltas

    def run(self, deltas, n_sweeps: int):
        """Exactly ``n_sweeps`` sweeps (unrolled when short, as :func:`run_sweeps`)."""
        body = lambda d, _: (self.sweep(d), None)
        deltas, _ = jax.lax.scan(
            body, list(deltas), None, length=n_sweeps, unroll=n_sweeps if n_sweeps <= 8 else 1
        )
        return deltas

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

    def conductance(self):
        """Per free node, the total conductance S of its KCL (the nudge's at the outputs)."""
        net = self.net
        out = self.sums[-1] + self.beta / net.layer_weight(net.n_layers)
        return net.join([*self.sums[:-1], out])

    def equilibrium(self, deltas, free, n_sweeps, rtol):
        """The phase after ``n_sweeps`` sweeps as an :class:`Equilibrium`, judged as the
        training path judges its phases (see :data:`PHASE_RTOL`)."""
        delta = self.net.join(deltas)
        return phase_equilibrium(
            free, delta, self.error(deltas), self.conductance(), n_sweeps, rtol
        )

    def tolerance(self, solver, deltas):
        """Per node: atol + rtol·:meth:`current_scale`, amperes."""
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
