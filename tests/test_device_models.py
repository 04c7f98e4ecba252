"""Each device model against its definition: bounds and levels, write and read noise,
device-to-device variation and stuck devices, the NeuroSim, soft-bounds, exponential-step and
measured-table responses, the published presets (against the numbers checked in their sources),
seeds, and the ideal path when every non-ideality is off.

Statistical checks draw 20k–200k elementwise samples and allow 5 standard errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import kirchhoff as kh
from kirchhoff._devices._responses import asymmetry_factors, neurosim_a

F32 = jnp.float32
G_MIN, G_MAX, LEVELS = 0.1, 1.0, 17
STEP = (G_MAX - G_MIN) / (LEVELS - 1)  # one level of the linear test device
SHAPE = (200, 500)  # one weight array's devices: 100k draws
TIGHT = 1e-6  # float32 round-off on conductances of order 1, far below a level (0.056)


# each device function compiled once per device (eager dispatch compiles op by op: slower)
@eqx.filter_jit
def _program(device, state, update, key=None, cells=None):
    return device.program(state, update, key, cells)


@eqx.filter_jit
def _initial(device, conductance, cells=None):
    return device.initial_state(conductance, cells)


@eqx.filter_jit
def _read(device, state, key=None):
    return device.read(state, key)


@eqx.filter_jit
def _apply(response, x, n, scale=1.0):
    return response.apply(x, n, scale)


def _linear(levels=LEVELS, g_min=G_MIN, g_max=G_MAX, **options):
    return kh.PulsedDevice(g_max, g_min, kh.LinearResponse(levels), **options)


def _level(g, g_min=G_MIN, step=STEP):
    """The (fractional) level index of a conductance of the linear test device."""
    return (np.asarray(g, np.float64) - g_min) / step


def _within(value, expected, standard_error, n_se=5.0):
    assert abs(value - expected) < n_se * standard_error, (value, expected, standard_error)


# ---- bounds and levels ----------------------------------------------------------------------


def test_linear_states_stay_in_range_and_on_the_grid():
    device = _linear()
    rng = np.random.default_rng(0)
    state = _initial(device, jnp.asarray(rng.uniform(0.0, 1.3, 2000), F32))
    hit_low = hit_high = False
    for _ in range(25):
        # sub-step to many-level updates, pushing past both bounds
        state = _program(device, state, jnp.asarray(rng.normal(0.0, 5 * STEP, state.shape), F32))
        s = np.asarray(state)
        assert s.min() >= G_MIN - TIGHT and s.max() <= G_MAX + TIGHT
        level = _level(s)
        np.testing.assert_allclose(level, np.round(level), atol=1e-4)
        hit_low |= bool(np.any(np.round(level) == 0))
        hit_high |= bool(np.any(np.round(level) == LEVELS - 1))
    assert hit_low and hit_high  # the bounds were reached and held, not passed


def test_k_steps_move_exactly_k_levels():
    device = _linear()
    level, k = np.meshgrid(np.arange(LEVELS), np.arange(-20, 21), indexing="ij")
    level, k = level.ravel(), k.ravel()
    jitter = np.random.default_rng(1).uniform(-0.45, 0.45, k.shape)  # nearest rounding absorbs it
    state = jnp.asarray(G_MIN + level * STEP, F32)
    new = _program(device, state, jnp.asarray((k + jitter) * STEP, F32))
    np.testing.assert_allclose(_level(new), np.clip(level + k, 0, LEVELS - 1), atol=1e-4)
    # a cap on one update's pulses
    capped = _program(_linear(max_pulses=3), state, jnp.asarray((k + jitter) * STEP, F32))
    np.testing.assert_allclose(
        _level(capped), np.clip(level + np.clip(k, -3, 3), 0, LEVELS - 1), atol=1e-4
    )


def test_initial_state_snaps_to_the_nearest_level_and_small_updates_do_nothing():
    device = _linear()
    g = np.random.default_rng(2).uniform(G_MIN - 0.2, G_MAX + 0.2, 5000)
    snapped = _initial(device, jnp.asarray(g, F32))
    nearest = G_MIN + np.clip(np.round((g - G_MIN) / STEP), 0, LEVELS - 1) * STEP
    np.testing.assert_allclose(snapped, nearest, atol=TIGHT)
    small = np.random.default_rng(3).uniform(-0.49, 0.49, g.shape) * STEP
    np.testing.assert_allclose(
        _program(device, snapped, jnp.asarray(small, F32)), snapped, atol=TIGHT
    )


@pytest.mark.parametrize("wanted", [0.3, 2.7, -1.25])
def test_stochastic_rounding_is_unbiased_between_neighbouring_levels(wanted):
    n = 100_000
    device = _linear(stochastic_rounding=True)
    state = jnp.full((n,), G_MIN + 8 * STEP, F32)
    update = jnp.full((n,), wanted * STEP, F32)
    moved = _level(_program(device, state, update, jax.random.PRNGKey(0))) - 8
    low = np.floor(wanted)
    assert set(np.round(moved).astype(int)) <= {int(low), int(low) + 1}
    np.testing.assert_allclose(moved, np.round(moved), atol=1e-4)
    frac = wanted - low
    _within(moved.mean(), wanted, np.sqrt(frac * (1 - frac) / n))
    # nearest rounding would be biased by far more than that
    assert abs(round(wanted) - wanted) > 50 * np.sqrt(frac * (1 - frac) / n)
    with pytest.raises(kh.InvalidInputError, match="stochastic_rounding needs a PRNG key"):
        _program(device, state, update)


def test_device_up_down_scales_the_weaker_direction():
    state = jnp.full((2,), G_MIN + 8 * STEP, F32)
    update = jnp.asarray([4 * STEP, -4 * STEP], F32)
    # up_down > 0 weakens depression: 4 down pulses of half a level each
    weak_down = _program(_linear(up_down=0.5), state, update)
    np.testing.assert_allclose(_level(weak_down) - 8, [4.0, -2.0], atol=1e-4)
    weak_up = _program(_linear(up_down=-0.25), state, update)
    np.testing.assert_allclose(_level(weak_up) - 8, [3.0, -4.0], atol=1e-4)


# ---- write and read noise -------------------------------------------------------------------


@pytest.mark.parametrize("pulses", [25, -4, 1])
def test_write_noise_std_is_relative_to_each_pulse(pulses):
    n, sigma, levels = 100_000, 0.2, 1001
    step = 1.0 / (levels - 1)
    device = kh.PulsedDevice(1.0, 0.0, kh.LinearResponse(levels), write_noise=sigma)
    state = jnp.full((n,), 0.5, F32)
    change = np.asarray(
        _program(device, state, jnp.full((n,), pulses * step, F32), jax.random.PRNGKey(4)) - state,
        np.float64,
    )
    std = sigma * abs(pulses) * step / np.sqrt(abs(pulses))
    _within(change.mean(), pulses * step, std / np.sqrt(n))
    _within(change.std(), std, std / np.sqrt(2 * n))


def test_write_noise_follows_a_nonlinear_step():
    n, sigma = 50_000, 0.3
    quiet = kh.PulsedDevice(1.0, 0.0, kh.NeuroSimResponse(40, 40, 3.0, -3.0))
    noisy = quiet.with_options(write_noise=sigma)
    state = jnp.full((n,), 0.85, F32)  # where an up step is much smaller than nominal
    update = jnp.full((n,), 6 / 40, F32)  # six pulses
    delta = float((_program(quiet, state, update) - state)[0])
    assert 0 < delta < 0.5 * 6 / 40
    change = np.asarray(_program(noisy, state, update, jax.random.PRNGKey(5)) - state, np.float64)
    std = sigma * delta / np.sqrt(6)
    _within(change.mean(), delta, std / np.sqrt(n))
    _within(change.std(), std, std / np.sqrt(2 * n))


def test_write_noise_reproduces_with_its_key_and_needs_one():
    device = _linear(levels=256, write_noise=0.1)
    state = jnp.full((1000,), 0.5, F32)
    update = jnp.full((1000,), 3 * (G_MAX - G_MIN) / 255, F32)
    a = _program(device, state, update, jax.random.PRNGKey(6))
    b = _program(device, state, update, jax.random.PRNGKey(6))
    c = _program(device, state, update, jax.random.PRNGKey(7))
    np.testing.assert_array_equal(a, b)
    assert np.mean(np.asarray(a) != np.asarray(c)) > 0.99
    with pytest.raises(kh.InvalidInputError, match="write_noise needs a PRNG key"):
        _program(device, state, update)


def test_read_noise_is_relative_fresh_and_keyed():
    n, sigma = 200_000, 0.05
    device = _linear(read_noise=sigma)
    assert device.noisy_read and not _linear().noisy_read
    state = jnp.asarray(np.random.default_rng(8).uniform(0.2, 1.0, n), F32)
    a = _read(device, state, jax.random.PRNGKey(9))
    ratio = np.asarray(a, np.float64) / np.asarray(state, np.float64) - 1.0
    _within(ratio.mean(), 0.0, sigma / np.sqrt(n))
    _within(ratio.std(), sigma, sigma / np.sqrt(2 * n))
    np.testing.assert_array_equal(a, _read(device, state, jax.random.PRNGKey(9)))
    assert np.mean(np.asarray(a) != np.asarray(_read(device, state, jax.random.PRNGKey(10)))) > 0.99
    np.testing.assert_array_equal(_read(device, state), state)  # no key: no noise
    np.testing.assert_array_equal(_read(_linear(), state, jax.random.PRNGKey(9)), state)


# ---- device-to-device variation and stuck devices -----------------------------------------


def test_d2d_step_scale_is_normal_with_mean_one():
    sigma, shape = 0.1, SHAPE
    n = shape[0] * shape[1]
    scale = np.asarray(_linear(d2d_step=sigma).sample_cells(shape, 0).scale, np.float64)
    assert scale.shape == shape
    _within(scale.mean(), 1.0, sigma / np.sqrt(n))
    _within(scale.std(), sigma, sigma / np.sqrt(2 * n))


def test_d2d_step_lognormal_has_log_std_sigma():
    sigma, shape = 0.3, SHAPE
    n = shape[0] * shape[1]
    device = _linear(d2d_step=sigma, d2d_lognormal=True)
    log_scale = np.log(np.asarray(device.sample_cells(shape, 0).scale, np.float64))
    _within(log_scale.mean(), 0.0, sigma / np.sqrt(n))
    _within(log_scale.std(), sigma, sigma / np.sqrt(2 * n))


def test_d2d_cells_reproduce_from_seed_and_index():
    device = _linear(d2d_step=0.2, d2d_bounds=0.1, stuck_fraction=0.1, seed=3)
    a, b = device.sample_cells(SHAPE, 1), device.sample_cells(SHAPE, 1)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
    other_index = device.sample_cells(SHAPE, 2)
    other_seed = device.with_options(seed=4).sample_cells(SHAPE, 1)
    for other in (other_index, other_seed):
        assert not np.array_equal(a.scale, other.scale)
        assert not np.array_equal(a.g_hi, other.g_hi)
    assert _linear().sample_cells(SHAPE, 0) is None  # every device alike


def test_d2d_bounds_spread_and_the_step_follows_each_cell():
    sigma, shape = 0.1, SHAPE
    n = shape[0] * shape[1]
    device = _linear(d2d_bounds=sigma, d2d_step=0.1, g_min=0.2)
    cells = device.sample_cells(shape, 0)
    lo, hi = np.asarray(cells.g_lo, np.float64), np.asarray(cells.g_hi, np.float64)
    for bound, nominal in ((lo, 0.2), (hi, G_MAX)):
        rel = bound / nominal - 1.0
        _within(rel.mean(), 0.0, sigma / np.sqrt(n))
        _within(rel.std(), sigma, sigma / np.sqrt(2 * n))
    # each bound drawn on its own: uncorrelated (correlation's standard error 1/√n)
    _within(np.corrcoef(lo.ravel(), hi.ravel())[0, 1], 0.0, 1 / np.sqrt(n))
    assert np.all(hi > lo)
    # each cell's grid runs over its own bounds; one pulse moves it by its own step
    state = _initial(device, jnp.full(shape, 0.6, F32), cells)
    x = (np.asarray(state, np.float64) - lo) / (hi - lo) * (LEVELS - 1)
    np.testing.assert_allclose(x, np.round(x), atol=1e-3)
    one_pulse = jnp.full(shape, (G_MAX - 0.2) / (LEVELS - 1), F32)
    change = np.asarray(_program(device, state, one_pulse, cells=cells) - state, np.float64)
    room = np.round(x) < LEVELS - 2  # away from the top, where the step is cut short
    expected = np.asarray(cells.scale) * (hi - lo) / (LEVELS - 1)
    np.testing.assert_allclose(change[room], expected[room], atol=1e-5)


def test_stuck_devices_hold_their_values():
    fraction, high, shape = 0.2, 0.25, SHAPE
    n = shape[0] * shape[1]
    device = _linear(stuck_fraction=fraction, stuck_high=high)
    cells = device.sample_cells(shape, 0)
    code = np.asarray(cells.stuck)
    stuck = code != 0
    _within(stuck.mean(), fraction, np.sqrt(fraction * (1 - fraction) / n))
    n_stuck = int(stuck.sum())
    _within((code[stuck] == 2).mean(), high, np.sqrt(high * (1 - high) / n_stuck))
    lo, hi = np.asarray(cells.g_lo), np.asarray(cells.g_hi)
    state = _initial(device, jnp.full(shape, 0.55, F32), cells)
    s = np.asarray(state)
    np.testing.assert_allclose(s[code == 1], lo[code == 1], atol=TIGHT)
    np.testing.assert_allclose(s[code == 2], hi[code == 2], atol=TIGHT)
    start = s.copy()
    rng = np.random.default_rng(11)
    for _ in range(5):
        state = _program(
            device, state, jnp.asarray(rng.normal(0.0, 4 * STEP, shape), F32), cells=cells
        )
    s = np.asarray(state)
    np.testing.assert_array_equal(s[stuck], start[stuck])
    assert np.mean(s[~stuck] != start[~stuck]) > 0.9


# ---- NeuroSim ---------------------------------------------------------------------------------

# NeuroSim's normalised A (getParamA, MLP_NeuroSim V3.0 formula.cpp; manual Table 1 rounds them
# to 0.4992 and 0.2003)
NEUROSIM_A = {2.40: 0.499181, 4.88: 0.200303}


def _neurosim_g(p, a, p_max, g_min, g_max):
    """NeuroSim's G(P) = B(1 − e^{−P/A}) + G_min, B = (G_max − G_min)/(1 − e^{−P_max/A})."""
    b = (g_max - g_min) / (1.0 - np.exp(-p_max / a))
    return b * (1.0 - np.exp(-np.asarray(p, np.float64) / a)) + g_min


