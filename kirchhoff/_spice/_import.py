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

import ast
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

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
from ._common import (
    ANNOTATION,
    GROUND,
    GROUND_ALIASES,
    IDEAL_DIODE_MODEL,
    SPICE_DEFAULT_CELSIUS,
    thermal_voltage,
)


class NetlistError(ValueError):
    """A netlist that kirchhoff cannot import; ``line`` is its 1-based line number (or None)."""

    def __init__(self, message: str, line: int | None = None):
        self.line = line
        super().__init__(
            f"SPICE netlist, line {line}: {message}" if line else f"SPICE netlist: {message}"
        )


# ---- values ---------------------------------------------------------------------------
_NUMBER = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)([a-z]*)$")
_SCALE = {
    "t": "1e12",
    "g": "1e9",
    "k": "1e3",
    "m": "1e-3",
    "u": "1e-6",
    "n": "1e-9",
    "p": "1e-12",
    "f": "1e-15",
}


def parse_value(token: str, line: int | None = None, what: str = "a value") -> float:
    """A SPICE number with an optional scale suffix (``2.2meg``, ``10k``, ``5m``, ``1uF``),
    rounded once from its exact decimal value."""
    match = _NUMBER.match(token.lower())
    if match is None:
        raise NetlistError(
            f"bad value {token!r} for {what}; expected a number such as 10k or 2.2e-3.", line
        )
    mantissa, suffix = match.groups()
    if suffix.startswith("meg"):
        scale = "1e6"
    elif suffix.startswith("mil"):
        scale = "25.4e-6"
    else:
        scale = _SCALE.get(suffix[:1], "1")
    try:
        value = float(Decimal(mantissa) * Decimal(scale))
    except (InvalidOperation, OverflowError):
        value = float("nan")
    if not np.isfinite(value):
        raise NetlistError(f"the value {token!r} for {what} is not a finite number.", line)
    return value


# ---- lines ----------------------------------------------------------------------------
@dataclass
class _Card:
    line: int
    text: str

    @property
    def tokens(self) -> list[str]:
        s = re.sub(r"\s*=\s*", "=", self.text.lower())
        return re.sub(r"[(),]", " ", s).split()


def _logical_lines(text: str) -> list[_Card | tuple[int, str]]:
    """Cards (continuations joined, comments dropped) and annotation lines, after the title."""
    lines = text.splitlines()
    if not lines or not any(s.strip() for s in lines):
        raise NetlistError("the netlist is empty.")
    items: list[_Card | tuple[int, str]] = []
    last_card: _Card | None = None
    in_control = False
    for number, raw in enumerate(lines[1:], start=2):
        s = raw.strip()
        low = s.lower()
        if in_control:
            in_control = not low.startswith(".endc")
            continue
        if not s:
            continue
        if s.startswith(ANNOTATION):
            items.append((number, s))
            continue
        if s.startswith("*"):
            continue
        s = re.split(r";|\s\$", s, maxsplit=1)[0].strip()
        if not s:
            continue
        if s.startswith("+"):
            if last_card is None:
                raise NetlistError("a continuation line ('+') with no card before it.", number)
            last_card.text += " " + s[1:]
            continue
        first = s.split()[0].lower()
        if first == ".control":
            in_control = True
            last_card = None
            continue
        if first == ".end":
            break
        last_card = _Card(number, s)
        items.append(last_card)
    return items


# ---- cards ----------------------------------------------------------------------------
_IGNORED_DOT = {
    ".op",
    ".dc",
    ".ac",
    ".tran",
    ".noise",
    ".tf",
    ".sens",
    ".pz",
    ".disto",
    ".four",
    ".print",
    ".plot",
    ".save",
    ".probe",
    ".width",
    ".ic",
    ".nodeset",
    ".meas",
    ".measure",
    ".title",
}
_DIODE_IGNORED = {  # no effect on a DC operating point at temp = tnom
    "cjo",
    "cj0",
    "cj",
    "vj",
    "pb",
    "m",
    "mj",
    "tt",
    "fc",
    "fcs",
    "kf",
    "af",
    "xti",
    "eg",
    "cta",
    "ctp",
    "tpb",
    "tphp",
    "tlev",
    "tlevc",
    "tm1",
    "tm2",
    "ttt1",
    "ttt2",
    "trs",
    "trs2",
    "cjp",
    "cjsw",
    "php",
    "mjsw",
}


def _node(token: str) -> str:
    return GROUND if token in GROUND_ALIASES else token


def _split_params(tokens: list[str]) -> tuple[list[str], dict[str, str]]:
    positional, named = [], {}
    for tok in tokens:
        if "=" in tok:
            key, _, value = tok.partition("=")
            named[key] = value
        else:
            positional.append(tok)
    return positional, named


