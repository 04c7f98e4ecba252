"""EqProp against implicit autodiff: the error of the positive, negative and centered
estimators over a sweep of beta, on (a) a random nonlinear resistive graph with Shockley
diodes (DampedNewton) and (b) a small layered ideal-diode network (BoxQP), each in float64
and in float32 (the same circuit cast; a float32 circuit is solved in float32).

A third part compares the learning rules of a layered network (:class:`LayeredNetwork`, exact
block coordinate sweeps) with the same reference: EqProp (centered and positive, over β),
coupled learning (Stern et al. 2021, over the clamping factor η) and contrastive learning
(outputs clamped to the targets), by cosine similarity and relative error, on a small DRN
(4-6-2) and, in the full run, a DRN-XS (784-100-10) at initialisation (--quick: the small
DRN, float32 only). Coupled and contrastive learning are not gradient estimators: as η → 0
coupled learning tends to the gradient with the output error weighted by the conductances
the outputs see, and contrastive learning is coupled learning at η = 1; their cosine says
whether they still descend. They go to the JSON's ``layered_rules`` and to
results/gradient_check_rules.png.

The error is measured against the float64 implicit gradient (the float32 implicit gradient's
own error is recorded beside it). The bias of the one-sided estimators is O(beta) and that of
the centered one O(beta^2); at small beta round-off takes over, growing like 1/beta. The
script fits the slope of log(error) against log(beta) where the bias dominates, a range it
picks from the data, reports per dtype the best error and the beta that gives it, and writes
results/gradient_check.json, a log-log plot beside it, and a one-line summary.

    python benchmarks/gradient_check.py            # full sweep, 1e-7 … 1e0
    python benchmarks/gradient_check.py --quick    # under a minute
"""

import argparse
import json
import os
import pathlib
import time

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import kirchhoff as kh  # noqa: E402
from kirchhoff._learning._clamped import (  # noqa: E402
    layered_contrastive_gradient,
    layered_coupled_gradient,
)

# KIRCHHOFF_BENCHMARK_RESULTS: another folder for the JSON and PNG (benchmarks/gpu_check.sh
# writes a GPU's results beside the CPU ones, not over them)
RESULTS = pathlib.Path(
    os.environ.get(
        "KIRCHHOFF_BENCHMARK_RESULTS", pathlib.Path(__file__).resolve().parent / "results"
    )
)

# the fit keeps points whose error is this many times the estimated round-off floor …
FLOOR_MARGIN = 100.0
# … and small enough to be in the asymptotic (small-beta) regime
MAX_FIT_ERROR = 1e-2


# ---- circuits ------------------------------------------------------------------------------
def nonlinear_graph(seed: int, n_free: int = 12, n_inputs: int = 3):
    """A random connected graph: resistors of 0.5–2 S, Shockley diodes that turn on at a few
    hundred millivolts (I_s 1e-6–1e-3 A, both orientations), two current sources (trainable
    biases), a 1.5 V rail, inputs and ground; two outputs."""
    rng = np.random.default_rng(seed)
    held = ["gnd", "rail", *(f"in{k}" for k in range(n_inputs))]
    free = list(range(n_free))
    anodes, cathodes, attached = [], [], list(held)
    for n in rng.permutation(free):  # a spanning tree grown from the held nodes
        anodes.append(int(n))
        cathodes.append(attached[rng.integers(len(attached))])
        attached.append(int(n))
    for h in held:
        if h not in cathodes:
            anodes.append(int(rng.choice(free)))
            cathodes.append(h)
    everything = held + free
    while len(anodes) < 2 * n_free + 4:
        a, c = int(rng.choice(free)), everything[rng.integers(len(everything))]
        if a != c:
            anodes.append(a)
            cathodes.append(c)
    d_a, d_c = [], []
    while len(d_a) < 5:
        a, c = int(rng.choice(free)), everything[rng.integers(len(everything))]
        if a != c:
            d_a.append(a if rng.random() < 0.5 else c)
            d_c.append(c if d_a[-1] == a else a)
    sources = [int(n) for n in rng.choice(free, 2, replace=False)]
    outputs = [int(n) for n in rng.choice(free, 2, replace=False)]
    elements = [
        kh.Ground("gnd"),
        kh.VoltageSource("rail", 1.5),
        kh.Input([f"in{k}" for k in range(n_inputs)]),
        kh.Resistor(anodes, cathodes, rng.uniform(0.5, 2.0, len(anodes))),
        kh.ShockleyDiode(d_a, d_c, saturation_current=10.0 ** rng.uniform(-6, -3, 5)),
        kh.CurrentSource(sources, rng.uniform(-0.5, 0.5, 2)),
    ]
    return kh.Circuit(elements, outputs=outputs)


