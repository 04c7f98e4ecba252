"""Trust in float32 as in float64: EqProp against implicit autodiff at small β, statuses that
mean the potentials are right (conductances over 12 decades), dtype from the circuit, β as
data, layered phases and a training step.

The whole module runs twice: in this (x64) process for float32 and float64 circuits, and once
more in a fresh process with JAX's x64 mode off (``test_float32_process``), where everything
is float32 by default, as a new user's session is."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import random_circuit, random_inputs, random_targets, rel_error, tree_flat

import kirchhoff as kh
from kirchhoff import layered_eqprop_gradient

X64 = bool(jax.config.jax_enable_x64)
# float32 runs in the x64-off process (as a new user's session); this one checks float64, and
# that a float32 circuit stays float32 under x64 (test_float32_circuit_is_solved_in_float32…)
DTYPES = (np.float64,) if X64 else (np.float32,)
NEWTON = kh.DampedNewton()  # default tolerances: what a user gets


def _random_case(seed, dtype, batch=4):
    circuit = random_circuit(seed, topology=0).astype(dtype)
    x = jnp.asarray(random_inputs(seed, batch=batch), dtype)
    y = jnp.asarray(random_targets(seed, batch=batch), dtype)
    return circuit, x, y


# ---- EqProp against implicit autodiff -----------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("seed", [0, 1, 2] if not X64 else [0])  # test_eqprop: more float64
def test_centered_eqprop_matches_implicit_on_random_nonlinear_circuits(seed, dtype):
    circuit, x, y = _random_case(seed, dtype)
    reference = kh.implicit_gradient(circuit, NEWTON, x, y)
    assert all(leaf.dtype == dtype for leaf in jax.tree_util.tree_leaves(reference))
    free = NEWTON.solve(circuit, x)
    assert np.all(free.status == kh.Status.SUCCESS)
    errors = {}
    for beta in (1e-1, 1e-2, 1e-3, 1e-4, 1e-5):
        result = kh.eqprop_gradient(circuit, NEWTON, x, y, beta, free=free)
        for phase in (result.nudged_positive, result.nudged_negative):
            assert np.all(phase.status == kh.Status.SUCCESS)
            assert np.all(phase.n_steps >= 1)  # the nudge is resolved, never skipped
        estimate = tree_flat(result.gradient)
        assert np.all((estimate != 0) | (tree_flat(reference) == 0))
        errors[beta] = rel_error(result.gradient, reference)
    assert errors[1e-2] <= 1e-2 and errors[1e-3] <= 1e-2
    assert min(errors.values()) <= (1e-3 if dtype == np.float32 else 1e-6)
    # the O(β²) bias is visible at large β: the small errors are not an accident of scale
    assert errors[1e-1] > 10 * min(errors.values())


@pytest.mark.offload  # slow and self-contained: the background process runs it
def test_readme_example_resolves_a_small_nudge():
    """README's circuit, as a new user runs it: the gradient at β = 1e-3 is right."""
    dtype = jnp.result_type(float)
    circuit = kh.Circuit(
        [
            kh.Ground("gnd"),
            kh.Input("in"),
            kh.Resistor("in", "a", 1.0),
            kh.ShockleyDiode("a", "gnd", saturation_current=1e-6),
            kh.Resistor("a", "out", 0.5),
            kh.Resistor("out", "gnd", 2.0),
            kh.CurrentSource("out", 0.01),
        ],
        outputs=["out"],
    )
    assert circuit.dtype == dtype
    x = jnp.array([[1.0], [2.0]])
    y = jnp.array([[0.2], [0.4]])
    reference = kh.implicit_gradient(circuit, NEWTON, x, y)
    for beta in (1e-3, 1e-5):
        result = kh.eqprop_gradient(circuit, NEWTON, x, y, beta=beta)
        assert np.all(result.nudged_positive.n_steps >= 1)
        assert rel_error(result.gradient, reference) <= 1e-3
        local = kh.local_conductance_gradients(circuit, result, x, beta)
        resistors = [g for g in local if g is not None]
        np.testing.assert_allclose(
            np.asarray(resistors[0]),
            np.asarray(result.gradient.elements[2].conductance),
            rtol=1e-4,
        )


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("diode", ["ideal", "shockley"])
def test_layered_eqprop_matches_implicit(diode, dtype):
    """Small DRNs: the general EqProp with block coordinate descent, and the fused training
    path (enough sweeps to converge), both within 1e-2 of implicit autodiff at β = 1e-2, 1e-3."""
    net = kh.drn(jax.random.PRNGKey(3), (24, 16, 10), diode=diode, dtype=dtype)
    assert net.dtype == dtype
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(0, 1, (6, 24)), dtype)
    y = jnp.asarray(np.eye(10)[rng.integers(0, 10, 6)], dtype)
    solver = kh.BlockCoordinateDescent()
    reference = kh.implicit_gradient(net, solver, x, y)
    free = solver.solve(net, x)
    assert np.all(free.status == kh.Status.SUCCESS)
    for beta in (1e-2, 1e-3):
        result = kh.eqprop_gradient(net, solver, x, y, beta, free=free)
        assert np.all(result.nudged_negative.status == kh.Status.SUCCESS)
        assert rel_error(result.gradient, reference) <= 1e-2
        fused, _, _ = layered_eqprop_gradient(net, x, y, beta, n_sweeps=60)
        assert rel_error(fused, reference) <= 1e-2


