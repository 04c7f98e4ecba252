"""Throughput benchmark: training examples/s of centered EqProp (exact block coordinate
descent, fused phases) for DRN-XS and DRN-1H at batch sizes 4 … 512, against a roofline
measured in the same run; the whole training loop's rate; and the shipped step's
closed-form sweeps and gradient beside the same step with every derivative taken from the
energy by autodiff (``closed_forms``: interleaved rounds, medians, and the gradients'
difference).

The roofline. The machine's two ceilings are measured here: its dense matmul rate (the best
sustained rate of a 1024² product, the compute peak) and its memory bandwidth (an in-place
streaming axpy, y ← a·x + y, 3 words moved per element, at several sizes: the rate at the
size of a step's working set — which on this machine fits in the 32 MiB L3 for DRN-1H — and
the DRAM rate of a 256 MiB stream). The step timed is the one ``kirchhoff.train`` runs
(``make_train_step``: phases, statuses, SGD update, device write, projection, the state's
buffers donated), and its FLOPs and bytes are what XLA's cost analysis counts for that
compiled program (every fused kernel's operands and results: the passes over the weights
that forming W₊ − W₋, the update and the projection make are in it). Its bound is
max(FLOPs / matmul rate, bytes / bandwidth at its working set), and the fraction of the
roofline is the measured rate over batch / that time. The whole loop (``kirchhoff.train`` on
the MNIST subset: batching, host transfers, per-step status checks; evaluation excluded) is
timed separately. Writes benchmarks/results/throughput.json and throughput.png (``--quick``:
throughput_quick.*).

``--devices 1,2,4`` measures data-parallel training instead (``make_train_step(devices=n)``:
the batch split over n devices, the network replicated): examples/s of the shipped step for
each device count and batch (a multiple of it), side by side in one run, written to
throughput_devices.json / .png (``--quick``: throughput_devices_quick.*). On a CPU, XLA splits
it into N devices with ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (they share the
cores: that shows the sharded step's overhead, not a speed-up)."""

import argparse
import dataclasses
import json
import os
import pathlib
import platform
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import kirchhoff as kh

# KIRCHHOFF_BENCHMARK_RESULTS: another folder for the JSON and PNG (benchmarks/gpu_check.sh
# writes a GPU's results beside the CPU ones, not over them)
RESULTS = pathlib.Path(
    os.environ.get(
        "KIRCHHOFF_BENCHMARK_RESULTS", pathlib.Path(__file__).resolve().parent / "results"
    )
)


def matmul_gflops(dtype, n=1024, seconds=2.0):
    """Best sustained rate of an n×n by n×n product (jit, same dtype as training)."""
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), dtype)
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n), dtype)
    f = jax.jit(lambda a, b: a @ b)
    f(a, b).block_until_ready()
    best = 0.0
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        for _ in range(5):
            c = f(a, b)
        c.block_until_ready()
        best = max(best, 5 * 2 * n**3 / (time.perf_counter() - t0))
    return best / 1e9


def stream_bandwidth(dtype, total_bytes, seconds=0.5):
    """Best rate, bytes/s, of an in-place axpy y ← 2·x + y over two arrays of
    ``total_bytes`` together (read x, read y, write y: 1.5 × total_bytes moved per call)."""
    n = max(1024, int(total_bytes) // (2 * jnp.dtype(dtype).itemsize))
    x = jnp.ones(n, dtype)
    y = jnp.ones(n, dtype)
    f = jax.jit(lambda x, y: 2 * x + y, donate_argnums=1)  # y's buffer reused: no allocation
    y = f(x, y).block_until_ready()
    best, t_end, calls = 0.0, time.perf_counter() + seconds, 0
    while time.perf_counter() < t_end or calls < 3:
        t0 = time.perf_counter()
        y = f(x, y).block_until_ready()
        best = max(best, 3 * n * x.dtype.itemsize / (time.perf_counter() - t0))
        calls += 1
    return best


def bandwidth_curve(dtype, sizes_mib=(1, 4, 16, 32, 64, 256), seconds=0.5):
    """{size in MiB: bytes/s} of :func:`stream_bandwidth`."""
    return {m: stream_bandwidth(dtype, m * 2**20, seconds) for m in sizes_mib}


def bandwidth_at(curve, working_set_bytes):
    """The streaming rate for a working set of this size: the measured size nearest above it
    (the largest measured one beyond), as a data set that fits a cache streams at its rate."""
    sizes = sorted(curve)
    mib = working_set_bytes / 2**20
    return curve[next((m for m in sizes if m >= mib), sizes[-1])]


def step_costs(step, *args):
    """(FLOPs, bytes accessed, working-set bytes) of one call of the compiled ``step``, as
    XLA's cost and memory analyses count them (None where the backend does not say)."""
    compiled = step.lower(*args).compile()
    flops = nbytes = mem = None
    try:
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        flops, nbytes = float(cost["flops"]), float(cost["bytes accessed"])
    except Exception as err:  # not every backend reports it
        print(f"cost analysis unavailable: {err}")
    try:
        m = compiled.memory_analysis()
        mem = int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes)
    except Exception as err:
        print(f"memory analysis unavailable: {err}")
    return flops, nbytes, mem


