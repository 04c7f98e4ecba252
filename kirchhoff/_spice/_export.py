"""Export a kirchhoff Circuit as a SPICE netlist with a ``.op`` analysis.

How each element becomes SPICE cards (its ``spice_cards`` method writes them through a
``SpiceWriter``; ``k`` counts the cards of one letter across the circuit):

- ``Resistor``, conductance g > 0: ``rk a c 1/g``. A zero conductance (an open circuit) is
  kept only as an annotation.
- ``ShockleyDiode`` (I_s, n, V_T, R_s): ``dk a c kdm`` with ``.model kdm D(IS=I_s N=n)``, and
  ``RS=R_s`` when the diode has a series resistance; the temperature is set so that ngspice's
  k·T/q is V_T (below).
- ``IdealDiode``: ``dk a c kirchhoff_ideal``, a steep diode ``D(IS=1e-12 N=1e-3)`` that drops
  under 1 mV forward up to amperes and leaks 1 pA in reverse.
- ``CurrentSource`` injecting I into a node: ``ik 0 node I`` (SPICE's current flows from the
  first node through the source into the second).
- ``VoltageSource``: ``vk node 0 volts``. The first node held at 0 V becomes SPICE's reference
  node ``0`` instead.
- ``Input`` number k: ``vink node 0 x_k``, with x the ``inputs`` vector (0 V without one).
- ``Amplifier`` (source s, drive d, gain A): ``ek d_int 0 s 0 A`` (VCVS), ``vsensek d_int d 0``
  (a 0 V ammeter into the drive node) and ``fk s 0 vsensek 1/A`` (CCCS): the current that the
  drive node delivers downstream, divided by A, is drawn from the source node.

Thermal voltage: ngspice computes V_T = k·(temp + 273.15)/q with CODATA-2014 constants. When all
Shockley diodes share one V_T the netlist sets ``.options temp=T tnom=T`` (T in °C, chosen so that
ngspice's V_T is the diode's to the last bit; tnom = temp keeps I_s unscaled). When they differ,
each model gets ``TNOM=T`` and each instance ``temp=T``. ngspice also puts ``gmin`` across every
junction and, past 3·n·V_T of reverse bias, replaces exp by a cubic — both change currents by
about I_s or less. kirchhoff continues the exponential linearly beyond ``max_exponent`` (40·n·V_T,
about 1 V); ngspice limits its Newton steps instead; the two agree below that bias.

Node names: SPICE names are lower case, letters, digits and '_'; other characters become '_',
clashes get a suffix ``_2``, ``_3`` …, and the names ``0`` and ``gnd`` are reserved for the
reference node. ``spice_node_names`` gives the map. The netlist also carries it, with the inputs,
outputs and element groups, as ``*@kirchhoff`` comment lines, so that ``from_netlist`` rebuilds
the same circuit (node names that Python cannot write as a literal come back as their SPICE
names). A resistance is written as 1/g, so export → import can move a conductance by one unit in
the last place; import → export → import is exact.
"""

import ast
from collections.abc import Mapping
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from .._circuit import Circuit
from .._custom_types import NodeRef
from .._elements import AbstractElement, AbstractHeld
from ._common import (
    ANNOTATION,
    DEFAULT_OPTIONS,
    GROUND,
    GROUND_ALIASES,
    IDEAL_DIODE_IS,
    IDEAL_DIODE_MODEL,
    IDEAL_DIODE_N,
    celsius_for,
    concrete,
    format_value,
    sanitize,
)

SWEEP_NODE = "kh_sweep"  # reserved for the runner's batch sweep
_PER_LINE = 16  # names per annotation line


class Deck(NamedTuple):
    """A netlist in parts, so that the runner can swap the input sources for a batch sweep."""

    title: str
    annotations: list[str]
    cards: list[str]
    input_cards: list[int]  # positions in `cards` of the input sources, in input order
    input_nodes: list[str]  # their SPICE nodes
    models: list[str]
    options: str
    node_names: dict[NodeRef, str]


def _check_circuit(circuit) -> None:
    if not isinstance(circuit, Circuit):
        raise ValueError(
            f"kirchhoff SPICE export: expected a kirchhoff.Circuit, got {type(circuit).__name__}."
        )
    for e in circuit.elements:
        if type(e).spice_cards is AbstractElement.spice_cards:
            e.spice_cards(None, ())  # the default refuses, naming the element


