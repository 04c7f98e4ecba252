"""Scaling benchmark: the general-circuit path (SparseNewton: the resistors' Laplacian in COO
form, Newton directions by preconditioned conjugate gradients, memory linear in the elements)
from 10³ to 10⁵ free nodes, against ngspice side by side where it finishes.

Two families, float64, one operating point per solve (a batch of 1):

- ``random``: a random sparse resistor–diode circuit — a ring of N free nodes with two random
  chords per node (conductances log-uniform in 0.1–10 mS), a leak to ground at every node,
  8 inputs driving random nodes, and Shockley diodes from a tenth of the nodes to a 0.3 V
  rail, so that the solve is nonlinear;
- ``crossbar``: a square crossbar layer with wire resistance (``kirchhoff.crossbar_circuit``,
  conductances uniform in 0.05–0.15 mS, r_wire·g = 1e-3): 2·n² free wire nodes.

Each (family, size) runs in a fresh process, so that its peak resident memory (``ru_maxrss``,
the whole process: Python, JAX and the circuit) is its own: the circuit is built, the solve
compiled and timed (first call less the best of two more: the compile time, as ngspice's
start-up is reported beside its solve), and ngspice (``kirchhoff.ngspice_potentials``, tight
tolerances) runs the same circuit with a time limit of ``--ngspice-limit`` seconds (60);
where both finish, the largest difference of the potentials is recorded (target: 1 µV).
Writes benchmarks/results/scaling.json and scaling.png (``--quick``: scaling_quick.*, sizes
10³ and 3·10³).
"""

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

RESULTS = pathlib.Path(
    os.environ.get(
        "KIRCHHOFF_BENCHMARK_RESULTS", pathlib.Path(__file__).resolve().parent / "results"
    )
)