@dataclass
class _Source:  # a V or I card
    line: int
    name: str
    plus: str
    minus: str
    value: float


@dataclass
class _Parsed:
    entries: list = field(default_factory=list)  # ("group",) markers and element entries
    vsources: dict[str, _Source] = field(default_factory=dict)
    models: dict[str, tuple[int, dict[str, float]]] = field(default_factory=dict)
    diodes: list = field(default_factory=list)
    es: dict[str, tuple] = field(default_factory=dict)
    fs: dict[str, tuple] = field(default_factory=dict)
    names: dict[str, int] = field(default_factory=dict)
    node_literal: dict[str, NodeRef] = field(default_factory=dict)
    node_annotated: list[str] = field(default_factory=list)
    ann_inputs: list[str] = field(default_factory=list)
    ann_outputs: list[str] = field(default_factory=list)
    temp: float | None = None
    tnom: float | None = None


def _source_value(tokens: list[str], line: int, kind: str) -> float:
    value = 0.0
    k = 0
    seen_value = False
    while k < len(tokens):
        tok = tokens[k]
        if tok == "dc":
            k += 1
            continue
        if tok == "ac":  # small-signal magnitude and phase: no effect on the operating point
            k += 1
            while k < len(tokens) and _NUMBER.match(tokens[k]):
                k += 1
            continue
        if _NUMBER.match(tok) and not seen_value:
            value = parse_value(tok, line, f"the {kind} source's value")
            seen_value = True
            k += 1
            continue
        raise NetlistError(
            f"{kind} source: {tok!r} is not supported; kirchhoff imports DC sources "
            "(`V1 a 0 1.5`, `V1 a 0 DC 1.5`).",
            line,
        )
    return value


def _parse(text: str) -> _Parsed:
    p = _Parsed()

    def register(name: str, line: int):
        if name in p.names:
            raise NetlistError(
                f"the element name {name!r} is used twice (also on line {p.names[name]}).", line
            )
        p.names[name] = line

    for item in _logical_lines(text):
        if isinstance(item, tuple):
            _annotation(p, *item)
            continue
        line, tokens = item.line, item.tokens
        head = tokens[0]
        if head.startswith("."):
            _dot_card(p, head, tokens, line)
            continue
        letter = head[0]
        if letter == "r":
            if len(tokens) < 4:
                raise NetlistError(
                    f"resistor {head!r} needs two nodes and a resistance: `R1 a b 10k`.", line
                )
            register(head, line)
            positional, named = _split_params(tokens[3:])
            for key in named:
                if key not in ("r", "m"):
                    raise NetlistError(f"resistor parameter {key!r} is not supported.", line)
            if len(positional) > 1 or (positional and "r" in named):
                raise NetlistError(f"resistor {head!r}: unexpected {tokens[4:]!r}.", line)
            if not positional and "r" not in named:
                raise NetlistError(f"resistor {head!r} needs a resistance: `R1 a b 10k`.", line)
            ohms = parse_value(positional[0] if positional else named["r"], line, "the resistance")
            mult = parse_value(named.get("m", "1"), line, "the multiplier m")
            if ohms <= 0 or mult <= 0:
                raise NetlistError(f"resistor {head!r} has a non-positive resistance or m.", line)
            a, c = _node(tokens[1]), _node(tokens[2])
            _distinct(head, a, c, line)
            p.entries.append(("resistor", line, (a, c, mult / ohms)))
        elif letter == "d":
            if len(tokens) < 4:
                raise NetlistError(
                    f"diode {head!r} needs two nodes and a model: `D1 a k dmod`.", line
                )
            register(head, line)
            positional, named = _split_params(tokens[4:])
            scale, temp, dtemp = 1.0, None, 0.0
            for tok in positional:
                if tok == "off":
                    continue
                scale *= parse_value(tok, line, "the diode's area")
            for key, value in named.items():
                if key in ("area", "m"):
                    scale *= parse_value(value, line, f"the diode's {key}")
                elif key == "temp":
                    temp = parse_value(value, line, "the diode's temp")
                elif key == "dtemp":
                    dtemp = parse_value(value, line, "the diode's dtemp")
                elif key != "ic":
                    raise NetlistError(f"diode parameter {key!r} is not supported.", line)
            a, c = _node(tokens[1]), _node(tokens[2])
            _distinct(head, a, c, line)
            entry = ["diode", line, (a, c, tokens[3], scale, temp, dtemp)]
            p.entries.append(entry)
            p.diodes.append(entry)
        elif letter in "vi":
            kind = "voltage" if letter == "v" else "current"
            if len(tokens) < 3:
                raise NetlistError(
                    f"{kind} source {head!r} needs two nodes: `{letter.upper()}1 a 0 1.5`.", line
                )
            register(head, line)
            src = _Source(
                line,
                head,
                _node(tokens[1]),
                _node(tokens[2]),
                _source_value(tokens[3:], line, kind),
            )
            if src.plus == src.minus:
                raise NetlistError(
                    f"{kind} source {head!r} has both terminals at node {src.plus!r}.", line
                )
            if letter == "v":
                p.vsources[head] = src
                p.entries.append(("v", line, src))
            else:
                p.entries.append(("i", line, src))
        elif letter == "e":
            if len(tokens) != 6:
                raise NetlistError(
                    f"E source {head!r}: expected `E name out 0 ctrl 0 gain` (a linear VCVS).", line
                )
            register(head, line)
            out, ref, ctrl, ctrl_ref = (_node(t) for t in tokens[1:5])
            if ref != GROUND or ctrl_ref != GROUND:
                raise NetlistError(
                    f"E source {head!r}: its output and its control must be referenced to ground "
                    "(`E name out 0 ctrl 0 gain`).",
                    line,
                )
            gain = parse_value(tokens[5], line, "the E source's gain")
            p.es[head] = (line, out, ctrl, gain)
            p.entries.append(("e", line, head))
        elif letter == "f":
            if len(tokens) != 5:
                raise NetlistError(
                    f"F source {head!r}: expected `F name n+ n- vsense gain` (a linear CCCS).", line
                )
            register(head, line)
            p.fs[head] = (
                line,
                _node(tokens[1]),
                _node(tokens[2]),
                tokens[3],
                parse_value(tokens[4], line, "the F source's gain"),
            )
        else:
            raise NetlistError(
                f"element {head!r}: kirchhoff does not import {letter.upper()} cards; it reads "
                "R, D, V, I and E + F amplifier pairs.",
                line,
            )
    return p