def layered_ideal_diode_network(seed: int, n_in: int = 4, n_hidden: int = 6, n_out: int = 2):
    """Inputs → hidden → outputs, fully connected by resistors (0.5–2 S), outputs loaded by
    resistors to ground. Each hidden node has an ideal diode to ground: half are clipped to
    v ≥ 0 (excitatory, diode from ground), half to v ≤ 0 (inhibitory, diode to ground).
    Hidden nodes also get trainable bias current sources."""
    rng = np.random.default_rng(seed)
    xs = [f"x{i}" for i in range(n_in)]
    hs = [f"h{j}" for j in range(n_hidden)]
    os = [f"o{k}" for k in range(n_out)]
    anodes = [x for x in xs for _ in hs] + [h for h in hs for _ in os] + os
    cathodes = [h for _ in xs for h in hs] + [o for _ in hs for o in os] + ["gnd"] * n_out
    half = n_hidden // 2
    return kh.Circuit(
        [
            kh.Ground("gnd"),
            kh.Input(xs),
            kh.Resistor(anodes, cathodes, rng.uniform(0.5, 2.0, len(anodes))),
            kh.IdealDiode(["gnd"] * half + hs[half:], hs[:half] + ["gnd"] * (n_hidden - half)),
            kh.CurrentSource(hs, rng.uniform(-0.2, 0.2, n_hidden)),
        ],
        outputs=os,
    )


def examples(seed: int, n_inputs: int, n_outputs: int, batch: int):
    """Inputs of 1–3 V with random signs and targets in [-1, 1] V."""
    rng = np.random.default_rng(seed + 1)
    x = rng.choice([-1.0, 1.0], (batch, n_inputs)) * rng.uniform(1.0, 3.0, (batch, n_inputs))
    y = rng.uniform(-1.0, 1.0, (batch, n_outputs))
    return jnp.asarray(x), jnp.asarray(y)


# ---- measurement ---------------------------------------------------------------------------
def flat(tree) -> np.ndarray:
    leaves = jax.tree_util.tree_leaves(tree)
    return np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1) for a in leaves])


def sweep(name, dtype, circuit, solver, x, y, betas, reference):
    """Errors of every estimator at every beta against ``reference`` (the float64 implicit
    gradient), with the phases' statuses recorded rather than enforced."""
    circuit = circuit.astype(dtype)
    x, y = jnp.asarray(x, dtype), jnp.asarray(y, dtype)
    own = flat(kh.implicit_gradient(circuit, solver, x, y))
    free = solver.solve(circuit, x)
    if not bool(np.all(np.asarray(free.converged))):
        raise RuntimeError(f"{name} ({dtype}): the free phase did not converge")
    records = []
    for beta in betas:
        for variant in kh.VARIANTS:
            result = kh.eqprop_gradient(circuit, solver, x, y, float(beta), variant, free=free)
            phases = [p for p in (result.nudged_positive, result.nudged_negative) if p is not None]
            g = flat(result.gradient)
            records.append(
                dict(
                    circuit=name,
                    dtype=dtype,
                    variant=variant,
                    beta=float(beta),
                    rel_error=float(np.linalg.norm(g - reference) / np.linalg.norm(reference)),
                    cosine=float(g @ reference / (np.linalg.norm(g) * np.linalg.norm(reference))),
                    all_success=all(bool(np.all(np.asarray(p.converged))) for p in phases),
                    min_nudged_steps=int(min(int(np.min(np.asarray(p.n_steps))) for p in phases)),
                )
            )
    info = dict(
        n_free=circuit.n_free,
        n_parameters=int(reference.size),
        gradient_norm=float(np.linalg.norm(reference)),
        free_residual_amps=float(np.max(np.asarray(free.residual))),
        implicit_rel_error=float(np.linalg.norm(own - reference) / np.linalg.norm(reference)),
    )
    return records, info


