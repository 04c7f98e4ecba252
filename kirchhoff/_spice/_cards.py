"""Netlist cards: R, D, V, I, E, F, .model and dot cards, and kirchhoff's annotations, parsed
into one record of the netlist (stage 2 of the import)."""

import ast
from dataclasses import dataclass, field

from .._custom_types import NodeRef
from ._common import (
    ANNOTATION,
    GROUND,
    GROUND_ALIASES,
)
from ._lex import _NUMBER, NetlistError, _logical_lines, parse_value

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


def _register(p: _Parsed, name: str, line: int) -> None:
    if name in p.names:
        raise NetlistError(
            f"the element name {name!r} is used twice (also on line {p.names[name]}).", line
        )
    p.names[name] = line


def _resistor_card(p: _Parsed, head: str, tokens: list, line: int) -> None:
    """R name a b value [r=…] [m=…]: a conductance entry."""
    if len(tokens) < 4:
        raise NetlistError(
            f"resistor {head!r} needs two nodes and a resistance: `R1 a b 10k`.", line
        )
    _register(p, head, line)
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


def _diode_card(p: _Parsed, head: str, tokens: list, line: int) -> None:
    """D name a k model [area] [m=…] [temp=…] [dtemp=…]: a diode entry."""
    if len(tokens) < 4:
        raise NetlistError(f"diode {head!r} needs two nodes and a model: `D1 a k dmod`.", line)
    _register(p, head, line)
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


def _source_card(p: _Parsed, head: str, tokens: list, line: int) -> None:
    """V or I name n+ n- value: a held node or an injected current."""
    letter = head[0]
    kind = "voltage" if letter == "v" else "current"
    if len(tokens) < 3:
        raise NetlistError(
            f"{kind} source {head!r} needs two nodes: `{letter.upper()}1 a 0 1.5`.", line
        )
    _register(p, head, line)
    src = _Source(
        line,
        head,
        _node(tokens[1]),
        _node(tokens[2]),
        _source_value(tokens[3:], line, kind),
    )
    if src.plus == src.minus:
        raise NetlistError(f"{kind} source {head!r} has both terminals at node {src.plus!r}.", line)
    if letter == "v":
        p.vsources[head] = src
        p.entries.append(("v", line, src))
    else:
        p.entries.append(("i", line, src))


def _vcvs_card(p: _Parsed, head: str, tokens: list, line: int) -> None:
    """E name out 0 ctrl 0 gain: half of a bidirectional amplifier."""
    if len(tokens) != 6:
        raise NetlistError(
            f"E source {head!r}: expected `E name out 0 ctrl 0 gain` (a linear VCVS).", line
        )
    _register(p, head, line)
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


def _cccs_card(p: _Parsed, head: str, tokens: list, line: int) -> None:
    """F name n+ n- vsense gain: the other half."""
    if len(tokens) != 5:
        raise NetlistError(
            f"F source {head!r}: expected `F name n+ n- vsense gain` (a linear CCCS).", line
        )
    _register(p, head, line)
    p.fs[head] = (
        line,
        _node(tokens[1]),
        _node(tokens[2]),
        tokens[3],
        parse_value(tokens[4], line, "the F source's gain"),
    )


_CARDS = {
    "r": _resistor_card,
    "d": _diode_card,
    "v": _source_card,
    "i": _source_card,
    "e": _vcvs_card,
    "f": _cccs_card,
}


def _parse(text: str) -> _Parsed:
    p = _Parsed()
    for item in _logical_lines(text):
        if isinstance(item, tuple):
            _annotation(p, *item)
            continue
        line, tokens = item.line, item.tokens
        head = tokens[0]
        if head.startswith("."):
            _dot_card(p, head, tokens, line)
            continue
        card = _CARDS.get(head[0])
        if card is None:
            raise NetlistError(
                f"element {head!r}: kirchhoff does not import {head[0].upper()} cards; it reads "
                "R, D, V, I and E + F amplifier pairs.",
                line,
            )
        card(p, head, tokens, line)
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