def flops_per_example(sizes, n_sweeps, n_phases=3):
    """Minimum FLOPs of one centered-EqProp training example: the input-to-hidden product
    once (γ·x @ (W₊ − W₋)), the layer products of every sweep of every phase, the
    weight-gradient products (for reference beside XLA's count of the shipped step)."""
    n_in, layers = sizes[0], list(sizes[1:])
    flops = 2 * n_in * layers[0]  # input drive, once, shared by the phases
    inner = sum(2 * 2 * a * b for a, b in zip(layers[:-1], layers[1:], strict=True))
    flops += n_phases * n_sweeps * inner  # each sweep: up and down products of inner layers
    flops += 2 * n_in * layers[0]  # gradient of the input weights: xᵀ·Δh
    flops += sum(
        2 * 2 * a * b for a, b in zip(layers[:-1], layers[1:], strict=True)
    )  # inner gradients
    return flops


def train_config(model, batch, beta, n_sweeps, lr, dtype):
    """The benchmark's training settings (SGD, input gain 100)."""
    return kh.TrainConfig(
        model=model,
        batch_size=batch,
        beta=beta,
        n_sweeps=n_sweeps,
        lr=lr,
        input_gain=100.0,
        dtype=jnp.dtype(dtype).name,
    )


def make_step(model, batch, beta, n_sweeps, lr, dtype, donate=False, devices=None):
    """The training step that ``kirchhoff.train`` runs (phases, statuses, SGD update,
    projection), jit-compiled, with its initial parameters and optimiser state; with
    ``donate`` reusing the state's buffers, as ``train`` does; ``devices``: data-parallel."""
    cfg = train_config(model, batch, beta, n_sweeps, lr, dtype)
    net = kh.build_model(cfg)
    params, static = eqx.partition(net, net.trainable_filter())
    optimizer = kh.build_optimizer(cfg)
    step = kh.make_train_step(cfg, static, optimizer, donate=donate, devices=devices)
    return step, params, optimizer.init(params)


def derived_eqprop_gradient(net, x, y, beta, n_sweeps):
    """Centered EqProp with every derivative taken from ``net.energy`` by autodiff (ideal
    diodes): the timing reference for the closed forms the library ships. A layer's update is
    v_m ← clip(v_m − ∂F/∂v_m / ∂²F/∂v_m²) (F = energy + β·cost; exact for the quadratic
    resistor energy), the nudged phases sweep the potentials, and the gradient is
    (∂E/∂θ(v⁺) − ∂E/∂θ(v⁻))/2β, batch mean. Same sweeps and phases as the shipped step."""
    params, static = eqx.partition(net, net.trainable_filter())
    sizes = net.sizes[1:]

    def total(p, layers, b):
        n = eqx.combine(p, static)
        free = n.join(layers)
        e = jnp.sum(jax.vmap(n.energy)(free, x))
        return e + b * jnp.sum(kh.squared_error(layers[-1], y))

    def layer_grad(layers, m, b):
        return jax.grad(lambda v: total(params, [*layers[: m - 1], v, *layers[m:]], b))

    def curvatures(layers, b):
        # the diagonal of ∂²F/∂v_m² (constant: the energy is quadratic), derived once per phase
        out = []
        for m in range(1, len(sizes) + 1):
            ones = jnp.ones_like(layers[m - 1])
            out.append(jax.jvp(layer_grad(layers, m, b), (layers[m - 1],), (ones,))[1])
        return out

    def run(layers, b):
        layers, h = list(layers), curvatures(layers, b)
        for _ in range(n_sweeps):
            for parity in (1, 0):
                for m in range(1, len(sizes) + 1):
                    if m % 2 != parity:
                        continue
                    v = layers[m - 1] - layer_grad(layers, m, b)(layers[m - 1]) / h[m - 1]
                    if m < len(sizes):
                        v = jnp.clip(v, net.lower[m - 1], net.upper[m - 1])
                    layers[m - 1] = v
        return layers

    zeros = [jnp.zeros((x.shape[0], n), x.dtype) for n in sizes]
    free = run(zeros, 0.0)
    plus, minus = run(free, beta), run(free, -beta)
    de = lambda p: (total(p, plus, 0.0) - total(p, minus, 0.0)) / (2 * beta * x.shape[0])
    loss = jnp.mean(kh.squared_error(free[-1], y))
    return jax.grad(de)(params), loss