def test_neurosim_a_matches_neurosims_table():
    for nl, a in NEUROSIM_A.items():
        assert neurosim_a(nl) == pytest.approx(a, abs=2e-6)
        assert neurosim_a(-nl) == pytest.approx(-a, abs=2e-6)
        assert round(neurosim_a(nl), 4) == round(a, 4)  # the manual's four digits
    with pytest.raises(kh.InvalidInputError, match="nonlinearity"):
        neurosim_a(20.0)


@pytest.mark.parametrize("nl", [0.5, 2.4, 4.88, 8.0])
def test_neurosim_curve_lies_at_most_0_07_sqrt2_nl_from_the_line(nl):
    p = np.linspace(0.0, 1.0, 200_001)
    for sign in (1, -1):  # concave (LTP) above the line, convex (LTD) below it
        a = neurosim_a(sign * nl)
        g = np.expm1(-p / a) / np.expm1(-1.0 / a)
        assert np.max(sign * (g - p)) == pytest.approx(0.07 * np.sqrt(2) * nl, abs=1e-6)


def test_neurosim_pulses_walk_its_curves():
    # the Ag:a-Si device: 97 LTP and 100 LTD pulses, NL 2.4 / −4.88, on/off 12.5
    g_max, g_min = 1.0, 1.0 / 12.5
    device = kh.PulsedDevice(g_max, g_min, kh.NeuroSimResponse(97, 100, 2.40, -4.88))
    a_up, a_down = NEUROSIM_A[2.40] * 97, -NEUROSIM_A[4.88] * 100
    ltp = lambda p: _neurosim_g(p, a_up, 97, g_min, g_max)
    ltd = lambda p: _neurosim_g(p, a_down, 100, g_min, g_max)
    span = g_max - g_min
    for k in (1, 3, 10):
        p = np.arange(98)
        up = _program(device, jnp.asarray(ltp(p), F32), jnp.full(p.shape, k * span / 97, F32))
        np.testing.assert_allclose(up, ltp(np.minimum(p + k, 97)), atol=1e-5 * span)
        p = np.arange(101)
        down = _program(device, jnp.asarray(ltd(p), F32), jnp.full(p.shape, -k * span / 100, F32))
        np.testing.assert_allclose(down, ltd(np.maximum(p - k, 0)), atol=1e-5 * span)


