"""Figures for circuits, gradients and training runs: what the notebooks show and the
benchmarks save, drawn by one set of functions.

Every function draws into a Matplotlib ``Axes`` (or a row of them) that it is given, or into
a new figure, and returns what it drew on; none saves or shows anything, so the caller picks
the file (``fig.savefig``) or the notebook displays it. The inputs are plain data — arrays,
``metrics.jsonl`` records, a [`Circuit`][kirchhoff.Circuit] — so this module sits beside the
energy layer: it imports circuits and elements, never the solvers or the training code
(which import it).

- [`schematic`][kirchhoff.plot.schematic] — a circuit's schematic, laid out from the
  ``Circuit`` object (schemdraw).
- [`energy_profile`][kirchhoff.plot.energy_profile] — a circuit's energy along a line through
  a point (its equilibrium).
- [`estimator_errors`][kirchhoff.plot.estimator_errors] — EqProp estimators' error against a
  reference, against β.
- [`learning_curve`][kirchhoff.plot.learning_curve], [`error_curves`][kirchhoff.plot.error_curves]
  — a run's loss and error; several runs' errors.
- [`confusion_matrix`][kirchhoff.plot.confusion_matrix],
  [`conductance_histograms`][kirchhoff.plot.conductance_histograms],
  [`node_voltages`][kirchhoff.plot.node_voltages].
- [`pulse_response`][kirchhoff.plot.pulse_response] — a device's conductance against pulse
  number, up then down.
- [`nonideality_effects`][kirchhoff.plot.nonideality_effects] — test error against the
  strength of each non-ideality.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ._circuit import Circuit
from ._elements import (
    AbstractBounded,
    AbstractDissipative,
    AbstractDriven,
    AbstractHeld,
    AbstractSource,
    CurrentSource,
    Input,
    Resistor,
    ShockleyDiode,
    VoltageSource,
)

__all__ = [
    "schematic",
    "energy_profile",
    "estimator_errors",
    "learning_curve",
    "error_curves",
    "confusion_matrix",
    "conductance_histograms",
    "node_voltages",
    "pulse_response",
    "nonideality_effects",
    "VARIANT_COLORS",
]

VARIANT_COLORS = {"positive": "tab:red", "negative": "tab:blue", "centered": "tab:green"}
"""The Matplotlib colour of each EqProp estimator (a key of
[`VARIANTS`][kirchhoff.VARIANTS]), ``{variant: colour}``, the same in every figure
([`estimator_errors`][kirchhoff.plot.estimator_errors] uses it)."""


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def _axes(ax, n: int = 1, size=(5.0, 3.6)):
    """``ax`` as a list of ``n`` axes, or a new figure's row of ``n``."""
    if ax is None:
        fig, axes = _pyplot().subplots(1, n, figsize=(size[0] * n, size[1]), squeeze=False)
        return list(axes[0])
    axes = list(np.atleast_1d(ax))
    if len(axes) != n:
        raise ValueError(f"expected {n} axes, got {len(axes)}")
    return axes


# --------------------------------------------------------------------------- schematic