def make_derived_step(model, batch, beta, n_sweeps, lr, dtype):
    """:func:`make_step` with :func:`derived_eqprop_gradient` in place of the closed forms
    (SGD, writes through the device as the shipped step; no statuses)."""
    cfg = train_config(model, batch, beta, n_sweeps, lr, dtype)
    net = kh.build_model(cfg)
    params, static = eqx.partition(net, net.trainable_filter())
    optimizer = kh.build_optimizer(cfg)

    @jax.jit
    def step(params, opt_state, x, y, key=None):
        state = eqx.combine(params, static)
        grads, loss = derived_eqprop_gradient(state, x, y, beta, n_sweeps)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params, _ = eqx.partition(state.programmed(updates), state.trainable_filter())
        return params, opt_state, loss

    return step, params, optimizer.init(params)


def measure(model, batch, n_sweeps, dtype, seconds, devices=None):
    """Examples/s of the shipped step, carrying its state from step to step as ``train``
    does, and its costs (:func:`step_costs`; not with ``devices``, where the batches are
    placed on the devices' shards beforehand, as the resident ones are otherwise)."""
    sizes = kh.MODELS[model]
    step, params, opt_state = make_step(
        model, batch, 1.0, n_sweeps, 0.01, dtype, donate=True, devices=devices
    )
    rng = np.random.default_rng(0)
    n_buf = 8
    xs = [jnp.asarray(rng.random((batch, sizes[0])), dtype) for _ in range(n_buf)]
    ys = [jnp.asarray(np.eye(sizes[-1])[rng.integers(0, 10, batch)], dtype) for _ in range(n_buf)]
    if devices is None:
        costs = step_costs(step, params, opt_state, xs[0], ys[0])
    else:
        mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:devices]), ("batch",))
        rows = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))
        xs, ys = jax.device_put((xs, ys), rows)
        costs = None
    params, opt_state, info = step(params, opt_state, xs[0], ys[0])
    info.loss.block_until_ready()
    n_steps, t0 = 0, time.perf_counter()
    while True:
        params, opt_state, info = step(params, opt_state, xs[n_steps % n_buf], ys[n_steps % n_buf])
        n_steps += 1
        if n_steps % 4 == 0:
            info.loss.block_until_ready()
            if time.perf_counter() - t0 > seconds:
                break
    info.loss.block_until_ready()
    elapsed = time.perf_counter() - t0
    return n_steps * batch / elapsed, costs


def measure_loop(model, batch, n_sweeps, dtype, epochs, tmp):
    """Examples/s of the whole training loop (``kirchhoff.train`` on the offline MNIST
    subset: batching, host transfers, each step's status checks), the mean over epochs 2…
    (the first compiles); evaluation is timed apart by ``train`` and not counted."""
    cfg = dataclasses.replace(  # (replace, not assignment: the config checks its fields)
        train_config(model, batch, 1.0, n_sweeps, 0.01, dtype),
        epochs=epochs,
        out=str(tmp / f"{model}_{batch}"),
        test_limit=100,
    )
    kh.train(cfg, progress=False)
    curve = kh.read_metrics(cfg.out)[1:]
    seen = sum(r["examples_per_second"] * r["train_seconds"] for r in curve)
    return seen / sum(r["train_seconds"] for r in curve)