def _distinct(name: str, a: str, c: str, line: int) -> None:
    if a == c:
        raise NetlistError(f"element {name!r} has both terminals at node {a!r}.", line)


def _annotation(p: _Parsed, line: int, text: str) -> None:
    parts = text[len(ANNOTATION) :].split(maxsplit=1)
    what = parts[0].lower() if parts else ""
    rest = parts[1] if len(parts) > 1 else ""
    if what == "netlist":
        return
    if what == "node":
        spice, _, literal = rest.partition(" ")
        try:
            p.node_literal[_node(spice.lower())] = ast.literal_eval(literal.strip())
        except (ValueError, SyntaxError):
            raise NetlistError(f"cannot read the node name {literal.strip()!r}.", line) from None
        p.node_annotated.append(_node(spice.lower()))
    elif what == "inputs":
        p.ann_inputs += rest.lower().split()
    elif what == "outputs":
        p.ann_outputs += [_node(n) for n in rest.lower().split()]
    elif what == "group":
        p.entries.append(("group",))
    elif what == "ground":
        p.entries.append(("ground", line, None))
    elif what == "open":
        fields = rest.lower().split()
        if len(fields) != 3:
            raise NetlistError(
                "expected `*@kirchhoff open rname a b` (a zero-conductance resistor).", line
            )
        p.entries.append(("resistor", line, (_node(fields[1]), _node(fields[2]), 0.0)))
    else:
        raise NetlistError(f"unknown kirchhoff annotation {what!r}.", line)


def _dot_card(p: _Parsed, head: str, tokens: list[str], line: int) -> None:
    if head in _IGNORED_DOT:
        return
    if head in (".options", ".option", ".opt", ".opts"):
        _, named = _split_params(tokens[1:])
        if "temp" in named:
            p.temp = parse_value(named["temp"], line, "temp")
        if "tnom" in named:
            p.tnom = parse_value(named["tnom"], line, "tnom")
        return
    if head == ".temp":
        if len(tokens) != 2:
            raise NetlistError("expected `.temp <celsius>`.", line)
        p.temp = parse_value(tokens[1], line, "the temperature")
        return
    if head == ".model":
        if len(tokens) < 3:
            raise NetlistError("expected `.model name D(IS=… N=…)`.", line)
        name, kind = tokens[1], tokens[2]
        if kind != "d":
            raise NetlistError(
                f"model {name!r} is of type {kind.upper()!r}; kirchhoff imports diode (D) "
                "models only.",
                line,
            )
        if name in p.models:
            raise NetlistError(
                f"model {name!r} is defined twice (also on line {p.models[name][0]}).", line
            )
        positional, named = _split_params(tokens[3:])
        if positional:
            raise NetlistError(
                f"model {name!r}: unexpected {positional!r}; write parameters as KEY=value.", line
            )
        params = {}
        for key, value in named.items():
            v = parse_value(value, line, f"the model parameter {key.upper()}")
            if key in ("is", "n", "tnom"):
                params[key] = v
            elif key == "level":
                if v != 1:
                    raise NetlistError(f"model {name!r}: only diode level 1 is supported.", line)
            elif key not in _DIODE_IGNORED and v != 0.0:
                raise NetlistError(
                    f"model {name!r}: the parameter {key.upper()} changes the DC current and is "
                    "not supported (kirchhoff's ShockleyDiode has IS and N).",
                    line,
                )
        p.models[name] = (line, params)
        return
    raise NetlistError(f"the card {head!r} is not supported by kirchhoff's importer.", line)


