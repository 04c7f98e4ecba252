"""The device seam: every phase sees the conductances a device reads from its state, every
update goes back through the device, and a PRNG key reaches both."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import kirchhoff as kh


class Levels(kh.AbstractDevice):
    """Reads its state rounded to multiples of ``step`` siemens; writes half of each update."""

    step: float = 0.02

    def read(self, state, key=None):
        return jnp.round(state / self.step) * self.step

    def program(self, state, update, key=None):
        return jnp.clip(state + 0.5 * update, 0.0, None)


class NoisyRead(kh.AbstractDevice):
    """Reads its state with 5 % multiplicative noise (none without a key); ideal writes."""

    def read(self, state, key=None):
        if key is None:
            return state
        return state * (1.0 + 0.05 * jax.random.normal(key, state.shape, state.dtype))

    def program(self, state, update, key=None):
        return jnp.clip(state + update, 0.0, None)


def _net(device=None):
    return kh.drn(jax.random.PRNGKey(1), (12, 8, 3), input_gain=4.0, device=device)


def _data():
    rng = np.random.default_rng(0)
    return jnp.asarray(rng.random((6, 12))), jnp.asarray(np.eye(3)[rng.integers(0, 3, 6)])


def test_ideal_device_reads_state_and_clips_writes():
    net = _net()
    assert net.read() is net and net.read(jax.random.PRNGKey(0)) is net
    updates = jax.tree_util.tree_map(lambda a: -10.0 * jnp.ones_like(a), net)
    written = net.programmed(updates)
    assert all(float(jnp.max(w)) == 0.0 for w in written.weights)  # clipped at 0 S
    assert all(float(jnp.min(b)) == -10.0 for b in written.biases)  # biases are not devices
    capped = kh.IdealDevice(g_max=0.05).program(jnp.array([0.01, 0.2]), jnp.array([0.1, 0.0]))
    np.testing.assert_array_equal(capped, [0.05, 0.05])
    with pytest.raises(ValueError, match="g_max"):
        kh.IdealDevice(g_max=-1.0)


def test_phases_see_the_read_conductances():
    x, y = _data()
    net = _net(Levels())
    read = net.read()
    assert isinstance(read.device, kh.IdealDevice)  # read once, never twice
    direct = kh.drn(jax.random.PRNGKey(1), (12, 8, 3), input_gain=4.0)
    direct = eqx.tree_at(lambda n: n.weights, direct, read.weights)
    g_dev, loss_dev, _ = kh.layered_eqprop_gradient(net, x, y, 0.1, 8)
    g_dir, loss_dir, _ = kh.layered_eqprop_gradient(direct, x, y, 0.1, 8)
    assert float(loss_dev) == float(loss_dir)
    for a, b in zip(
        jax.tree_util.tree_leaves(g_dev), jax.tree_util.tree_leaves(g_dir), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    # rounding changed the conductances, so the device did act
    assert any(not np.array_equal(a, b) for a, b in zip(net.weights, read.weights, strict=True))
    # solvers and the SPICE export take conductances, not raw state
    with pytest.raises(ValueError, match=r"net.read\(key\)"):
        kh.BlockCoordinateDescent().solve(net, x)
    with pytest.raises(ValueError, match=r"net.read\(key\)"):
        net.to_circuit()
    assert read.to_circuit().n_free == net.n_free


def test_training_writes_through_the_device():
    x, y = _data()
    cfg = kh.TrainConfig(model="drn-xs", lr=0.1, n_sweeps=8)
    net = _net(Levels())
    params, static = eqx.partition(net, net.trainable_filter())
    optimizer = optax.sgd(cfg.lr)
    step = kh.make_train_step(cfg, static, optimizer)
    new, _, info = step(params, optimizer.init(params), x, y, jax.random.PRNGKey(0))
    grads, loss, _ = kh.layered_eqprop_gradient(net, x, y, cfg.beta, cfg.n_sweeps)
    for w, g, w_new in zip(net.weights, grads.weights, new.weights, strict=True):
        np.testing.assert_allclose(w_new, jnp.clip(w - 0.5 * cfg.lr * g, 0.0, None), rtol=1e-6)
    assert float(info.loss) == pytest.approx(float(loss))


def test_a_key_reaches_the_device():
    x, y = _data()
    net = _net(NoisyRead())
    a, _, _ = kh.layered_eqprop_gradient(net, x, y, 0.1, 8, key=jax.random.PRNGKey(3))
    b, _, _ = kh.layered_eqprop_gradient(net, x, y, 0.1, 8, key=jax.random.PRNGKey(3))
    c, _, _ = kh.layered_eqprop_gradient(net, x, y, 0.1, 8, key=jax.random.PRNGKey(4))
    quiet, _, _ = kh.layered_eqprop_gradient(net, x, y, 0.1, 8)
    ideal, _, _ = kh.layered_eqprop_gradient(_net(), x, y, 0.1, 8)
    leaves = lambda g: np.concatenate([np.ravel(v) for v in jax.tree_util.tree_leaves(g)])
    assert np.array_equal(leaves(a), leaves(b))  # same key, same noise
    assert not np.allclose(leaves(a), leaves(c))  # another key, other noise
    assert np.array_equal(leaves(quiet), leaves(ideal))  # no key: the device's quiet read
