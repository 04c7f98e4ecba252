"""Status of a training phase: block coordinate descent run for a fixed number of sweeps.

A phase is SUCCESS when the correction one more update of any node would make (its KCL
residual over its conductance S) is at most ``rtol`` of the phase's potential scale. That is
certified without a residual pass, from the last sweep's corrections: after a sweep (odd
layers, then even ones) the even layers are exact minimisers given their neighbours, so only
the odd layers have a residual, made of the last sweep's change of their even neighbours.
One layer's update is non-expansive in what its neighbours inject: clipping (ideal diodes) is
1-Lipschitz, a Shockley root moves by ΔR/(S + i') ≤ ΔR/S, and a node's couplings to its
neighbours sum to at most its S (in a negative nudged phase the outputs' S is lowered by
|β|/w, and the bound grows by their couplings' sum over |S|). In the coordinates √w_m·v_m
(w_m the layer's energy weight, 1/A² per upstream amplifier) the couplings are symmetric, so
the correction one more update of any node of layer m would make is at most C/√w_m, with C
the last sweep's largest correction max_m √w_m·|Δv_m|, and its KCL residual at most
S_m·C/√w_m. Ideal-diode and linear layers are updated exactly (up to round-off, ~1e-7
relative in float32, below ``PHASE_RTOL``); a Shockley layer's Newton solve leaves its
own KCL residual f, measured right after the last sweep's update (no product needed) and
added to the bound: the swept state's residual at a node is at most |f| + S·C/√w_m.

Where the bound does not certify every example of the batch, the exact residual is computed
(``lax.cond``: only then) and judges the examples the bound did not, so a phase the bound is
too loose for (a strong negative nudge) is still judged by its true residual. Recomputing the
residual of every phase in every step cost 9–17 % of a training step."""

import jax
import jax.numpy as jnp

from ._base import Equilibrium, Status, select_status
from ._sweeps import energy_weights, layer_residuals

PHASE_RTOL = 1e-3
"""Default tolerance of a training phase run for a fixed number of sweeps: SUCCESS when the
correction one more update of any node would make is at most this fraction of the phase's
potential scale (max |v| for the free phase, max |δ| for a nudged one). After four sweeps at
initialisation (float32, 64 random inputs) the certified bound is, free / positive / negative,
2.5e-7 / 8.3e-7 / 2.5e-6 of the scale for DRN-XS (β = 1), 9.7e-8 / 9.1e-8 / 1.2e-7 for
DRN-1H, 4.7e-6 / 4.7e-6 / 5.3e-6 for the seed network (its recipe, β = 0.03)."""


def phase_status(scale, correction, rtol):
    """Per example: SUCCESS when ``correction`` (volts: the largest correction one more
    update of a node would make, or a bound on it) is at most ``rtol``·``scale``, MAX_STEPS
    otherwise, NONFINITE for a NaN or infinite potential or correction."""
    finite = jnp.isfinite(scale) & jnp.isfinite(correction)
    status = select_status(correction <= rtol * scale, Status.SUCCESS, Status.MAX_STEPS)
    return select_status(finite, status, Status.NONFINITE)