# ---- netlist → circuit --------------------------------------------------------------------
def _read(netlist) -> str:
    if isinstance(netlist, os.PathLike):
        with open(netlist) as f:
            return f.read()
    if not isinstance(netlist, str):
        raise ValueError("from_netlist: give the netlist as a str (its text) or a pathlib.Path.")
    return netlist


def _amplifiers(p: _Parsed) -> tuple[dict[str, tuple], set[str]]:
    """Pair every E with its ammeter and F; returns {E name: (source, drive, gain)}, ammeters."""
    usage: dict[str, int] = {}

    def use(n):
        usage[n] = usage.get(n, 0) + 1

    for entry in p.entries:
        if entry[0] == "resistor" or entry[0] == "diode":
            use(entry[2][0]), use(entry[2][1])
        elif entry[0] in ("v", "i"):
            use(entry[2].plus), use(entry[2].minus)
    for _, out, ctrl, _ in p.es.values():
        use(out), use(ctrl)
    for _, plus, minus, _, _ in p.fs.values():
        use(plus), use(minus)

    by_output: dict[str, list[str]] = {}
    for name, (_, out, _, _) in p.es.items():
        by_output.setdefault(out, []).append(name)
    pairs: dict[str, tuple] = {}
    ammeters: set[str] = set()
    for fname, (line, plus, minus, vname, fgain) in p.fs.items():
        sense = p.vsources.get(vname)
        if sense is None:
            raise NetlistError(
                f"F source {fname!r} is controlled by {vname!r}, which is not a V source.", line
            )
        if sense.value != 0.0:
            raise NetlistError(
                f"F source {fname!r}: its ammeter {vname!r} must be a 0 V source.", line
            )
        candidates = [e for n in (sense.plus, sense.minus) for e in by_output.get(n, [])]
        if len(candidates) != 1:
            raise NetlistError(
                f"F source {fname!r} is not half of a bidirectional amplifier: its ammeter "
                f"{vname!r} must join the output of exactly one E source to the drive node "
                f"(found {len(candidates)}).",
                line,
            )
        ename = candidates[0]
        eline, out, ctrl, gain = p.es[ename]
        if ename in pairs:
            raise NetlistError(f"E source {ename!r} is paired with two F sources.", line)
        sign_v = 1.0 if sense.plus == out else -1.0
        drive = sense.minus if sign_v > 0 else sense.plus
        if minus == GROUND:
            source, sign_f = plus, 1.0
        elif plus == GROUND:
            source, sign_f = minus, -1.0
        else:
            raise NetlistError(f"F source {fname!r} must connect its source node to ground.", line)
        if source != ctrl:
            raise NetlistError(
                f"F source {fname!r} feeds node {source!r} but E source {ename!r} senses node "
                f"{ctrl!r}; an amplifier's F must draw its current from the E's input node.",
                line,
            )
        if drive == GROUND:
            raise NetlistError(f"the amplifier {ename!r} drives the ground node.", eline)
        if usage.get(out, 0) != 2:
            raise NetlistError(
                f"E source {ename!r}: its output node {out!r} may join only its ammeter "
                f"{vname!r}; other elements attach to the drive node {drive!r}.",
                eline,
            )
        if abs(sign_f * fgain * sign_v * gain - 1.0) > 1e-9:
            raise NetlistError(
                f"F source {fname!r} has gain {fgain!r}, but a bidirectional amplifier with "
                f"E gain {gain!r} needs {sign_f * sign_v / gain!r} (1/A, signed by the "
                "orientation of the F and of the ammeter).",
                line,
            )
        pairs[ename] = (ctrl, drive, gain)
        ammeters.add(vname)
    for ename, (line, *_rest) in p.es.items():
        if ename not in pairs:
            raise NetlistError(
                f"E source {ename!r} has no F source through a 0 V ammeter at its output; "
                "kirchhoff imports an E only as half of a bidirectional amplifier "
                "(E + ammeter + F of gain 1/A).",
                line,
            )
    return pairs, ammeters


