"""kirchhoff.plot: each figure shows what its data says (drawn data checked, not only that it
runs), and training's learning-curve PNG leaves a notebook's Matplotlib alone."""

import json

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import schemdraw.elements as elm

import kirchhoff as kh
import kirchhoff.plot as kplot


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def small_circuit():
    return kh.Circuit(
        [
            kh.Ground("gnd"),
            kh.Input(["in0", "in1"]),
            kh.Resistor(
                ["in0", "in1", "a", "a", "b"],
                ["a", "b", "b", "gnd", "out"],
                [1.0, 0.6, 0.8, 0.5, 1.2],
            ),
            kh.Resistor("a", "b", 0.3),  # parallel to the 0.8 S one
            kh.ShockleyDiode(["a", "gnd"], ["gnd", "b"], saturation_current=1e-4),
            kh.Resistor("out", "gnd", 1.5),
            kh.CurrentSource("out", 0.05),
        ],
        outputs=["out"],
    )


def _count(drawing, kind):
    return sum(type(e) is kind for e in drawing.elements)


def test_schematic_draws_every_element_once_with_diodes_the_right_way():
    c = small_circuit()
    d = kplot.schematic(c)
    assert _count(d, elm.Resistor) == 7
    assert _count(d, elm.Diode) == 2
    assert _count(d, elm.SourceV) == 2  # the inputs
    assert _count(d, elm.SourceI) == 1
    assert _count(d, elm.Dot) == 5  # in0 in1 a b out; ground is a symbol, not a node
    # every element that reaches ground ends on a ground symbol: 2 resistors, 2 diodes,
    # 2 inputs, 1 current source
    assert _count(d, elm.Ground) == 2 + 2 + 2 + 1
    dots = {
        str(e._userlabels[0].label).split(" ")[0]: np.array(e.absanchors["center"])
        for e in d.elements
        if type(e) is elm.Dot
    }
    # the diode a -> gnd starts at a and points down to ground; gnd -> b points up into b
    diodes = [e for e in d.elements if type(e) is elm.Diode]
    starts = [np.array(e.absanchors["start"]) for e in diodes]
    ends = [np.array(e.absanchors["end"]) for e in diodes]
    assert starts[0][1] == pytest.approx(dots["a"][1]) and ends[0][1] < starts[0][1]
    assert ends[1][1] == pytest.approx(dots["b"][1]) and starts[1][1] < ends[1][1]
    labels = [str(lab.label) for e in d.elements for lab in getattr(e, "_userlabels", [])]
    assert "300 mS" in labels and "50 mA" in labels and "out (out)" in labels


def test_schematic_refuses_what_it_cannot_draw():
    net = kh.seed_network(jax.random.PRNGKey(0), n_features=2, n_hidden=2, n_outputs=1)
    with pytest.raises(TypeError, match="to_circuit"):
        kplot.schematic(net)
    d = kplot.schematic(net.to_circuit(), values=False)  # amplifiers and rails draw
    assert _count(d, elm.SourceControlledV) == 2


@pytest.mark.parametrize(
    "value, unit, text",
    [(9.99999e-7, "A", "1 µA"), (0.0012, "S", "1.2 mS"), (1.5, "S", "1.5 S"), (0.0, "V", "0 V")],
)
def test_engineering_labels(value, unit, text):
    assert kplot._fmt(value, unit) == text


def test_energy_profile_touches_zero_at_the_equilibrium_from_above():
    c = small_circuit()
    x = jnp.array([[1.0, -0.5]])
    eq = kh.DampedNewton().solve(c, x)
    v = np.asarray(eq.free[0])
    ax = kplot.energy_profile(
        lambda f: c.energy(jnp.asarray(f), x[0]),
        v,
        {"node a": np.eye(c.n_free)[0], "random": np.ones(c.n_free)},
    )
    for line in ax.lines[:2]:
        t, e = line.get_data()
        assert e[len(e) // 2] == pytest.approx(0.0, abs=1e-12)
        assert np.all(e >= -1e-9) and e.max() > 0
    # away from the equilibrium the same function does not touch zero at t = 0
    ax = kplot.energy_profile(
        lambda f: c.energy(jnp.asarray(f), x[0]), v + 0.3, {"d": np.ones(c.n_free)}
    )
    _, e = ax.lines[0].get_data()
    assert e.min() < -1e-6


def test_estimator_errors_draws_the_given_points_log_log():
    betas = np.logspace(-3, 0, 4)
    errs = {"positive": betas, "centered": betas**2}
    ax = kplot.estimator_errors(betas, errs, slopes={"positive": 1.0, "centered": 2.0})
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    np.testing.assert_allclose(ax.lines[1].get_ydata(), betas**2)
    assert ax.lines[1].get_color() == kplot.VARIANT_COLORS["centered"]
    assert "slope 2.00" in ax.get_legend().get_texts()[1].get_text()


def _records(n, test=True):
    recs = [
        dict(
            epoch=k + 1,
            train_loss=1.0 / (k + 1),
            train_error_percent=50.0 / (k + 1),
            val_loss=1.1 / (k + 1),
            val_error_percent=55.0 / (k + 1),
            train_seconds=30.0,
            eval_seconds=30.0,
        )
        for k in range(n)
    ]
    if test:
        recs[-1].update(test_loss=0.3, test_error_percent=12.5)
    return recs


def test_learning_curve_and_error_curves():
    with pytest.raises(ValueError, match="no records"):
        kplot.learning_curve([])
    loss_ax, err_ax = kplot.learning_curve(_records(3))
    labels = [t.get_text() for t in err_ax.get_legend().get_texts()]
    assert labels == ["train (running)", "validation", "test (run's end)"]
    np.testing.assert_allclose(err_ax.lines[2].get_data()[1], [12.5])  # the test: once
    ax = kplot.error_curves(
        {"a": _records(3), "b": _records(2, test=False)}, x="minutes", picked={"a": 2}
    )
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [1.0, 2.0, 3.0])  # 60 s per epoch
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["a: 12.50 % test", "b"]
    picked = ax.lines[2]  # a's line, a's test square, a's picked marker
    assert picked.get_marker() == "v" and picked.get_xdata()[0] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="'epoch' or 'minutes'"):
        kplot.error_curves({"a": _records(1)}, x="hours")