def test_layered_statuses_with_a_large_input_gain():
    """The sources hold ±γx: the potentials' scale (for the error bound) is γ·|x|, not |x|.
    DRNs train with γ = 100; their phases must not be flagged ILL_CONDITIONED."""
    dtype = jnp.result_type(float)
    net = kh.drn(jax.random.PRNGKey(5), (784, 16, 10), input_gain=100.0, dtype=dtype)
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.uniform(0, 1, (8, 784)) * (rng.random((8, 784)) < 0.2), dtype)
    y = jnp.asarray(np.eye(10)[rng.integers(0, 10, 8)], dtype)
    solver = kh.BlockCoordinateDescent()
    free = solver.solve(net, x)
    assert np.all(free.status == kh.Status.SUCCESS)
    result = kh.eqprop_gradient(net, solver, x, y, 1.0, free=free)
    assert np.all(result.nudged_positive.status == kh.Status.SUCCESS)
    assert np.all(result.nudged_negative.status == kh.Status.SUCCESS)


# ---- statuses that mean the potentials are right ------------------------------------------
def _wide_circuit(seed, dtype):
    """A resistor graph whose conductances span 12 decades (1 nS … 1 kS, drawn per ``seed``
    on one topology: one compilation), with one node hanging off two 1 nS resistors; exact
    potentials by a float64 linear solve."""
    rng = np.random.default_rng(0)
    n = 7
    held = ["gnd", "in0", "in1"]
    anodes, cathodes = [], []
    for k in range(n):  # a spanning tree from the held nodes, then extra edges
        anodes.append(k)
        cathodes.append((held + list(range(k)))[rng.integers(len(held) + k)])
    for _ in range(6):
        a, c = rng.choice(n, 2, replace=False)
        anodes.append(int(a))
        cathodes.append(int(c))
    rng = np.random.default_rng(seed)
    g = 10.0 ** rng.uniform(-9, 3, len(anodes))
    anodes += ["weak", "weak"]
    cathodes += ["in0", "gnd"]
    g = np.concatenate([g, [1e-9, 1e-9]])
    circuit = kh.Circuit(
        [
            kh.Ground("gnd"),
            kh.Input(["in0", "in1"]),
            kh.Resistor(anodes, cathodes, g.astype(dtype)),
        ],
        outputs=[0],
    )
    x = rng.choice([-1.0, 1.0], 2) * rng.uniform(1, 3, 2)
    # float64 nodal analysis, independent of kirchhoff's solvers
    names = list(circuit.node_names)
    free = [names[i] for i in np.asarray(circuit.free_nodes)]
    fixed = {"gnd": 0.0, "in0": x[0], "in1": x[1]}
    idx = {name: k for k, name in enumerate(free)}
    lap, rhs = np.zeros((len(free), len(free))), np.zeros(len(free))
    for a, c, gk in zip(anodes, cathodes, g, strict=True):
        for p, q in ((a, c), (c, a)):
            if p in idx:
                lap[idx[p], idx[p]] += gk
                if q in idx:
                    lap[idx[p], idx[q]] -= gk
                else:
                    rhs[idx[p]] += gk * fixed[q]
    return circuit, x, np.linalg.solve(lap, rhs)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(
    "solver",
    [kh.DampedNewton(), kh.SparseNewton(), kh.LBFGS(max_steps=1000), kh.BoxQP()],
    ids=["Newton", "SparseNewton", "LBFGS", "BoxQP"],
)
def test_success_means_right_across_twelve_decades(solver, dtype):
    successes, statuses = 0, []
    for seed in range(8):
        circuit, x, exact = _wide_circuit(seed, dtype)
        eq = solver.solve(circuit, jnp.asarray(x, dtype))
        assert eq.free.dtype == dtype
        error = np.max(np.abs(np.asarray(eq.free, np.float64) - exact)) / np.max(np.abs(x))
        statuses.append(eq.status)
        if bool(eq.status == kh.Status.SUCCESS):
            successes += 1
            assert error <= 1e-6, (seed, error)
            # the weakly connected node is checked as strictly as the others
            weak = list(circuit.node_names).index("weak")
            k = int(np.nonzero(np.asarray(circuit.free_nodes) == weak)[0][0])
            assert abs(float(eq.free[k]) - x[0] / 2) <= 1e-6 * np.max(np.abs(x))
    if dtype == np.float32 and isinstance(solver, kh.DampedNewton):
        # Newton reaches round-off on every one; where that is not enough, it says why
        assert kh.Status.ILL_CONDITIONED in statuses and kh.Status.MAX_STEPS not in statuses
    # in float64 Newton pins all of them; coordinate descent (BoxQP) and L-BFGS crawl on such
    # conditioning and may honestly give up (MAX_STEPS); in float32 some circuits are beyond
    # the dtype and say so (ILL_CONDITIONED), but not all
    if dtype == np.float64 and isinstance(solver, kh.DampedNewton):
        assert successes == 8
    assert successes >= 1


