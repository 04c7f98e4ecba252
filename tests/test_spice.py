"""SPICE round trip: kirchhoff's equilibria match ngspice's operating points, and netlists
survive import → export → import."""

import os

import equinox as eqx
import jax
import numpy as np
import pytest
from conftest import require_ngspice

import kirchhoff as kh
from kirchhoff._spice._common import celsius_for, thermal_voltage
from kirchhoff._spice._lex import parse_value

MICROVOLT = 1e-6

# node names SPICE cannot take as they are: spaces, a tuple, an int, clashes after lower-casing
_FREE_NAMES = ["a", "Node B", ("h", 1), 7, "out-1", "OUT_1", "0", "gnd node"]


def _random_parts(seed: int, n_free: int = 8, n_inputs: int = 2) -> dict:
    """One random connected graph of resistors (0.3–3 mS), Shockley diodes (I_s 1e-13–1e-10 A,
    n 1–2, V_T at 0–60 °C), current sources, a 0.8 V rail, inputs and a ground."""
    rng = np.random.default_rng(seed)
    free = _FREE_NAMES[:n_free]
    held = ["gnd", "vdd", *(f"in{k}" for k in range(n_inputs))]
    anodes, cathodes, attached = [], [], list(held)
    for k in rng.permutation(len(free)):  # a spanning tree: nothing floats
        anodes.append(free[k])
        cathodes.append(attached[rng.integers(len(attached))])
        attached.append(free[k])
    for h in held:
        if h not in cathodes:
            anodes.append(free[rng.integers(len(free))])
            cathodes.append(h)
    everything = held + free
    while len(anodes) < len(free) + 8:
        a, c = free[rng.integers(len(free))], everything[rng.integers(len(everything))]
        if a != c:
            anodes.append(a)
            cathodes.append(c)
    d_a, d_c = [], []
    while len(d_a) < 5:
        a, c = free[rng.integers(len(free))], everything[rng.integers(len(everything))]
        if a != c:
            if rng.random() < 0.5:
                a, c = c, a
            d_a.append(a)
            d_c.append(c)
    return {
        "resistor": (anodes, cathodes, 10 ** rng.uniform(-3.5, -2.5, len(anodes))),
        "ground": ["gnd"],
        "rail": (["vdd"], [0.8]),
        "input": [f"in{k}" for k in range(n_inputs)],
        "diode": (
            d_a,
            d_c,
            10 ** rng.uniform(-13, -10, 5),
            rng.uniform(1.0, 2.0, 5),
            thermal_voltage(0.0) + rng.uniform(0.0, 0.005, 5),
        ),
        "current": (
            [free[k] for k in rng.choice(len(free), 2, replace=False)],
            rng.uniform(-1e-4, 1e-4, 2),
        ),
        "outputs": [free[k] for k in rng.choice(len(free), 2, replace=False)],
    }


def _random_circuit(seeds=(0,), **kwargs) -> kh.Circuit:
    """The random circuits of several seeds side by side in one Circuit (one element group per
    kind, so one compilation covers them all); with several seeds a node is named (seed, name)."""
    parts = [_random_parts(s, **kwargs) for s in seeds]
    tag = (lambda s, n: (s, n)) if len(seeds) > 1 else (lambda s, n: n)

    def cat(key, i):
        return [tag(s, n) for s, p in zip(seeds, parts, strict=True) for n in p[key][i]]

    def vals(key, i):
        return np.concatenate([p[key][i] for p in parts])

    elements = [
        kh.Resistor(cat("resistor", 0), cat("resistor", 1), vals("resistor", 2)),
        kh.Ground([tag(s, "gnd") for s in seeds]),
        kh.VoltageSource(cat("rail", 0), vals("rail", 1)),
        kh.Input([tag(s, n) for s, p in zip(seeds, parts, strict=True) for n in p["input"]]),
        kh.ShockleyDiode(
            cat("diode", 0), cat("diode", 1), vals("diode", 2), vals("diode", 3), vals("diode", 4)
        ),
        kh.CurrentSource(cat("current", 0), vals("current", 1)),
    ]
    outputs = [tag(s, n) for s, p in zip(seeds, parts, strict=True) for n in p["outputs"]]
    return kh.Circuit(elements, outputs=outputs)


