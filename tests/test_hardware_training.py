"""Devices, power and the other learning rules inside training: what the training step, the
configuration, the command line and the run directory do with them."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import kirchhoff as kh
from kirchhoff.__main__ import main as cli
from kirchhoff._learning._layered import layered_eqprop_gradient

SMALL = dict(model="drn:784-8-10", dataset="mnist_subset", train_limit=64, test_limit=64, beta=0.1)


def _batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    dtype = jnp.result_type(float)  # the networks' dtype (float64 in the x64 pass)
    x = jnp.asarray(rng.random((n, 12)), dtype)
    y = jnp.asarray(np.eye(3)[rng.integers(0, 3, n)], dtype)
    return x, y


def _net(device):
    return kh.drn(jax.random.PRNGKey(0), (12, 8, 3), input_gain=4.0, device=device)


def test_read_noise_is_drawn_afresh_in_every_phase():
    """With read noise each phase solves with its own read: the nudged phases' deviations
    then carry the difference of two reads, which a zero nudge exposes (it would be exactly
    zero with one read), and the same key reproduces them bit for bit."""
    x, y = _batch()
    noisy = _net(kh.PulsedDevice(1.0, read_noise=0.05))
    key = jax.random.PRNGKey(3)
    _, _, ph = layered_eqprop_gradient(noisy, x, y, 1e-12, 8, key=key)
    assert float(jnp.max(jnp.abs(ph.positive[-1]))) > 1e-4  # reads differ, not the nudge
    _, _, again = layered_eqprop_gradient(noisy, x, y, 1e-12, 8, key=key)
    np.testing.assert_array_equal(ph.positive[-1], again.positive[-1])
    # one read shared by every phase: the deviation is the nudge's alone
    _, _, shared = layered_eqprop_gradient(noisy.read(key), x, y, 1e-12, 8)
    assert float(jnp.max(jnp.abs(shared.positive[-1]))) < 1e-9
    # without noise the read-afresh path is the plain one
    quiet = _net(kh.PulsedDevice(1.0))
    g1, _, _ = layered_eqprop_gradient(quiet, x, y, 0.5, 8, key=key)
    g2, _, _ = layered_eqprop_gradient(quiet.read(), x, y, 0.5, 8)
    for a, b in zip(g1.weights, g2.weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_step_with_device_variation_donates_and_reproduces():
    """A network whose devices drew per-device parameters (variation, stuck cells) trains
    through the compiled step, donated or not, to the same state; stuck devices never move."""
    device = kh.PulsedDevice(
        1.0,
        0.05,
        kh.LinearResponse(32),
        write_noise=0.3,
        read_noise=0.01,
        d2d_step=0.2,
        d2d_bounds=0.1,
        stuck_fraction=0.2,
        stochastic_rounding=True,
        seed=4,
    )
    cfg = kh.TrainConfig(model="drn:12-8-3", dataset="mnist_subset", lr=0.2)
    x, y = _batch()
    out = []
    for donate in (False, True):
        net = _net(device)
        params, static = eqx.partition(net, net.trainable_filter())
        opt = optax.sgd(cfg.lr)
        state = opt.init(params)
        step = kh.make_train_step(cfg, static, opt, donate=donate)
        for i in range(5):
            params, state, info = step(params, state, x, y, jax.random.PRNGKey(i))
        out.append(eqx.combine(params, static))
    first, second = out
    for a, b in zip(first.weights, second.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    start = _net(device)
    for w0, w, cells in zip(start.weights, first.weights, start.cells, strict=True):
        stuck = np.asarray(cells.stuck) > 0
        assert stuck.any() and (~stuck).any()
        np.testing.assert_array_equal(np.asarray(w)[stuck], np.asarray(w0)[stuck])
        assert np.any(np.asarray(w)[~stuck] != np.asarray(w0)[~stuck])
        assert np.all(np.asarray(w) >= np.asarray(cells.g_lo) - 1e-7)
        assert np.all(np.asarray(w) <= np.asarray(cells.g_hi) + 1e-7)


def test_config_builds_one_device_per_layer_and_refuses_contradictions():
    cfg = kh.TrainConfig(model="drn-xs", device="taox-hfox", device_range=2.0, write_noise=0.0)
    devices = kh.build_model(cfg).devices
    assert [d.g_max for d in devices] == pytest.approx([2.0 / 1568**0.5, 2.0 / 100**0.5])
    assert all(d.g_min == pytest.approx(d.g_max / 10) for d in devices)
    assert all(d.write_noise == 0.0 and d.name == "taox-hfox" for d in devices)
    fixed = kh.build_model(kh.TrainConfig(device="pulsed", max_conductance=0.3)).devices
    assert [d.g_max for d in fixed] == [0.3, 0.3]
    with pytest.raises(kh.InvalidInputError, match="ideal device has no read_noise"):
        kh.TrainConfig(read_noise=0.01)
    with pytest.raises(kh.InvalidInputError, match="has its own"):
        kh.TrainConfig(device="epiram", device_levels=16)
    with pytest.raises(kh.InvalidInputError, match="device"):
        kh.TrainConfig(device="memristor")
    with pytest.raises(kh.InvalidInputError, match="stuck_fraction"):
        kh.TrainConfig(device="pulsed", stuck_fraction=1.5)
    with pytest.raises(kh.InvalidInputError, match="eta"):
        kh.TrainConfig(algorithm="coupled", eta=1.5)


def _final(out):
    return json.loads((out / "result.json").read_text())["final"]


def test_training_logs_power_and_energy_per_phase(tmp_path):
    """With a phase duration, each phase's mean power and the energy per step are recorded,
    and the energy is Σ phases (mean power × batch) × duration."""
    cfg = kh.TrainConfig(**SMALL, epochs=1, out=str(tmp_path / "a"), phase_duration=2e-6)
    kh.train(cfg, progress=False)
    final = _final(tmp_path / "a")
    watts = final["power_watts"]
    assert set(watts) == {"free", "positive", "negative"}
    assert all(w > 0 for w in watts.values())
    expected = sum(watts.values()) * cfg.batch_size * 2e-6
    assert final["energy_per_step_joules"] == pytest.approx(expected, rel=1e-6)
    # off by default
    kh.train(kh.TrainConfig(**SMALL, epochs=1, out=str(tmp_path / "b")), progress=False)
    assert "power_watts" not in _final(tmp_path / "b")


@pytest.mark.parametrize("algorithm", ["coupled"])  # contrastive: test_learning_rules.py
def test_clamped_rules_train_and_report_their_phases(tmp_path, algorithm):
    cfg = kh.TrainConfig(
        **SMALL,
        algorithm=algorithm,
        lr=0.01,
        epochs=1,
        out=str(tmp_path / algorithm),
        device="pulsed",
        stochastic_rounding=True,
        phase_duration=1e-6,
    )
    result = kh.train(cfg, progress=False)
    final = result["final"]
    assert set(final["phases"]) == {"free", "clamped"}
    assert final["phases"]["clamped"]["converged_fraction"] == 1.0
    assert set(final["power_watts"]) == {"free", "clamped"}
    start = kh.build_model(cfg)
    moved = [
        np.max(np.abs(a - b)) for a, b in zip(result["network"].weights, start.weights, strict=True)
    ]
    assert max(moved) > 0


def test_cli_trains_through_a_preset_and_refuses_bad_device_flags(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "drn:784-8-10", "--beta", "0.1", "--train-limit", "32"]
    args += ["--epochs", "1", "--no-progress"]
    code = cli([*args, "--device", "reram-es", "--read-noise", "0.001", "--out", str(out)])
    assert code == 0
    config = json.loads((out / "result.json").read_text())["config"]
    assert config["device"] == "reram-es" and config["read_noise"] == 0.001
    capsys.readouterr()
    assert cli([*args, "--write-noise", "0.1", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "ideal device has no write_noise" in err