def random_circuit(n: int, seed: int = 0):
    import numpy as np

    import kirchhoff as kh

    rng = np.random.default_rng(seed)
    nodes = np.arange(n)
    a = np.concatenate([nodes, np.repeat(nodes, 2)])
    b = np.concatenate([(nodes + 1) % n, rng.integers(0, n, 2 * n)])
    keep = a != b
    a, b = a[keep], b[keep]
    g = 10 ** rng.uniform(-4, -2, a.size)
    driven = rng.choice(n, 8, replace=False)
    diodes = rng.choice(n, n // 10, replace=False)
    elements = [
        kh.Ground("gnd"),
        kh.Input([f"in{k}" for k in range(8)]),
        kh.VoltageSource("rail", 0.3),
        kh.Resistor(a.tolist(), b.tolist(), g),
        kh.Resistor(nodes.tolist(), ["gnd"] * n, np.full(n, 1e-4)),
        kh.Resistor([f"in{k}" for k in range(8)], driven.tolist(), np.full(8, 1e-2)),
        kh.ShockleyDiode(diodes.tolist(), ["rail"] * diodes.size, saturation_current=1e-9),
    ]
    circuit = kh.Circuit(elements, outputs=[0])
    inputs = rng.uniform(-1.0, 1.0, (1, 8))
    return circuit, inputs


def crossbar(n_free: int, seed: int = 0):
    import numpy as np

    import kirchhoff as kh

    side = max(2, round((n_free / 2) ** 0.5))
    rng = np.random.default_rng(seed)
    g = rng.uniform(0.5e-4, 1.5e-4, (side, side))
    circuit = kh.crossbar_circuit(g, wire_resistance=1e-3 / 1e-4)
    inputs = rng.uniform(-1.0, 1.0, (1, circuit.n_inputs))
    return circuit, inputs


def worker(family: str, size: int, ngspice_limit: float) -> dict:
    """One (family, size): build, compile, solve, ngspice; runs in its own process."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np

    import kirchhoff as kh

    t = time.perf_counter()
    circuit, inputs = (random_circuit if family == "random" else crossbar)(size)
    build_s = time.perf_counter() - t
    solver = kh.SparseNewton()
    x = jnp.asarray(inputs)

    def solve():
        return jax.block_until_ready(solver.solve(circuit, x))

    t = time.perf_counter()
    eq = solve()
    first_s = time.perf_counter() - t
    runs = []
    for _ in range(2):
        t = time.perf_counter()
        eq = solve()
        runs.append(time.perf_counter() - t)
    solve_s = min(runs)
    record = {
        "family": family,
        "free_nodes": circuit.n_free,
        "nodes": circuit.n_nodes,
        "elements": int(sum(int(np.size(t[0])) for t in circuit.terminals)),
        "build_s": build_s,
        "compile_s": max(first_s - solve_s, 0.0),
        "solve_s": solve_s,
        "status": eq.messages()[0],
        "newton_steps": int(eq.n_steps[0]),
        "residual_a": float(eq.residual[0]),
    }
    v = np.asarray(jax.vmap(circuit.potentials)(eq.free, x))[0]
    free_idx = np.asarray(circuit.free_nodes)
    if ngspice_limit <= 0:
        record["ngspice_s"] = None
        record["ngspice_error"] = "not run: ngspice ran out of time on a smaller circuit"
        record["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return record
    try:
        t = time.perf_counter()
        spice = kh.ngspice_potentials(circuit, inputs[0], timeout=ngspice_limit)
        record["ngspice_s"] = time.perf_counter() - t
        record["max_difference_v"] = float(
            np.max(np.abs(np.asarray(spice)[free_idx] - v[free_idx]))
        )
    except kh.NgspiceError as error:  # a timeout, or ngspice could not run
        record["ngspice_s"] = None
        record["ngspice_error"] = " ".join(str(error).split())[:200]
    record["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return record


def plot(out, path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    ax_t, ax_m = fig.subplots(1, 2)
    for family, marker in (("random", "o"), ("crossbar", "s")):
        rs = [r for r in out["records"] if r["family"] == family]
        if not rs:
            continue
        n = [r["free_nodes"] for r in rs]
        (line,) = ax_t.loglog(
            n, [r["solve_s"] for r in rs], marker + "-", label=f"{family}: kirchhoff"
        )
        spice = [(r["free_nodes"], r["ngspice_s"]) for r in rs if r.get("ngspice_s")]
        if spice:
            ax_t.loglog(
                *zip(*spice, strict=True),
                marker + "--",
                mfc="none",
                color=line.get_color(),
                label=f"{family}: ngspice",
            )
        ax_m.loglog(n, [r["peak_rss_mb"] for r in rs], marker + "-", label=family)
    ax_t.set_xlabel("free nodes"), ax_t.set_ylabel("seconds per operating point")
    ax_t.set_title("solve time (kirchhoff: compile excluded)", fontsize=10)
    ax_m.set_xlabel("free nodes"), ax_m.set_ylabel("peak resident memory, MB")
    ax_m.set_title("peak memory of the process", fontsize=10)
    for ax in (ax_t, ax_m):
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="1000,3000,10000,30000,100000")
    ap.add_argument("--families", default="random,crossbar")
    ap.add_argument("--ngspice-limit", type=float, default=60.0)
    ap.add_argument("--quick", action="store_true", help="sizes 1000,3000: scaling_quick.*")
    ap.add_argument("--worker", nargs=2, metavar=("FAMILY", "SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], int(args.worker[1]), args.ngspice_limit)))
        return
    sizes = [1000, 3000] if args.quick else [int(s) for s in args.sizes.split(",")]
    records = []
    for family in args.families.split(","):
        limit = args.ngspice_limit  # 0 once ngspice ran out of time: larger ones would too
        for size in sizes:
            proc = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    family,
                    str(size),
                    "--ngspice-limit",
                    str(limit),
                ],
                capture_output=True,
                text=True,
            )
            lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
            if proc.returncode or not lines:
                raise SystemExit(f"scaling.py: {family} {size} failed:\n{proc.stderr[-3000:]}")
            rec = json.loads(lines[-1])
            records.append(rec)
            if rec.get("ngspice_s") is None:
                limit = 0
            spice = (
                f"ngspice {rec['ngspice_s']:.2f} s, max |Δv| {rec['max_difference_v']:.1e} V"
                if rec.get("ngspice_s")
                else "ngspice: " + rec.get("ngspice_error", "not run")[:60]
            )
            print(
                f"{family:8s} {rec['free_nodes']:7d} free nodes: {rec['solve_s']:.3f} s "
                f"({rec['newton_steps']} Newton steps, {rec['status']}), compile "
                f"{rec['compile_s']:.1f} s, peak {rec['peak_rss_mb']:.0f} MB; {spice}",
                flush=True,
            )
    both = [r for r in records if r.get("max_difference_v") is not None]
    out = {
        "quick": args.quick,
        "solver": "kirchhoff.SparseNewton, float64, batch 1",
        "ngspice_limit_s": args.ngspice_limit,
        "records": records,
        "largest_free_nodes_solved": max(
            (r["free_nodes"] for r in records if r["status"] == "converged"), default=0
        ),
        "max_difference_v": max((r["max_difference_v"] for r in both), default=None),
        "target": "10^5 free nodes solve; within 1 µV of ngspice where both run",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "scaling_quick" if args.quick else "scaling"
    (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=2))
    plot(out, RESULTS / f"{name}.png")
    print(
        f"scaling: largest solved {out['largest_free_nodes_solved']} free nodes; "
        f"max |Δv| against ngspice {out['max_difference_v']}"
    )


if __name__ == "__main__":
    main()