def test_neurosim_steps_shrink_towards_the_bound_they_approach():
    device = kh.PulsedDevice(1.0, 0.1, kh.NeuroSimResponse(97, 100, 2.40, -4.88))

    def walk(g, update, n):
        def body(g, _):
            new = device.program(g, update)
            return new, new - g

        return np.asarray(jax.lax.scan(body, g, None, length=n)[1])

    nominal_up, nominal_down = 0.9 / 97, 0.9 / 100
    up = walk(jnp.asarray(0.1, F32), jnp.asarray(nominal_up, F32), 97)
    assert np.all(up > 0) and np.all(np.diff(up) < 0)
    assert up[0] > nominal_up > up[-1]
    assert float(up.sum()) == pytest.approx(0.9, abs=1e-5)  # 97 pulses span the range
    down = walk(jnp.asarray(1.0, F32), jnp.asarray(-nominal_down, F32), 100)
    assert np.all(down < 0) and np.all(np.diff(np.abs(down)) < 0)
    assert abs(down[0]) > nominal_down > abs(down[-1])
    assert float(down.sum()) == pytest.approx(-0.9, abs=1e-5)


# ---- aihwkit's soft bounds and exponential step ---------------------------------------------


def test_asymmetry_factors_shrink_the_weaker_direction():
    # aihwkit: up_down > 0 gives scale_down = dw_min·(1 − up_down); ≤ 0, scale_up = dw_min·(1 + up_down)
    assert asymmetry_factors(0.3) == pytest.approx((1.0, 0.7))
    assert asymmetry_factors(-0.3) == pytest.approx((0.7, 1.0))
    assert asymmetry_factors(0.0) == (1.0, 1.0)