def _elements_stream(p: _Parsed, inputs: Sequence[str] | None):
    """Element entries (kind, line, data) with group markers, and the designated inputs."""
    pairs, ammeters = _amplifiers(p)
    designated = [v.lower() for v in (p.ann_inputs if inputs is None else inputs)]
    if len(set(designated)) != len(designated):
        raise NetlistError(f"an input is named twice in {designated!r}.")
    for v in designated:
        src = p.vsources.get(v)
        if src is None:
            raise NetlistError(f"the input {v!r} is not a V source of the netlist.")
        if v in ammeters:
            raise NetlistError(f"the input {v!r} is an amplifier's ammeter.", src.line)

    temp = SPICE_DEFAULT_CELSIUS if p.temp is None else p.temp
    tnom = SPICE_DEFAULT_CELSIUS if p.tnom is None else p.tnom
    stream = []
    for entry in p.entries:
        kind = entry[0]
        if kind == "group":
            stream.append(entry)
        elif kind == "resistor":
            stream.append(entry)
        elif kind == "diode":
            line, (a, c, model, scale, inst_temp, dtemp) = entry[1], entry[2]
            if model == IDEAL_DIODE_MODEL:
                stream.append(("ideal", line, (a, c)))
                continue
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
            stream.append(("shockley", line, (a, c, i_s, n, thermal_voltage(t))))
        elif kind == "ground":
            stream.append(("vsource", entry[1], (GROUND, 0.0)))
        elif kind == "v":
            src = entry[2]
            if src.name in ammeters:
                continue
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
                stream.append(("input", src.line, (node, src.name, volts)))
            else:
                stream.append(("vsource", src.line, (node, volts)))
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


def _build(p: _Parsed, inputs, outputs) -> tuple[Circuit, np.ndarray]:
    stream, designated = _elements_stream(p, inputs)

    # the reference node is a circuit node when an element (not a source) touches it
    has_ground = any(e[0] == "vsource" and e[2][0] == GROUND for e in stream if e[0] != "group")
    touches_ground = any(
        GROUND in _terminals(e[0], e[2])
        for e in stream
        if e[0] in ("resistor", "shockley", "ideal", "amplifier")
    )
    if touches_ground and not has_ground:
        stream = [("vsource", 0, (GROUND, 0.0)), ("group",), *stream]
    # inputs are ordered as named; gathered into one group where the cards order them otherwise
    in_stream = [e[2][1] for e in stream if e[0] == "input"]
    if in_stream != designated:
        first = next(k for k, e in enumerate(stream) if e[0] == "input")
        by_name = {e[2][1]: e for e in stream if e[0] == "input"}
        gathered = [("group",), *(by_name[v] for v in designated), ("group",)]
        rest = [e for e in stream if e[0] != "input"]
        stream = rest[:first] + gathered + rest[first:]
        # `first` counts non-input entries before the first input: the same position in `rest`

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

    def name(n):
        return p.node_literal.get(n, n)

    elements = []
    for kind, items in groups:
        cols = list(zip(*items, strict=True))
        if kind == "resistor":
            elements.append(
                Resistor([name(n) for n in cols[0]], [name(n) for n in cols[1]], np.array(cols[2]))
            )
        elif kind == "shockley":
            elements.append(
                ShockleyDiode(
                    [name(n) for n in cols[0]],
                    [name(n) for n in cols[1]],
                    saturation_current=np.array(cols[2]),
                    ideality=np.array(cols[3]),
                    thermal_voltage=np.array(cols[4]),
                )
            )
        elif kind == "ideal":
            elements.append(IdealDiode([name(n) for n in cols[0]], [name(n) for n in cols[1]]))
        elif kind == "vsource":
            elements.append(
                VoltageSource([name(n) for n in cols[0]], np.array(cols[1], dtype=float))
            )
        elif kind == "input":
            elements.append(Input([name(n) for n in cols[0]]))
        elif kind == "isource":
            elements.append(
                CurrentSource([name(n) for n in cols[0]], np.array(cols[1], dtype=float))
            )
        elif kind == "amplifier":
            elements.append(
                Amplifier([name(n) for n in cols[0]], [name(n) for n in cols[1]], list(cols[2]))
            )

    # node order: the annotated order, then first appearance in the cards
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

    wanted = p.ann_outputs if outputs is None else list(outputs)
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