def _layered_amplifier_network() -> kh.Circuit:
    """4 inputs → 3 hidden nodes with a diode pair each → amplifiers (gain 5) → 2 outputs."""
    rng = np.random.default_rng(7)
    ins = [f"in{k}" for k in range(4)]
    hidden = [f"h{j}" for j in range(3)]
    driven = [f"a{j}" for j in range(3)]
    outs = ["o0", "o1"]
    resistors = (
        [*np.repeat(ins, 3), *np.repeat(driven, 2), *outs],
        [*np.tile(hidden, 4), *np.tile(outs, 3), "gnd", "gnd"],
        [*rng.uniform(1e-4, 1e-3, 12), *rng.uniform(1e-4, 1e-3, 6), 1e-3, 1e-3],
    )
    return kh.Circuit(
        [
            kh.Ground("gnd"),
            kh.Input(ins),
            kh.Resistor(*resistors),
            kh.ShockleyDiode([*hidden, *["gnd"] * 3], [*["gnd"] * 3, *hidden], 1e-12),
            kh.Amplifier(hidden, driven, 5.0),
            kh.CurrentSource("o0", 2e-5),
        ],
        outputs=outs,
    )


def _kirchhoff_potentials(circuit, inputs, solver=None):
    solver = kh.DampedNewton() if solver is None else solver
    eq = solver.solve(circuit, inputs)
    assert np.all(np.asarray(eq.converged))
    if np.ndim(inputs) == 2:
        return np.asarray(jax.vmap(circuit.potentials)(eq.free, inputs))
    return np.asarray(circuit.potentials(eq.free, inputs))


# ---- kirchhoff vs ngspice ----------------------------------------------------------------
SEEDS = (0, 1, 2, 3, 4)


@pytest.mark.spice
def test_random_circuits_match_ngspice():
    require_ngspice()
    circuit = _random_circuit(SEEDS)  # five random graphs, each with its own ground and inputs
    inputs = np.random.default_rng(100).uniform(-1.0, 1.0, (3, circuit.n_inputs))
    expected = _kirchhoff_potentials(circuit, inputs)
    one = kh.ngspice_potentials(circuit, inputs[0])
    batch = kh.ngspice_potentials(circuit, inputs)  # one process, a DC sweep over the batch
    assert one.shape == (circuit.n_nodes,) and batch.shape == (3, circuit.n_nodes)
    seed_of = np.array([n[0] for n in circuit.node_names])
    for seed in SEEDS:
        nodes = seed_of == seed
        np.testing.assert_allclose(
            one[nodes], expected[0, nodes], rtol=0, atol=MICROVOLT, err_msg=f"seed {seed}"
        )
        np.testing.assert_allclose(
            batch[:, nodes], expected[:, nodes], rtol=0, atol=MICROVOLT, err_msg=f"seed {seed}"
        )


@pytest.mark.spice
def test_layered_amplifier_network_matches_ngspice():
    require_ngspice()
    circuit = _layered_amplifier_network()
    inputs = np.random.default_rng(3).uniform(-2.0, 2.0, (4, circuit.n_inputs))
    expected = _kirchhoff_potentials(circuit, inputs)
    got = kh.ngspice_potentials(circuit, inputs)
    np.testing.assert_allclose(got, expected, rtol=0, atol=MICROVOLT)
    # the amplifiers do amplify: the drive nodes sit at 5× their sources
    v = dict(zip(circuit.node_names, got[0], strict=True))
    assert v["a1"] == pytest.approx(5 * v["h1"], abs=MICROVOLT)


def test_diode_temperatures_in_the_netlist():
    shared = kh.to_netlist(_layered_amplifier_network())  # one V_T: global temp = tnom
    assert ".options temp=26.85010" in shared and "tnom=26.85010" in shared and "TNOM" not in shared
    mixed = kh.to_netlist(_random_circuit())  # diodes at several V_T: per-instance temp
    assert "temp=" in mixed.split(".model")[0] and "TNOM=" in mixed and "tnom=" not in mixed


@pytest.mark.spice
def test_ideal_diodes_become_steep_diodes():
    require_ngspice()
    # n is clamped to ≤ 0 and m to ≥ 0 by ideal diodes to ground: v = min/max(x/2, 0)
    circuit = kh.Circuit(
        [
            kh.Ground("gnd"),
            kh.Input("in"),
            kh.Resistor(["in", "n", "in", "m"], ["n", "gnd", "m", "gnd"], 1e-3),
            kh.IdealDiode(["n", "gnd"], ["gnd", "m"]),
        ]
    )
    x = np.array([[1.0], [-1.0], [0.5]])
    got = kh.ngspice_potentials(circuit, x)
    expected = np.stack(
        [0 * x[:, 0], x[:, 0], np.minimum(x[:, 0] / 2, 0), np.maximum(x[:, 0] / 2, 0)], 1
    )
    # the steep model drops about half a millivolt at a milliampere
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-3)
    assert eqx.tree_equal(kh.from_netlist(kh.to_netlist(circuit)), circuit)


