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
from ._lex import _NUMBER, NetlistError, _logical_lines, parse_value, show

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


ABSOLUTE_ZERO_CELSIUS = -273.15


def _node(token: str) -> str:
    return GROUND if token in GROUND_ALIASES else token


def _nodes(tokens: list[str], line: int, what: str) -> list[str]:
    """The node tokens of a card, in kirchhoff's spelling of the reference node."""
    for tok in tokens:
        if "=" in tok:
            raise NetlistError(
                f"{what}: {show(tok)} stands where a node name belongs; a node is a name "
                "without '='.",
                line,
            )
    return [_node(t) for t in tokens]


def _split_params(tokens: list[str], line: int) -> tuple[list[str], dict[str, str]]:
    positional, named = [], {}
    for tok in tokens:
        if "=" in tok:
            key, _, value = tok.partition("=")
            if not key:
                raise NetlistError(f"{show(tok)} gives a value to no parameter name.", line)
            if key in named:
                raise NetlistError(f"the parameter {key.upper()!r} is given twice.", line)
            named[key] = value
        else:
            positional.append(tok)
    return positional, named


def _celsius(token: str, line: int, what: str) -> float:
    t = parse_value(token, line, what)
    if t <= ABSOLUTE_ZERO_CELSIUS:
        raise NetlistError(
            f"{what} is {show(token)} °C, at or below absolute zero ({ABSOLUTE_ZERO_CELSIUS} °C).",
            line,
        )
    return t


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
    node_line: dict[str, int] = field(default_factory=dict)  # annotation line per node
    ann_inputs: list[str] = field(default_factory=list)
    ann_outputs: list[str] = field(default_factory=list)
    ann_line: dict[str, int] = field(default_factory=dict)  # 'inputs'/'outputs' → its line
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
            f"{kind} source: {show(tok)} is not supported; kirchhoff imports DC sources "
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
    a, c = _nodes(tokens[1:3], line, f"resistor {head!r}")
    positional, named = _split_params(tokens[3:], line)
    for key in named:
        if key not in ("r", "m"):
            raise NetlistError(
                f"resistor {head!r}: the parameter {key.upper()!r} is not supported (R= and M= "
                "are).",
                line,
            )
    if len(positional) > 1 or (positional and "r" in named):
        extra = " ".join(positional[1:] if "r" not in named else positional)
        raise NetlistError(
            f"resistor {head!r}: unexpected {show(extra)} after its resistance; expected "
            "`R1 a b 10k [m=2]`.",
            line,
        )
    if not positional and "r" not in named:
        raise NetlistError(f"resistor {head!r} needs a resistance: `R1 a b 10k`.", line)
    text = positional[0] if positional else named["r"]
    ohms = parse_value(text, line, "the resistance")
    mult = parse_value(named.get("m", "1"), line, "the multiplier m")
    if ohms <= 0:
        raise NetlistError(
            f"resistor {head!r} has a non-positive resistance {show(text)}; a resistance is "
            "> 0 ohms.",
            line,
        )
    if mult <= 0:
        raise NetlistError(
            f"resistor {head!r} has a non-positive multiplier m={named['m']}; m is > 0.", line
        )
    conductance = mult / ohms
    if not 0 < conductance < float("inf"):
        raise NetlistError(
            f"resistor {head!r}: its conductance m/R = {mult!r}/{ohms!r} is out of range.", line
        )
    _distinct(head, a, c, line)
    p.entries.append(("resistor", line, (a, c, conductance)))