def compare_closed_forms(model, batch, n_sweeps, dtype, rounds):
    """The shipped step (closed-form sweeps and gradient) beside the same step with every
    derivative from autodiff of the energy (:func:`make_derived_step`): examples/s of each,
    interleaved rounds, medians; and the two gradients' relative difference."""
    sizes = kh.MODELS[model]
    steps = {
        "closed_form": make_step(model, batch, 1.0, n_sweeps, 0.01, dtype),
        "derived": make_derived_step(model, batch, 1.0, n_sweeps, 0.01, dtype),
    }
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.random((batch, sizes[0])), dtype)
    y = jnp.asarray(np.eye(sizes[-1])[rng.integers(0, 10, batch)], dtype)
    net = kh.build_model(train_config(model, batch, 1.0, n_sweeps, 0.01, dtype))
    closed = kh.layered_eqprop_gradient(net, x, y, 1.0, n_sweeps)[0]
    derived = jax.jit(derived_eqprop_gradient, static_argnums=4)(net, x, y, 1.0, n_sweeps)[0]
    diff = max(
        float(jnp.linalg.norm(a - b) / jnp.linalg.norm(a))
        for a, b in zip(closed.weights, derived.weights, strict=True)
    )
    n_steps = max(2, int(4000 / batch))
    rates = {k: [] for k in steps}
    for step, params, opt_state in steps.values():
        jax.block_until_ready(step(params, opt_state, x, y))
    for _ in range(rounds):
        for name, (step, params, opt_state) in steps.items():
            t0 = time.perf_counter()
            for _ in range(n_steps):
                out = step(params, opt_state, x, y)
            jax.block_until_ready(out)
            rates[name].append(n_steps * batch / (time.perf_counter() - t0))
    med = {k: float(np.median(v)) for k, v in rates.items()}
    return {
        "model": model,
        "batch_size": batch,
        "closed_form_examples_per_s": med["closed_form"],
        "derived_examples_per_s": med["derived"],
        "speedup": med["closed_form"] / med["derived"],
        "weight_gradient_relative_difference": diff,
    }


def roofline_record(model, batch, n_sweeps, dtype, seconds, gflops, bw_curve):
    """One (model, batch) row: the shipped step's rate, its costs and its roofline."""
    eps, (flops, nbytes, mem) = measure(model, batch, n_sweeps, dtype, seconds)
    rec = {
        "model": model,
        "batch_size": batch,
        "examples_per_s": eps,
        "min_flops_per_example": flops_per_example(kh.MODELS[model], n_sweeps),
        "peak_memory_bytes": mem,
    }
    if flops is None or nbytes is None:
        return rec
    bandwidth = bandwidth_at(bw_curve, mem or nbytes)
    return rec | roofline(eps, batch, flops, nbytes, gflops * 1e9, bandwidth)


def roofline(examples_per_s, batch, flops, nbytes, flops_per_s, bytes_per_s):
    """A step of ``flops`` and ``nbytes`` on a batch takes at least
    max(flops / flops_per_s, nbytes / bytes_per_s): its roofline rate, which bound sets it,
    and the fraction of it that ``examples_per_s`` reaches."""
    t_compute, t_memory = flops / flops_per_s, nbytes / bytes_per_s
    rate = batch / max(t_compute, t_memory)
    return {
        "flops_per_example": flops / batch,
        "bytes_per_example": nbytes / batch,
        "arithmetic_intensity_flops_per_byte": flops / nbytes,
        "bandwidth_gb_s_at_working_set": bytes_per_s / 1e9,
        "compute_bound_examples_per_s": batch / t_compute,
        "memory_bound_examples_per_s": batch / t_memory,
        "roofline_examples_per_s": rate,
        "bound_by": "memory" if t_memory > t_compute else "compute",
        "fraction_of_roofline": examples_per_s / rate,
    }


