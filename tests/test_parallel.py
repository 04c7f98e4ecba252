"""Data-parallel training: the batch sharded over devices, the network replicated.

The 4-device comparison runs in a process of its own (``data_parallel_check.py``, started
after collection beside the other tests: conftest's background jobs), where XLA splits the CPU
into 4 devices; this process has one.
"""

import json

import jax
import numpy as np
import pytest

import kirchhoff as kh
from kirchhoff.__main__ import main


@pytest.mark.background("data_parallel")
def test_training_on_four_devices_matches_one_device(background_job):
    """EqProp and the backprop baseline: four steps of a DRN with the batch split over 4
    devices give the parameters of one device within float32 round-off, replicated on all
    four; a kh.train run on 2 devices checkpoints and matches its 1-device twin, and so does
    the command line run as two processes joined by jax.distributed (one device each)."""
    returncode, output = background_job.wait(timeout=900)
    lines = [line for line in output.splitlines() if line.startswith("{")]
    assert lines, output[-4000:]
    report = json.loads(lines[-1])
    assert report["devices"] == 4
    for name in ("eqprop", "backprop"):
        r = report[name]
        assert r["devices"] == 4 and r["replicated"], r
        assert r["difference"] <= 1e-6 * r["scale"], r
        assert r["moved"] > 1e3 * r["difference"], r  # the steps did change the parameters
    assert report["train"]["difference"] <= 1e-5, report["train"]
    # two processes (jax.distributed, gloo) as two hosts would run the command line
    assert report["train"]["two_processes_difference"] <= 1e-5, report["train"]
    assert report["train"]["processes_identical"], report["train"]
    assert report["uneven_batch"].startswith("make_train_step: a batch of 6 does not split")
    assert returncode == 0, output[-4000:]


def test_devices_must_split_the_batch():
    with pytest.raises(kh.InvalidInputError, match="batch_size=16 does not split over"):
        kh.TrainConfig(batch_size=16, devices=3)
    with pytest.raises(kh.InvalidInputError, match="devices"):
        kh.TrainConfig(devices=0)
    assert kh.TrainConfig(batch_size=16, devices=4).devices == 4


def test_more_devices_than_jax_sees_is_one_clear_error():
    import equinox as eqx
    import optax

    net = kh.drn(jax.random.PRNGKey(0), (4, 3, 2))
    params, static = eqx.partition(net, net.trainable_filter())
    n = len(jax.devices()) + 1
    with pytest.raises(kh.InvalidInputError, match=f"devices={n}: this JAX sees"):
        kh.make_train_step(kh.TrainConfig(), static, optax.sgd(0.1), devices=n)


def test_one_device_mesh_steps_like_the_plain_step():
    """devices=1 goes through the sharded path on this process's one device."""
    import equinox as eqx
    import optax

    cfg = kh.TrainConfig(batch_size=4, beta=0.1)
    net = kh.drn(jax.random.PRNGKey(1), (6, 4, 2), input_gain=1.0)
    params, static = eqx.partition(net, net.trainable_filter())
    optimizer = optax.sgd(0.01)
    x = np.random.default_rng(0).uniform(0, 1, (4, 6)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[[0, 1, 1, 0]]
    plain = kh.make_train_step(cfg, static, optimizer)(params, optimizer.init(params), x, y)
    mesh = kh.make_train_step(cfg, static, optimizer, devices=1)(
        params, optimizer.init(params), x, y
    )
    for a, b in zip(jax.tree.leaves(plain[0]), jax.tree.leaves(mesh[0]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_cli_devices_flag_is_checked(capsys):
    assert main(["train", "--devices", "3", "--batch-size", "16", "--out", "unused"]) == 2
    assert "does not split over devices=3" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags", [["--process-id", "1"], ["--coordinator", "localhost:1"], ["--num-processes", "2"]]
)
def test_cli_multi_host_flags_go_together(capsys, flags):
    """One of the three jax.distributed flags without the others is one line, not a run."""
    assert main(["train", *flags, "--out", "unused"]) == 2
    assert "go together" in capsys.readouterr().err
