"""Property-based tests of the netlist importer (hypothesis, derandomized so that every run tries
the same examples).

Random VALID netlists — resistor trees to ground with extra resistors, V sources (some of them
inputs), I sources and diodes, written with engineering suffixes, trailing units, any letter case,
comments, continuation lines and skipped cards — build into the circuit they describe, survive
export → import, and (a sampled few) agree with ngspice's operating point of the same text.
Random INVALID netlists — mutations of valid ones — raise NetlistError, never another exception,
and never hang; targeted mutations raise it on the line of the mutated card."""

import contextlib
import signal
from dataclasses import dataclass, field, replace
from decimal import Decimal

import equinox as eqx
import numpy as np
import pytest
from conftest import require_ngspice
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kirchhoff as kh
from kirchhoff._spice._common import DEFAULT_OPTIONS
from kirchhoff._spice._ngspice import _control, _run

MICROVOLT = 1e-6
SETTINGS = {
    "derandomize": True,  # the same examples on every run: no flaky CI
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
SCALES = {"": 0, "t": 12, "g": 9, "meg": 6, "k": 3, "m": -3, "u": -6, "n": -9, "p": -12, "f": -15}


@contextlib.contextmanager
def _time_limit(seconds: int):
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(signum, frame):
        raise TimeoutError(f"the importer took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ---- a netlist as cards ---------------------------------------------------------------------
@dataclass
class Card:
    tokens: list[str]  # an element or dot card; empty for raw lines
    kind: str = "raw"  # R, D, V, I, model, raw
    split: bool = False  # its last token on a '+' continuation line
    trailing: str = ""  # an end-of-line comment
    raw: list[str] = field(default_factory=list)  # lines written as they are

    def lines(self) -> list[str]:
        if self.kind == "raw":
            return list(self.raw)
        if self.split and len(self.tokens) > 1:
            return [" ".join(self.tokens[:-1]), f"+ {self.tokens[-1]}{self.trailing}"]
        return [" ".join(self.tokens) + self.trailing]


@dataclass
class Netlist:
    cards: list[Card]
    inputs: list[str]  # V source names, in input order
    input_values: list[float]
    input_nodes: list[str]
    nodes: set[str]
    resistors: list[tuple[str, str, float]]  # (a, b, conductance)
    n_diodes: int
    injected: dict[str, float]  # net current into each node from the I sources
    tail: list[str] = field(default_factory=list)  # .end and what follows it

    def render(self, cards=None) -> tuple[str, list[int]]:
        """The text, and the line number of each card's first line."""
        lines, first = ["random netlist"], []
        for card in self.cards if cards is None else cards:
            first.append(len(lines) + 1)
            lines += card.lines()
        return "\n".join([*lines, *self.tail]) + "\n", first

    @property
    def text(self) -> str:
        return self.render()[0]


def _number(draw, mantissa: int, exponent: int, unit: str = "") -> tuple[str, float]:
    """mantissa·10^exponent written in one of SPICE's ways, and the float it denotes."""
    exact = Decimal(mantissa).scaleb(exponent)
    style = draw(st.sampled_from(["plain", "exponent", "suffix"]))
    if style == "exponent":
        text = f"{mantissa}e{exponent}"
    elif style == "suffix":
        suffix = draw(st.sampled_from(list(SCALES)))
        shown = format(exact.scaleb(-SCALES[suffix]), "f")
        text = shown + draw(st.sampled_from([suffix, suffix.upper()]))
    else:
        text = format(exact, "f")
    if unit and draw(st.booleans()) and (style != "suffix" or text[-1].isalpha()):
        text += draw(st.sampled_from([unit, unit.upper()]))
    return text, float(exact)


def _case(draw, text: str) -> str:
    return draw(st.sampled_from([text, text.upper(), text.capitalize()]))


_NAME = st.builds(
    lambda head, rest: head + rest,
    st.sampled_from("abcnoxyz"),
    st.text("abcdnxyz_0189", max_size=4),
).filter(lambda s: s != "gnd")


@st.composite
def netlists(draw, ideal: bool = False, extras: bool = True) -> Netlist:
    """A valid netlist: a resistor tree to ground, extra resistors, V sources, I sources and
    diodes (Shockley, or also ideal ones when ``ideal``); with ``extras``, comments, skipped
    cards, a .control block and .end with lines after it."""
    nodes = draw(st.lists(_NAME, min_size=1, max_size=5, unique=True))
    everything = ["0", *nodes]
    pairs = [(n, draw(st.sampled_from(["0", *nodes[:k]]))) for k, n in enumerate(nodes)]
    pairs += draw(
        st.lists(
            st.tuples(st.sampled_from(everything), st.sampled_from(everything)).filter(
                lambda p: p[0] != p[1]
            ),
            max_size=4,
        )
    )
    cards, resistors = [], []
    for k, (a, b) in enumerate(pairs):
        text, ohms = _number(draw, draw(st.integers(100, 999)), draw(st.integers(0, 2)), "ohm")
        if draw(st.integers(0, 4)) == 0:
            text = f"r={text}"
        spelled = [draw(st.sampled_from([n, n.upper()])) for n in (a, b)]
        if "0" in (a, b) and draw(st.booleans()):
            spelled[(a, b).index("0")] = _case(draw, "gnd")
        cards.append(Card([_case(draw, f"r{k + 1}"), *spelled, text], "R"))
        resistors.append((a, b, 1.0 / ohms))
    # V sources on distinct nodes, some of them inputs
    held = draw(st.lists(st.sampled_from(nodes), unique=True, max_size=min(2, len(nodes))))
    v_names, v_values = [], []
    for k, node in enumerate(held):
        millivolts = draw(st.integers(-1000, 1000))
        reverse = draw(st.booleans())
        text, volts = _number(draw, -millivolts if reverse else millivolts, -3, "v")
        name = f"v{k + 1}"
        prefix = [_case(draw, "dc")] if draw(st.booleans()) else []
        suffix = ["ac", "1"] if draw(st.integers(0, 3)) == 0 else []
        terminals = ["0", node] if reverse else [node, "0"]
        cards.append(Card([_case(draw, name), *terminals, *prefix, text, *suffix], "V"))
        v_names.append(name)
        v_values.append(-volts if reverse else volts)
    chosen = draw(st.lists(st.sampled_from(range(len(held))), unique=True)) if held else []
    # I sources between any two nodes
    injected: dict[str, float] = {}
    for k in range(draw(st.integers(0, 2))):
        a, b = draw(st.sampled_from(everything)), draw(st.sampled_from(everything))
        if a == b:
            continue
        text, amps = _number(draw, draw(st.integers(-100, 100)), -6, "a")
        cards.append(Card([_case(draw, f"i{k + 1}"), a, b, text], "I"))
        injected[b] = injected.get(b, 0.0) + amps  # SPICE's current flows a → source → b
        injected[a] = injected.get(a, 0.0) - amps
    # diodes
    n_diodes = 0
    for k in range(draw(st.integers(0, 3))):
        a, b = draw(st.sampled_from(everything)), draw(st.sampled_from(everything))
        if a == b:
            continue
        # an ideal diode between two held nodes is no circuit (forward-biased it would carry
        # an infinite current): the builder refuses it, so a valid netlist has none
        both_held = {a, b} <= {"0", *held}
        can_be_ideal = ideal and not both_held
        model = draw(st.sampled_from(["dm", "kirchhoff_ideal"] if can_be_ideal else ["dm"]))
        area = [draw(st.sampled_from(["2", "area=0.5", "m=3"]))] if draw(st.booleans()) else []
        cards.append(Card([_case(draw, f"d{k + 1}"), a, b, _case(draw, model), *area], "D"))
        n_diodes += 1
    if n_diodes:
        is_text, _ = _number(draw, draw(st.integers(1, 99)), draw(st.integers(-16, -13)))
        n_text, _ = _number(draw, draw(st.integers(100, 200)), -2)
        model = f".model dm D(IS={is_text} N={n_text}" + (" CJO=1p)" if extras else ")")
        cards.append(Card(model.split(), "model"))
    cards = draw(st.permutations(cards))
    tail = []
    if extras:
        for card in cards:
            if card.kind != "model" and draw(st.integers(0, 3)) == 0:
                card.split = True
            if draw(st.integers(0, 4)) == 0:
                card.trailing = draw(st.sampled_from(["; a comment", " $ note: R2 x y", " ;"]))
        skipped = [
            Card([], raw=["* a comment line: R9 a b 1k"]),
            Card([], raw=[""]),
            Card([], raw=[".op"]),
            Card([], raw=[".options reltol=1e-6 TEMP=27"]),
            Card([], raw=[".control", "op", "print all", "C1 x 0 1u", ".endc"]),
            Card([], raw=[".print dc v(1)"]),
        ]
        for extra in draw(st.lists(st.sampled_from(skipped), max_size=3)):
            cards.insert(draw(st.integers(0, len(cards))), replace(extra))
        if draw(st.booleans()):
            tail = [".end", "R99 past the end ; ignored"]
    input_names = [v_names[k] for k in chosen]
    return Netlist(
        cards=cards,
        inputs=input_names,
        input_values=[v_values[k] for k in chosen],
        input_nodes=[held[k] for k in chosen],
        nodes={"0", *nodes},
        resistors=resistors,
        n_diodes=n_diodes,
        injected={n: i for n, i in injected.items() if n != "0"},
        tail=tail,
    )


def _resistors(circuit) -> list[tuple[str, str, float]]:
    rows = []
    for e in circuit.elements:
        if isinstance(e, kh.Resistor):
            rows += zip(e.anode, e.cathode, np.asarray(e.conductance).tolist(), strict=True)
    return sorted(rows)


# ---- valid netlists ---------------------------------------------------------------------------
@settings(max_examples=30, **SETTINGS)
@given(netlists(ideal=True))
def test_valid_netlists_build_the_circuit_they_describe(net):
    text = net.text
    circuit = kh.from_netlist(text, inputs=net.inputs)
    assert set(circuit.node_names) == net.nodes
    assert list(circuit.input_names) == net.input_nodes
    np.testing.assert_array_equal(kh.netlist_inputs(text, net.inputs), net.input_values)
    assert _resistors(circuit) == sorted(net.resistors)  # 1/R of the exact decimal, rounded once
    diodes = [e for e in circuit.elements if isinstance(e, (kh.ShockleyDiode, kh.IdealDiode))]
    assert sum(e.size for e in diodes) == net.n_diodes
    injected: dict = {}
    for e in circuit.elements:
        if isinstance(e, kh.CurrentSource):
            for n, i in zip(e.node, np.asarray(e.current).tolist(), strict=True):
                injected[n] = injected.get(n, 0.0) + i
    for n in set(injected) | set(net.injected):
        assert injected.get(n, 0.0) == pytest.approx(net.injected.get(n, 0.0), abs=1e-18), n
    # the letter case, the layout and the skipped cards do not matter; export → import keeps it
    again = kh.from_netlist(text.lower(), inputs=[v.upper() for v in net.inputs])
    assert eqx.tree_equal(again, circuit)
    back = kh.from_netlist(kh.to_netlist(circuit))
    assert eqx.tree_equal(back, circuit, rtol=1e-15, atol=0.0)


def _ngspice_op(text: str) -> dict[str, float]:
    """ngspice's operating point of the netlist text (no .control or .end in it)."""
    options = " ".join(f"{k}={v}" for k, v in DEFAULT_OPTIONS.items())
    deck = "\n".join([text.rstrip("\n"), f".options {options}", *_control("op")]) + "\n"
    vectors = _run("ngspice", deck, timeout=60)
    return {k: float(np.asarray(v).reshape(-1)[0]) for k, v in vectors.items()}


@pytest.mark.spice
@settings(max_examples=4, **SETTINGS)
@given(netlists(extras=False))
def test_sampled_netlists_agree_with_ngspice(net):
    require_ngspice()
    text = net.text
    circuit = kh.from_netlist(text, inputs=net.inputs)
    x = kh.netlist_inputs(text, net.inputs)
    eq = kh.DampedNewton().solve(circuit, x)
    assert np.all(np.asarray(eq.converged))
    ours = np.asarray(circuit.potentials(eq.free, x))
    theirs = _ngspice_op(text)
    for name, v in zip(circuit.node_names, ours, strict=True):
        expected = 0.0 if name == "0" else theirs[f"v({name})"]
        assert v == pytest.approx(expected, abs=MICROVOLT), (name, text)


# ---- invalid netlists -------------------------------------------------------------------------
_JUNK_CHARS = st.characters(codec="utf-8", exclude_characters="\n\r")
_JUNK = st.one_of(
    st.text(_JUNK_CHARS, min_size=1, max_size=6),
    st.sampled_from(
        [
            "１k", "1e999", "-1e999", "1e-999", "9" * 400, "1e" + "9" * 30, "0", "-1", "nan",
            "inf", "=", "r=", "(", ")", ",", "+", "*", ";", "$", "\x00", "\t", "\u00a0", "Ω",
            "1k5", "..", ".control", ".endc", ".subckt", ".ends", "gnd", "0", "dm",
        ]
    ),
)  # fmt: skip
_LINES = st.sampled_from(
    [
        ".control",
        ".endc",
        ".subckt amp a b",
        ".ends",
        ".end",
        "+ 1k",
        "+",
        ".model dm D(IS=1e-14)",
        ".model dm2 D(IS=0)",
        "*@kirchhoff node a [",
        "*@kirchhoff node a ['x']",
        "*@kirchhoff node a 'x'",
        "*@kirchhoff open r a a",
        "*@kirchhoff inputs v9",
        "*@kirchhoff outputs a",
        "*@kirchhoff ground",
        "*@kirchhoff bogus",
        "V9 a 0 1",
        "Vx 0 0 1",
        "E1 a 0 b 0 2",
        "F1 a 0 v1 0.5",
        "X1 a b amp",
        ".temp -300",
        "R1 a a 1",
    ]
)


@st.composite
def mutated(draw) -> tuple[str, list[str]]:
    """A valid netlist's text after 1–3 random edits, and its inputs."""
    net = draw(netlists(ideal=True))
    lines = net.text.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        k = draw(st.integers(0, len(lines) - 1))
        tokens = lines[k].split()
        op = draw(
            st.sampled_from(["delete", "garble", "insert", "truncate", "drop", "dup", "line"])
        )
        if op == "delete" and tokens:
            del tokens[draw(st.integers(0, len(tokens) - 1))]
            lines[k] = " ".join(tokens)
        elif op == "garble" and tokens:
            tokens[draw(st.integers(0, len(tokens) - 1))] = draw(_JUNK)
            lines[k] = " ".join(tokens)
        elif op == "insert":
            at = draw(st.integers(0, len(lines[k])))
            lines[k] = lines[k][:at] + draw(_JUNK) + lines[k][at:]
        elif op == "truncate":
            lines[k] = lines[k][: draw(st.integers(0, len(lines[k])))]
        elif op == "drop" and len(lines) > 1:
            del lines[k]
        elif op == "dup":
            lines.insert(k, lines[k])
        else:
            lines.insert(k + 1, draw(_LINES))
    return "\n".join(lines) + "\n", net.inputs


@settings(max_examples=200, **SETTINGS)
@given(mutated())
def test_mutated_netlists_build_or_raise_a_netlist_error(case):
    text, inputs = case
    try:
        with _time_limit(20):
            circuit = kh.from_netlist(text, inputs=inputs)
    except kh.NetlistError as error:  # never another exception
        n_lines = len(text.split("\n"))
        assert error.line is None or 1 <= error.line <= n_lines, (error.line, n_lines)
        assert str(error).startswith("SPICE netlist")
    else:
        assert isinstance(circuit, kh.Circuit)


_BAD_VALUES = st.one_of(
    st.sampled_from(["0", "-1k", "nan", "inf", "1e999", "1e-999", "１k", "1k5", "abc", "-0"]),
    st.integers(400, 1000).map(lambda n: "9" * n),
    st.integers(309, 10**30).map(lambda e: f"1e{e}"),
    st.integers(1, 10**6).map(lambda m: f"-{m}"),
)
_UNSUPPORTED = st.sampled_from(["c", "l", "q", "m", "x", "g", "h", "b", "j", "k", "s", "w", "z"])
_BAD_CHARS = st.sampled_from(["\x00", "\x07", "\x1b", "１", "Ω", "é", "\u00a0", "\u200b", "Ｒ"])


@st.composite
def broken(draw) -> tuple[str, int, tuple[str, ...]]:
    """A valid netlist with one card made invalid: (text, its line, words of the message)."""
    net = draw(netlists(ideal=True))
    cards = [replace(c, tokens=list(c.tokens)) for c in net.cards]
    elements = [k for k, c in enumerate(cards) if c.kind in "RDVI"]
    resistors = [k for k, c in enumerate(cards) if c.kind == "R"]
    kinds = ["truncate", "duplicate", "unsupported", "char", "control", "subckt", "held"]
    what = draw(st.sampled_from(["value", *kinds]))
    shift = 0
    k = draw(st.sampled_from(resistors if what == "value" else elements))
    card = cards[k]
    head = card.tokens[0]
    if what == "value":
        bad = draw(_BAD_VALUES)
        card.tokens[-1] = draw(st.sampled_from([bad, f"r={bad}"]))
        words = ("resistance", "character")
        shift = int(card.split and not bad.isascii())  # a character is named on its own line
    elif what == "truncate":
        card.tokens = card.tokens[: draw(st.integers(1, 2 if card.kind in "VI" else 3))]
        words = ("needs two nodes",)
    elif what == "duplicate":
        copy = replace(card, tokens=[head.swapcase(), *card.tokens[1:]], trailing="")
        cards.insert(draw(st.integers(k + 1, len(cards))), copy)
        k = cards.index(copy)
        words = ("used twice",)
    elif what == "unsupported":
        card.tokens[0] = draw(_UNSUPPORTED) + head[1:]
        words = ("does not import",)
    elif what == "char":
        t = draw(st.integers(0, len(card.tokens) - 1))
        at = draw(st.integers(0, len(card.tokens[t])))
        token = card.tokens[t]
        card.tokens[t] = token[:at] + draw(_BAD_CHARS) + token[at:]
        words = ("character",)
        # named on its own line, which is the '+' line for the last token of a split card
        shift = int(card.split and len(card.tokens) > 1 and t == len(card.tokens) - 1)
    elif what in ("control", "subckt"):
        # after the cards and any closed .control block: nothing closes it
        k = len(cards)
        line = ".control" if what == "control" else ".subckt sub a b"
        cards.append(Card([], raw=[line, "R1 a b 1k"]))
        words = ("no '.endc'",) if what == "control" else ("subcircuits",)
    else:  # two more V sources on a node: the second source on it is the error
        node = draw(st.sampled_from(sorted(net.nodes - {"0"})))
        cards += [Card(["vdup", node, "0", "1"], "V"), Card(["vdup2", "0", node, "2"], "V")]
        holders = [
            j
            for j, c in enumerate(cards)
            if c.kind == "V" and node in (c.tokens[1].lower(), c.tokens[2].lower())
        ]
        k = holders[1]
        words = ("held by two sources",)
    text, first = net.render(cards)
    return text, first[k] + shift, words


@settings(max_examples=150, **SETTINGS)
@given(broken())
def test_broken_cards_raise_on_their_line(case):
    text, line, words = case
    with _time_limit(20), pytest.raises(kh.NetlistError) as info:
        kh.from_netlist(text)
    assert info.value.line == line, (str(info.value), text)
    assert f"line {line}:" in str(info.value)
    assert any(w in str(info.value) for w in words), (str(info.value), text)