def fit_slopes(records, name, dtype):
    """Slope of log(rel_error) vs log(beta) per variant, over the points where the bias
    dominates. The nudged phases are solved for their deviations from the free phase, so the
    round-off part of the error no longer grows like 1/β: it is a floor, about the smallest
    error of the sweep. The fit keeps the points at least FLOOR_MARGIN times above that floor
    and below MAX_FIT_ERROR (the small-β regime)."""
    rows = [r for r in records if r["circuit"] == name and r["dtype"] == dtype]
    out, floors = {}, {}
    for variant in kh.VARIANTS:
        pts = sorted((r["beta"], r["rel_error"]) for r in rows if r["variant"] == variant)
        floor = floors[variant] = min(e for _, e in pts)
        keep = [(b, e) for b, e in pts if e >= FLOOR_MARGIN * floor and e <= MAX_FIT_ERROR]
        entry = dict(slope=None, beta_min=None, beta_max=None, n_points=len(keep), floor=floor)
        if len(keep) >= 3:
            b, e = np.log(np.array(keep)).T
            entry.update(
                slope=float(np.polyfit(b, e, 1)[0]),
                beta_min=float(np.exp(b.min())),
                beta_max=float(np.exp(b.max())),
            )
        out[variant] = entry
    return out, floors


def lookup(records, name, dtype, variant, beta, key):
    for r in records:
        if (r["circuit"], r["dtype"], r["variant"]) == (name, dtype, variant) and np.isclose(
            r["beta"], beta
        ):
            return r[key]
    return None


def best(records, name, dtype, variant):
    """The smallest error over the sweep and the beta that gives it."""
    rows = [
        r for r in records if (r["circuit"], r["dtype"], r["variant"]) == (name, dtype, variant)
    ]
    r = min(rows, key=lambda r: r["rel_error"])
    return dict(rel_error=r["rel_error"], beta=r["beta"])


def plot(records, slopes, floors, path):
    from matplotlib.figure import Figure

    from kirchhoff.plot import VARIANT_COLORS, estimator_errors

    names = list(slopes)
    dtypes = list(slopes[names[0]])
    fig = Figure(figsize=(6 * len(dtypes), 4.4 * len(names)))
    axes = fig.subplots(len(names), len(dtypes), squeeze=False)
    for row, name in zip(axes, names, strict=True):
        for ax, dtype in zip(row, dtypes, strict=True):
            mine = [r for r in records if r["circuit"] == name and r["dtype"] == dtype]
            curves = {}
            for variant in kh.VARIANTS:
                pts = sorted((r["beta"], r["rel_error"]) for r in mine if r["variant"] == variant)
                curves[variant] = np.array(pts).T
            betas = curves["centered"][0]
            assert all(np.array_equal(b, betas) for b, _ in curves.values())
            fitted = {v: slopes[name][dtype][v]["slope"] for v in kh.VARIANTS}
            estimator_errors(betas, {v: e for v, (_, e) in curves.items()}, ax=ax, slopes=fitted)
            for variant, (b, e) in curves.items():
                s = slopes[name][dtype][variant]
                color = VARIANT_COLORS[variant]
                if s["slope"] is not None:  # the fitted range, drawn thick
                    sel = (b >= s["beta_min"]) & (b <= s["beta_max"])
                    ax.loglog(b[sel], e[sel], "-", color=color, lw=5, alpha=0.25)
                # where the fit stops trusting the points
                ax.axhline(FLOOR_MARGIN * floors[name][dtype][variant], color=color, ls=":", lw=1)
            top = best(records, name, dtype, "centered")
            ax.plot(
                [top["beta"]],
                [top["rel_error"]],
                "k*",
                ms=11,
                label=f"best centered {top['rel_error']:.1e} at β={top['beta']:.0e}",
            )
            ax.plot([], [], "k:", lw=1, label=f"{FLOOR_MARGIN:.0f}× round-off floor (per variant)")
            ax.axhline(MAX_FIT_ERROR, color="grey", lw=0.8, ls="--")
            ax.set_ylim(max(1e-16, 0.3 * min(r["rel_error"] for r in records)), 10)
            ax.set_ylabel("relative error vs float64 implicit autodiff")
            ax.set_title(f"{name} — {dtype}")
            ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("EqProp gradient estimators vs implicit differentiation, float32 and float64")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# ---- other learning rules on a layered network ------------------------------------------------