def test_thermal_voltage_maps_to_a_temperature_exactly():
    for vt in (0.025852, 0.0258519910, 0.03, 0.02):
        assert thermal_voltage(celsius_for(vt)) == vt
    assert celsius_for(thermal_voltage(27.0)) == 27.0


# ---- round trips -------------------------------------------------------------------------
NETLIST = """Amplified divider with diodes
* every feature the importer reads
.options TEMP=30 tnom=30 reltol=1e-6
Vin1 IN1 0 DC 1.5 ; first input
VIN2 0 in2 0.7 AC 1
vb bias 0 -0.3
R1 in1 mid 10k
R2 in2 MID 4.7K
R3 mid bias
+ 22kOhm
D1 mid 0 dfast
d2 0 mid dfast 2
I1 0 mid 5u
I2 bias mid 1.5m
E1 mid_x 0 mid 0 4
Vsense mid_x drive 0
F1 mid 0 vsense 0.25
R4 drive out 2.2meg $ load
R5 out gnd 1meg
Rtrim out bias r=50k m=2
.model dfast D(IS=1e-12 N=1.5 CJO=1p)
.op
.control
op
print all
.endc
.end
R9 this is past .end and ignored
"""


def test_import_reads_the_netlist():
    circuit = kh.from_netlist(NETLIST, inputs=["VIN2", "vin1"], outputs=["OUT"])
    assert circuit.input_names == ("in2", "in1")
    assert circuit.output_names == ("out",)
    assert circuit.node_names == ("in1", "in2", "bias", "mid", "0", "drive", "out")
    np.testing.assert_array_equal(kh.netlist_inputs(NETLIST, ["vin2", "vin1"]), [-0.7, 1.5])
    kinds = [type(e).__name__ for e in circuit.elements]
    assert kinds == [
        "VoltageSource", "Input", "VoltageSource", "Resistor", "ShockleyDiode",
        "CurrentSource", "Amplifier", "Resistor",
    ]  # fmt: skip
    r1 = circuit.elements[3]
    np.testing.assert_array_equal(r1.conductance, [1 / 10e3, 1 / 4.7e3, 1 / 22e3])
    d = circuit.elements[4]
    np.testing.assert_array_equal(d.saturation_current, [1e-12, 2e-12])  # area 2
    np.testing.assert_array_equal(d.ideality, [1.5, 1.5])
    np.testing.assert_array_equal(d.thermal_voltage, [thermal_voltage(30.0)] * 2)
    i = circuit.elements[5]
    assert i.node == ("mid", "mid", "bias")  # I2 between two nodes: into mid, out of bias
    np.testing.assert_array_equal(i.current, [5e-6, 1.5e-3, -1.5e-3])
    assert circuit.elements[6].gain == (4.0,)
    np.testing.assert_array_equal(circuit.elements[7].conductance, [1 / 2.2e6, 1 / 1e6, 2 / 50e3])


def test_import_export_import_is_the_identity():
    once = kh.from_netlist(NETLIST, inputs=["vin2", "vin1"], outputs=["out"])
    netlist = kh.to_netlist(once)
    twice = kh.from_netlist(netlist)  # inputs and outputs travel in the annotations
    assert eqx.tree_equal(once, twice)
    assert twice.node_names == once.node_names
    assert kh.to_netlist(twice) == netlist
    # naming the inputs again gives the same circuit
    assert eqx.tree_equal(kh.from_netlist(netlist, inputs=["vin0", "vin1"], outputs=["out"]), once)


def test_import_of_a_plain_netlist_in_card_order():
    circuit = kh.from_netlist(NETLIST, inputs=["vin1", "vin2"])
    assert circuit.input_names == ("in1", "in2")
    assert circuit.output_names == ()
    again = kh.from_netlist(kh.to_netlist(circuit))
    assert eqx.tree_equal(circuit, again)


@pytest.mark.parametrize("seed", range(3))
def test_export_import_keeps_a_kirchhoff_circuit(seed):
    circuit = _random_circuit((seed,))
    names = kh.spice_node_names(circuit)
    spice = list(names.values())
    assert len(set(spice)) == len(spice)
    assert names["gnd"] == "0" and names["0"] != "0" and names["out-1"] != names["OUT_1"]
    assert all(s.replace("_", "").isalnum() and s == s.lower() for s in spice)
    back = kh.from_netlist(kh.to_netlist(circuit))
    assert back.node_names == circuit.node_names
    assert back.input_names == circuit.input_names
    assert back.output_names == circuit.output_names
    assert [type(e) for e in back.elements] == [type(e) for e in circuit.elements]
    for e, f in zip(circuit.elements, back.elements, strict=True):
        assert e.terminal_names() == f.terminal_names()
    # a resistance is written as 1/g: a conductance may come back one ulp away
    assert eqx.tree_equal(back, circuit, rtol=1e-15, atol=0.0)