@pytest.mark.parametrize("up_down", [0.0, 0.3, -0.3])
def test_soft_bounds_one_pulse_follows_its_formula(up_down):
    dw_min, w_min, w_max = 0.05, -0.75, 1.25
    # g = w − w_min on [0, 2]: a nominal step in conductance is dw_min
    device = kh.PulsedDevice(
        2.0, 0.0, kh.SoftBoundsResponse(dw_min, up_down=up_down, w_min=w_min, w_max=w_max)
    )
    w = np.linspace(w_min, w_max, 201)
    state = jnp.asarray(w - w_min, F32)
    f_up = 1.0 + min(up_down, 0.0)
    f_down = 1.0 - max(up_down, 0.0)
    up = _program(device, state, jnp.full(w.shape, dw_min, F32))
    np.testing.assert_allclose(up - state, dw_min * f_up * (1 - w / w_max), atol=1e-6)
    down = _program(device, state, jnp.full(w.shape, -dw_min, F32))
    np.testing.assert_allclose(down - state, -dw_min * f_down * (1 - w / w_min), atol=1e-6)


def _one_by_one(response, x, n):
    """``|n|`` single pulses applied in turn."""
    pulse = jnp.full(x.shape, 1 if n > 0 else -1)
    for _ in range(abs(n)):
        x = _apply(response, x, pulse)
    return x