def data_parallel(args, dtype):
    """``--devices``: examples/s of the shipped step per device count, side by side."""
    counts = [int(n) for n in args.devices.split(",")]
    if max(counts) > len(jax.devices()):
        raise SystemExit(
            f"throughput.py: --devices {args.devices} needs {max(counts)} devices; JAX sees "
            f"{len(jax.devices())} ({jax.default_backend()}). On a CPU set "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={max(counts)} first."
        )
    batches = [64] if args.quick else [int(b) for b in args.batches.split(",")]
    seconds = 0.5 if args.quick else args.seconds
    records = []
    for model in args.models.split(","):
        for batch in batches:
            for n in counts:
                if batch % n:
                    continue
                eps, _ = measure(model, batch, args.n_sweeps, dtype, seconds, devices=n)
                records.append(
                    {"model": model, "batch_size": batch, "devices": n, "examples_per_s": eps}
                )
                print(
                    f"{model:7s} batch {batch:4d} on {n} device(s): {eps:10.0f} examples/s",
                    flush=True,
                )
    out = {
        "quick": args.quick,
        "dtype": args.dtype,
        "n_sweeps": args.n_sweeps,
        "step": "kirchhoff.make_train_step(devices=n): the batch sharded over n devices, "
        "parameters and optimiser state replicated, state donated",
        "machine": {
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()],
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
        },
        "records": records,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "throughput_devices_quick" if args.quick else "throughput_devices"
    (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=2))
    plot_devices(out, RESULTS / f"{name}.png")
    print(f"throughput --devices: {len(records)} records in {RESULTS / name}.json")