def _diode_card(p: _Parsed, head: str, tokens: list, line: int) -> None:
    """D name a k model [area] [m=…] [temp=…] [dtemp=…]: a diode entry."""
    if len(tokens) < 4:
        raise NetlistError(f"diode {head!r} needs two nodes and a model: `D1 a k dmod`.", line)
    _register(p, head, line)
    a, c = _nodes(tokens[1:3], line, f"diode {head!r}")
    if "=" in tokens[3]:
        raise NetlistError(
            f"diode {head!r}: {show(tokens[3])} stands where the model name belongs: "
            "`D1 a k dmod`.",
            line,
        )
    positional, named = _split_params(tokens[4:], line)
    scale, temp, dtemp = 1.0, None, 0.0
    areas = [tok for tok in positional if tok != "off"]
    if len(areas) > 1:
        raise NetlistError(
            f"diode {head!r}: unexpected {show(' '.join(areas[1:]))} after its area; expected "
            "`D1 a k dmod [area] [m=…]`.",
            line,
        )
    factors = [(tok, "area") for tok in areas]
    for key, value in named.items():
        if key in ("area", "m"):
            factors.append((value, key))
        elif key == "temp":
            temp = _celsius(value, line, "the diode's temp")
        elif key == "dtemp":
            dtemp = parse_value(value, line, "the diode's dtemp")
        elif key != "ic":
            raise NetlistError(
                f"diode {head!r}: the parameter {key.upper()!r} is not supported.", line
            )
    for tok, key in factors:
        factor = parse_value(tok, line, f"the diode's {key}")
        if factor <= 0:
            raise NetlistError(
                f"diode {head!r}: its {key} {show(tok)} is not positive; it scales IS.", line
            )
        scale *= factor
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
    plus, minus = _nodes(tokens[1:3], line, f"{kind} source {head!r}")
    src = _Source(line, head, plus, minus, _source_value(tokens[3:], line, kind))
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
    out, ref, ctrl, ctrl_ref = _nodes(tokens[1:5], line, f"E source {head!r}")
    if ref != GROUND or ctrl_ref != GROUND:
        raise NetlistError(
            f"E source {head!r}: its output and its control must be referenced to ground "
            "(`E name out 0 ctrl 0 gain`).",
            line,
        )
    gain = parse_value(tokens[5], line, "the E source's gain")
    if gain == 0:
        raise NetlistError(f"E source {head!r} has gain 0; an amplifier's gain is non-zero.", line)
    _distinct(head, out, ctrl, line)
    p.es[head] = (line, out, ctrl, gain)
    p.entries.append(("e", line, head))