def _ground_index(circuit: Circuit) -> int | None:
    """Index of the node mapped to SPICE's reference: the first held at exactly 0 V by an
    element that takes no inputs."""
    for e, t in zip(circuit.elements, circuit.terminals, strict=True):
        if isinstance(e, AbstractHeld) and not e.input_names():
            what = f"the potentials held by {type(e).__name__}"
            volts = concrete(e.held_potentials(jnp.zeros(0)), what).reshape(-1)
            for node, v in zip(np.asarray(t).reshape(-1), volts, strict=True):
                if v == 0.0:
                    return int(node)
    return None


def _unique(base: str, used: set[str]) -> str:
    name, k = base, 2
    while name in used:
        name, k = f"{base}_{k}", k + 1
    used.add(name)
    return name


def _name_nodes(circuit: Circuit) -> tuple[dict[NodeRef, str], set[str]]:
    ground = _ground_index(circuit)
    used = {*GROUND_ALIASES, SWEEP_NODE}
    names = {}
    for i, n in enumerate(circuit.node_names):
        names[n] = GROUND if i == ground else _unique(sanitize(n), used)
    return names, used


def spice_node_names(circuit: Circuit) -> dict[NodeRef, str]:
    """The SPICE name of every node of ``circuit`` in its exported netlist (``"0"`` for the node
    mapped to SPICE's reference: the first node held at 0 V by a VoltageSource).

    SPICE names are lower case, letters, digits and ``_``: other characters become ``_``, a
    tuple's parts are joined by ``_``, clashes get a suffix ``_2``, ``_3`` …, and ``0`` and
    ``gnd`` are kept for the reference node.

    Args:
        circuit: the [`Circuit`][kirchhoff.Circuit] to name.

    Returns:
        A dict from each of ``circuit.node_names`` to its SPICE node name (a str), as
            [`to_netlist`][kirchhoff.to_netlist] writes it.

    Raises:
        ValueError: ``circuit`` is not a [`Circuit`][kirchhoff.Circuit], or one of its
            elements has no SPICE card.
    """
    _check_circuit(circuit)
    return _name_nodes(circuit)[0]


def _literal(name) -> str | None:
    """``repr(name)`` when Python reads it back as the same name, else None."""
    text = repr(name)
    try:
        back = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return text if back == name and type(back) is type(name) else None


def _chunks(items: list[str], n: int = _PER_LINE):
    for k in range(0, len(items), n):
        yield items[k : k + n]


def _options_line(options: Mapping[str, float | int], celsius: float | None) -> str:
    parts = []
    if celsius is not None:
        parts += [f"temp={format_value(celsius)}", f"tnom={format_value(celsius)}"]
    for key, value in options.items():
        if key.lower() in ("temp", "tnom") and celsius is not None:
            raise ValueError(
                "kirchhoff SPICE export: `options` sets temp/tnom, but the diodes' thermal "
                "voltage fixes them; leave them out."
            )
        if value is True or value is None:
            parts.append(key)  # a flag such as `noopiter`
        elif value is False:
            continue
        elif isinstance(value, int):
            parts.append(f"{key}={value}")
        else:
            parts.append(f"{key}={format_value(value)}")
    return ".options " + " ".join(parts) if parts else ""