def test_engineering_suffixes():
    cases = {
        "10k": 1e4, "2.2meg": 2.2e6, "2.2MEG": 2.2e6, "5m": 5e-3, "1u": 1e-6, "3n": 3e-9,
        "4p": 4e-12, "1f": 1e-15, "2g": 2e9, "1t": 1e12, "1mil": 25.4e-6, "1uF": 1e-6,
        "10kOhm": 1e4, "1.5e-3k": 1.5, "-.5": -0.5, "+2.": 2.0, "7v": 7.0,
    }  # fmt: skip
    for token, value in cases.items():
        assert parse_value(token) == value, token


@pytest.mark.parametrize(
    ("card", "words"),
    [
        ("C1 a 0 1u", "does not import C cards"),
        ("R1 a 10k", "needs two nodes"),
        ("R1 a b 10..k", "bad value"),
        ("R1 a b -5", "non-positive"),
        ("V1 a b 1", "floats"),
        ("V1 a 0 SIN(0 1 1k)", "DC sources"),
        ("D1 a 0 nomodel", "not defined"),
        ("E1 x 0 a 0 2", "no F source"),
        ("F1 a 0 vb 0.5", "not a V source"),
        (".subckt foo a b", "not supported"),
        (".model q1 NPN(BF=100)", "diode .D. models only"),
        ("Rb b a 1k", "used twice"),
    ],
)
def test_bad_netlists_name_the_line(card, words):
    netlist = f"title\nVa a 0 1\nRab a b 1k\nRb b 0 1k\n* a comment\n{card}\n.end\n"
    with pytest.raises(kh.NetlistError, match=words) as info:
        kh.from_netlist(netlist)
    assert info.value.line == 6
    assert "line 6" in str(info.value)


def test_lone_f_and_mismatched_amplifier():
    lone_f = "t\nVa a 0 1\nR1 a b 1k\nVs b c 0\nRc c 0 1k\nF1 a 0 Vs 0.5\n"
    with pytest.raises(kh.NetlistError, match="not half of a bidirectional amplifier") as info:
        kh.from_netlist(lone_f)
    assert info.value.line == 6
    wrong_gain = "t\nVa a 0 1\nR1 a b 1k\nE1 x 0 b 0 4\nVs x c 0\nRc c 0 1k\nF1 b 0 Vs 0.5\n"
    with pytest.raises(kh.NetlistError, match="needs 0.25") as info:
        kh.from_netlist(wrong_gain)
    assert info.value.line == 7


# ---- ngspice failures ----------------------------------------------------------------------
def test_missing_ngspice_is_a_clear_error(monkeypatch, tmp_path):
    circuit = _layered_amplifier_network()
    with pytest.raises(kh.NgspiceNotFoundError, match="apt-get install ngspice"):
        kh.ngspice_potentials(circuit, executable="ngspice-that-is-not-installed")
    monkeypatch.setenv("PATH", os.fspath(tmp_path))  # an empty PATH: no ngspice anywhere
    with pytest.raises(kh.NgspiceNotFoundError, match="apt-get install ngspice"):
        kh.ngspice_potentials(circuit)


def _open_circuit(extra):
    # `x` hangs on a zero-conductance resistor, SPICE sees an open circuit; kirchhoff refuses
    # such a circuit at construction, so the conductance is zeroed afterwards (as training may)
    circuit = kh.Circuit(
        [
            kh.Ground("gnd"),
            kh.Input("in"),
            kh.Resistor(["in", "a", "a"], ["a", "gnd", "x"], [1e-3, 1e-3, 1e-3]),
            *extra,
        ]
    )
    zeroed = np.asarray([1e-3, 1e-3, 0.0], circuit.dtype)
    return eqx.tree_at(lambda c: c.elements[2].conductance, circuit, zeroed)


@pytest.mark.spice
def test_node_missing_from_ngspice_output():
    require_ngspice()
    with pytest.raises(kh.NgspiceError, match="node 'x'.*missing"):
        kh.ngspice_potentials(_open_circuit([]), [1.0])


@pytest.mark.spice
def test_ngspice_that_does_not_converge():
    require_ngspice()
    # x–y float in SPICE: a singular matrix, and ngspice's fallbacks are switched off
    circuit = _open_circuit([kh.Resistor("x", "y", 1e-3)])
    options = {"itl1": 3, "gminsteps": 0, "srcsteps": 0}
    for inputs in ([1.0], [[1.0], [2.0]]):
        with pytest.raises(kh.NgspiceConvergenceError, match="singular matrix"):
            kh.ngspice_potentials(circuit, inputs, options=options)
