"""Power per phase of layered networks: Tellegen's balance at equilibrium (ideal and Shockley
diodes, amplifiers, biases, nudges), each term against the general circuit element by
element, closed forms of tiny networks solved by hand, and the balance failing off
equilibrium by exactly the power of the KCL residual."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kirchhoff as kh
from kirchhoff._layered._power import (
    PhasePower,
    eqprop_phase_powers,
    nudge_current,
    phase_power,
    step_energy,
)
from kirchhoff._solver._sweeps import input_drive, run_sweeps

pytestmark = pytest.mark.skipif(
    not jax.config.jax_enable_x64, reason="the balance is checked to float64 round-off"
)

BATCH = 4


@pytest.fixture(scope="module")
def data():
    x = jax.random.uniform(jax.random.PRNGKey(1), (BATCH, 6))
    y = jax.nn.one_hot(jnp.arange(BATCH) % 3, 3)
    return x, y


def _with_biases(net, scale, seed=5):
    """``net`` with random bias currents (amperes), so that their power is exercised."""
    rng = np.random.default_rng(seed)
    biases = tuple(jnp.asarray(scale * rng.standard_normal(b.shape)) for b in net.biases)
    return eqx.tree_at(lambda n: n.biases, net, biases)


def _nets():
    key = jax.random.PRNGKey(0)
    return {
        "ideal drn": _with_biases(kh.drn(key, (6, 8, 3), input_gain=2.0), 0.05),
        "ideal drn, amplifiers": _with_biases(
            kh.drn(key, (6, 8, 5, 3), input_gain=2.0, amp_gains=(3.0, 2.0)), 0.05
        ),
        "shockley drn": _with_biases(
            kh.drn(key, (6, 8, 3), input_gain=2.0, diode="shockley"), 0.05
        ),
        # kh.seed_network's defaults: Shockley diodes to ±1 V rails, an amplifier of gain 2,
        # input gain 100 (the hidden nodes reach the rails)
        "seed": _with_biases(kh.seed_network(key, n_hidden=8, n_features=6, n_outputs=3), 0.5),
        "ideal seed": _with_biases(
            kh.seed_network(key, n_hidden=8, n_features=6, n_outputs=3, diode="ideal"), 0.5
        ),
    }


NETS = _nets()
# the seed network's output layer weighs 1/A²: its nudge is β·A², so a smaller β keeps the
# negative phase convex (see kh.seed_network)
BETA = {"seed": 0.05, "ideal seed": 0.05}
N_SWEEPS = 200


@eqx.filter_jit
def _swept(net, x, y, beta):
    """The phase nudged by β (β = 0: the free phase) after N_SWEEPS exact layered sweeps:
    [h1, …, out]. One compilation per network; the phases share it."""
    init = [x, *(jnp.zeros((x.shape[0], n), x.dtype) for n in net.sizes[1:])]
    if net.diode == "ideal":  # start inside the diodes' bounds
        init[1:-1] = [
            jnp.clip(v, lo, hi) for v, lo, hi in zip(init[1:-1], net.lower, net.upper, strict=True)
        ]
    return run_sweeps(net, init, input_drive(net, x), y, beta, N_SWEEPS)[1:]


def _equilibrium(net, x, y, beta):
    """:func:`_swept` with β traced (a Python float would be static: one compile per β)."""
    return _swept(net, x, y, jnp.asarray(beta, x.dtype))


def _rel_imbalance(p: PhasePower):
    return np.asarray(jnp.abs(p.imbalance) / p.dissipated)


@pytest.mark.parametrize("name", ["ideal drn", "ideal drn, amplifiers", "shockley drn", "seed"])
def test_tellegen_balance_at_equilibrium(data, name):
    """At an equilibrium (free, nudged by +β and by −β), delivered = dissipated per example
    to float64 round-off, and each term is where the circuit puts it."""
    x, y = data
    net, beta = NETS[name], BETA.get(name, 0.5)
    powers = {}
    for phase, b in (("free", 0.0), ("positive", beta), ("negative", -beta)):
        layers = _equilibrium(net, x, y, b)
        current = nudge_current(net, layers[-1], y, b) if b else None
        powers[phase] = p = phase_power(net, x, layers, current)
        assert p.resistors.shape == (BATCH,)
        assert np.all(p.dissipated > 0), phase
        assert np.max(_rel_imbalance(p)) < 1e-13, (phase, _rel_imbalance(p))
        # the nudges do work (β ≠ 0) or none (the free phase)
        assert np.all((p.nudge != 0) == (b != 0)), phase
    free = powers["free"]
    if net.diode == "ideal":
        assert np.all(free.diodes == 0)  # ideal diodes conduct at zero drop
    else:
        assert np.all(free.diodes > 0)
    assert np.all((free.amplifiers != 0) == (name != "ideal drn" and name != "shockley drn"))
    # the seed network's rails at ±1 V exchange power with the diodes (ideal ones too, at
    # zero drop); the DRNs' rails are ground
    assert np.all((free.rails != 0) == ("seed" in name))
    assert np.all(free.biases != 0)


def test_tellegen_balance_in_eqprop_phases(data):
    """The phases as a training step holds them (kh.layered_phases: the free state and the
    nudged phases' deviations from it, each judged SUCCESS) balance to round-off too. Here
    ideal diodes to ±1 V rails behind an amplifier: free + deviation rounds, yet the clipped
    nodes must still be found on their rails for the rails' power to be counted."""
    x, y = data
    net, beta = NETS["ideal seed"], BETA["ideal seed"]
    phases = jax.jit(kh.layered_phases, static_argnums=4)(net, x, y, beta, 60)
    assert np.all(phases.converged())
    powers = eqprop_phase_powers(net, x, y, beta, phases.free[1:], phases.positive, phases.negative)
    assert set(powers) == {"free", "positive", "negative"}
    for phase, p in powers.items():
        assert np.max(_rel_imbalance(p)) < 1e-13, (phase, _rel_imbalance(p))
        assert np.all(p.rails != 0), phase
    # the nudge's physical current is −(β/w)·(o − y) at the outputs, w = 1/A² = 1/4 here
    layers = [v + d for v, d in zip(phases.free[1:], phases.negative, strict=True)]
    want = jnp.sum(beta * 4.0 * (layers[-1] - y) * layers[-1], axis=-1)
    np.testing.assert_allclose(powers["negative"].nudge, want, rtol=1e-12)
    # a deviation that ends a node on its rail leaves it an ulp or so off, (v + δ) rounding:
    # emulate that on the free state and the clipped nodes must still count as on the rail
    offset = jnp.asarray(np.random.default_rng(6).uniform(0.05, 0.3, phases.free[1].shape))
    h = phases.free[1]
    rounded = [(h + offset) - offset, phases.free[2]]
    clipped = np.abs(h) == 1.0
    assert np.any(clipped & (rounded[0] != h))
    p = phase_power(net, x, rounded)
    assert np.max(_rel_imbalance(p)) < 1e-13


@eqx.filter_jit
def _circuit_budget(circ, cx, free):
    """Every term of the power budget of the general circuit ``circ`` at the free potentials
    ``free`` (batched), element by element: resistors and diodes i·u, current sources I·v,
    each held node v × the current it sends into the circuit (inputs, rails), each amplifier
    (v_drive − v_source/A) × the current its output sends on."""
    v = jax.vmap(circ.potentials)(free, cx)
    # current leaving each node through its dissipative elements, less what sources inject
    net_current = jax.vmap(circ.net_current)(v)
    zero = jnp.zeros(v.shape[0])
    out = dict.fromkeys(("resistors", "diodes", "biases", "amplifiers"), zero)
    for e, t in zip(circ.elements, circ.terminals, strict=True):
        if isinstance(e, kh.Resistor | kh.ShockleyDiode):
            u = v[:, t[0]] - v[:, t[1]]
            key = "resistors" if isinstance(e, kh.Resistor) else "diodes"
            out[key] = out[key] + jnp.sum(e.current(u) * u, axis=-1)
        elif isinstance(e, kh.CurrentSource):
            out["biases"] = out["biases"] + jnp.sum(e.injected_current() * v[:, t[0]], axis=-1)
        elif isinstance(e, kh.Amplifier):
            vcvs_minus_cccs = v[:, t[1]] - v[:, t[0]] / jnp.asarray(e.gain)
            out["amplifiers"] = out["amplifiers"] + jnp.sum(
                vcvs_minus_cccs * net_current[:, t[1]], axis=-1
            )
    names = circ.node_names
    for term, nodes in (
        ("sources", [names.index(n) for n in circ.input_names]),
        ("rails", [i for i, n in enumerate(names) if str(n).startswith("rail")]),
    ):
        out[term] = jnp.sum(v[:, nodes] * net_current[:, nodes], axis=-1) if nodes else zero
    return out


def test_terms_match_the_general_circuit(data):
    """Each term of phase_power equals the same power summed element by element over
    net.to_circuit() (the general Circuit's resistors, diodes, current sources, voltage
    sources and amplifiers), at arbitrary potentials: the layered bookkeeping (drive gains,
    ±γx, rails) is the circuit's. The seed network has every term: Shockley diodes to ±1 V
    rails, an amplifier, biases."""
    x, _ = data
    net = NETS["seed"]
    rng = np.random.default_rng(2)
    layers = net.split(jnp.asarray(rng.uniform(-1.2, 1.2, (BATCH, net.n_free))))
    p = phase_power(net, x, layers)
    ref = _circuit_budget(net.to_circuit(), net.circuit_inputs(x), net.join(layers))
    for term in ("resistors", "diodes", "sources", "rails", "biases", "amplifiers"):
        np.testing.assert_allclose(getattr(p, term), ref[term], rtol=1e-12, err_msg=term)
        assert np.all(np.abs(ref[term]) > 0), term


def _one_hidden_node(g1, g2, g3, gain, amp):
    """features 1 → one hidden node (no diodes) → one output: ±γx through g1 and g2 into the
    hidden node, which drives the output through g3 (via an amplifier of gain ``amp``)."""
    w0 = jnp.array([[g1], [g2]])
    w1 = jnp.array([[g3]])
    return kh.LayeredNetwork(
        [w0, w1],
        [jnp.zeros(1), jnp.zeros(1)],
        [jnp.array([-jnp.inf])],
        [jnp.array([jnp.inf])],
        input_gain=gain,
        amp_gains=(amp,),
    )


def test_closed_form_series_resistors():
    """Free phase: the output draws no current, so the sources +V and −V (V = γx) drive the
    series pair g1, g2: the hidden node sits at V(g1 − g2)/(g1 + g2) and both the power
    delivered and dissipated are (2V)²·g_eff, g_eff = g1·g2/(g1 + g2)."""
    g1, g2, g3, gain, amp = 0.3, 0.7, 0.4, 2.5, 3.0
    net = _one_hidden_node(g1, g2, g3, gain, amp)
    x = jnp.array([[0.8], [-0.3]])
    volts = gain * x[:, :1]
    h = volts * (g1 - g2) / (g1 + g2)
    layers = [h, amp * h]  # the output follows the amplifier: no current through g3
    # the hand-solved state is the sweeps' equilibrium
    swept = _equilibrium(net, x, jnp.zeros((2, 1)), 0.0)
    np.testing.assert_allclose(swept[0], h, rtol=1e-9)
    np.testing.assert_allclose(swept[1], amp * h, rtol=1e-9)
    p = phase_power(net, x, layers)
    closed = (2 * volts[:, 0]) ** 2 * g1 * g2 / (g1 + g2)
    np.testing.assert_allclose(p.resistors, closed, rtol=1e-14)
    np.testing.assert_allclose(p.sources, closed, rtol=1e-14)
    np.testing.assert_allclose(p.amplifiers, 0.0, atol=1e-15)


def test_closed_form_amplifier_and_nudge():
    """Nudged toward 0 V, the nudge is a conductance β·A² from the output to ground (its
    physical current −(β/w)·(o − 0), w = 1/A²); in series with g3 it loads the amplifier's
    output with G = g3·βA²/(g3 + βA²). The VCVS delivers (A·h)²·G to that load while the CCCS
    draws the current / A from the hidden node, a load of G at h: the amplifier delivers the
    difference (A² − 1)·G·h², and the hidden node sits at V(g1 − g2)/(g1 + g2 + G)."""
    g1, g2, g3, gain, amp, beta = 0.3, 0.7, 0.4, 2.5, 3.0, 0.02
    net = _one_hidden_node(g1, g2, g3, gain, amp)
    x = jnp.array([[0.8], [-0.3]])
    y = jnp.zeros((2, 1))
    volts = gain * x[:, 0]
    nudge_g = beta * amp**2
    load = g3 * nudge_g / (g3 + nudge_g)
    h = volts * (g1 - g2) / (g1 + g2 + load)
    o = amp * h * g3 / (g3 + nudge_g)
    layers = [h[:, None], o[:, None]]
    swept = _equilibrium(net, x, y, beta)
    np.testing.assert_allclose(swept[0], layers[0], rtol=1e-9)
    np.testing.assert_allclose(swept[1], layers[1], rtol=1e-9)
    p = phase_power(net, x, layers, nudge_current(net, layers[1], y, beta))
    np.testing.assert_allclose(p.amplifiers, (amp**2 - 1) * load * h**2, rtol=1e-13)
    np.testing.assert_allclose(p.nudge, -nudge_g * o**2, rtol=1e-13)
    resistors = g1 * (volts - h) ** 2 + g2 * (volts + h) ** 2 + g3 * (amp * h - o) ** 2
    np.testing.assert_allclose(p.resistors, resistors, rtol=1e-13)
    np.testing.assert_allclose(p.delivered, p.dissipated, rtol=1e-13)


@pytest.mark.parametrize("name", ["shockley drn", "seed", "ideal drn, amplifiers"])
def test_balance_fails_off_equilibrium(data, name):
    """Perturbed potentials break Kirchhoff's law, and the balance with it: for smooth diodes
    the imbalance is exactly −Σ v·(net current leaving each free node), the KCL residual
    ∇(E + β·C)/w in amperes (w the layer's energy weight); for ideal diodes it is off too."""
    x, y = data
    net, beta = NETS[name], BETA.get(name, 0.5)
    layers = _equilibrium(net, x, y, beta)
    p = phase_power(net, x, layers, nudge_current(net, layers[-1], y, beta))
    assert np.max(_rel_imbalance(p)) < 1e-13  # (the same state, unperturbed)
    rng = np.random.default_rng(4)
    free = net.join(layers)
    free = free * (1 + 1e-3 * rng.standard_normal(free.shape)) + 1e-3 * rng.standard_normal(
        free.shape
    )
    layers = net.split(free)
    p = phase_power(net, x, layers, nudge_current(net, layers[-1], y, beta))
    assert np.min(_rel_imbalance(p)) > 1e-7
    if net.diode == "shockley":
        residual = _kcl_residual(net, free, x, y, beta)
        np.testing.assert_allclose(p.imbalance, -jnp.sum(free * residual, axis=-1), rtol=1e-9)


@eqx.filter_jit
def _kcl_residual(net, free, x, y, beta):
    """Net current leaving each free node (amperes): ∇(E + β·C) / the layer's energy weight."""

    def nudged_energy(v, xi, yi):
        return net.energy(v, xi) + beta * kh.squared_error(net.output_potentials(v, xi), yi)

    return jax.vmap(jax.grad(nudged_energy))(free, x, y) / net.node_weight_free()


def test_step_energy_sums_phases_and_examples(data):
    x, y = data
    net, beta = NETS["ideal drn"], 0.5
    free = _equilibrium(net, x, y, 0.0)
    nudged = _equilibrium(net, x, y, beta)
    deviation = [v - v0 for v, v0 in zip(nudged, free, strict=True)]
    powers = eqprop_phase_powers(net, x, y, beta, free, positive=deviation)
    assert set(powers) == {"free", "positive"}
    t = 1e-6
    want = t * (jnp.sum(powers["free"].dissipated) + jnp.sum(powers["positive"].dissipated))
    np.testing.assert_allclose(step_energy(powers, t), want, rtol=1e-14)
    np.testing.assert_allclose(step_energy(list(powers.values()), t), want, rtol=1e-14)
    np.testing.assert_allclose(powers["free"].energy(t), t * powers["free"].dissipated)
    per_phase = {"free": 2e-6, "positive": 1e-6}
    want2 = 2e-6 * jnp.sum(powers["free"].dissipated) + 1e-6 * jnp.sum(
        powers["positive"].dissipated
    )
    np.testing.assert_allclose(step_energy(powers, per_phase), want2, rtol=1e-14)
    means = powers["free"].means()
    assert set(means) == {
        "resistors",
        "diodes",
        "sources",
        "rails",
        "biases",
        "amplifiers",
        "nudge",
        "dissipated",
        "delivered",
    }
    np.testing.assert_allclose(means["resistors"], jnp.mean(powers["free"].resistors))


def test_bad_arguments(data):
    x, y = data
    net = NETS["ideal drn"]
    layers = _equilibrium(net, x, y, 0.0)
    powers = {"free": phase_power(net, x, layers)}
    with pytest.raises(ValueError, match="no duration"):
        step_energy(powers, {"positive": 1e-6})
    with pytest.raises(ValueError, match="≥ 0"):
        step_energy(powers, -1.0)
    with pytest.raises(ValueError, match="empty"):
        step_energy({}, 1e-6)
    with pytest.raises(ValueError, match="pass layers"):
        phase_power(net, x, [x, *layers])
    with pytest.raises(ValueError, match="nudge_current"):
        phase_power(net, x, layers, jnp.zeros((BATCH, 2)))
    with pytest.raises(TypeError, match="LayeredNetwork"):
        phase_power("net", x, layers)
    with pytest.raises(ValueError, match="holds 1 layer"):
        eqprop_phase_powers(net, x, y, 0.5, layers, positive=layers[:1])