class SpiceWriter:
    """What an element's ``spice_cards`` writes its cards through: card numbering, values as
    SPICE reads them, the input sources and the diode models shared across the netlist."""

    def __init__(self, inputs: np.ndarray, used: set[str]):
        self.cards: list[str] = []
        self.input_cards: list[int] = []  # positions in `cards` of the input sources
        self.input_nodes: list[str] = []
        self._inputs, self._used = inputs, used
        self._counters: dict[str, int] = {}
        self._models: dict[tuple[float, ...], str] = {}  # (I_s, n, V_T, R_s) → model
        self._diode_cards: list[tuple[int, float]] = []  # (position, V_T) of Shockley diodes
        self._ideal_diodes = False

    concrete = staticmethod(concrete)
    value = staticmethod(format_value)

    def index(self, letter: str) -> int:
        """The next number of the cards of ``letter`` (``r``, ``d``, ...)."""
        k = self._counters.get(letter, 0)
        self._counters[letter] = k + 1
        return k

    def card(self, text: str) -> None:
        self.cards.append(text)

    def comment(self, text: str) -> None:
        """A ``*@kirchhoff`` annotation among the cards."""
        self.cards.append(f"{ANNOTATION} {text}")

    def is_ground(self, node: str) -> bool:
        """Whether ``node`` is SPICE's reference node (it needs no source)."""
        return node == GROUND

    def unique_node(self, base: str) -> str:
        """A new internal node name, distinct from every other."""
        return _unique(base, self._used)

    def input_source(self, node: str) -> None:
        """The next input's source, ``vink node 0 x_k``."""
        k = len(self.input_cards)
        self.input_cards.append(len(self.cards))
        self.input_nodes.append(node)
        self.cards.append(f"vin{k} {node} 0 {format_value(self._inputs[k])}")

    def diode(
        self, anode: str, cathode: str, i_s: float, n: float, vt: float, rs: float = 0.0
    ) -> None:
        """A Shockley diode ``dk anode cathode model`` (a model per (I_s, n, V_T, R_s))."""
        model = self._models.setdefault((i_s, n, vt, rs), f"kd{len(self._models)}")
        self._diode_cards.append((len(self.cards), vt))
        self.cards.append(f"d{self.index('d')} {anode} {cathode} {model}")

    def ideal_diode_model(self) -> str:
        self._ideal_diodes = True
        return IDEAL_DIODE_MODEL

    def finish(self) -> tuple[list[str], float | None]:
        """The model cards, and the netlist's temperature when all diodes share one V_T (else
        each diode card gets its own ``temp``)."""
        thermal = sorted({vt for _, vt in self._diode_cards})
        per_instance = len(thermal) > 1
        if per_instance:
            for k, vt in self._diode_cards:
                self.cards[k] += f" temp={format_value(celsius_for(vt))}"
        models = []
        for (i_s, n, vt, rs), model in self._models.items():
            tnom = f" TNOM={format_value(celsius_for(vt))}" if per_instance else ""
            series = f" RS={format_value(rs)}" if rs > 0 else ""
            models.append(
                f".model {model} D(IS={format_value(i_s)} N={format_value(n)}{series}{tnom})"
            )
        if self._ideal_diodes:
            models.append(
                f".model {IDEAL_DIODE_MODEL} "
                f"D(IS={format_value(IDEAL_DIODE_IS)} N={format_value(IDEAL_DIODE_N)})"
            )
        return models, (celsius_for(thermal[0]) if len(thermal) == 1 else None)


def _input_values(circuit: Circuit, inputs) -> np.ndarray:
    if inputs is None:
        return np.zeros(circuit.n_inputs)
    x = np.asarray(concrete(inputs, "inputs"))
    if x.shape != (circuit.n_inputs,):
        raise ValueError(
            f"kirchhoff SPICE export: inputs have shape {x.shape}; the circuit has "
            f"{circuit.n_inputs} input(s), so give shape ({circuit.n_inputs},)."
        )
    return x


def _annotations(circuit: Circuit, names: dict[NodeRef, str]) -> list[str]:
    annotations = [f"{ANNOTATION} netlist 1"]
    for n in circuit.node_names:
        literal = _literal(n)
        if literal is not None:
            annotations.append(f"{ANNOTATION} node {names[n]} {literal}")
    for chunk in _chunks([f"vin{k}" for k in range(circuit.n_inputs)]):
        annotations.append(f"{ANNOTATION} inputs " + " ".join(chunk))
    for chunk in _chunks([names[n] for n in circuit.output_names]):
        annotations.append(f"{ANNOTATION} outputs " + " ".join(chunk))
    return annotations


