"""Import a SPICE netlist — a practical subset of it — as a kirchhoff Circuit.

Read: ``R`` (value or ``r=``, ``m=``), ``D`` with a ``.model … D(IS= N= RS= TNOM=)``
(``area``/``m`` scale I_s and divide RS), ``V`` and ``I`` with a DC value (``dc`` keyword and an
``ac`` part allowed), and ``E`` + ``F`` pairs that make a bidirectional amplifier:
``E d_int 0 s 0 A``, a 0 V ammeter ``V d_int d 0`` from the E's output to the drive node ``d``,
and ``F s 0 V 1/A`` that draws the measured current over A from the source node ``s`` (either
orientation of the ammeter or of the F, with the gain's sign to match). Comments (``*`` lines,
``;`` and `` $`` to the end of a line), ``+`` continuation lines, engineering suffixes (t g meg
k m u n p f mil, trailing units ignored: ``10k``, ``2.2meg``, ``1uF``), any letter case and
``.end`` are understood; the first line is the title, as in SPICE. Analysis and output cards
(``.op``, ``.dc``, ``.tran``, ``.print`` …) and ``.control`` … ``.endc`` blocks are skipped;
``.options``/``.temp`` are read for temp and tnom only. Anything else raises NetlistError naming
the line.

Strictness: cards are ASCII (no full-width digits or look-alike letters, no control characters;
comments, annotations and the title may hold any text); a number is ASCII digits with an optional
scale suffix and trailing letters (``1k5`` and ``1..5`` are errors, where ngspice would read 1k
and 1); a value must be finite and must not underflow to 0; resistances, ``m``, a diode's area,
IS and N are > 0; temperatures are above absolute zero; a parameter may be given once; an element
name may be used once; a ``.control`` needs its ``.endc``. What only the circuit as a whole
shows — a node held by two sources, a node that floats, no held node, an amplifier loop — is a
NetlistError too, naming the line of a card involved.

Mapping: SPICE's reference node (``0`` or ``gnd``) becomes a node ``"0"`` held by a Ground when an
element touches it; a V source from a node to ground holds that node (a VoltageSource, or an Input
when named in ``inputs``); an I source injects into the node its current flows to (one between two
nodes becomes two CurrentSources); a diode's thermal voltage is k·T/q at its temperature, which
must equal its model's TNOM (ngspice would otherwise rescale I_s). A diode of the model
``kirchhoff_ideal`` becomes an IdealDiode. Consecutive cards of one kind make one element group.
Node names are the SPICE names in lower case, unless the netlist carries kirchhoff's
``*@kirchhoff`` annotations (as exported ones do), which restore the original names, inputs,
outputs and groups.
"""

import os
from collections.abc import Hashable, Iterable, Sequence

import numpy as np

from .._circuit import Circuit
from .._custom_types import NodeRef
from .._elements import (
    Amplifier,
    CurrentSource,
    IdealDiode,
    Input,
    Resistor,
    ShockleyDiode,
    VoltageSource,
)
from ._amplifier import _amplifiers
from ._cards import ABSOLUTE_ZERO_CELSIUS, _node, _parse, _Parsed
from ._common import (
    GROUND,
    IDEAL_DIODE_MODEL,
    SPICE_DEFAULT_CELSIUS,
    thermal_voltage,
)
from ._lex import _LINE_BREAK, NetlistError, show