def test_soft_bounds_n_pulses_equal_n_single_pulses():
    response = kh.SoftBoundsResponse(0.05, up_down=0.2, w_min=-0.75, w_max=1.25)
    x = jnp.linspace(0.0, 1.0, 101, dtype=F32)
    for n in (2, 7, 40, -3, -25):
        closed = _apply(response, x, jnp.full(x.shape, n))
        np.testing.assert_allclose(closed, _one_by_one(response, x, n), atol=2e-6)


EXP_STEP = dict(
    dw_min=0.02,
    up_down=0.259359,
    a_up=-1.18445,
    a_down=-0.081404,
    gamma_up=5.0,
    gamma_down=5.0,
    a=-0.5,
    b=-0.5,
)
# a second shape whose factor reaches 0 (the max(·, 0) clamp) inside the range
EXP_STEP_CLAMPED = dict(dw_min=0.05, a_up=0.5, a_down=0.8, gamma_up=2.0, gamma_down=1.5, a=1.0)


@pytest.mark.parametrize("params", [EXP_STEP, EXP_STEP_CLAMPED])
def test_exp_step_one_pulse_follows_its_formula(params):
    w_min, w_max = -1.0, 1.0
    response = kh.ExpStepResponse(**params)
    p = {"up_down": 0.0, "b": 0.0, **params}
    w = np.linspace(w_min, w_max, 401)
    z = 2 * p["a"] * w / (w_max - w_min) + p["b"]
    f_up, f_down = asymmetry_factors(p["up_down"])
    grow = np.maximum(1 - p["a_up"] * np.exp(p["gamma_up"] * z), 0)
    shrink = np.maximum(1 - p["a_down"] * np.exp(-p["gamma_down"] * z), 0)
    x = jnp.asarray((w - w_min) / (w_max - w_min), F32)
    for n, expected in (
        (1, w + p["dw_min"] * f_up * grow),
        (-1, w - p["dw_min"] * f_down * shrink),
    ):
        new = w_min + (w_max - w_min) * np.asarray(_apply(response, x, jnp.full(x.shape, n)))
        np.testing.assert_allclose(new, np.clip(expected, w_min, w_max), atol=2e-6)
    if params is EXP_STEP_CLAMPED:
        assert np.any(grow == 0) and np.any(shrink == 0)


def test_exp_step_n_pulses_equal_n_single_pulses_up_to_its_cap():
    response = kh.ExpStepResponse(**EXP_STEP, max_pulses=31)
    x = jnp.linspace(0.0, 1.0, 101, dtype=F32)
    for n in (2, 9, 31, -5, -31):
        many = _apply(response, x, jnp.full(x.shape, n))
        np.testing.assert_allclose(many, _one_by_one(response, x, n), atol=2e-6)
    capped = _apply(response, x, jnp.full(x.shape, 50))
    np.testing.assert_array_equal(capped, _apply(response, x, jnp.full(x.shape, 31)))


# ---- measured tables -------------------------------------------------------------------------

UP = [1.0e-6, 2.0e-6, 3.5e-6, 4.5e-6, 5.2e-6, 6.0e-6]
DOWN = [6.0e-6, 4.2e-6, 3.1e-6, 2.3e-6, 1.7e-6, 1.3e-6, 1.0e-6]


def test_table_is_followed_pulse_by_pulse_and_interpolated_linearly():
    response = kh.TableResponse(UP, DOWN)
    assert response.pulses == (5, 6)
    device = kh.PulsedDevice(6e-6, 1e-6, response)
    span = 5e-6
    up, down = np.array(UP), np.array(DOWN)
    x_up, x_down = (up - 1e-6) / span, (down - 1e-6) / span
    # k = 1, 2, 4 pulses from every measured point of each branch, in one array
    k = np.array([1, 2, 4])[:, None]
    state = np.concatenate([up, down])[None].repeat(3, 0)
    update = np.concatenate([np.ones(6) * span / 5, -np.ones(7) * span / 6])[None] * k
    p = np.random.default_rng(12).uniform(0, 5, 1000)
    q = np.random.default_rng(13).uniform(0, 6, 1000)

    @jax.jit
    def checks(state, update, p, q):
        up_p, down_q = response.up(p), response.down(q)
        inverses = response.up_inverse(up_p), response.down_inverse(down_q)
        return device.program(state, update), up_p, down_q, *inverses

    new, up_p, down_q, p_back, q_back = checks(
        *(jnp.asarray(a, F32) for a in (state, update, p, q))
    )
    np.testing.assert_allclose(new[:, :6], up[np.minimum(np.arange(6) + k, 5)], rtol=1e-5)
    np.testing.assert_allclose(new[:, 6:], down[np.minimum(np.arange(7) + k, 6)], rtol=1e-5)
    # between measured pulses (a device's step scale makes fractional counts): linear in the
    # pulse count, and each branch's inverse gives the count back
    np.testing.assert_allclose(up_p, np.interp(p, np.arange(6), x_up), atol=1e-6)
    np.testing.assert_allclose(p_back, p, atol=1e-5)
    np.testing.assert_allclose(down_q, np.interp(q, np.arange(7), x_down), atol=1e-6)
    np.testing.assert_allclose(q_back, q, atol=1e-5)


