"""Netlist lexing: values with engineering suffixes, comments, continuation lines, and the
NetlistError every stage raises."""

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import numpy as np

from ._common import (
    ANNOTATION,
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