def build_deck(circuit: Circuit, inputs=None, options: Mapping | None = None, title=None) -> Deck:
    """The parts of the netlist of ``circuit`` with its inputs at ``inputs`` (0 V if None)."""
    _check_circuit(circuit)
    options = dict(DEFAULT_OPTIONS if options is None else options)
    names, used = _name_nodes(circuit)
    writer = SpiceWriter(_input_values(circuit, inputs), used)
    for e, t in zip(circuit.elements, circuit.terminals, strict=True):
        writer.comment("group")
        nodes = tuple(tuple(names[circuit.node_names[i]] for i in row) for row in np.asarray(t))
        e.spice_cards(writer, nodes)
    models, celsius = writer.finish()
    return Deck(
        title=title if title is not None else "kirchhoff circuit",
        annotations=_annotations(circuit, names),
        cards=writer.cards,
        input_cards=writer.input_cards,
        input_nodes=writer.input_nodes,
        models=models,
        options=_options_line(options, celsius),
        node_names=names,
    )


def deck_lines(deck: Deck, cards: list[str] | None = None) -> list[str]:
    """Title, annotations, cards, models and options (no analysis, no ``.end``)."""
    lines = [
        deck.title.replace("\n", " "),
        *deck.annotations,
        *(deck.cards if cards is None else cards),
    ]
    lines += deck.models
    if deck.options:
        lines.append(deck.options)
    return lines


def to_netlist(
    circuit: Circuit,
    inputs=None,
    *,
    options: Mapping[str, float | int | bool] | None = None,
    title: str | None = None,
) -> str:
    """The SPICE netlist of ``circuit`` with a ``.op`` analysis, its input sources at ``inputs``
    (shape ``(n_inputs,)``; 0 V when None).

    ``options`` are written on the ``.options`` card; by default the tight tolerances that
    [`ngspice_potentials`][kirchhoff.ngspice_potentials] uses (``reltol=1e-9 abstol=1e-15
    vntol=1e-12 gmin=1e-15 itl1=1000 itl2=1000``), preceded by ``temp``/``tnom`` when the
    diodes set them. A flag option is given as ``True`` (``{"noopiter": True}``).

    Each element group becomes cards (``k`` numbers the cards of one letter): a
    [`Resistor`][kirchhoff.Resistor] ``rk a c 1/g`` (a zero conductance only as a comment); a
    [`ShockleyDiode`][kirchhoff.ShockleyDiode] ``dk a c kdN`` with a ``.model kdN D(IS= N=
    RS=)``, the temperature set so that ngspice's k·T/q is the diode's V_T; an
    [`IdealDiode`][kirchhoff.IdealDiode] a steep diode of the model ``kirchhoff_ideal``
    (``IS=1e-12 N=1e-3``); a [`CurrentSource`][kirchhoff.CurrentSource] ``ik 0 node I``; a
    [`VoltageSource`][kirchhoff.VoltageSource] ``vk node 0 volts`` (the first node held at
    0 V becomes SPICE's reference node ``0`` instead); the k-th input ``vink node 0 x_k``; an
    [`Amplifier`][kirchhoff.Amplifier] a VCVS ``ek``, a 0 V ammeter ``vsensek`` and a CCCS
    ``fk``. Node names are those of [`spice_node_names`][kirchhoff.spice_node_names]; the
    netlist keeps kirchhoff's names, inputs, outputs and element groups in ``*@kirchhoff``
    comment lines, so that [`from_netlist`][kirchhoff.from_netlist] rebuilds the same
    circuit. A resistance is written as 1/g, so export then import can move a conductance by
    one unit in the last place.

    Args:
        circuit: the [`Circuit`][kirchhoff.Circuit] to export; its parameters must be
            concrete (not traced inside jit).
        inputs: the input potentials, volts, shape ``(n_inputs,)``; None: 0 V.
        options: the ``.options`` card's entries, name to value (a number; ``True`` for a
            flag, ``False`` to leave it out); replaces the defaults above when given.
        title: the netlist's first line (SPICE's title); None: ``"kirchhoff circuit"``.

    Returns:
        The netlist's text, ending in ``.op`` and ``.end``.

    Raises:
        ValueError: ``circuit`` is not a [`Circuit`][kirchhoff.Circuit], an element has no
            SPICE card, a parameter is traced, a value is not finite, ``inputs`` has another
            shape, or
            ``options`` sets ``temp``/``tnom`` where the diodes fix them.
    """
    deck = build_deck(circuit, inputs, options, title)
    return "\n".join([*deck_lines(deck), ".op", ".end"]) + "\n"
