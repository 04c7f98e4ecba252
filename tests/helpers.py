"""Shared test helpers: random circuits, tree comparisons, reference root finding.

JAX compile time dominates this suite, and a circuit's node names are static, so every new
topology compiles every solve afresh. The random circuits therefore take two seeds: the
``topology`` (which compiles) and the ``seed`` of their parameter values and inputs (which
does not); tests sweep the second freely and the first sparingly."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import kirchhoff as kh

# one configuration of each solver for the whole suite, so that compilations are shared
# (tight tolerances: the tests ask for more than the default stopping rule promises)
NEWTON = kh.DampedNewton(rtol=1e-13)
LBFGS = kh.LBFGS(rtol=1e-13)
QP = kh.BoxQP()


# ---- pytree comparisons ------------------------------------------------------------------
def tree_flat(tree) -> np.ndarray:
    """All array leaves of a pytree, concatenated into one float64 vector."""
    leaves = jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_array))
    if not leaves:
        return np.zeros(0)
    return np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1) for a in leaves])


def tree_allclose(x, y, *, rtol=1e-7, atol=1e-10) -> bool:
    """True when two pytrees have the same structure and their array leaves are close."""
    x_leaves, x_def = jax.tree_util.tree_flatten(eqx.filter(x, eqx.is_array))
    y_leaves, y_def = jax.tree_util.tree_flatten(eqx.filter(y, eqx.is_array))
    if x_def != y_def:
        return False
    return all(
        np.shape(a) == np.shape(b) and np.allclose(a, b, rtol=rtol, atol=atol)
        for a, b in zip(x_leaves, y_leaves, strict=True)
    )


def rel_error(estimate, reference) -> float:
    """‖estimate − reference‖ / ‖reference‖ over all array leaves of two pytrees."""
    a, b = tree_flat(estimate), tree_flat(reference)
    assert a.shape == b.shape and np.linalg.norm(b) > 0
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def cosine(estimate, reference) -> float:
    a, b = tree_flat(estimate), tree_flat(reference)
    assert a.shape == b.shape and np.linalg.norm(a) > 0 and np.linalg.norm(b) > 0
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(np.asarray(x)), np.log(np.asarray(y)), 1)[0])


# ---- circuit quantities at a solution ---------------------------------------------------------
@eqx.filter_jit
def equilibrium_report(circuit: kh.Circuit, free, inputs, bumps=None):
    """KCL residual at the free nodes, net element current at every node, potentials, the
    largest branch current, the energy, and the energies at ``free + bumps`` (one row per
    bump). Jitted: one compilation per circuit instead of hundreds of eager ops."""
    inputs = jnp.asarray(inputs, free.dtype)
    v = circuit.potentials(free, inputs)
    branches = [jnp.abs(i) for i in circuit.branch_currents(v) if i is not None]
    bumps = jnp.zeros((0, free.shape[0]), free.dtype) if bumps is None else bumps
    return dict(
        kcl=circuit.kcl_residual(free, inputs),
        net=circuit.net_current(v),
        net_free=circuit.net_current(v)[circuit.free_nodes],
        potentials=v,
        max_branch_current=jnp.max(jnp.concatenate(branches)),
        energy=circuit.energy(free, inputs),
        bumped_energies=jax.vmap(circuit.energy, in_axes=(0, None))(free + bumps, inputs),
    )


# ---- reference root finding ---------------------------------------------------------------
def bisect(f, lo: float, hi: float, xtol: float = 1e-15) -> float:
    """A root of the scalar function f in [lo, hi] (f(lo), f(hi) of opposite signs)."""
    f_lo = f(lo)
    assert f_lo * f(hi) <= 0, "the bracket does not contain a sign change"
    while hi - lo > xtol * max(1.0, abs(lo), abs(hi)):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        f_mid = f(mid)
        if (f_mid <= 0) == (f_lo <= 0):
            lo, f_lo = mid, f_mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def scalar_root(f, lo: float, hi: float) -> float:
    """scipy's brentq when scipy is installed, else bisection: independent of kirchhoff."""
    try:
        from scipy.optimize import brentq
    except ImportError:  # pragma: no cover - scipy is in the venv
        return bisect(f, lo, hi)
    return float(brentq(f, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500))


# ---- random circuits ----------------------------------------------------------------------
def _random_topology(rng, n_free, held, n_extra_resistors, n_diodes, n_current_sources, n_outputs):
    free = list(range(n_free))
    everything = held + free
    # a random spanning tree grown from the held nodes: no free node floats
    anodes, cathodes = [], []
    attached = list(held)
    for n in rng.permutation(free):
        anodes.append(int(n))
        cathodes.append(attached[rng.integers(len(attached))])
        attached.append(int(n))
    for h in held:  # every held node touches the network
        if h not in cathodes:
            anodes.append(int(rng.choice(free)))
            cathodes.append(h)
    for _ in range(n_extra_resistors):
        a = int(rng.choice(free))
        c = everything[rng.integers(len(everything))]
        if c != a:
            anodes.append(a)
            cathodes.append(c)
    d_a, d_c = [], []
    while len(d_a) < n_diodes:
        a = int(rng.choice(free))
        c = everything[rng.integers(len(everything))]
        if c != a:
            d_a.append(a if rng.random() < 0.5 else c)
            d_c.append(c if d_a[-1] == a else a)
    sources = [int(n) for n in rng.choice(free, n_current_sources, replace=False)]
    outputs = [int(n) for n in rng.choice(free, n_outputs, replace=False)]
    return (anodes, cathodes), (d_a, d_c), sources, outputs