# sweeps per phase: enough for every phase of these one-hidden-layer networks to converge
RULE_SWEEPS = 100


def rule_networks(seed: int, quick: bool, batch: int):
    """(name, LayeredNetwork, inputs, targets): a small DRN on the examples above, and in the
    full run a DRN-XS at initialisation on random pixels (input gain 100, one-hot targets)."""
    small = kh.drn(jax.random.PRNGKey(seed), (4, 6, 2))
    out = [("DRN 4-6-2", small, *examples(seed, 4, 2, batch))]
    if not quick:
        xs = kh.drn(jax.random.PRNGKey(seed), (784, 100, 10), input_gain=100.0)
        rng = np.random.default_rng(seed + 2)
        x = jnp.asarray(rng.uniform(0.0, 1.0, (batch, 784)) * (rng.random((batch, 784)) < 0.2))
        y = jax.nn.one_hot(jnp.arange(batch) % 10, 10, dtype=x.dtype)
        out.append(("DRN-XS 784-100-10", xs, x, y))
    return out


def rule_record(rule, parameter, value, gradient, phases, reference):
    """One rule's estimate against ``reference``: cosine, relative error (None where the
    estimate is not finite, e.g. a negative nudge past the outputs' conductance) and whether
    every phase of every example converged."""
    g = flat(gradient)
    finite = bool(np.all(np.isfinite(g))) and np.linalg.norm(g) > 0
    cosine = g @ reference / (np.linalg.norm(g) * np.linalg.norm(reference))
    return {
        "rule": rule,
        parameter: None if value is None else float(value),
        "cosine": float(cosine) if finite else None,
        "rel_error": float(np.linalg.norm(g - reference) / np.linalg.norm(reference))
        if finite
        else None,
        "all_success": bool(np.all(np.asarray(phases.converged()))),
    }


def rules_check(net, x, y, values, dtypes):
    """Cosine and relative error against the float64 implicit gradient of EqProp (centered,
    positive) over β = ``values``, coupled learning over η = ``values`` and contrastive
    learning, each with RULE_SWEEPS sweeps per phase, in each of ``dtypes``."""
    solver = kh.BlockCoordinateDescent()
    reference = flat(kh.implicit_gradient(net, solver, x, y))
    # jitted with β and η traced: one compilation per rule, network and dtype
    eqprop = eqx.filter_jit(kh.layered_eqprop_gradient)
    coupled = eqx.filter_jit(layered_coupled_gradient)
    contrastive = eqx.filter_jit(layered_contrastive_gradient)
    info = dict(
        sizes=list(net.sizes),
        input_gain=net.input_gain,
        n_parameters=int(reference.size),
        gradient_norm=float(np.linalg.norm(reference)),
        n_sweeps=RULE_SWEEPS,
        # what the outputs see: coupled learning's limit weights the output error by it
        mean_output_conductance=float(jnp.mean(jnp.sum(net.weights[-1], axis=0))),
    )
    out = dict(info=info)
    for dtype in dtypes:
        n, xd, yd = net.astype(dtype), jnp.asarray(x, dtype), jnp.asarray(y, dtype)
        rows = []
        for variant in ("centered", "positive"):
            for beta in values:
                g, _, ph = eqprop(n, xd, yd, jnp.asarray(beta, dtype), RULE_SWEEPS, variant)
                rows.append(rule_record(f"eqprop-{variant}", "beta", beta, g, ph, reference))
        for eta in values:
            g, _, ph = coupled(n, xd, yd, jnp.asarray(eta, dtype), RULE_SWEEPS)
            rows.append(rule_record("coupled", "eta", eta, g, ph, reference))
        g, _, ph = contrastive(n, xd, yd, RULE_SWEEPS)
        rows.append(rule_record("contrastive", "eta", None, g, ph, reference))
        out[dtype] = rows
    return out


