"""Data-parallel training on 4 devices against 1 (run by test_parallel.py in a process of its
own, with XLA_FLAGS=--xla_force_host_platform_device_count=4: the CPU split into 4 devices),
and the command line's multi-host mode as two local processes.

Prints one JSON line; exits non-zero when a check fails.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import kirchhoff as kh


def largest(tree):
    return max(float(jnp.max(jnp.abs(a))) for a in jax.tree.leaves(tree))


def difference(a, b):
    return largest(jax.tree.map(lambda u, v: u - v, a, b))


def steps_agree(algorithm: str) -> dict:
    """Four training steps of a small DRN on one device and on four: the same parameters."""
    cfg = kh.TrainConfig(algorithm=algorithm, batch_size=8, lr=0.01, beta=0.1)
    net = kh.drn(jax.random.PRNGKey(0), (12, 6, 3), input_gain=1.0)
    params, static = eqx.partition(net, net.trainable_filter())
    optimizer = optax.sgd(cfg.lr)
    rng = np.random.default_rng(0)
    xs = rng.uniform(0, 1, (4, 8, 12)).astype(np.float32)
    ys = np.eye(3, dtype=np.float32)[rng.integers(0, 3, (4, 8))]
    final = {}
    for devices in (None, 4):
        step = kh.make_train_step(cfg, static, optimizer, devices=devices)
        p, s = params, optimizer.init(params)
        for x, y in zip(xs, ys, strict=True):
            p, s, info = step(p, s, x, y, None)
        assert bool(jnp.all(info.converged)), (algorithm, devices)
        final[devices] = (p, float(info.loss), info)
    (p1, loss1, _), (p4, loss4, info4) = final[None], final[4]
    try:  # a batch that does not split over the devices is one clear error
        step(p, s, xs[0][:6], ys[0][:6], None)
        uneven = "accepted"
    except kh.InvalidInputError as error:
        uneven = str(error)
    shardings = {leaf.sharding.spec for leaf in jax.tree.leaves(p4)}
    return {
        "difference": difference(p1, p4),
        "scale": largest(p1),
        "moved": difference(p1, params),
        "loss": [loss1, loss4],
        "devices": len(jax.tree.leaves(p4)[0].sharding.device_set),
        "replicated": shardings == {jax.sharding.PartitionSpec()},
        "outputs_shape": list(info4.outputs.shape),
        "uneven_batch": uneven,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def two_processes(tmp: str) -> tuple:
    """The command line as two hosts would run it (two processes here, one CPU device each,
    gloo between them): ``--devices 2`` over both, each writing its own run directory."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    port = free_port()
    argv = [sys.executable, "-m", "kirchhoff", "train", "--epochs", "1", "--train-limit", "96"]
    argv += ["--test-limit", "32", "--batch-size", "16", "--devices", "2", "--no-progress"]
    argv += ["--coordinator", f"localhost:{port}", "--num-processes", "2", "--out", f"{tmp}/mh"]
    procs = [
        subprocess.Popen(
            argv + ["--process-id", str(i)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(o[-2000:] for o in outputs)
    nets = [kh.load_checkpoint(f"{tmp}/{d}")[1] for d in ("mh", "mh.process-1")]
    return nets


def runs_agree() -> dict:
    """kh.train, one epoch of the offline subset, on one device and on two; and the command
    line over two processes."""
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for devices in (None, 2):
            cfg = kh.TrainConfig(
                epochs=1,
                train_limit=96,
                test_limit=32,
                batch_size=16,
                devices=devices,
                out=f"{tmp}/run-{devices}",
            )
            record = kh.train(cfg, progress=False)
            _, net, *_ = kh.load_checkpoint(cfg.out)
            result[devices] = (record["test_error_percent"], net)
        host0, host1 = two_processes(tmp)
    (e1, n1), (e2, n2) = result[None], result[2]
    return {
        "errors": [e1, e2],
        "difference": difference(n1.weights, n2.weights),
        "two_processes_difference": difference(n1.weights, host0.weights),
        "processes_identical": difference(host0.weights, host1.weights) == 0.0,
    }


report = {"devices": len(jax.devices())}
report["eqprop"] = steps_agree("eqprop")
report["backprop"] = steps_agree("backprop")
report["uneven_batch"] = report["eqprop"].pop("uneven_batch")
report["backprop"].pop("uneven_batch")
report["train"] = runs_agree()
print(json.dumps(report))
ok = report["devices"] == 4 and "does not split" in report["uneven_batch"]
for name in ("eqprop", "backprop"):
    r = report[name]
    ok &= r["devices"] == 4 and r["replicated"] and r["outputs_shape"] == [8, 3]
    # float32: the same step up to the order of the batch sums (~1e-9 here, against a step
    # that moved the parameters by ~2e-2)
    ok &= r["difference"] <= 1e-6 * r["scale"] and r["moved"] > 1e3 * r["difference"]
train = report["train"]
ok &= train["difference"] <= 1e-5 and train["errors"][0] == train["errors"][1]
ok &= train["two_processes_difference"] <= 1e-5 and train["processes_identical"]
sys.exit(0 if ok else 1)