def _cccs_card(p: _Parsed, head: str, tokens: list, line: int) -> None:
    """F name n+ n- vsense gain: the other half."""
    if len(tokens) != 5:
        raise NetlistError(
            f"F source {head!r}: expected `F name n+ n- vsense gain` (a linear CCCS).", line
        )
    _register(p, head, line)
    plus, minus = _nodes(tokens[1:3], line, f"F source {head!r}")
    _distinct(head, plus, minus, line)
    p.fs[head] = (line, plus, minus, tokens[3], parse_value(tokens[4], line, "the F source's gain"))


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
        if not tokens:
            raise NetlistError(f"the card {show(item.text)} has no name.", line)
        head = tokens[0]
        if head.startswith("."):
            _dot_card(p, head, tokens, line)
            continue
        card = _CARDS.get(head[0])
        if card is None:
            kind = f"{head[0].upper()} cards" if head[0].isalpha() else "such cards"
            raise NetlistError(
                f"element {show(head)}: kirchhoff does not import {kind}; it reads R, D, V, I "
                "and E + F amplifier pairs.",
                line,
            )
        card(p, head, tokens, line)
    if not p.names:
        raise NetlistError(
            "the netlist has no element cards (R, D, V, I, E, F); its first line is the title."
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
        spice, _, literal = rest.strip().partition(" ")
        spice, literal = _node(spice.lower()), literal.strip()
        usage = (
            "expected `*@kirchhoff node <spice name> <Python literal>`, e.g. `node n_1 ('n', 1)`"
        )
        if not spice or not literal:
            raise NetlistError(f"{usage}; got {show(text)}.", line)
        try:
            value = ast.literal_eval(literal)
            hash(value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise NetlistError(
                f"cannot read the node name {show(literal)}: a node name is a hashable Python "
                f"literal (a str, an int or a tuple of them); {usage}.",
                line,
            ) from None
        if spice in p.node_line:
            raise NetlistError(
                f"the node {spice!r} is annotated twice (also on line {p.node_line[spice]}).", line
            )
        p.node_literal[spice] = value
        p.node_line[spice] = line
        p.node_annotated.append(spice)
    elif what == "inputs":
        p.ann_inputs += rest.lower().split()
        p.ann_line.setdefault("inputs", line)
    elif what == "outputs":
        p.ann_outputs += [_node(n) for n in rest.lower().split()]
        p.ann_line.setdefault("outputs", line)
    elif what == "group":
        p.entries.append(("group",))
    elif what == "ground":
        p.entries.append(("ground", line, None))
    elif what == "open":
        fields = rest.lower().split()
        if len(fields) != 3:
            raise NetlistError(
                "expected `*@kirchhoff open rname a b` (a zero-conductance resistor); got "
                f"{show(text)}.",
                line,
            )
        a, c = _node(fields[1]), _node(fields[2])
        _distinct(fields[0], a, c, line)
        p.entries.append(("resistor", line, (a, c, 0.0)))
    else:
        raise NetlistError(
            f"unknown kirchhoff annotation {show(what)}; kirchhoff writes netlist, node, inputs, "
            "outputs, group, ground and open.",
            line,
        )


def _dot_card(p: _Parsed, head: str, tokens: list[str], line: int) -> None:
    if head in _IGNORED_DOT:
        return
    if head in (".options", ".option", ".opt", ".opts"):
        _, named = _split_params(tokens[1:], line)
        if "temp" in named:
            p.temp = _celsius(named["temp"], line, "temp")
        if "tnom" in named:
            p.tnom = _celsius(named["tnom"], line, "tnom")
        return
    if head == ".temp":
        if len(tokens) != 2:
            raise NetlistError(f"expected `.temp <celsius>`; got {len(tokens) - 1} values.", line)
        p.temp = _celsius(tokens[1], line, "the temperature")
        return
    if head in (".subckt", ".ends"):
        raise NetlistError(
            f"the card {head!r}: subcircuits (.subckt … .ends, X cards) are not supported by "
            "kirchhoff's importer; flatten the netlist.",
            line,
        )
    if head in (".include", ".inc", ".lib", ".endl"):
        raise NetlistError(
            f"the card {head!r} is not supported: kirchhoff's importer reads one netlist and "
            "no other files; paste the cards in.",
            line,
        )
    if head == ".model":
        if len(tokens) < 3:
            raise NetlistError("expected `.model name D(IS=… N=…)`.", line)
        name, kind = tokens[1], tokens[2]
        if kind != "d":
            raise NetlistError(
                f"model {name!r} is of type {show(kind.upper())}; kirchhoff imports diode (D) "
                "models only.",
                line,
            )
        if name in p.models:
            raise NetlistError(
                f"model {name!r} is defined twice (also on line {p.models[name][0]}).", line
            )
        positional, named = _split_params(tokens[3:], line)
        if positional:
            raise NetlistError(
                f"model {name!r}: unexpected {positional!r}; write parameters as KEY=value.", line
            )
        params = {}
        for key, value in named.items():
            v = parse_value(value, line, f"the model parameter {key.upper()}")
            if key in ("is", "n"):
                if v <= 0:
                    raise NetlistError(
                        f"model {name!r}: {key.upper()}={value} is not positive; IS and N are > 0.",
                        line,
                    )
                params[key] = v
            elif key == "rs":
                if v < 0:
                    raise NetlistError(
                        f"model {name!r}: RS={value} is negative; a series resistance is ≥ 0.",
                        line,
                    )
                params[key] = v
            elif key == "tnom":
                params[key] = _celsius(value, line, f"model {name!r}'s TNOM")
            elif key == "level":
                if v != 1:
                    raise NetlistError(f"model {name!r}: only diode level 1 is supported.", line)
            elif key not in _DIODE_IGNORED and v != 0.0:
                raise NetlistError(
                    f"model {name!r}: the parameter {key.upper()} changes the DC current and is "
                    "not supported (kirchhoff's ShockleyDiode has IS, N and RS).",
                    line,
                )
        p.models[name] = (line, params)
        return
    raise NetlistError(
        f"the card {show(head)} is not supported by kirchhoff's importer (it reads .model, "
        ".options, .temp and .end, and skips analysis and output cards).",
        line,
    )