def _fmt(value: float, unit: str) -> str:
    """Engineering notation: 0.0012 S -> '1.2 mS'."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}"
    prefixes = {-12: "p", -9: "n", -6: "µ", -3: "m", 0: "", 3: "k", 6: "M"}
    exp = int(math.floor(math.log10(abs(value)) / 3) * 3)
    if abs(value) / 10.0**exp >= 999.5:  # 9.99999e-7 (float32's 1e-6) is 1 µ, not 1000 n
        exp += 3
    exp = min(max(exp, -12), 6)
    return f"{value / 10**exp:.3g} {prefixes[exp]}{unit}"


def _ground_nodes(circuit: Circuit) -> set:
    """Nodes held at a constant 0 V by a ``VoltageSource`` (``Ground``): drawn as ground."""
    return {
        name
        for e in circuit.elements
        if isinstance(e, VoltageSource)
        for name, v in zip(e.node, np.asarray(e.volts), strict=True)
        if float(v) == 0.0
    }


def _edges(circuit: Circuit) -> list[tuple]:
    """(kind, element, index, node a, node b) for every two-node element or amplifier."""
    edges = []
    for e in circuit.elements:
        if isinstance(e, AbstractDriven):
            for k, (s, d) in enumerate(zip(e.source, e.drive, strict=True)):
                edges.append(("amp", e, k, s, d))
        elif isinstance(e, AbstractDissipative | AbstractBounded):
            for k, (a, c) in enumerate(zip(e.anode, e.cathode, strict=True)):
                edges.append(("two", e, k, a, c))
    return edges


def _columns(circuit: Circuit, ground: set, edges) -> dict:
    """Column of each non-ground node: its distance (in elements, not through ground) from
    the nearest held node; nodes no held node reaches go after the rest."""
    held = [
        n
        for e in circuit.elements
        if isinstance(e, AbstractHeld)
        for nodes in e.terminal_names()
        for n in nodes
    ]
    nbrs = defaultdict(list)
    for _, _, _, a, b in edges:
        if a not in ground and b not in ground:
            nbrs[a].append(b)
            nbrs[b].append(a)
    col = {n: 0 for n in held if n not in ground}
    frontier = list(col)
    while frontier:
        nxt = []
        for n in frontier:
            for m in nbrs[n]:
                if m not in col:
                    col[m] = col[n] + 1
                    nxt.append(m)
        frontier = nxt
    last = max(col.values(), default=-1) + 1
    for n in circuit.node_names:
        if n not in ground and n not in col:
            col[n] = last
    return col


def schematic(circuit: Circuit, *, values: bool = True, ax=None, unit: float = 2.2):
    """Draw ``circuit`` as a schematic, laid out from its elements (nothing by hand).

    Nodes that no element separates from a held node (an input or a voltage source) go in
    column 0, their neighbours in column 1, and so on; nodes held at 0 V are drawn as ground
    symbols under each element that reaches them. Inputs and other voltage sources are
    voltage sources from ground, current sources point into their node, amplifiers are
    controlled voltage sources labelled with their gain and controlling node, and parallel
    elements between the same two nodes are drawn side by side. Outputs are marked.

    Args:
        circuit: a [`Circuit`][kirchhoff.Circuit] (a ``LayeredNetwork``: use ``to_circuit()``,
            though a drawing of more than a few dozen elements will not be readable).
        values: label each element with its value (conductances in siemens, currents in
            amperes, diode saturation currents).
        ax: a Matplotlib ``Axes`` to draw on (default: a new figure, sized to the circuit).
        unit: length of one element in schemdraw units.

    Returns:
        the ``schemdraw.Drawing``, already drawn on the axes.

    Raises:
        TypeError: ``circuit`` is not a [`Circuit`][kirchhoff.Circuit].
    """
    import schemdraw
    import schemdraw.elements as elm

    if not isinstance(circuit, Circuit):
        raise TypeError(
            f"schematic: expected a kirchhoff.Circuit, got {type(circuit).__name__} "
            "(a LayeredNetwork draws through .to_circuit())"
        )
    ground = _ground_nodes(circuit)
    edges = _edges(circuit)
    col = _columns(circuit, ground, edges)
    rows_used = defaultdict(int)
    pos = {}
    dx, dy = 3.2 * unit, 2.6 * unit
    for n in circuit.node_names:  # the circuit's node order, so the drawing is stable
        if n in col:
            c = col[n]
            pos[n] = (c * dx, -rows_used[c] * dy)
            rows_used[c] += 1
    stubs = defaultdict(int)  # how many ground-going elements each node already has

    def ground_point(node):
        x, y = pos[node]
        k = stubs[node]
        stubs[node] += 1
        return (x + 0.9 * unit * k, y), (x + 0.9 * unit * k, y - 1.25 * unit)

    if ax is None:
        n_cols = max(col.values(), default=0) + 1
        n_rows = max(rows_used.values(), default=1)
        fig_w = min(3.0 + 2.6 * n_cols, 16)
        ax = _pyplot().subplots(figsize=(fig_w, 1.6 + 1.9 * n_rows))[1]
    d = schemdraw.Drawing(canvas=ax, show=False, fontsize=9, unit=unit)
    pair_count = defaultdict(int)

    def label_of(kind, e, k):
        if not values:
            return ""
        if isinstance(e, Resistor):
            return _fmt(float(np.asarray(e.conductance)[k]), "S")
        if isinstance(e, ShockleyDiode):
            return "Is " + _fmt(float(np.asarray(e.saturation_current)[k]), "A")
        if kind == "amp":
            return f"×{e.gain[k]:g}"
        return type(e).__name__

    def symbol(kind, e):
        if kind == "amp":
            return elm.SourceControlledV()
        if isinstance(e, Resistor):
            return elm.Resistor()
        if isinstance(e, AbstractBounded | ShockleyDiode):
            return elm.Diode()
        return elm.RBox()  # a user-defined dissipative element

    for kind, e, k, a, b in edges:
        lab = label_of(kind, e, k)
        if kind == "amp":  # the drive node is held at gain × the source node's potential
            top, bottom = ground_point(b)
            if top != pos[b]:
                d += elm.Line().endpoints(pos[b], top)
            d += symbol(kind, e).endpoints(bottom, top).label(f"{lab} v({a})", loc="bottom")
            d += elm.Ground().at(bottom)
            continue
        if a in ground or b in ground:
            node = b if a in ground else a
            top, bottom = ground_point(node)
            if top != pos[node]:
                d += elm.Line().endpoints(pos[node], top)
            ends = (top, bottom) if b in ground else (bottom, top)  # diode: anode → cathode
            d += symbol(kind, e).endpoints(*ends).label(lab, loc="bottom")
            d += elm.Ground().at(bottom)
            continue
        key = frozenset((a, b))
        shift = pair_count[key]
        pair_count[key] += 1
        pa, pb = np.array(pos[a]), np.array(pos[b])
        if shift:  # a parallel element: offset perpendicular to the line between the nodes
            along = (pb - pa) / max(np.linalg.norm(pb - pa), 1e-9)
            off = np.array([-along[1], along[0]]) * 0.9 * unit * shift
            d += elm.Line().endpoints(tuple(pa), tuple(pa + off))
            d += elm.Line().endpoints(tuple(pb + off), tuple(pb))
            pa, pb = pa + off, pb + off
        if abs(pa[0] - pb[0]) > 1e-9 and abs(pa[1] - pb[1]) > 1e-9:
            # a diagonal: the element near its first node, so crossing diagonals' symbols
            # and labels do not land on each other
            mid = pa + 0.42 * (pb - pa)
            d += symbol(kind, e).endpoints(tuple(pa), tuple(mid)).label(lab)
            d += elm.Line().endpoints(tuple(mid), tuple(pb))
            continue
        d += symbol(kind, e).endpoints(tuple(pa), tuple(pb)).label(lab)

    for e in circuit.elements:
        if not isinstance(e, AbstractSource | AbstractHeld):
            continue
        # every held or driven node, from ground: one terminal for the built-in ones, any
        # number for a user's (a differential input holds two nodes per input)
        for nodes in e.terminal_names():
            for k, n in enumerate(nodes):
                if n in ground:
                    continue
                top, bottom = ground_point(n)
                if top != pos[n]:
                    d += elm.Line().endpoints(pos[n], top)
                if isinstance(e, Input):
                    src, lab = elm.SourceV(), f"x{circuit.input_names.index(n)}"
                elif isinstance(e, CurrentSource):
                    src = elm.SourceI()
                    lab = _fmt(float(np.asarray(e.current)[k]), "A") if values else ""
                elif isinstance(e, VoltageSource):
                    src = elm.SourceV()
                    lab = _fmt(float(np.asarray(e.volts)[k]), "V")
                else:
                    src, lab = elm.RBox(), type(e).__name__
                d += src.endpoints(bottom, top).label(lab, loc="bottom")  # into the node
                d += elm.Ground().at(bottom)
    for n, p in pos.items():
        mark = " (out)" if n in circuit.output_names else ""
        d += elm.Dot().at(p).label(f"{n}{mark}", loc="top", ofst=0.15, color="navy")
    d.draw(show=False)
    ax.set_aspect("equal")
    ax.axis("off")
    return d


# --------------------------------------------------------------------------- physics


def energy_profile(
    energy: Callable[[np.ndarray], Any],
    point,
    directions: Mapping[str, Any],
    *,
    span: float = 1.0,
    n: int = 81,
    ax=None,
):
    """A function of the free potentials (the circuit's energy) along lines through ``point``.

    Args:
        energy: ``free -> scalar``, e.g. ``lambda v: circuit.energy(v, x)`` for one example.
        point: the free potentials the lines pass through (volts), e.g. an equilibrium.
        directions: ``{label: direction}``; each direction is normalised to unit length.
        span: the lines run from ``point − span·d`` to ``point + span·d`` (volts).
        n: points per line.
        ax: the Axes (default: a new figure).

    Returns:
        the Axes. The energy is drawn relative to its value at ``point``, so a minimum shows
            as every curve touching zero from above at t = 0.
    """
    import jax

    (ax,) = _axes(ax)
    point = np.asarray(point, dtype=float)
    t = np.linspace(-span, span, n)
    try:  # a JAX function: every point in one compiled call
        batched = jax.jit(jax.vmap(energy))
        e0 = float(batched(point[None])[0])
        values = lambda pts: np.asarray(batched(pts), dtype=float)
    except Exception:  # anything else: point by point
        e0 = float(energy(point))
        values = lambda pts: np.array([float(energy(p)) for p in pts])
    for name, direction in directions.items():
        d = np.asarray(direction, dtype=float)
        d = d / np.linalg.norm(d)
        ax.plot(t, values(point[None] + t[:, None] * d[None]) - e0, label=name)
    ax.axvline(0.0, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("distance t along the line (V)")
    ax.set_ylabel("E(v* + t·d) − E(v*)  (W)")
    ax.legend(fontsize=8)
    return ax


def estimator_errors(
    betas,
    errors: Mapping[str, Sequence[float]],
    *,
    ax=None,
    slopes: Mapping[str, float | None] | None = None,
    title: str | None = None,
):
    """Relative error of each EqProp estimator against a reference gradient, against β.

    Args:
        betas: the nudge strengths (siemens), shape ``(n,)``.
        errors: ``{variant: errors}``, each of shape ``(n,)`` (relative, ≥ 0).
        slopes: optional fitted log-log slope per variant, shown in the legend.
        ax: the Axes (default: a new figure).
        title: the Axes' title.

    Returns:
        the Axes (log-log; the O(β) and O(β²) biases show as slopes 1 and 2).
    """
    (ax,) = _axes(ax)
    b = np.asarray(betas, dtype=float)
    for variant, e in errors.items():
        label = variant
        if slopes and slopes.get(variant) is not None:
            label += f" (slope {slopes[variant]:.2f})"
        ax.loglog(
            b,
            np.asarray(e, float),
            "o-",
            ms=3.5,
            lw=1.2,
            label=label,
            color=VARIANT_COLORS.get(variant),
        )
    ax.set_xlabel("β (siemens)")
    ax.set_ylabel("relative error vs the reference")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax


# --------------------------------------------------------------------------- training runs


def learning_curve(records: Sequence[Mapping], *, axes=None):
    """A run's loss and error per epoch, from its ``metrics.jsonl`` records
    ([`read_metrics`][kirchhoff.read_metrics]): training (running means), validation (every
    epoch) and test (where the run ended, the only time the test set is looked at).

    Args:
        records: the per-epoch records, at least one: ``epoch``, ``train_loss`` and
            ``train_error_percent`` in each; ``val_loss``/``val_error_percent`` and
            ``test_loss``/``test_error_percent`` where present. With ``model``,
            ``dataset`` and ``algorithm`` in the last, the figure is titled with them.
        axes: two Axes, for the loss (volts²) and the error (%) (default: a new figure).

    Returns:
        the two Axes (loss, error).

    Raises:
        ValueError: no records, or not two Axes.
    """
    if not records:
        raise ValueError("learning_curve: no records (has the run finished an epoch?)")
    ax = _axes(axes, 2, size=(4.5, 3.5))
    ep = [r["epoch"] for r in records]
    ax[0].plot(ep, [r["train_loss"] for r in records], "o-", ms=3, label="train (running)")
    ax[1].plot(ep, [r["train_error_percent"] for r in records], "o-", ms=3, label="train (running)")
    for split, marker in (("val", "^-"), ("test", "s")):
        seen = [r for r in records if f"{split}_loss" in r]
        if seen:
            label = "validation" if split == "val" else "test (run's end)"
            e = [r["epoch"] for r in seen]
            ax[0].plot(e, [r[f"{split}_loss"] for r in seen], marker, ms=4, label=label)
            ax[1].plot(e, [r[f"{split}_error_percent"] for r in seen], marker, ms=4, label=label)
    ax[0].set_xlabel("epoch"), ax[0].set_ylabel("loss ½‖v_out − y‖²"), ax[0].legend(fontsize=8)
    ax[1].set_xlabel("epoch"), ax[1].set_ylabel("error (%)"), ax[1].legend(fontsize=8)
    last = records[-1]
    if {"model", "dataset", "algorithm"} <= set(last):
        ax[0].figure.suptitle(f"{last['model']} on {last['dataset']} ({last['algorithm']})")
    return ax


def error_curves(
    runs: Mapping[str, Sequence[Mapping]],
    *,
    ax=None,
    x: str = "epoch",
    picked: Mapping[str, int | None] | None = None,
    log: bool = False,
):
    """Validation error per epoch of several runs, each with its test error (a square) where
    it ended.

    Args:
        runs: ``{label: records}``; records as in ``metrics.jsonl`` (``epoch``,
            ``val_error_percent``; ``test_error_percent`` on the last; with ``x="minutes"``
            also ``train_seconds`` and ``eval_seconds``).
        ax: the Axes (default: a new figure).
        x: ``"epoch"``, or ``"minutes"`` of training and evaluation since the first epoch.
        picked: ``{label: epoch}`` to mark the epoch each run's validation error picked.
        log: logarithmic error axis.

    Returns:
        the Axes.

    Raises:
        ValueError: ``x`` is neither ``"epoch"`` nor ``"minutes"``.
    """
    if x not in ("epoch", "minutes"):
        raise ValueError(f"error_curves: x must be 'epoch' or 'minutes', got {x!r}")
    (ax,) = _axes(ax)
    for name, recs in runs.items():
        if not recs:
            continue
        if x == "epoch":
            xs = [r["epoch"] for r in recs]
        else:
            xs = list(np.cumsum([r["train_seconds"] + r["eval_seconds"] for r in recs]) / 60)
        with_val = [(xv, r) for xv, r in zip(xs, recs, strict=True) if "val_error_percent" in r]
        (line,) = ax.plot(
            [xv for xv, _ in with_val], [r["val_error_percent"] for _, r in with_val], "-", lw=1.4
        )
        test = recs[-1].get("test_error_percent")
        label = name
        if test is not None:
            ax.plot(xs[-1], test, "s", color=line.get_color())
            label = f"{name}: {test:.2f} % test"
        line.set_label(label)
        if picked and picked.get(name) is not None:
            k = picked[name] - 1
            ax.plot(xs[k], recs[k]["val_error_percent"], "v", color=line.get_color())
    if log:
        import matplotlib.ticker

        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.yaxis.set_minor_formatter(matplotlib.ticker.ScalarFormatter())
    ax.set_xlabel("epoch" if x == "epoch" else "minutes of training and evaluation")
    ax.set_ylabel("validation error (%); test: squares")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return ax


def confusion_matrix(
    labels, predictions, *, n_classes: int | None = None, class_names=None, ax=None
):
    """Counts of (true class, predicted class), normalised per true class.

    Args:
        labels: the true classes, integers in [0, n_classes), shape ``(n,)``.
        predictions: the predicted classes (e.g. the argmax of
            [`predict`][kirchhoff.predict]'s outputs), integers, shape ``(n,)``.
        n_classes: number of classes (default: one more than the largest seen).
        class_names: tick labels, one per class (default: the class numbers).
        ax: the Axes (default: a new figure).

    Returns:
        ``(ax, matrix)``: the Axes and the count matrix, shape ``(n_classes, n_classes)``,
            rows the true class. The colours are each row's fractions; the cells print counts.

    Raises:
        ValueError: ``labels`` and ``predictions`` of different lengths.
    """
    labels = np.asarray(labels, dtype=int).reshape(-1)
    predictions = np.asarray(predictions, dtype=int).reshape(-1)
    if labels.shape != predictions.shape:
        raise ValueError(
            f"confusion_matrix: {labels.shape[0]} labels but {predictions.shape[0]} predictions"
        )
    n = n_classes or int(max(labels.max(initial=0), predictions.max(initial=0)) + 1)
    m = np.zeros((n, n), dtype=int)
    np.add.at(m, (labels, predictions), 1)
    (ax,) = _axes(ax, size=(4.6, 4.0))
    frac = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if m[i, j]:
                ax.text(
                    j,
                    i,
                    str(m[i, j]),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if frac[i, j] > 0.5 else "black",
                )
    names = class_names if class_names is not None else [str(k) for k in range(n)]
    ax.set_xticks(range(n), names, rotation=60 if class_names is not None else 0, fontsize=7)
    ax.set_yticks(range(n), names, fontsize=7)
    ax.set_xlabel("predicted"), ax.set_ylabel("true")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, label="fraction of the true class")
    return ax, m


def conductance_histograms(
    weights, *, names: Sequence[str] | None = None, ax=None, bins: int = 60, log: bool = True
):
    """Histograms of conductances, one per layer.

    Args:
        weights: a sequence of conductance arrays (siemens), or anything with a ``weights``
            sequence (a ``LayeredNetwork``: pass ``net.read()`` to see what its devices read).
        names: one label per array (default ``layer 1``, ``layer 2``, …); another number
            of labels is a ValueError.
        ax: the Axes (default: a new figure).
        bins: bins per histogram.
        log: logarithmic count axis.

    Returns:
        the Axes.
    """
    arrays = list(getattr(weights, "weights", weights))
    names = names or [f"layer {k + 1}" for k in range(len(arrays))]
    (ax,) = _axes(ax)
    for name, w in zip(names, arrays, strict=True):
        w = np.asarray(w, dtype=float).reshape(-1)
        ax.hist(w, bins=bins, histtype="step", lw=1.4, label=f"{name} ({w.size} conductances)")
    ax.set_xlabel("conductance (S)"), ax.set_ylabel("count")
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    return ax


def node_voltages(
    voltages,
    *,
    image_shape: tuple[int, int] | None = None,
    titles=None,
    axes=None,
    cmap: str = "RdBu_r",
):
    """Node potentials as pictures, on a colour scale symmetric about 0 V.

    Args:
        voltages: shape ``(examples, nodes)`` (volts).
        image_shape: ``(rows, cols)`` with rows·cols = nodes draws each example's nodes as a
            grid (one panel per example); without it one panel shows examples × nodes.
        titles: one title per example panel.
        axes: the Axes (one, or one per example with ``image_shape``; default: a new
            figure).
        cmap: a Matplotlib colormap name (diverging, as the scale is symmetric about 0 V).

    Returns:
        the list of Axes.

    Raises:
        ValueError: ``voltages`` not 2-D, or an ``image_shape`` that does not hold the nodes.
    """
    v = np.asarray(voltages, dtype=float)
    if v.ndim != 2:
        raise ValueError(f"node_voltages: expected (examples, nodes), got shape {v.shape}")
    lim = float(np.max(np.abs(v))) or 1.0
    if image_shape is None:
        (ax,) = _axes(axes, size=(7.0, 3.2))
        im = ax.imshow(v, aspect="auto", cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_xlabel("node"), ax.set_ylabel("example")
        ax.figure.colorbar(im, ax=ax, label="potential (V)")
        return [ax]
    if image_shape[0] * image_shape[1] != v.shape[1]:
        raise ValueError(
            f"node_voltages: image_shape {image_shape} does not hold {v.shape[1]} nodes"
        )
    axs = _axes(axes, v.shape[0], size=(2.0, 2.2))
    for k, ax in enumerate(axs):
        im = ax.imshow(v[k].reshape(image_shape), cmap=cmap, vmin=-lim, vmax=lim)
        ax.set_xticks([]), ax.set_yticks([])
        if titles is not None:
            ax.set_title(str(titles[k]), fontsize=8)
    axs[-1].figure.colorbar(im, ax=axs, label="potential (V)", fraction=0.02)
    return axs


# --------------------------------------------------------------------------- devices


def pulse_response(
    devices: Mapping[str, Any],
    *,
    n_pulses: int | None = None,
    n_devices: int = 8,
    seed: int = 0,
    ax=None,
):
    """Conductance against pulse number: up (potentiation) from the lowest state, then down
    (depression), as a device's response curve is usually published.

    Args:
        devices: ``{label: device or response}``. A response (``kh.AbstractResponse``) is
            drawn as its nominal curve on the normalised state [0, 1]. A device
            (``kh.PulsedDevice``, e.g. from ``kh.device_preset``) is programmed one pulse at a
            time, as training programs it, so its write noise shows: ``n_devices`` cells, each
            a thin line, in units of its ``g_max``.
        n_pulses: pulses each way (default: each response's own count up for level-based
            responses, else the number of nominal steps that span the range, 1/step, at most
            5,000).
        n_devices: cells drawn per device.
        seed: PRNG seed of the write noise.
        ax: the Axes (default: a new figure).

    Returns:
        the Axes.
    """
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    (ax,) = _axes(ax, size=(5.5, 3.6))
    key = jax.random.PRNGKey(seed)
    program = eqx.filter_jit(lambda dev, state, update, key: dev.program(state, update, key))
    apply = eqx.filter_jit(lambda response, state, n: response.apply(state, n))
    for i, (label, dev) in enumerate(devices.items()):
        response = getattr(dev, "response", dev)
        n = n_pulses
        if n is None and hasattr(response, "pulses"):
            n = max(response.pulses)
        elif n is None:  # soft bounds, exponential steps: as many nominal steps as span it
            n = int(min(5000, math.ceil(1.0 / float(response.nominal_step()[0]))))
        color = f"C{i}"
        if hasattr(dev, "program"):  # a device: one nominal step's update per pulse
            up, down = response.nominal_step()
            span = dev.g_max - dev.g_min
            state = jnp.full((n_devices,), float(dev.g_min))
            trace = [np.asarray(state)]
            for sign, step in ((1.0, up), (-1.0, down)):
                update = jnp.full((n_devices,), sign * float(step) * span)
                for _ in range(n):
                    key, sub = jax.random.split(key)
                    state = program(dev, state, update, sub)
                    trace.append(np.asarray(state))
            t = np.asarray(trace) / dev.g_max
            ax.plot(np.arange(len(t)), t, "-", lw=0.6, alpha=0.6, color=color)
            ax.plot([], [], "-", color=color, label=f"{label} ({n_devices} cells)")
        else:
            state, trace = jnp.zeros(()), [0.0]
            for sign in (1.0, -1.0):
                for _ in range(n):
                    state = apply(response, state, jnp.asarray(sign, state.dtype))
                    trace.append(float(state))
            ax.plot(np.arange(len(trace)), trace, "-", lw=1.2, color=color, label=label)
    ax.set_xlabel("pulse number (up, then down)")
    ax.set_ylabel("conductance / g_max")
    ax.legend(fontsize=7)
    return ax


def nonideality_effects(rows: Sequence[Mapping], *, axes=None, model: str | None = None):
    """Test error against the strength of each non-ideality, one panel per non-ideality.

    Args:
        rows: records with ``axis`` (the non-ideality, or ``"ideal"`` for the reference run,
            or ``"preset"``), ``value``, ``algorithm`` and ``test_error_percent`` (and
            ``model``, to pick one with ``model=``), as ``benchmarks/nonidealities.py``
            writes; ``value`` is the strength (a number; a preset's name for
            ``"preset"``), ``test_error_percent`` in percent.
        axes: one Axes per non-ideality, in the order they first appear (the presets last;
            default: a new figure).
        model: draw only the rows whose ``model`` is this (e.g. ``"drn-xs"``); None: all
            rows.

    Returns:
        the list of Axes. Each algorithm's ideal-device error is a dotted line.

    Raises:
        ValueError: no non-ideality rows (after ``model`` picked), or the wrong number of
            Axes.
    """
    rows = [r for r in rows if model is None or r.get("model") == model]
    names = list(dict.fromkeys(r["axis"] for r in rows if r["axis"] not in ("ideal", "preset")))
    if any(r["axis"] == "preset" for r in rows):
        names.append("preset")
    if not names:
        raise ValueError("nonideality_effects: no non-ideality rows to draw")
    axs = _axes(axes, len(names), size=(3.2, 3.2))
    ideal = {r["algorithm"]: r["test_error_percent"] for r in rows if r["axis"] == "ideal"}
    algorithms = sorted({r["algorithm"] for r in rows})
    for ax, name in zip(axs, names, strict=True):
        for i, algorithm in enumerate(algorithms):
            color = f"C{i}"
            pts = [r for r in rows if r["axis"] == name and r["algorithm"] == algorithm]
            if name == "preset":
                ax.plot(
                    range(len(pts)),
                    [r["test_error_percent"] for r in pts],
                    "o",
                    color=color,
                    label=algorithm,
                )
                ax.set_xticks(
                    range(len(pts)), [str(r["value"]) for r in pts], rotation=60, fontsize=7
                )
            else:
                pts = sorted(pts, key=lambda r: r["value"])
                ax.plot(
                    [r["value"] for r in pts],
                    [r["test_error_percent"] for r in pts],
                    "o-",
                    color=color,
                    label=algorithm,
                )
                positive = [r["value"] for r in pts if r["value"] > 0]
                if positive and max(positive) / min(positive) > 20:
                    ax.set_xscale("symlog", linthresh=min(positive))
            if algorithm in ideal:
                ax.axhline(ideal[algorithm], lw=0.8, ls=":", color=color)
        ax.set_title(name, fontsize=9)
        ax.set_ylim(0, min(100.0, 1.15 * max(r["test_error_percent"] for r in rows)))
    axs[0].set_ylabel("test error (%)")
    axs[0].legend(fontsize=7)
    return axs