def test_wrong_equilibrium_is_not_success():
    """A solve stopped early on a wide circuit reports MAX_STEPS, not SUCCESS."""
    circuit, x, exact = _wide_circuit(0, jnp.result_type(float))
    eq = kh.LBFGS(max_steps=2).solve(circuit, jnp.asarray(x))
    error = np.max(np.abs(np.asarray(eq.free, np.float64) - exact)) / np.max(np.abs(x))
    assert error > 1e-6 and bool(eq.status == kh.Status.MAX_STEPS)


# ---- dtype and β -------------------------------------------------------------------------
@pytest.mark.skipif(not X64, reason="needs x64 on to show a float32 circuit staying float32")
def test_float32_circuit_is_solved_in_float32_under_x64():
    circuit, x, y = _random_case(0, np.float32)
    x64 = np.asarray(x, np.float64)  # float64 inputs do not promote the solve
    eq = NEWTON.solve(circuit, x64)
    assert eq.free.dtype == jnp.float32 and eq.residual.dtype == jnp.float32
    result = kh.eqprop_gradient(circuit, NEWTON, x64, np.asarray(y, np.float64), 1e-3)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(result.gradient))
    assert circuit.astype(jnp.float64).dtype == jnp.float64


@pytest.mark.skipif(not X64, reason="needs x64 on for a float64 network")
def test_layered_api_computes_float32_data_in_the_networks_float64():
    """Float32 batches (what the datasets give) into a float64 network: every layered entry
    point casts them, as a circuit's solve does (each failed with an internal scan TypeError
    before), and the result equals the float64 data's."""
    net = kh.drn(jax.random.PRNGKey(1), (6, 4, 2), input_gain=1.0)
    assert net.dtype == jnp.float64
    x = np.random.default_rng(0).uniform(0, 1, (4, 6)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[[0, 1, 1, 0]]
    runs = {
        "phases": lambda x, y: kh.layered_phases(net, x, y, 0.1, 4).free,
        "eqprop": lambda x, y: kh.layered_eqprop_gradient(net, x, y, 0.1, 4)[0],
        "backprop": lambda x, y: kh.layered_backprop_gradient(net, x, y, 4)[0],
        "coupled": lambda x, y: kh.layered_coupled_gradient(net, x, y, 0.5, 4)[0],
        "predict": lambda x, y: kh.predict(net, x, 4),
    }
    for name, run in runs.items():
        got, want = run(x, y), run(x.astype(np.float64), y.astype(np.float64))
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            assert a.dtype == jnp.float64, name
            np.testing.assert_array_equal(a, b, err_msg=name)


def test_beta_is_data():
    circuit, x, y = _random_case(1, jnp.result_type(float))
    free = NEWTON.solve(circuit, x)
    grad = jax.jit(lambda b: kh.eqprop_gradient(circuit, NEWTON, x, y, b, free=free).gradient)
    eager = kh.eqprop_gradient(circuit, NEWTON, x, y, 0.01, free=free).gradient
    assert rel_error(grad(0.01), eager) <= 1e-5
    # vmapped over β: one estimate per β, each equal to its eager twin
    betas = jnp.asarray([1e-2, 1e-3])
    many = jax.vmap(lambda b: kh.eqprop_gradient(circuit, NEWTON, x, y, b, free=free))(betas)
    for k, beta in enumerate((1e-2, 1e-3)):
        one = jax.tree_util.tree_map(lambda a, k=k: a[k], many.gradient)
        single = kh.eqprop_gradient(circuit, NEWTON, x, y, beta, free=free).gradient
        assert rel_error(one, single) <= 1e-5
    # an invalid traced β is flagged, not turned into a plausible number
    result = jax.jit(lambda b: kh.eqprop_gradient(circuit, NEWTON, x, y, b, free=free))
    for bad in (0.0, -0.01, np.nan, np.inf):
        out = result(bad)
        assert np.all(out.nudged_positive.status == kh.Status.NONFINITE)
        assert np.all(np.isnan(tree_flat(out.gradient)))


# ---- a training step ---------------------------------------------------------------------
def test_float32_training_run_learns(tmp_path):
    from kirchhoff import TrainConfig, evaluate, load_dataset, train

    cfg = TrainConfig(
        model="drn:784-32-10",
        epochs=2,
        lr=0.02,
        train_limit=800,
        test_limit=200,
        out=str(tmp_path / "run"),
    )
    result = train(cfg, progress=False)
    net = result["network"]
    assert net.dtype == jnp.float32
    test = load_dataset("mnist_subset", "test")
    after = evaluate(net, test, cfg.eval_sweeps)
    assert np.isfinite(after["loss"]) and after["error_percent"] < 75.0


# ---- the float32 process ------------------------------------------------------------------
@pytest.mark.skipif(not X64, reason="this is the float32 process itself")
@pytest.mark.background("float32")
def test_float32_process(background_job):
    """This module again in a fresh interpreter with JAX's x64 mode off (float32 default),
    started by conftest after collection so that it runs beside the rest of the suite."""
    returncode, output = background_job.wait(timeout=1500)
    assert returncode == 0, output[-9000:]
    assert " passed" in output and "failed" not in output