# ---- netlist → circuit --------------------------------------------------------------------
def _read(netlist) -> str:
    """The netlist's text: a str is the text itself, a path-like object names a file to read."""
    if isinstance(netlist, os.PathLike):
        # undecodable bytes survive as lone surrogates: harmless in comments, an error in cards
        with open(netlist, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    if not isinstance(netlist, str):
        raise ValueError(
            f"from_netlist: got a {type(netlist).__name__}; give the netlist as a str (its "
            "text) or a pathlib.Path (a file to read)."
        )
    stripped = netlist.strip()
    if stripped and len(_LINE_BREAK.split(stripped)) == 1:
        shown = show(stripped, 200)
        raise NetlistError(
            f"the netlist {shown} is a single line, which SPICE reads as the title: it has no "
            "cards. A str is the netlist's text; to read a file, pass a pathlib.Path, "
            f"from_netlist(pathlib.Path({shown})), or the file's text."
        )
    return netlist


def _names_argument(value, what: str) -> list | None:
    """``inputs``/``outputs`` as a list (None stays None): a bare str is an error, not a list
    of its characters."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        example = "inputs=['vin1']" if what == "inputs" else "outputs=['out']"
        raise ValueError(
            f"from_netlist: `{what}` is a list of names, e.g. {example}; got {value!r}."
        )
    value = list(value)
    for v in value:
        if what == "inputs" and not isinstance(v, str):
            raise ValueError(f"from_netlist: `inputs` names V sources by str; got {v!r}.")
        if not isinstance(v, Hashable):
            raise ValueError(f"from_netlist: `{what}` holds {v!r}, which cannot name a node.")
    return value


def _designated_inputs(p: _Parsed, inputs, ammeters) -> list[str]:
    line = p.ann_line.get("inputs") if inputs is None else None
    where = "the inputs annotation" if inputs is None else "`inputs`"
    designated = [v.lower() for v in (p.ann_inputs if inputs is None else inputs)]
    if len(set(designated)) != len(designated):
        raise NetlistError(f"an input is named twice in {where}: {designated!r}.", line)
    for v in designated:
        src = p.vsources.get(v)
        if src is None:
            raise NetlistError(
                f"the input {v!r} (in {where}) is not a V source of the netlist.", line
            )
        if v in ammeters:
            raise NetlistError(f"the input {v!r} is an amplifier's ammeter.", src.line)
    return designated


def _diode_entry(p: _Parsed, entry, temp, tnom) -> tuple:
    """A D card as an ideal diode (the ideal model) or a Shockley diode at its temperature."""
    line, (a, c, model, scale, inst_temp, dtemp) = entry[1], entry[2]
    if model == IDEAL_DIODE_MODEL:
        return ("ideal", line, (a, c))
    if model not in p.models:
        raise NetlistError(f"diode model {model!r} is not defined by a .model card.", line)
    params = p.models[model][1]
    t = (temp if inst_temp is None else inst_temp) + dtemp
    t_nom = params.get("tnom", tnom)
    if not t > ABSOLUTE_ZERO_CELSIUS:
        raise NetlistError(
            f"the diode is at {t} °C, at or below absolute zero ({ABSOLUTE_ZERO_CELSIUS} °C).",
            line,
        )
    if t != t_nom:
        raise NetlistError(
            f"the diode is at {t} °C but its model's TNOM is {t_nom} °C; ngspice would "
            "rescale IS with temperature, which kirchhoff does not model. Set temp = tnom.",
            line,
        )
    i_s = params.get("is", 1e-14) * scale
    n = params.get("n", 1.0)
    if not 0 < i_s < float("inf"):
        raise NetlistError(
            f"the diode's saturation current IS·area = {params.get('is', 1e-14)!r}·{scale!r} is "
            "out of range (it must be a positive finite number).",
            line,
        )
    # area and m put diodes in parallel: the series resistance divides by them
    rs = params.get("rs", 0.0) / scale
    return ("shockley", line, (a, c, i_s, n, thermal_voltage(t), rs))


def _v_entry(src, designated) -> tuple:
    """A V card (not an ammeter) as an input or a held node, relative to ground."""
    if src.minus == GROUND:
        node, volts = src.plus, src.value
    elif src.plus == GROUND:
        node, volts = src.minus, -src.value
    else:
        raise NetlistError(
            f"V source {src.name!r} floats between {src.plus!r} and {src.minus!r}; "
            "kirchhoff's sources hold a node relative to ground.",
            src.line,
        )
    if src.name in designated:
        return ("input", src.line, (node, src.name, volts))
    return ("vsource", src.line, (node, volts))


def _elements_stream(p: _Parsed, inputs: Sequence[str] | None):
    """Element entries (kind, line, data) with group markers, and the designated inputs."""
    pairs, ammeters = _amplifiers(p)
    designated = _designated_inputs(p, inputs, ammeters)
    temp = SPICE_DEFAULT_CELSIUS if p.temp is None else p.temp
    tnom = SPICE_DEFAULT_CELSIUS if p.tnom is None else p.tnom
    stream = []
    for entry in p.entries:
        kind = entry[0]
        if kind in ("group", "resistor"):
            stream.append(entry)
        elif kind == "diode":
            stream.append(_diode_entry(p, entry, temp, tnom))
        elif kind == "ground":
            stream.append(("vsource", entry[1], (GROUND, 0.0)))
        elif kind == "v" and entry[2].name not in ammeters:
            stream.append(_v_entry(entry[2], designated))
        elif kind == "i":
            src = entry[2]
            # SPICE's current flows from the first node through the source into the second
            if src.minus != GROUND:
                stream.append(("isource", src.line, (src.minus, src.value)))
            if src.plus != GROUND:
                stream.append(("isource", src.line, (src.plus, -src.value)))
        elif kind == "e":
            source, drive, gain = pairs[entry[2]]
            stream.append(("amplifier", entry[1], (source, drive, gain)))
    return stream, designated


def _terminals(kind, data) -> tuple:
    if kind in ("resistor", "shockley", "ideal", "amplifier"):
        return data[0], data[1]
    return (data[0],)


def _ordered_stream(stream, designated):
    """The stream with a ground source where an element touches the reference node, and the
    inputs in the order they were named (gathered into one group where the cards differ)."""
    # the reference node is a circuit node when an element (not a source) touches it
    has_ground = any(e[0] == "vsource" and e[2][0] == GROUND for e in stream if e[0] != "group")
    touches_ground = any(
        GROUND in _terminals(e[0], e[2])
        for e in stream
        if e[0] in ("resistor", "shockley", "ideal", "amplifier")
    )
    if touches_ground and not has_ground:
        stream = [("vsource", 0, (GROUND, 0.0)), ("group",), *stream]
    in_stream = [e[2][1] for e in stream if e[0] == "input"]
    if in_stream != designated:
        first = next(k for k, e in enumerate(stream) if e[0] == "input")
        by_name = {e[2][1]: e for e in stream if e[0] == "input"}
        gathered = [("group",), *(by_name[v] for v in designated), ("group",)]
        rest = [e for e in stream if e[0] != "input"]
        stream = rest[:first] + gathered + rest[first:]
        # `first` counts non-input entries before the first input: the same position in `rest`
    return stream


def _groups(stream) -> list[tuple[str, list]]:
    """Runs of same-kind entries (a ("group",) marker starts a new run)."""
    groups: list[tuple[str, list]] = []
    new_group = True
    for e in stream:
        if e[0] == "group":
            new_group = True
            continue
        if new_group or groups[-1][0] != e[0]:
            groups.append((e[0], []))
        groups[-1][1].append(e[2])
        new_group = False
    return groups


def _element(kind: str, cols: list, name):
    """One grouped element from its entries' columns (node names mapped by ``name``)."""
    nodes = lambda k: [name(n) for n in cols[k]]
    build = {
        "resistor": lambda: Resistor(nodes(0), nodes(1), np.array(cols[2])),
        "shockley": lambda: ShockleyDiode(
            nodes(0),
            nodes(1),
            saturation_current=np.array(cols[2]),
            ideality=np.array(cols[3]),
            thermal_voltage=np.array(cols[4]),
            series_resistance=np.array(cols[5]),  # all zero: none
        ),
        "ideal": lambda: IdealDiode(nodes(0), nodes(1)),
        "vsource": lambda: VoltageSource(nodes(0), np.array(cols[1], dtype=float)),
        "input": lambda: Input(nodes(0)),
        "isource": lambda: CurrentSource(nodes(0), np.array(cols[1], dtype=float)),
        "amplifier": lambda: Amplifier(nodes(0), nodes(1), list(cols[2])),
    }
    return build[kind]()


def _node_order(p: _Parsed, stream) -> tuple[list[str], set]:
    """The SPICE nodes in order (the annotated order, then first appearance in the cards),
    and the set of nodes an element touches."""
    spice_nodes: list[str] = []
    seen = set()
    for n in p.node_annotated:
        if n not in seen:
            seen.add(n)
            spice_nodes.append(n)
    entries = [e for e in stream if e[0] != "group"]
    present = {n for e in entries for n in _terminals(e[0], e[2])}
    # line 0 is the Ground added above: the reference node takes its place where a card names it
    for e in sorted((e for e in entries if e[1] > 0), key=lambda e: e[1]):
        for n in _terminals(e[0], e[2]):
            if n not in seen:
                seen.add(n)
                spice_nodes.append(n)
    spice_nodes = [n for n in spice_nodes if n in present]
    spice_nodes += [n for n in present if n not in seen]
    return spice_nodes, present


def _output_names(wanted, spice_nodes, present, name, held, line) -> list:
    out_names = []
    kirchhoff_names = {name(n): n for n in spice_nodes}
    for o in wanted:
        key = _node(o.lower()) if isinstance(o, str) else None
        if key is not None and key in present:
            spice = key
        elif o in kirchhoff_names:
            spice = kirchhoff_names[o]
        else:
            raise NetlistError(f"the output {o!r} is not a node of the netlist.", line)
        if spice in held:
            raise NetlistError(
                f"the output {o!r} is node {spice!r}, which the card on line {held[spice]} "
                "holds; an output is a free node.",
                line,
            )
        out_names.append(name(spice))
    return out_names


def _lines_touching(stream, nodes) -> list[int]:
    """The netlist lines of the cards with a terminal at one of ``nodes``."""
    return sorted(
        {
            e[1]
            for e in stream
            if e[0] != "group" and e[1] > 0 and set(_terminals(e[0], e[2])) & nodes
        }
    )


def _find(parent: dict, n):
    while parent.setdefault(n, n) != n:
        parent[n] = parent[parent[n]]
        n = parent[n]
    return n


def _check_nodes(stream) -> dict[str, int]:
    """Held and driven nodes, and that no node floats, checked with the cards' lines (the
    circuit would raise too, naming no line); returns the held nodes and their lines."""
    held: dict[str, int] = {}
    driven: dict[str, int] = {}
    source_of: dict[str, str] = {}
    parent: dict = {}
    for e in stream:
        kind = e[0]
        if kind in ("vsource", "input"):
            node, line = e[2][0], e[1]
            if node in held:
                first = f"line {held[node]}" if held[node] else "the ground kirchhoff adds"
                raise NetlistError(
                    f"node {node!r} is held by two sources: this card and {first}; a node "
                    "takes one V source (or ground).",
                    line,
                )
            held[node] = line
        elif kind == "amplifier":
            source, drive = e[2][0], e[2][1]
            if source == drive:
                raise NetlistError(
                    f"the amplifier drives its own input node {source!r} (its ammeter joins the "
                    "E's output back to the node it senses).",
                    e[1],
                )
            if drive in driven:
                raise NetlistError(
                    f"node {drive!r} is driven by two amplifiers (also on line {driven[drive]}).",
                    e[1],
                )
            driven[drive] = e[1]
            source_of[drive] = source
        if kind in ("resistor", "shockley", "amplifier"):  # an ideal diode fixes no potential
            a, c = _terminals(kind, e[2])
            parent[_find(parent, a)] = _find(parent, c)
    for node, line in driven.items():
        if node in held:
            raise NetlistError(
                f"node {node!r} is driven by an amplifier and also held by the card on line "
                f"{held[node]}.",
                line,
            )
    for node, line in driven.items():
        chain = [node]
        while chain[-1] in source_of:
            chain.append(source_of[chain[-1]])
            if chain[-1] == node:
                raise NetlistError(
                    "amplifiers form a loop: "
                    + " ← ".join(repr(n) for n in chain)
                    + f" (the E cards on lines {sorted(driven[n] for n in chain[:-1])}); an "
                    "amplifier chain must end at a node no amplifier drives.",
                    line,
                )
            if len(chain) > len(source_of) + 1:
                break  # a loop further up the chain, reported from one of its own nodes
    if not held:
        raise NetlistError(
            "no node is held: the netlist has no V source, and no resistor, diode or amplifier "
            "touches the reference node 0 (gnd)."
        )
    anchored = {_find(parent, n) for n in held}
    nodes = [n for e in stream if e[0] != "group" for n in _terminals(e[0], e[2])]
    floating = list(
        dict.fromkeys(
            n
            for n in nodes
            if n not in held and n not in driven and _find(parent, n) not in anchored
        )
    )
    if floating:
        lines = _lines_touching(stream, set(floating))
        raise NetlistError(
            f"node(s) {floating[:10]} float: no path of resistors, Shockley diodes or amplifiers "
            "joins them to a held node (ground, a V source or an input; an ideal diode alone "
            "does not), so their potential is undefined; see the card(s) on line(s) "
            f"{', '.join(map(str, lines[:10]))}.",
            lines[0] if lines else None,
        )
    return held


def _check_names(p: _Parsed, spice_nodes, name) -> None:
    """Annotated node names that give two SPICE nodes one kirchhoff name."""
    seen: dict = {}
    for n in spice_nodes:
        k = name(n)
        if k in seen:
            first, second = seen[k], n
            line = p.node_line.get(second, p.node_line.get(first))
            raise NetlistError(
                f"the SPICE nodes {first!r} and {second!r} are both named {k!r} by the "
                "*@kirchhoff node annotations.",
                line,
            )
        seen[k] = n


def _build(p: _Parsed, inputs, outputs) -> tuple[Circuit, np.ndarray]:
    inputs = _names_argument(inputs, "inputs")
    outputs = _names_argument(outputs, "outputs")
    stream, designated = _elements_stream(p, inputs)
    stream = _ordered_stream(stream, designated)
    held = _check_nodes(stream)

    def name(n):
        return p.node_literal.get(n, n)

    spice_nodes, present = _node_order(p, stream)
    _check_names(p, spice_nodes, name)
    wanted = p.ann_outputs if outputs is None else outputs
    out_line = p.ann_line.get("outputs") if outputs is None else None
    out_names = _output_names(wanted, spice_nodes, present, name, held, out_line)
    values = {e[2][1]: e[2][2] for e in stream if e[0] == "input"}
    input_values = np.array([values[v] for v in designated], dtype=float)
    try:
        elements = [
            _element(kind, list(zip(*items, strict=True)), name) for kind, items in _groups(stream)
        ]
        circuit = Circuit(elements, outputs=out_names, nodes=[name(n) for n in spice_nodes])
    except ValueError as error:  # what the checks above leave to the circuit, e.g. amplifiers
        # of different total gain reaching one node
        message = str(error)
        named = {n for n in spice_nodes if repr(name(n)) in message}
        lines = _lines_touching(stream, named)
        if not lines and "amplifier" in message:
            lines = sorted(e[1] for e in stream if e[0] == "amplifier")
        raise NetlistError(
            f"the netlist's circuit cannot be built: {message}", lines[0] if lines else None
        ) from error
    return circuit, input_values


def from_netlist(
    netlist: "str | os.PathLike",
    inputs: Sequence[str] | None = None,
    outputs: Sequence[NodeRef] | None = None,
) -> Circuit:
    """A kirchhoff Circuit from a SPICE netlist (its text, or a ``pathlib.Path`` to read).

    A str is always the netlist's text, never a file name: a one-line str (which SPICE would
    read as a title alone) raises NetlistError saying to pass a ``pathlib.Path`` (any
    ``os.PathLike``) to read a file, which is read as UTF-8 (OSError when it cannot be opened).

    ``inputs`` names the V sources (e.g. ``["vin1", "vin2"]``, any case) that become the
    circuit's Input elements, in this order — the order of the input vector; ``outputs`` names
    the output nodes. When None, they are read from the netlist's ``*@kirchhoff`` annotations
    (written by [`to_netlist`][kirchhoff.to_netlist]), or there are none.
    [`netlist_inputs`][kirchhoff.netlist_inputs] gives the netlist's values of the inputs.

    What is read (a practical subset of SPICE): ``R`` cards; ``D`` cards with a ``.model …
    D(IS= N= RS= TNOM=)`` (a diode's temperature must equal its model's TNOM; the model
    ``kirchhoff_ideal`` becomes an [`IdealDiode`][kirchhoff.IdealDiode]); ``V`` and ``I``
    sources with a DC value, a V source holding a node relative to ground; ``E`` + ``F`` pairs
    with a 0 V ammeter that make a bidirectional [`Amplifier`][kirchhoff.Amplifier];
    comments, ``+`` continuations, engineering suffixes (``10k``, ``2.2meg``) and any letter
    case. Analysis and output cards and ``.control`` blocks are skipped. SPICE's reference
    node (``0`` or ``gnd``) becomes a node ``"0"`` held by a [`Ground`][kirchhoff.Ground];
    node names are the SPICE names in lower case unless annotations restore kirchhoff's;
    consecutive cards of one kind make one element group. The module docstring of
    ``kirchhoff._spice._import`` gives the full rules.

    Args:
        netlist: the netlist's text (a str), or a path (``os.PathLike``) of a file to read.
        inputs: the names of the V sources that become inputs, in input order (a list of
            str, any case); None: from the annotations, else none.
        outputs: the output nodes, by SPICE name (any case) or by kirchhoff name (from the
            annotations), in output order; None: from the annotations, else none.

    Returns:
        The [`Circuit`][kirchhoff.Circuit].

    Raises:
        NetlistError: the netlist has a card or value kirchhoff does not read, or a circuit
            without potentials (a node held twice, a floating node, no held node, an
            amplifier loop …); the message names the line. It is a ValueError.
        ValueError: ``netlist`` is neither a str nor a path, or ``inputs``/``outputs`` is a
            bare str or holds a name that cannot name a node.
        OSError: the file cannot be read.
    """
    return _build(_parse(_read(netlist)), inputs, outputs)[0]


def netlist_inputs(netlist: "str | os.PathLike", inputs: Sequence[str] | None = None) -> np.ndarray:
    """The DC values (volts) that the netlist gives the input sources of
    ``from_netlist(netlist, inputs)``, in input order: shape ``(n_inputs,)``.

    Args:
        netlist: the netlist's text (a str), or a path (``os.PathLike``) of a file to read.
        inputs: the names of the V sources that are inputs, in input order, as for
            [`from_netlist`][kirchhoff.from_netlist]; None: from the annotations.

    Returns:
        The input potentials, volts, a float NumPy array of shape ``(n_inputs,)``: the
            ``inputs`` to solve the imported circuit at the netlist's own operating point.

    Raises:
        NetlistError: as for [`from_netlist`][kirchhoff.from_netlist].
        ValueError: as for [`from_netlist`][kirchhoff.from_netlist].
    """
    return _build(_parse(_read(netlist)), inputs, ())[1]