def swept_equilibria(net, phases, n_sweeps, rtol):
    """Phases after ``n_sweeps`` sweeps as [`Equilibrium`][kirchhoff.Equilibrium] objects
    (batched), judged together.
    Each phase is (free, deviation, sweeps, bound, exact): ``free`` lists the free layers
    [h1, …, out] (the free state, for a nudged phase); ``deviation`` the nudged phase's
    deviations per layer, or None for the free phase; ``sweeps`` what ``run_sweeps``
    returns to judge it by (the last sweep's largest weighted correction C, the largest |v|
    or |δ|, its Newton updates' own error in volts and amperes, per example); ``bound`` =
    (volts, amperes) per unit of C (``sweep_bound``); ``exact()`` the swept state's
    exact (KCL residual, |S|) per node, called, in one ``lax.cond`` for all the phases, only
    if the bounds leave an example of one uncertified. Each ``residual`` is the bound where
    it certified, the exact value elsewhere."""
    # all the phases' certificates as (phase, batch) arrays: one fused judgement, not one per phase
    rows = lambda k: jnp.stack([ph[2][k] for ph in phases])
    correction, scale, newton_volts, newton_amps = (rows(k) for k in range(4))
    volts = jnp.stack([jnp.asarray(ph[3][0], correction.dtype) for ph in phases])[:, None]
    amps = jnp.stack([jnp.asarray(ph[3][1], correction.dtype) for ph in phases])[:, None]
    status = phase_status(scale, correction * volts + newton_volts, rtol)
    residual = correction * amps + newton_amps
    certified = status == Status.SUCCESS

    def judge_exactly(_):
        exact_correction, exact_residual = [], []
        for _, _, _, _, exact in phases:
            res, conductance = exact()
            r = jnp.abs(res)
            # a node cut off by zero conductances passes only with zero residual
            exact_correction.append(jnp.max(jnp.where(r == 0, 0.0, r / conductance), axis=-1))
            exact_residual.append(jnp.max(r, axis=-1))
        judged = phase_status(scale, jnp.stack(exact_correction), rtol)
        return (
            select_status(certified, status, judged),
            jnp.where(certified, residual, jnp.stack(exact_residual)),
        )

    status, residual = jax.lax.cond(
        jnp.all(certified), lambda _: (status, residual), judge_exactly, None
    )
    judged = [(jax.tree.map(lambda s, i=i: s[i], status), residual[i]) for i in range(len(phases))]
    out = []
    for (status, residual), (free, deviation, *_) in zip(judged, phases, strict=True):
        joined = net.join(free)
        delta = None if deviation is None else net.join(deviation)
        out.append(
            Equilibrium(
                free=joined if delta is None else joined + delta,
                status=status,
                n_steps=jnp.full(residual.shape, n_sweeps),
                residual=residual,
                deviation=delta,
            )
        )
    return out


def sweep_bound(net, max_conductance, expansion=1.0):
    """(volts, amperes) per unit of the last sweep's weighted correction C: the bounds on any
    node's next correction and on its |KCL residual| (module docstring). ``max_conductance``
    per layer the largest |S|; ``expansion`` ≥ 1 the outputs' couplings over |S|."""
    weights = energy_weights(net)
    volts = expansion / min(weights) ** 0.5
    amps = expansion * jnp.max(
        jnp.stack([s / w**0.5 for s, w in zip(max_conductance, weights, strict=True)])
    )
    return volts, amps


def free_phase(net, layers, drive, target, sweeps, sums):
    """The free phase (``layers`` [inputs, h1, …, out] after its sweeps, ``sweeps`` from
    ``run_sweeps``) as a phase for ``swept_equilibria``."""

    def exact():
        res = layer_residuals(net, layers, drive, target, 0.0, sums)
        return net.join(res), net.join(sums)

    bound = sweep_bound(net, [jnp.max(s) for s in sums])
    return layers[1:], None, sweeps, bound, exact


def nudged_bound(net, sums, beta):
    """A nudged phase's (``sweep_bound``, its outputs' |S|): the nudge adds β/w to the
    outputs' S. A negative nudge lowers it below their couplings' sum, or below zero (a saddle
    the update still solves exactly): each output update is then Lipschitz with constant
    couplings/|S| in its neighbours, the bound's expansion."""
    couplings = sums[-1]
    s_out = jnp.abs(couplings + beta / net.layer_weight(net.n_layers))
    ratio = jnp.where(s_out != 0, couplings / s_out, jnp.inf)
    expansion = jnp.maximum(1.0, jnp.max(ratio))
    max_s = [*(jnp.max(s) for s in sums[:-1]), jnp.max(s_out)]
    return sweep_bound(net, max_s, expansion), s_out


def whole_nudged_phase(net, layers, drive, target, beta, sweeps, sums):
    """A nudged phase solved whole (not as a deviation: its conductances differ from the free
    phase's, as with read noise), ``layers`` after its sweeps from the free state, as a phase
    for ``swept_equilibria`` (judged against max |v|, not the deviation's scale)."""
    bound, s_out = nudged_bound(net, sums, beta)

    def exact():
        res = layer_residuals(net, layers, drive, target, beta, sums)
        return net.join(res), net.join([*sums[:-1], s_out])

    return layers[1:], None, sweeps, bound, exact