def test_non_monotonic_table_names_the_pulse():
    with pytest.raises(kh.InvalidInputError, match=r"up branch .* pulse 3 gives 2 after 3"):
        kh.TableResponse([0.0, 1.0, 3.0, 2.0, 4.0], [4.0, 0.0])
    with pytest.raises(kh.InvalidInputError, match=r"down branch .* pulse 2 gives"):
        kh.TableResponse([0.0, 4.0], [4.0, 3.0, 3.0, 0.0])
    with pytest.raises(kh.InvalidInputError, match="at least two"):
        kh.TableResponse([1.0], [1.0, 0.0])


def test_table_from_csv_round_trips(tmp_path):
    path = tmp_path / "device.csv"
    rows = ["pulse,up,down"]
    for i in range(len(DOWN)):
        rows.append(f"{i},{UP[i] if i < len(UP) else ''},{DOWN[i]}")
    path.write_text("\n".join(rows) + "\n")
    read = kh.TableResponse.from_csv(path)
    direct = kh.TableResponse(UP, DOWN)
    assert read.pulses == (5, 6)
    np.testing.assert_allclose(read.up_table, direct.up_table, rtol=1e-12)
    np.testing.assert_allclose(read.down_table, direct.down_table, rtol=1e-12)
    # the shorter branch may be the down one, in any column order, without a pulse column
    up, down = DOWN[::-1], UP[::-1]
    other = tmp_path / "other.csv"
    cells = [f"{down[i] if i < len(down) else ''},{up[i]}" for i in range(len(up))]
    other.write_text("down,up\n" + "\n".join(cells) + "\n")
    read = kh.TableResponse.from_csv(other)
    assert read.pulses == (6, 5)
    np.testing.assert_allclose(read.up_table, kh.TableResponse(up, down).up_table, rtol=1e-12)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("pulse,up\n0,1e-6\n1,2e-6\n", "columns 'up' and 'down'"),
        ("up,down\n", "at least one row"),
        ("up,down\n1e-6,2e-6\nabc,1e-6\n", "not a number"),
        ("up,down\n1e-6,3e-6\n,2e-6\n3e-6,1e-6\n", "empty cell before its end"),
        ("up,down\n1e-6,3e-6\n3e-6,2e-6\n2e-6,1e-6\n", "pulse 2 gives"),
    ],
)
def test_bad_table_csv_is_refused(tmp_path, text, match):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(kh.InvalidInputError, match=match):
        kh.TableResponse.from_csv(path)


def test_missing_table_csv_is_refused(tmp_path):
    with pytest.raises(kh.InvalidInputError, match="cannot read"):
        kh.TableResponse.from_csv(tmp_path / "absent.csv")


# ---- presets against their sources --------------------------------------------------------

# NeuroSim V3.0 manual Table II (and Cell.cpp for Ag:a-Si's 100 LTD pulses): pulses up/down,
# NL up/down, Gmax/Gmin (= 1/RON, Gmax/(on/off)), cycle-to-cycle σ as a fraction of the range
NEUROSIM_PRESETS = {
    "epiram": ((64, 64), (0.5, -0.5), 50.2, 0.02),
    "ag-a-si": ((97, 100), (2.4, -4.88), 12.5, 0.035),
    "alox-hfo2": ((40, 40), (1.94, -0.61), 4.43, 0.05),
    "taox-hfox": ((128, 128), (0.04, -0.63), 10.0, 0.037),
}
# aihwkit presets/devices.py (IBM/aihwkit 4545f11): the response's fields, dw_min_std,
# dw_min_dtod (log-normal or not), w_max_dtod (relative to w_max)
AIHWKIT_PRESETS = {
    "reram-es": (
        kh.ExpStepResponse,
        dict(
            dw_min=0.00135,
            up_down=0.259359,
            a_up=-1.18445,
            a_down=-0.081404,
            gamma_up=5.0,
            gamma_down=5.0,
            a=-0.5,
            b=-0.5,
            w_min=-1.0,
            w_max=1.0,
        ),
        5.0,
        (0.2, False),
        0.3,
    ),
    "reram-sb": (
        kh.SoftBoundsResponse,
        dict(dw_min=0.002, up_down=0.0, w_min=-0.75, w_max=1.25),
        3.75,
        (0.3, False),
        0.24,
    ),
    "reram-om": (
        kh.SoftBoundsResponse,
        dict(dw_min=0.0949, up_down=0.0, w_min=-1.0, w_max=1.0),
        0.4158,
        (0.7829, True),
        0.3499,
    ),
    "reram-hfo2": (
        kh.SoftBoundsResponse,
        dict(dw_min=0.4622, up_down=0.0, w_min=-1.0, w_max=1.0),
        0.2174,
        (0.7125, True),
        0.4295,
    ),
}


