"""Import a SPICE netlist — a practical subset of it — as a kirchhoff Circuit.

Read: ``R`` (value or ``r=``, ``m=``), ``D`` with a ``.model … D(IS= N= TNOM=)`` (``area``/``m``
scale I_s), ``V`` and ``I`` with a DC value (``dc`` keyword and an ``ac`` part allowed), and ``E``
+ ``F`` pairs that make a bidirectional amplifier: ``E d_int 0 s 0 A``, a 0 V ammeter
``V d_int d 0`` from the E's output to the drive node ``d``, and ``F s 0 V 1/A`` that draws the
measured current over A from the source node ``s`` (either orientation of the ammeter or of the F,
with the gain's sign to match). Comments (``*`` lines, ``;`` and `` $`` to the end of a line),
``+`` continuation lines, engineering suffixes (t g meg k m u n p f mil, trailing units ignored:
``10k``, ``2.2meg``, ``1uF``), any letter case and ``.end`` are understood; the first line is the
title, as in SPICE. Analysis and output cards (``.op``, ``.dc``, ``.tran``, ``.print`` …) and
``.control`` … ``.endc`` blocks are skipped; ``.options``/``.temp`` are read for temp and tnom only.
Anything else raises NetlistError naming the line.

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
from collections.abc import Sequence

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
from ._cards import _node, _parse, _Parsed
from ._common import (
    GROUND,
    IDEAL_DIODE_MODEL,
    SPICE_DEFAULT_CELSIUS,
    thermal_voltage,
)
from ._lex import NetlistError


# ---- netlist → circuit --------------------------------------------------------------------
def _read(netlist) -> str:
    if isinstance(netlist, os.PathLike):
        with open(netlist) as f:
            return f.read()
    if not isinstance(netlist, str):
        raise ValueError("from_netlist: give the netlist as a str (its text) or a pathlib.Path.")
    return netlist


def _designated_inputs(p: _Parsed, inputs, ammeters) -> list[str]:
    designated = [v.lower() for v in (p.ann_inputs if inputs is None else inputs)]
    if len(set(designated)) != len(designated):
        raise NetlistError(f"an input is named twice in {designated!r}.")
    for v in designated:
        src = p.vsources.get(v)
        if src is None:
            raise NetlistError(f"the input {v!r} is not a V source of the netlist.")
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
    if t != t_nom:
        raise NetlistError(
            f"the diode is at {t} °C but its model's TNOM is {t_nom} °C; ngspice would "
            "rescale IS with temperature, which kirchhoff does not model. Set temp = tnom.",
            line,
        )
    i_s = params.get("is", 1e-14) * scale
    n = params.get("n", 1.0)
    if i_s <= 0 or n <= 0:
        raise NetlistError(f"diode model {model!r} needs IS > 0 and N > 0.", line)
    return ("shockley", line, (a, c, i_s, n, thermal_voltage(t)))


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


def _output_names(wanted, spice_nodes, present, name) -> list:
    out_names = []
    kirchhoff_names = {name(n): n for n in spice_nodes}
    for o in wanted:
        key = _node(o.lower()) if isinstance(o, str) else None
        if key is not None and key in present:
            out_names.append(name(key))
        elif o in kirchhoff_names:
            out_names.append(o)
        else:
            raise NetlistError(f"the output {o!r} is not a node of the netlist.")
    return out_names


def _build(p: _Parsed, inputs, outputs) -> tuple[Circuit, np.ndarray]:
    stream, designated = _elements_stream(p, inputs)
    stream = _ordered_stream(stream, designated)

    def name(n):
        return p.node_literal.get(n, n)

    elements = [
        _element(kind, list(zip(*items, strict=True)), name) for kind, items in _groups(stream)
    ]
    spice_nodes, present = _node_order(p, stream)
    wanted = p.ann_outputs if outputs is None else list(outputs)
    out_names = _output_names(wanted, spice_nodes, present, name)
    values = {e[2][1]: e[2][2] for e in stream if e[0] == "input"}
    input_values = np.array([values[v] for v in designated], dtype=float)
    circuit = Circuit(elements, outputs=out_names, nodes=[name(n) for n in spice_nodes])
    return circuit, input_values


def from_netlist(
    netlist: "str | os.PathLike",
    inputs: Sequence[str] | None = None,
    outputs: Sequence[NodeRef] | None = None,
) -> Circuit:
    """A kirchhoff Circuit from a SPICE netlist (its text, or a ``pathlib.Path`` to read).

    ``inputs`` names the V sources (e.g. ``["vin1", "vin2"]``, any case) that become the
    circuit's Input elements, in this order — the order of the input vector; ``outputs`` names
    the output nodes. When None, they are read from the netlist's ``*@kirchhoff`` annotations
    (written by ``to_netlist``), or there are none. The module docstring of
    ``kirchhoff._spice._import`` lists what is read and how; anything else raises NetlistError
    (a ValueError) naming the line. ``netlist_inputs`` gives the netlist's values of the inputs.
    """
    return _build(_parse(_read(netlist)), inputs, outputs)[0]


def netlist_inputs(netlist: "str | os.PathLike", inputs: Sequence[str] | None = None) -> np.ndarray:
    """The DC values (volts) that the netlist gives the input sources of
    ``from_netlist(netlist, inputs)``, in input order: shape ``(n_inputs,)``."""
    return _build(_parse(_read(netlist)), inputs, ())[1]