def plot_devices(out, path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.subplots()
    for model in dict.fromkeys(r["model"] for r in out["records"]):
        for batch in dict.fromkeys(r["batch_size"] for r in out["records"]):
            rs = [r for r in out["records"] if r["model"] == model and r["batch_size"] == batch]
            if rs:
                ax.plot(
                    [r["devices"] for r in rs],
                    [r["examples_per_s"] for r in rs],
                    "o-",
                    label=f"{model}, batch {batch}",
                )
    ax.set_xlabel("devices (batch split across them)")
    ax.set_ylabel("training examples / s")
    ax.set_title(f"data-parallel centered EqProp ({out['machine']['backend']})", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batches", default="4,8,16,32,64,128,256,512")
    ap.add_argument("--models", default="drn-xs,drn-1h")
    ap.add_argument("--n-sweeps", type=int, default=4)
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--seconds", type=float, default=2.0, help="timed seconds per configuration")
    ap.add_argument(
        "--loop-batches", default="16,64,256", help="batch sizes of the whole-loop timing"
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="batches 4,64 and 0.5 s each; writes throughput_quick.* (never the full results)",
    )
    ap.add_argument(
        "--devices",
        help="comma-separated device counts: measure data-parallel training instead "
        "(writes throughput_devices.json)",
    )
    args = ap.parse_args()
    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    dtype = jnp.dtype(args.dtype)
    if args.devices:
        return data_parallel(args, dtype)
    batches = [4, 64] if args.quick else [int(b) for b in args.batches.split(",")]
    loop_batches = [64] if args.quick else [int(b) for b in args.loop_batches.split(",")]
    seconds = 0.5 if args.quick else args.seconds
    models = args.models.split(",")

    gflops = matmul_gflops(dtype, seconds=1.0 if args.quick else 3.0)
    bw_curve = bandwidth_curve(dtype, seconds=0.2 if args.quick else 1.0)
    print(
        f"roofline: matmul {gflops:.1f} GFLOP/s; streaming axpy "
        + ", ".join(f"{m} MiB {b / 1e9:.1f} GB/s" for m, b in bw_curve.items()),
        flush=True,
    )
    records = []
    for model in models:
        for batch in batches:
            rec = roofline_record(model, batch, args.n_sweeps, dtype, seconds, gflops, bw_curve)
            records.append(rec)
            frac = rec.get("fraction_of_roofline")
            print(
                f"{model:7s} batch {batch:4d}: {rec['examples_per_s']:10.0f} examples/s"
                + (
                    ""
                    if frac is None
                    else f", {100 * frac:5.1f}% of the roofline ({rec['bound_by']}-bound, "
                    f"{rec['flops_per_example'] / 1e6:.2f} MFLOP, "
                    f"{rec['bytes_per_example'] / 1e3:.0f} kB per example)"
                ),
                flush=True,
            )
    import tempfile

    loop = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            for batch in loop_batches:
                eps = measure_loop(
                    model, batch, args.n_sweeps, dtype, 3 if args.quick else 5, pathlib.Path(tmp)
                )
                step = next(
                    (r for r in records if r["model"] == model and r["batch_size"] == batch), None
                )
                loop.append(
                    {
                        "model": model,
                        "batch_size": batch,
                        "examples_per_s": eps,
                        "fraction_of_step_rate": None
                        if step is None
                        else eps / step["examples_per_s"],
                    }
                )
                print(f"{model:7s} batch {batch:4d}: whole loop {eps:10.0f} examples/s", flush=True)
    closed_forms = []
    for model in models:
        for batch in [64] if args.quick else [4, 64, 256]:
            rec = compare_closed_forms(model, batch, args.n_sweeps, dtype, 3 if args.quick else 7)
            closed_forms.append(rec)
            print(
                f"{model:7s} batch {batch:4d}: closed forms {rec['speedup']:.2f}x the autodiff-"
                f"derived step (gradients differ by {rec['weight_gradient_relative_difference']:.1e})"
            )
    target = next((r for r in records if r["model"] == "drn-1h" and r["batch_size"] == 64), None)
    target_met = (
        None
        if target is None or "fraction_of_roofline" not in target
        else bool(target["fraction_of_roofline"] >= 0.5 and target["examples_per_s"] >= 10_000)
    )
    out = {
        "quick": args.quick,
        "matmul_gflops": gflops,
        "bandwidth_gb_s": {str(m): b / 1e9 for m, b in bw_curve.items()},
        "dram_bandwidth_gb_s": bw_curve[max(bw_curve)] / 1e9,
        "dtype": args.dtype,
        "n_sweeps": args.n_sweeps,
        "algorithm": "centered EqProp, exact block coordinate descent, SGD step included",
        "step": "kirchhoff.make_train_step, state donated, as kirchhoff.train runs it",
        "costs": "FLOPs and bytes: XLA's cost analysis of the compiled step; working set: its "
        "memory analysis (arguments + outputs + temporaries)",
        "machine": {
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "jax_devices": jax.local_device_count(),
            "backend": jax.default_backend(),
        },
        "records": records,
        "loop": loop,
        "closed_forms": closed_forms,
        "target": "DRN-1H at batch 64: >= 50% of the roofline and >= 10,000 examples/s "
        "(the shipped step)",
        "target_met": target_met,
        "reference_pytorch_examples_per_s": {
            "drn-1h": 117,
            "drn-xs": 700,
            "note": "batch 4, DRN paper's code, similar 2-core machine (from the issue)",
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "throughput_quick" if args.quick else "throughput"
    (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=2))
    plot(out, RESULTS / f"{name}.png")
    print(
        f"throughput: matmul {gflops:.1f} GFLOP/s, stream {out['dram_bandwidth_gb_s']:.1f} GB/s"
        + (
            ""
            if target is None
            else f"; DRN-1H batch 64: {target['examples_per_s']:.0f} examples/s, "
            f"{100 * target.get('fraction_of_roofline', float('nan')):.0f}% of its roofline"
        )
        + f"; target {'met' if target_met else 'NOT met'}"
    )


def plot(out, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for model in dict.fromkeys(r["model"] for r in out["records"]):
        rs = [r for r in out["records"] if r["model"] == model]
        b = [r["batch_size"] for r in rs]
        (line,) = ax.loglog(b, [r["examples_per_s"] for r in rs], "o-", label=f"{model} step")
        if all("roofline_examples_per_s" in r for r in rs):
            ax.loglog(
                b,
                [r["roofline_examples_per_s"] for r in rs],
                "--",
                color=line.get_color(),
                label=f"{model} roofline",
            )
        lp = [r for r in out["loop"] if r["model"] == model]
        if lp:
            ax.loglog(
                [r["batch_size"] for r in lp],
                [r["examples_per_s"] for r in lp],
                "s",
                mfc="none",
                color=line.get_color(),
                label=f"{model} whole loop",
            )
    ax.set_xlabel("batch size"), ax.set_ylabel("training examples / s"), ax.legend(fontsize=8)
    ax.set_title(
        f"centered EqProp ({out['dtype']}; {out['matmul_gflops']:.0f} GFLOP/s, "
        f"{out['dram_bandwidth_gb_s']:.0f} GB/s DRAM)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