def test_every_preset_is_verified_builds_and_cites_its_source():
    assert set(kh.DEVICE_PRESETS) == set(NEUROSIM_PRESETS) | set(AIHWKIT_PRESETS)
    key = jax.random.PRNGKey(14)
    for name, preset in kh.DEVICE_PRESETS.items():
        assert isinstance(preset.source, str) and len(preset.source) > 20, name
        device = kh.device_preset(name, 2e-3, seed=1)
        assert isinstance(device, kh.PulsedDevice) and device.g_max == 2e-3 and device.name == name
        assert device.stuck_fraction == 0  # aihwkit ships corrupt devices off; NeuroSim has none
        cells = device.sample_cells(SHAPE, 0)
        state = device.initial_state(jnp.full(SHAPE, 1e-3), cells)
        update = jax.random.normal(key, SHAPE) * 2e-4
        new = np.asarray(device.program(state, update, key, cells))
        lo = device.g_min if cells is None else np.asarray(cells.g_lo)
        hi = device.g_max if cells is None else np.asarray(cells.g_hi)
        assert np.all(np.isfinite(new)) and np.all(new >= lo - 1e-12) and np.all(new <= hi + 1e-12)
        assert not np.array_equal(new, np.asarray(state)), name
    assert kh.device_preset("epiram", 1.0, write_noise=0.0).write_noise == 0.0
    with pytest.raises(kh.InvalidInputError, match="unknown device preset"):
        kh.device_preset("nope", 1.0)


@pytest.mark.parametrize("name", sorted(NEUROSIM_PRESETS))
def test_neurosim_presets_match_the_manual(name):
    (p_up, p_down), (nl_up, nl_down), on_off, c2c = NEUROSIM_PRESETS[name]
    device = kh.device_preset(name, 1e-3)
    r = device.response
    assert isinstance(r, kh.NeuroSimResponse)
    assert (r.pulses_up, r.pulses_down) == (p_up, p_down)
    assert (r.nl_up, r.nl_down) == (nl_up, nl_down)
    assert device.g_max / device.g_min == pytest.approx(on_off, rel=1e-3)  # manual: 3 digits
    # NeuroSim's noise, σ·(G_max − G_min)·√n for n pulses, equals this device's σ_w·|Δ|/√n for
    # a nominal step Δ = n·(G_max − G_min)/P_max when σ_w = σ·P_max
    assert device.write_noise / p_up == pytest.approx(c2c, rel=1e-12)
    assert device.read_noise == device.d2d_step == device.d2d_bounds == 0


@pytest.mark.parametrize("name", sorted(AIHWKIT_PRESETS))
def test_aihwkit_presets_match_aihwkit(name):
    kind, fields, dw_min_std, (dtod, lognormal), w_max_dtod = AIHWKIT_PRESETS[name]
    device = kh.device_preset(name, 1e-3)
    r = device.response
    assert isinstance(r, kind)
    for field, value in fields.items():
        assert getattr(r, field) == value, (name, field)
    assert device.g_min == 0.0  # aihwkit has no off state: [w_min, w_max] onto [0, g_max]
    assert device.write_noise == dw_min_std
    assert (device.d2d_step, device.d2d_lognormal) == (dtod, lognormal)
    # aihwkit spreads w_max by w_max·w_max_dtod; on a weight span w_max − w_min that is this
    # fraction of g_max (the presets round it to two digits)
    spread = w_max_dtod * fields["w_max"] / (fields["w_max"] - fields["w_min"])
    assert device.d2d_bounds == pytest.approx(spread, abs=0.005)


# ---- the ideal path and reproducibility ------------------------------------------------------


def _data():
    rng = np.random.default_rng(0)
    return jnp.asarray(rng.random((6, 12))), jnp.asarray(np.eye(3)[rng.integers(0, 3, 6)])


def _trainer(device):
    """(initial params, a function running ``n`` steps from them with keys 0…n−1 + offset)."""
    x, y = _data()
    cfg = kh.TrainConfig(model="drn-xs", lr=0.1, n_sweeps=8)
    net = kh.drn(jax.random.PRNGKey(0), (12, 8, 3), input_gain=4.0, device=device)
    params, static = eqx.partition(net, net.trainable_filter())
    optimizer = optax.sgd(cfg.lr)
    step = kh.make_train_step(cfg, static, optimizer)

    def run(n, offset=0):
        p, opt_state = params, optimizer.init(params)
        for i in range(n):
            p, opt_state, _ = step(p, opt_state, x, y, jax.random.PRNGKey(offset + i))
        return p

    return params, run