def test_confusion_matrix_counts():
    labels = np.array([0, 0, 1, 2, 2, 2])
    preds = np.array([0, 1, 1, 2, 0, 2])
    _, m = kplot.confusion_matrix(labels, preds, n_classes=3)
    np.testing.assert_array_equal(m, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    with pytest.raises(ValueError, match="5 predictions"):
        kplot.confusion_matrix(labels, preds[:5])


def test_conductance_histograms_count_every_conductance():
    net = kh.drn(jax.random.PRNGKey(0), (6, 4, 3))
    ax = kplot.conductance_histograms(net)
    assert len(ax.patches) == 2  # one step histogram per layer
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "layer 1 (48 conductances)",
        "layer 2 (12 conductances)",
    ]


def test_node_voltages_symmetric_scale_and_shape_checks():
    v = np.array([[0.2, -0.5, 0.1, 0.0], [0.4, 0.3, -0.1, 0.2]])
    axes = kplot.node_voltages(v, image_shape=(2, 2), titles=["a", "b"])
    assert len(axes) == 2
    assert axes[0].images[0].get_clim() == (-0.5, 0.5)
    np.testing.assert_allclose(axes[1].images[0].get_array(), v[1].reshape(2, 2))
    with pytest.raises(ValueError, match="does not hold 4 nodes"):
        kplot.node_voltages(v, image_shape=(3, 3))
    with pytest.raises(ValueError, match="examples, nodes"):
        kplot.node_voltages(v[0])


def test_pulse_response_of_linear_levels_is_a_triangle():
    ax = kplot.pulse_response({"linear": kh.LinearResponse(8)})  # 8 levels: 7 steps
    t, g = ax.lines[0].get_data()
    np.testing.assert_allclose(g, np.r_[np.arange(8), np.arange(6, -1, -1)] / 7, atol=1e-6)
    # a device is programmed pulse by pulse: with write noise the cells part ways
    dev = kh.PulsedDevice(1e-3, response=kh.LinearResponse(16), write_noise=0.5)
    ax = kplot.pulse_response({"noisy": dev}, n_devices=4)
    traces = np.array([line.get_ydata() for line in ax.lines[:4]])
    assert traces.shape == (4, 31) and np.ptp(traces[:, 8]) > 0
    assert np.all((traces >= 0) & (traces <= 1 + 1e-6))


def test_nonideality_effects_one_panel_per_nonideality():
    rows = [
        dict(axis="ideal", value=None, algorithm="eqprop", test_error_percent=5.0),
        dict(axis="levels", value=16, algorithm="eqprop", test_error_percent=9.0),
        dict(axis="levels", value=4, algorithm="eqprop", test_error_percent=30.0),
        dict(axis="read_noise", value=0.01, algorithm="eqprop", test_error_percent=6.0),
    ]
    axes = kplot.nonideality_effects(rows)
    assert [a.get_title() for a in axes] == ["levels", "read_noise"]
    np.testing.assert_allclose(axes[0].lines[0].get_xdata(), [4, 16])  # sorted by strength
    assert axes[0].lines[1].get_ydata()[0] == 5.0  # the ideal device's error, dotted
    with pytest.raises(ValueError, match="no non-ideality"):
        kplot.nonideality_effects(rows[:1])


def test_training_curve_png_leaves_the_backend_alone(tmp_path, monkeypatch):
    """A run inside a notebook writes learning_curve.png without matplotlib.use (which would
    switch the notebook off its inline backend) and without a pyplot figure left open."""
    from kirchhoff._training._rundir import plot_learning_curve

    def refuse(*a, **k):
        raise AssertionError("matplotlib.use called")

    monkeypatch.setattr(matplotlib, "use", refuse)
    before = plt.get_fignums()
    recs = _records(2)
    for r in recs:
        r.update(model="drn-xs", dataset="mnist_subset", algorithm="eqprop")
    plot_learning_curve(json.loads(json.dumps(recs)), tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.get_fignums() == before


def test_schematic_draws_a_user_held_element_on_each_of_its_nodes():
    """A held element of the user's that is not one-terminal (a differential input holding
    two nodes) is drawn as a box from ground on each node it holds."""
    from test_new_element import DifferentialInput

    c = kh.Circuit(
        [
            kh.Ground("gnd"),
            DifferentialInput("p", "n", 2.0),
            kh.Resistor(["p", "a", "a"], ["a", "n", "gnd"], [1.0, 0.5, 0.2]),
        ],
        outputs=["a"],
    )
    d = kplot.schematic(c)
    boxes = [e for e in d.elements if type(e) is elm.RBox]
    assert len(boxes) == 2 and _count(d, elm.Resistor) == 3
    assert _count(d, elm.Dot) == 3  # p, n, a