def rule_at(rows, rule, parameter=None, value=None):
    for r in rows:
        if r["rule"] == rule and (parameter is None or np.isclose(r[parameter], value)):
            return r
    return None


def plot_rules(rules, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rules)
    fig, axes = plt.subplots(len(names), 2, figsize=(12, 4.2 * len(names)), squeeze=False)
    styles = {
        "eqprop-centered": ("tab:green", "β"),
        "eqprop-positive": ("tab:red", "β"),
        "coupled": ("tab:purple", "η"),
    }
    for row, name in zip(axes, names, strict=True):
        for ax, key, label in zip(
            row, ("rel_error", "cosine"), ("relative error", "cosine similarity"), strict=True
        ):
            for dtype, ls in (("float64", "-"), ("float32", "--")):
                if dtype not in rules[name]:
                    continue
                rows = rules[name][dtype]
                for rule, (color, par) in styles.items():
                    pts = sorted(
                        (r["beta" if par == "β" else "eta"], r[key])
                        for r in rows
                        if r["rule"] == rule and r[key] is not None
                    )
                    p, v = np.array(pts).T
                    # an estimate that diverged (a negative nudge past the outputs'
                    # conductance) is drawn at the top, not on an axis it would flatten
                    y = np.minimum(v, 1e2) if key == "rel_error" else 1.0 - v
                    ax.loglog(
                        p,
                        np.maximum(y, 1e-17),
                        "o" + ls,
                        color=color,
                        ms=3.5,
                        lw=1.2,
                        label=f"{rule} ({par}), {dtype}",
                    )
                c = rule_at(rows, "contrastive")[key]
                if c is None:
                    continue
                ax.axhline(
                    c if key == "rel_error" else 1.0 - c,
                    color="tab:orange",
                    ls=ls,
                    lw=1,
                    label=f"contrastive, {dtype}",
                )
            ax.set_xlabel("β (siemens) for EqProp, η for coupled learning")
            ax.set_ylabel(
                "relative error (clipped at 100)" if key == "rel_error" else "1 − cosine similarity"
            )
            ax.set_title(f"{name}: {label} vs float64 implicit autodiff")
            ax.grid(True, which="major", alpha=0.3)
            ax.legend(fontsize=6.5, loc="best")
    fig.suptitle("Layered learning rules: EqProp, coupled learning, contrastive learning")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer betas (1e-6 … 1e0), batch 2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=None, help="examples per gradient")
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        default=None,
        help="output path without suffix (default results/gradient_check, "
        "or results/gradient_check_quick with --quick)",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    # three points per decade (two with --quick); integer exponents land exactly on 1e-4, 1e-2
    if args.quick:
        betas = 10.0 ** (np.arange(-12, 1) / 2)
    else:
        betas = 10.0 ** (np.arange(-21, 1) / 3)
    batch = args.batch or (2 if args.quick else 4)
    out = args.out or RESULTS / ("gradient_check_quick" if args.quick else "gradient_check")
    out.parent.mkdir(parents=True, exist_ok=True)

    graph = nonlinear_graph(args.seed)
    layered = layered_ideal_diode_network(args.seed)
    # solve every phase as tightly as the dtype allows (the solvers raise rtol to a few
    # epsilons): the round-off floor then sits as low as it can, and the bias shows over more
    # decades
    tight = dict(atol=0.0, rtol=0.0)
    cases = [
        ("nonlinear graph (Shockley, DampedNewton)", graph, kh.DampedNewton(**tight)),
        ("layered ideal-diode net (BoxQP)", layered, kh.BoxQP(**tight)),
    ]
    dtypes = ("float64", "float32")
    records, slopes, floors, infos, best_of = [], {}, {}, {}, {}
    for name, circuit, solver in cases:
        x, y = examples(args.seed, circuit.n_inputs, circuit.n_outputs, batch)
        reference = flat(kh.implicit_gradient(circuit, solver, x, y))
        slopes[name], floors[name], infos[name], best_of[name] = {}, {}, {}, {}
        for dtype in dtypes:
            recs, infos[name][dtype] = sweep(name, dtype, circuit, solver, x, y, betas, reference)
            records += recs
            slopes[name][dtype], floors[name][dtype] = fit_slopes(records, name, dtype)
            best_of[name][dtype] = {v: best(records, name, dtype, v) for v in kh.VARIANTS}

    # the learning rules of a layered network, at a few β and η
    # (compilation dominates: --quick runs them in float32 only, the default dtype)
    values = [1.0, 0.1, 1e-2, 1e-3] if args.quick else [1.0, 0.3, 0.1, 1e-2, 1e-3, 1e-4, 1e-5]
    rule_dtypes = ("float32",) if args.quick else dtypes
    rules = {}
    for name, net, x, y in rule_networks(args.seed, args.quick, batch):
        rules[name] = rules_check(net, x, y, values, rule_dtypes)

    result = dict(
        benchmark="gradient_check",
        quick=args.quick,
        seed=args.seed,
        batch=batch,
        dtypes=list(dtypes),
        reference="kirchhoff.implicit_gradient in float64 (float32's own: circuits.*.implicit_rel_error)",
        betas=[float(b) for b in betas],
        fit_rule=dict(
            floor="per variant, the smallest rel_error over the betas",
            floor_margin=FLOOR_MARGIN,
            max_error=MAX_FIT_ERROR,
        ),
        circuits=infos,
        best=best_of,
        roundoff_floor=floors,
        slopes=slopes,
        records=records,
        layered_rules=rules,
        layered_rule_values=values,
        layered_rule_dtypes=list(rule_dtypes),
        seconds=round(time.perf_counter() - start, 1),
    )
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    plot(records, slopes, floors, out.with_suffix(".png"))
    # gradient_check_rules.png, or gradient_check_rules_quick.png (ignored, as *_quick.* is)
    stem, quick_tag = (
        (out.name[: -len("_quick")], "_quick") if out.name.endswith("_quick") else (out.name, "")
    )
    plot_rules(rules, out.with_name(f"{stem}_rules{quick_tag}.png"))

    parts = []
    for name, _, _ in cases:
        short = name.split(" (")[0]
        for dtype in dtypes:
            s = slopes[name][dtype]
            fmt = lambda v, s=s: "n/a" if s[v]["slope"] is None else f"{s[v]['slope']:.2f}"
            top = best_of[name][dtype]["centered"]
            err = lookup(records, name, dtype, "centered", 1e-3, "rel_error")
            err4 = lookup(records, name, dtype, "centered", 1e-4, "rel_error")
            parts.append(
                f"{short} {dtype}: slopes +{fmt('positive')} −{fmt('negative')} "
                f"±{fmt('centered')}, centered err@1e-3 {err:.1e} @1e-4 {err4:.1e}, "
                f"best {top['rel_error']:.1e} "
                f"at β={top['beta']:.0e}"
            )
    for name, by_dtype in rules.items():
        for dtype in rule_dtypes:
            rows = by_dtype[dtype]
            cp = rule_at(rows, "coupled", "eta", 1e-3)
            ct = rule_at(rows, "contrastive")
            eq = rule_at(rows, "eqprop-centered", "beta", 1e-3)
            num = lambda r, k, f: "n/a" if r[k] is None else format(r[k], f)
            parts.append(
                f"{name} {dtype}: coupled@η=1e-3 cos {num(cp, 'cosine', '.3f')} "
                f"err {num(cp, 'rel_error', '.2f')}, contrastive cos {num(ct, 'cosine', '.3f')} "
                f"err {num(ct, 'rel_error', '.2f')}, eqprop±@β=1e-3 err "
                f"{num(eq, 'rel_error', '.1e')}"
            )
    print(
        f"gradient_check ({result['seconds']}s): "
        + " | ".join(parts)
        + f" → {out.with_suffix('.json')}"
    )
    return result


if __name__ == "__main__":
    main()