@pytest.mark.skipif(
    not jax.config.jax_enable_x64,
    reason="2⁻²⁰ levels are finer than float32 round-off in an EqProp gradient",
)
def test_pulsed_device_with_no_non_ideality_trains_like_the_ideal_one():
    g_max, levels, n_steps = 1.0, 2**20 + 1, 4
    step = g_max / (levels - 1)
    start, run_ideal = _trainer(kh.IdealDevice(g_max))
    ideal = run_ideal(n_steps)
    _, run_fine = _trainer(kh.PulsedDevice(g_max, 0.0, kh.LinearResponse(levels)))
    fine = run_fine(n_steps)
    # half a level at the start and at each write, and nothing else
    tolerance = (n_steps + 1) * step / 2 + 1e-12
    for w_fine, w_ideal, w_start in zip(fine.weights, ideal.weights, start.weights, strict=True):
        assert float(jnp.max(jnp.abs(w_fine - w_ideal))) <= tolerance
        assert float(jnp.max(jnp.abs(w_ideal - w_start))) > 1000 * step  # training moved them
        level = np.asarray(w_fine, np.float64) / step  # the device wrote them, on its grid
        np.testing.assert_allclose(level, np.round(level), atol=1e-6)
    for b_fine, b_ideal in zip(fine.biases, ideal.biases, strict=True):
        np.testing.assert_allclose(b_fine, b_ideal, atol=1e-6)


def test_noisy_pulsed_training_reproduces_with_its_keys():
    device = kh.PulsedDevice(
        1.0,
        0.0,
        kh.LinearResponse(64),
        read_noise=0.05,
        write_noise=0.5,
        d2d_step=0.1,
        stuck_fraction=0.05,
        stochastic_rounding=True,
        seed=7,
    )
    _, run = _trainer(device)
    a, b, c = run(3), run(3), run(3, offset=10)
    leaves = lambda p: np.concatenate([np.ravel(v) for v in jax.tree_util.tree_leaves(p)])
    np.testing.assert_array_equal(leaves(a), leaves(b))
    assert not np.allclose(leaves(a), leaves(c))
    # a network built again draws the same cells from the device's seed
    nets = [kh.drn(jax.random.PRNGKey(0), (12, 8, 3), input_gain=4.0, device=device) for _ in "ab"]
    np.testing.assert_array_equal(leaves(nets[0].cells), leaves(nets[1].cells))
    np.testing.assert_array_equal(leaves(nets[0].weights), leaves(nets[1].weights))
    # and reads its conductances afresh with each key, the same with the same key
    read = lambda k: leaves(nets[0].read(jax.random.PRNGKey(k)).weights)
    np.testing.assert_array_equal(read(1), read(1))
    assert not np.allclose(read(1), read(2))


# ---- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(g_max=-1.0), "g_max must be > 0"),
        (dict(g_max=1.0, g_min=1.0), "g_min < g_max"),
        (dict(g_max=1.0, g_min=2.0), "g_min < g_max"),
        (dict(g_max=1.0, g_min=-0.1), "g_min must be ≥ 0"),
        (dict(g_max=1.0, write_noise=-0.1), "write_noise must be ≥ 0"),
        (dict(g_max=1.0, read_noise=-0.1), "read_noise must be ≥ 0"),
        (dict(g_max=1.0, d2d_step=-0.1), "d2d_step must be ≥ 0"),
        (dict(g_max=1.0, d2d_bounds=1.0), "d2d_bounds"),
        (dict(g_max=1.0, stuck_fraction=1.5), "stuck_fraction is a fraction"),
        (dict(g_max=1.0, stuck_high=-0.5), "stuck_high must be ≥ 0"),
        (dict(g_max=1.0, up_down=1.0), "up_down must lie in"),
        (dict(g_max=1.0, up_down=-1.0), "up_down must lie in"),
        (dict(g_max=1.0, max_pulses=0), "max_pulses"),
        (dict(g_max=1.0, seed=-1), "seed"),
        (dict(g_max=float("nan")), "finite"),
        (dict(g_max=1.0, response="linear"), "pulse response"),
    ],
)
def test_bad_pulsed_device_is_refused(kwargs, match):
    with pytest.raises(kh.InvalidInputError, match=match):
        kh.PulsedDevice(**kwargs)


def test_bad_responses_are_refused():
    with pytest.raises(kh.InvalidInputError, match="n_levels"):
        kh.LinearResponse(1)
    with pytest.raises(kh.InvalidInputError, match="n_levels"):
        kh.LinearResponse(2.5)
    with pytest.raises(kh.InvalidInputError, match="up_down"):
        kh.SoftBoundsResponse(0.01, up_down=1.5)
    with pytest.raises(kh.InvalidInputError, match="w_min < 0 < w_max"):
        kh.SoftBoundsResponse(0.01, w_min=0.5)
    with pytest.raises(kh.InvalidInputError, match="dw_min"):
        kh.ExpStepResponse(dw_min=0.0)
    with pytest.raises(kh.InvalidInputError, match="max_pulses"):
        kh.ExpStepResponse(dw_min=0.01, max_pulses=0)
    with pytest.raises(kh.InvalidInputError, match="nonlinearity"):
        kh.NeuroSimResponse(10, 10, 12.0, -1.0)
    state, update = jnp.full((3,), 0.5), jnp.full((3,), 0.1)
    with pytest.raises(kh.InvalidInputError, match="write_noise needs a PRNG key"):
        _program(_linear(write_noise=0.1), state, update)
