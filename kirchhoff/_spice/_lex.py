"""Netlist lexing: values with engineering suffixes, comments, continuation lines, and the
NetlistError every stage raises."""

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from ._common import (
    ANNOTATION,
)


class NetlistError(ValueError):
    """Raised by [`from_netlist`][kirchhoff.from_netlist] and
    [`netlist_inputs`][kirchhoff.netlist_inputs] for a netlist that kirchhoff cannot import:
    a card or value it does not read, or a circuit whose potentials are undefined. A
    ValueError; its message names the line.

    Attributes:
        line: the 1-based number of the offending line, or None when no one line is to blame.
    """

    def __init__(self, message: str, line: int | None = None):
        self.line = line
        super().__init__(
            f"SPICE netlist, line {line}: {message}" if line else f"SPICE netlist: {message}"
        )


def show(text: str, limit: int = 40) -> str:
    """``repr(text)``, shortened in the middle when long, for quoting netlist text in errors."""
    if len(text) > limit:
        text = f"{text[: limit // 2]}…{text[-limit // 4 :]}"
    return repr(text)


# ---- values ---------------------------------------------------------------------------
# ASCII digits only (Python's \d would also match full-width and other Unicode digits), and
# one way to match each prefix, so that a long token that fails does not backtrack for ages
_NUMBER = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[+-]?[0-9]+)?)([a-z]*)$")
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
    match = _NUMBER.match(token.lower()) if token.isascii() else None
    if match is None:
        raise NetlistError(
            f"bad value {show(token)} for {what}; expected a number such as 10k or 2.2e-3.", line
        )
    mantissa, suffix = match.groups()
    if suffix.startswith("meg"):
        scale = "1e6"
    elif suffix.startswith("mil"):
        scale = "25.4e-6"
    else:
        scale = _SCALE.get(suffix[:1], "1")
    try:
        exact = Decimal(mantissa) * Decimal(scale)
        value = float(exact)
    except (ArithmeticError, ValueError):  # an exponent beyond what Decimal holds
        exact, value = Decimal(1), float("nan")
    if not np.isfinite(value):
        raise NetlistError(
            f"the value {show(token)} for {what} is out of range: it is not a finite "
            "double-precision number.",
            line,
        )
    if value == 0.0 and exact != 0:
        raise NetlistError(
            f"the value {show(token)} for {what} is out of range: it underflows to 0.", line
        )
    return value


# ---- lines ----------------------------------------------------------------------------
@dataclass
class _Card:
    line: int
    text: str

    @property
    def tokens(self) -> list[str]:
        """Fields in lower case, parentheses and commas read as blanks, ``key = value`` as one
        field ``key=value`` (a loop, not a regex: linear in the length of the line)."""
        parts = re.sub(r"[(),]", " ", self.text.lower()).replace("=", " = ").split()
        tokens: list[str] = []
        glue = False
        for part in parts:
            if part == "=":
                if tokens:
                    tokens[-1] += "="
                else:
                    tokens.append("=")
                glue = True
            elif glue:
                tokens[-1] += part
                glue = False
            else:
                tokens.append(part)
        return tokens


_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_BLANK = " \t"  # only these separate fields: other whitespace (a no-break space…) is an error


def _check_characters(text: str, line: int) -> None:
    """Cards are ASCII without control characters (tabs aside): ngspice reads bytes, so a
    full-width digit or a look-alike letter would be read differently, or not at all."""
    for k, ch in enumerate(text):
        if ch.isascii() and (ch.isprintable() or ch == "\t"):
            continue
        token = next((t for t in text.split() if ch in t), ch)
        if 0xDC80 <= ord(ch) <= 0xDCFF:  # a byte that was not UTF-8, read with surrogateescape
            kind, name = "a byte that is not UTF-8 text", f"0x{ord(ch) - 0xDC00:02X}"
        else:
            name = unicodedata.name(ch, f"U+{ord(ch):04X}")
            kind = "a control character" if ch.isascii() else "a non-ASCII character"
        raise NetlistError(
            f"{kind}, {name} ({ch!r}), at column {k + 1} in {show(token)}; kirchhoff reads "
            "SPICE cards written in ASCII (comments and the title may hold any text).",
            line,
        )


def _logical_lines(text: str) -> list[_Card | tuple[int, str]]:
    """Cards (continuations joined, comments dropped) and annotation lines, after the title."""
    # SPICE's line breaks only: str.splitlines would also break at form feeds and the like,
    # numbering the lines differently from an editor and from ngspice
    lines = _LINE_BREAK.split(text)
    if not lines or not any(s.strip() for s in lines):
        raise NetlistError("the netlist is empty.")
    items: list[_Card | tuple[int, str]] = []
    last_card: _Card | None = None
    control_line = None  # the line of the open .control, inside a .control … .endc block
    for number, raw in enumerate(lines[1:], start=2):
        s = raw.strip(_BLANK)
        first = s.split()[0].lower() if s else ""
        if control_line is not None:
            if first == ".endc":
                control_line = None
            continue
        if not s:
            continue
        if s.startswith(ANNOTATION):
            items.append((number, s))
            continue
        if s.startswith("*"):
            continue
        s = re.split(r"[;]|[ \t]\$", s, maxsplit=1)[0].strip(_BLANK)
        if not s:
            continue
        _check_characters(s, number)
        if s.startswith("+"):
            if last_card is None:
                raise NetlistError(
                    f"a continuation line ('+') with no card before it: {show(s)}.", number
                )
            last_card.text += " " + s[1:]
            continue
        first = s.split()[0].lower()
        if first == ".control":
            control_line = number
            last_card = None
            continue
        if first == ".endc":
            raise NetlistError("'.endc' without a '.control' before it.", number)
        if first == ".end":
            break
        last_card = _Card(number, s)
        items.append(last_card)
    if control_line is not None:
        raise NetlistError(
            "this '.control' block has no '.endc': every line after it would be skipped; "
            "close the block with '.endc'.",
            control_line,
        )
    return items