@functools.cache
def random_circuit(
    seed: int,
    topology: int | None = None,
    n_free: int = 8,
    n_inputs: int = 3,
    n_outputs: int = 2,
    n_extra_resistors: int = 6,
    n_diodes: int = 4,
    n_current_sources: int = 2,
    rail_volts: float | None = 1.5,
) -> kh.Circuit:
    """A random connected graph of resistors (0.5–2 S), Shockley diodes that turn on at a few
    hundred millivolts (I_s 1e-6–1e-3 A, random orientation), current sources (±0.5 A), a
    rail, inputs and a ground. Free nodes are ``0 … n_free-1``, inputs ``"in0" …``.

    ``topology`` (default: ``seed``) fixes the graph, ``seed`` the parameter values."""
    topology = seed if topology is None else topology
    held = ["gnd", *(f"in{k}" for k in range(n_inputs))]
    if rail_volts is not None:
        held.append("rail")
    (r_a, r_c), (d_a, d_c), sources, outputs = _random_topology(
        np.random.default_rng(topology),
        n_free,
        held,
        n_extra_resistors,
        n_diodes,
        n_current_sources,
        n_outputs,
    )
    rng = np.random.default_rng(10_000 + seed)
    elements = [
        kh.Resistor(r_a, r_c, rng.uniform(0.5, 2.0, len(r_a))),
        kh.Ground("gnd"),
        kh.Input([f"in{k}" for k in range(n_inputs)]),
    ]
    if rail_volts is not None:
        elements.append(kh.VoltageSource("rail", rail_volts))
    if n_diodes:
        i_s = 10.0 ** rng.uniform(-6, -3, n_diodes)
        elements.append(kh.ShockleyDiode(d_a, d_c, saturation_current=i_s))
    if n_current_sources:
        elements.append(kh.CurrentSource(sources, rng.uniform(-0.5, 0.5, n_current_sources)))
    return kh.Circuit(elements, outputs=outputs)


@functools.cache
def random_ideal_diode_circuit(
    seed: int,
    topology: int | None = None,
    n_free: int = 8,
    n_inputs: int = 3,
    n_outputs: int = 2,
    n_extra_resistors: int = 6,
    n_diodes: int = 5,
    n_current_sources: int = 2,
) -> kh.Circuit:
    """A random resistor graph whose free nodes are bounded by ideal diodes to held nodes
    (ground, a 0.5 V rail, the inputs), alternately into and out of the held node."""
    topology = seed if topology is None else topology
    base = random_circuit(
        seed,
        topology,
        n_free=n_free,
        n_inputs=n_inputs,
        n_outputs=n_outputs,
        n_extra_resistors=n_extra_resistors,
        n_diodes=0,
        n_current_sources=n_current_sources,
        rail_volts=0.5,
    )
    rng = np.random.default_rng(20_000 + topology)
    held = ["gnd", "rail", *(f"in{k}" for k in range(n_inputs))]
    nodes = [int(n) for n in rng.choice(n_free, n_diodes, replace=False)]
    anodes, cathodes = [], []
    for k, n in enumerate(nodes):
        h = held[rng.integers(len(held))]
        # even k: node → held node (v_n ≤ v_h); odd k: held node → node (v_n ≥ v_h)
        anodes.append(n if k % 2 == 0 else h)
        cathodes.append(h if k % 2 == 0 else n)
    return kh.Circuit(
        [*base.elements, kh.IdealDiode(anodes, cathodes)], outputs=list(base.output_names)
    )


def random_inputs(seed: int, n_inputs: int = 3, batch: int | None = None) -> np.ndarray:
    """Inputs of magnitude 1–3 V with random signs."""
    rng = np.random.default_rng(30_000 + seed)
    shape = (n_inputs,) if batch is None else (batch, n_inputs)
    return rng.choice([-1.0, 1.0], shape) * rng.uniform(1.0, 3.0, shape)


def random_targets(seed: int, n_outputs: int = 2, batch: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(40_000 + seed)
    shape = (n_outputs,) if batch is None else (batch, n_outputs)
    return rng.uniform(-1.0, 1.0, shape)


def diode_forward_currents(circuit: kh.Circuit, free, inputs):
    """For every ideal diode that bounds a free node: its forward current (amperes), its
    bound and the node's potential (volts), from ``circuit.ideal_diode_currents``.

    That method returns the current each free node sends into its diodes; a diode that points
    into the node (a lower bound) carries minus that current forward."""
    drawn = np.asarray(circuit.ideal_diode_currents(free, inputs))
    lo, hi = (np.asarray(b) for b in circuit.free_bounds(inputs))
    nodes = np.asarray(circuit.bound_node)
    upper = np.asarray(circuit.bound_upper)
    current = np.where(upper, drawn[nodes], -drawn[nodes])
    bound = np.where(upper, hi[nodes], lo[nodes])
    return current, bound, np.asarray(free)[nodes]


def load_benchmark(name: str):
    """The module ``benchmarks/<name>.py`` (benchmarks are scripts, not a package), imported
    by path so that tests can check their arithmetic without running them."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parent.parent / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
