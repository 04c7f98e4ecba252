"""The bidirectional-amplifier pattern in a parsed netlist: an E source, a 0 V ammeter and an
F source that together make one kirchhoff Amplifier (stage 3 of the import)."""

from ._cards import _Parsed
from ._common import (
    GROUND,
)
from ._lex import NetlistError


def _node_usage(p: _Parsed) -> dict[str, int]:
    """How many terminals of the cards meet at each node."""
    usage: dict[str, int] = {}
    terminals = []
    for entry in p.entries:
        if entry[0] == "resistor" or entry[0] == "diode":
            terminals += [entry[2][0], entry[2][1]]
        elif entry[0] in ("v", "i"):
            terminals += [entry[2].plus, entry[2].minus]
    terminals += [n for _, out, ctrl, _ in p.es.values() for n in (out, ctrl)]
    terminals += [n for _, plus, minus, _, _ in p.fs.values() for n in (plus, minus)]
    for n in terminals:
        usage[n] = usage.get(n, 0) + 1
    return usage


def _sensed_e(p: _Parsed, fname: str, f, by_output):
    """(the E source whose output the F's 0 V ammeter sense, the ammeter) for one F."""
    line, _, _, vname, _ = f
    sense = p.vsources.get(vname)
    if sense is None:
        raise NetlistError(
            f"F source {fname!r} is controlled by {vname!r}, which is not a V source.", line
        )
    if sense.value != 0.0:
        raise NetlistError(f"F source {fname!r}: its ammeter {vname!r} must be a 0 V source.", line)
    candidates = [e for n in (sense.plus, sense.minus) for e in by_output.get(n, [])]
    if len(candidates) != 1:
        raise NetlistError(
            f"F source {fname!r} is not half of a bidirectional amplifier: its ammeter "
            f"{vname!r} must join the output of exactly one E source to the drive node "
            f"(found {len(candidates)}).",
            line,
        )
    return candidates[0], sense


def _pair(p: _Parsed, fname: str, f, ename: str, sense, usage) -> tuple:
    """(source, drive, gain) of the amplifier an E and an F make, checked."""
    line, plus, minus, vname, fgain = f
    eline, out, ctrl, gain = p.es[ename]
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
    return ctrl, drive, gain


def _amplifiers(p: _Parsed) -> tuple[dict[str, tuple], set[str]]:
    """Pair every E with its ammeter and F; returns {E name: (source, drive, gain)}, ammeters."""
    usage = _node_usage(p)
    by_output: dict[str, list[str]] = {}
    for name, (_, out, _, _) in p.es.items():
        by_output.setdefault(out, []).append(name)
    pairs: dict[str, tuple] = {}
    ammeters: set[str] = set()
    for fname, f in p.fs.items():
        ename, sense = _sensed_e(p, fname, f, by_output)
        if ename in pairs:
            raise NetlistError(f"E source {ename!r} is paired with two F sources.", f[0])
        pairs[ename] = _pair(p, fname, f, ename, sense, usage)
        ammeters.add(f[3])
    for ename, (line, *_rest) in p.es.items():
        if ename not in pairs:
            raise NetlistError(
                f"E source {ename!r} has no F source through a 0 V ammeter at its output; "
                "kirchhoff imports an E only as half of a bidirectional amplifier "
                "(E + ammeter + F of gain 1/A).",
                line,
            )
    return pairs, ammeters
