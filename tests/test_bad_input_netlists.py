"""Bad netlists get a NetlistError (a ValueError) that names the problem and the line: one test
per finding of the hardening issue, and one per card type with bad values."""

import pathlib
import re
import time

import pytest

import kirchhoff as kh
from kirchhoff._spice._lex import parse_value

# a valid netlist; the cases below put a bad card on line 6 (or edit one of these lines)
HEAD = "title\nVa a 0 1\nRab a b 1k\nRb b 0 1k\n* a comment\n"
MODEL = ".model dm D(IS=1e-14 N=1.5)\n"


def _error(netlist, **kwargs) -> kh.NetlistError:
    with pytest.raises(kh.NetlistError) as info:
        kh.from_netlist(netlist, **kwargs)
    assert isinstance(info.value, ValueError)
    return info.value


def _check(error: kh.NetlistError, line: int | None, *words: str) -> None:
    message = str(error)
    assert error.line == line, message
    if line is not None:
        assert f"line {line}:" in message
    for w in words:
        assert w in message, (w, message)


def test_the_valid_head_builds():
    circuit = kh.from_netlist(HEAD + "D1 b 0 dm\n" + MODEL)
    assert circuit.node_names == ("a", "b", "0")


# ---- findings of the issue --------------------------------------------------------------
def test_control_without_endc_is_an_error_not_a_skip():
    netlist = HEAD + ".control\nop\nprint all\nC1 a 0 1u\n"
    _check(_error(netlist), 6, "'.control'", "no '.endc'")
    # a closed block is still skipped, and a stray .endc is an error of its own
    kh.from_netlist(HEAD + ".control\nop\n.endc\n")
    _check(_error(HEAD + ".endc\n"), 6, "'.endc' without a '.control'")


@pytest.mark.parametrize(
    ("card", "bad"),
    [
        ("R1 a 0 １k", "FULLWIDTH DIGIT ONE"),
        ("R1 a 0 1.５k", "FULLWIDTH DIGIT FIVE"),
        ("R1 a 0 ١٠k", "ARABIC-INDIC DIGIT ONE"),  # other Unicode digits
        ("R1 a 0 1\u212a", "KELVIN SIGN"),  # lower-cases to an ASCII k
        ("R1 a 0 1kΩ", "GREEK CAPITAL LETTER OMEGA"),
        ("Vb ａ 0 1", "FULLWIDTH LATIN SMALL LETTER A"),
        ("R1 a 0 1k\x00", "U+0000"),
    ],
)
def test_non_ascii_and_control_characters_in_cards(card, bad):
    error = _error(HEAD + card + "\n")
    _check(error, 6, bad, "ASCII")
    token = card.split()[-1] if card.startswith("R") else card.split()[1]
    assert repr(token) in str(error)  # the offending text is quoted


def test_full_width_digits_are_not_numbers():
    for token in ("１k", "1.５", "١", "1e３"):
        with pytest.raises(kh.NetlistError, match="bad value"):
            parse_value(token)


def test_non_ascii_is_fine_in_comments_and_the_title():
    netlist = "Ω circuit — ｔｉｔｌｅ\n* ０ comment\nVa a 0 1 ; ｃomment\nR1 a 0 1k $ Ω\n"
    assert kh.from_netlist(netlist).node_names == ("a", "0")


@pytest.mark.parametrize(
    ("annotation", "words"),
    [
        ("node a [1, 2]", "cannot read the node name '[1, 2]'"),
        ("node a {'k': 1}", "hashable"),
        ("node a ([1],)", "hashable"),
        ("node a (1,", "cannot read the node name '(1,'"),
        ("node a", "expected `*@kirchhoff node"),
        ("node", "expected `*@kirchhoff node"),
        ("open r1 a a", "both terminals at node 'a'"),
        ("open r1 a", "expected `*@kirchhoff open"),
        ("frobnicate", "unknown kirchhoff annotation 'frobnicate'"),
        ("", "unknown kirchhoff annotation"),
    ],
)
def test_malformed_annotations(annotation, words):
    netlist = f"title\nVa a 0 1\nRab a b 1k\nRb b 0 1k\n*@kirchhoff {annotation}\n"
    _check(_error(netlist), 5, words)


def test_annotations_that_clash_or_name_nothing():
    two = HEAD + "*@kirchhoff node a 'x'\n*@kirchhoff node b 'x'\n"
    _check(_error(two), 7, "'a' and 'b' are both named 'x'")
    twice = HEAD + "*@kirchhoff node a 'x'\n*@kirchhoff node a 'y'\n"
    _check(_error(twice), 7, "annotated twice", "line 6")
    _check(_error(HEAD + "*@kirchhoff inputs vz\n"), 6, "'vz'", "not a V source")
    _check(_error(HEAD + "*@kirchhoff outputs zz\n"), 6, "'zz'", "not a node")
    _check(_error(HEAD + "*@kirchhoff outputs a\n"), 6, "'a'", "line 2 holds")


def test_two_sources_on_one_node_name_both_lines():
    _check(_error(HEAD + "V2 a 0 2\n"), 6, "node 'a' is held by two sources", "line 2")
    _check(_error(HEAD + "Vq b 0 1\nV2 0 b 2\n"), 7, "node 'b' is held by two", "line 6")
    grounds = HEAD + "*@kirchhoff ground\n*@kirchhoff ground\n"
    _check(_error(grounds), 7, "node '0' is held by two", "line 6")


def test_a_floating_node_names_its_card():
    error = _error(HEAD + "Rxy x y 1k\n")
    _check(error, 6, "['x', 'y'] float", "line(s) 6")
    _check(_error(HEAD + "I1 0 z 1m\n"), 6, "['z'] float")  # a current source alone
    _check(_error(HEAD + "D1 b z kirchhoff_ideal\n"), 6, "['z'] float", "ideal diode")
    _check(_error("title\nR1 a b 1k\nI1 a b 1m\n"), None, "no node is held")


def test_amplifier_problems_name_the_e_card():
    amp = "E1 x 0 b 0 2\nVs x c 0\nRc c 0 1k\nF1 b 0 Vs 0.5\n"
    kh.from_netlist(HEAD + amp)
    held = "E1 x 0 b 0 2\nVs x a 0\nF1 b 0 Vs 0.5\n"
    _check(_error(HEAD + held), 6, "driven by an amplifier and also held", "line 2")
    loop = (
        "title\nVa a 0 1\nR1 a b 1k\nR2 c 0 1k\nE1 x 0 b 0 2\nVs x c 0\nF1 b 0 Vs 0.5\n"
        "E2 y 0 c 0 2\nVt y b 0\nF2 c 0 Vt 0.5\n"
    )
    _check(_error(loop), 5, "amplifiers form a loop", "lines [5, 8]")
    _check(_error(HEAD + amp.replace(" 2\n", " 0\n", 1)), 6, "gain 0")


def test_a_str_is_text_and_a_path_is_a_file(tmp_path):
    netlist = HEAD + "D1 b 0 dm\n" + MODEL
    path = tmp_path / "x.cir"
    path.write_text(netlist)
    expected = kh.from_netlist(netlist)
    assert kh.from_netlist(path).node_names == expected.node_names
    # a path followed by cards is a netlist whose title is the path
    assert kh.from_netlist(str(path) + netlist[5:]).node_names == expected.node_names
    for name in ("x.cir", str(path), str(path) + "\n"):
        error = _error(name)
        _check(error, None, "single line", "pathlib.Path", repr(name.strip()))
    with pytest.raises(FileNotFoundError):
        kh.from_netlist(tmp_path / "missing.cir")
    with pytest.raises(ValueError, match="got a bytes"):
        kh.from_netlist(netlist.encode())


def test_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.cir"
    path.write_bytes(b"title \xe9\n* comment \xe9\nVa a 0 1\nR1 a 0 1k\xb5\n")
    _check(_error(path), 4, "not UTF-8", "0xB5")
    path.write_bytes(b"title \xe9\n* comment \xe9\nVa a 0 1\nR1 a 0 1k\n")
    assert kh.from_netlist(path).node_names == ("a", "0")


def test_inputs_and_outputs_are_lists():
    netlist = HEAD
    with pytest.raises(ValueError, match="`inputs` is a list of names"):
        kh.from_netlist(netlist, inputs="va")
    with pytest.raises(ValueError, match="`outputs` is a list of names"):
        kh.from_netlist(netlist, outputs="b")
    with pytest.raises(ValueError, match="by str"):
        kh.from_netlist(netlist, inputs=[1])
    with pytest.raises(ValueError, match="cannot name a node"):
        kh.from_netlist(netlist, outputs=[["b"]])
    _check(_error(netlist, inputs=["vq"]), None, "'vq'", "not a V source")
    _check(_error(netlist, outputs=["a"]), None, "'a'", "line 2 holds")


# ---- bad values on every card type ------------------------------------------------------
BAD_VALUES = [
    ("-5", "non-positive"),
    ("0", "non-positive"),
    ("nan", "bad value 'nan'"),
    ("inf", "bad value 'inf'"),
    ("1e999", "out of range"),
    ("-1e999", "out of range"),
    ("1e-999", "underflows to 0"),
    ("1e99999999999999999999999", "out of range"),
    ("9" * 400, "out of range"),
    ("1k5", "bad value '1k5'"),
    ("1..5", "bad value '1..5'"),
    ("k1", "bad value 'k1'"),
    ("1e+", "bad value '1e+'"),
    ("0x10", "bad value '0x10'"),
    ("1,5", "unexpected '5'"),
]


@pytest.mark.parametrize(("value", "words"), BAD_VALUES)
def test_bad_resistances(value, words):
    error = _error(HEAD + f"R1 a 0 {value}\n")
    _check(error, 6, words)
    assert len(str(error)) < 400  # a huge token is shortened in the message


@pytest.mark.parametrize(
    ("card", "words"),
    [
        # resistors
        ("R1 a 0", "needs two nodes and a resistance"),
        ("R1 a", "needs two nodes"),
        ("R1", "needs two nodes"),
        ("R1 a 0 r=", "bad value ''"),
        ("R1 a 0 1k m=0", "non-positive multiplier m=0"),
        ("R1 a 0 1k m=-2", "non-positive multiplier"),
        ("R1 a 0 1k 2k", "unexpected '2k'"),
        ("R1 a 0 r=1k r=2k", "'R' is given twice"),
        ("R1 a 0 1k tc1=0.1", "'TC1' is not supported"),
        ("R1 a 0 1e-300 m=1e300", "conductance"),
        ("R1 a a 1k", "both terminals at node 'a'"),
        ("R1 a b=1 1k", "'b=1' stands where a node name belongs"),
        ("R1 a 0 =1k", "needs two nodes"),  # read as `R1 a 0=1k`
        ("Rab b 0 1k", "'rab' is used twice (also on line 3)"),
        ("rAB b 0 1k", "is used twice"),
        # diodes
        ("D1 a 0", "needs two nodes and a model"),
        ("D1 a 0 nomodel", "'nomodel' is not defined"),
        ("D1 a 0 dm -2", "area '-2' is not positive"),
        ("D1 a 0 dm 0", "area '0' is not positive"),
        ("D1 a 0 dm 1 2", "unexpected '2'"),
        ("D1 a 0 dm m=0", "m '0' is not positive"),
        ("D1 a 0 dm area=1e-999", "underflows"),
        ("D1 a 0 dm bv=5", "'BV' is not supported"),
        ("D1 a 0 dm temp=-300", "absolute zero"),
        ("D1 a 0 dm temp=30", "TNOM"),
        ("D1 a 0 is=1", "stands where the model name belongs"),
        ("D1 a 0 dm 1e300 m=1e300", "IS·area"),
        # sources
        ("V1 a", "needs two nodes"),
        ("V1 c c 1", "both terminals at node 'c'"),
        ("V1 c d 1", "floats between"),
        ("V1 c 0 1 2", "'2' is not supported"),
        ("V1 c 0 SIN(0 1 1k)", "DC sources"),
        ("V1 c 0 nan", "'nan' is not supported"),
        ("V1 c 0 1e999", "out of range"),
        ("I1 a", "needs two nodes"),
        ("I1 a 0 PULSE(0 1)", "DC sources"),
        ("I1 a 0 1e999", "out of range"),
        # amplifier halves
        ("E1 x 0 a 0", "expected `E name out 0 ctrl 0 gain`"),
        ("E1 x 1 a 0 2", "referenced to ground"),
        ("E1 x 0 a 0 abc", "bad value 'abc'"),
        ("E1 x 0 a 0 1e999", "out of range"),
        ("E1 x 0 a 0 2", "no F source"),
        ("F1 a 0 va", "expected `F name n+ n- vsense gain`"),
        ("F1 a 0 vzz 1", "'vzz', which is not a V source"),
        ("F1 a 0 va 1", "must be a 0 V source"),
        # models and dot cards
        (".model dm2 D(IS=-1)", "IS=-1 is not positive"),
        (".model dm2 D(N=0)", "N=0 is not positive"),
        (".model dm2 D(IS=1e-14 IS=2e-14)", "'IS' is given twice"),
        (".model dm2 D(RS=-10)", "a series resistance is ≥ 0"),
        (".model dm2 D(BV=10)", "BV changes the DC current"),
        (".model dm2 D(LEVEL=3)", "level 1"),
        (".model dm2 D(IS=abc)", "bad value 'abc'"),
        (".model dm2 D(TNOM=-300)", "absolute zero"),
        (".model dm2 D 1e-14", "unexpected"),
        (".model q1 NPN(BF=100)", "diode (D) models only"),
        (".model dm2", "expected `.model name D"),
        (".temp", "expected `.temp <celsius>`"),
        (".temp -300", "absolute zero"),
        (".temp 1 2", "expected `.temp"),
        (".options temp=abc", "bad value 'abc'"),
        (".options tnom=-274", "absolute zero"),
        (".subckt amp in out", "subcircuits"),
        (".ends", "subcircuits"),
        (".include models.lib", "no other files"),
        (".lib models.lib tt", "no other files"),
        (".param r=1k", "'.param' is not supported"),
        (".", "'.' is not supported"),
        # unsupported elements and junk
        ("C1 a 0 1u", "does not import C cards"),
        ("L1 a 0 1u", "does not import L cards"),
        ("Q1 c b e npn", "does not import Q cards"),
        ("M1 d g s b nmos", "does not import M cards"),
        ("X1 a b amp", "does not import X cards"),
        ("G1 a 0 b 0 1m", "does not import G cards"),
        ("H1 a 0 va 1k", "does not import H cards"),
        ("B1 a 0 V=1", "does not import B cards"),
        ("@#% a 0 1", "'@#%'"),
        ("( )", "has no name"),
        ("+ 1k", None),  # a continuation of line 4: Rb gets a second resistance
    ],
)
def test_bad_cards(card, words):
    netlist = HEAD + card + "\n" + MODEL
    error = _error(netlist)
    if card.startswith("+"):  # continuation lines belong to the card they continue
        _check(error, 4, "unexpected '1k'")
        return
    _check(error, 6, words)


def test_huge_and_many_values_do_not_hang():
    start = time.perf_counter()
    long_line = "R1 a 0 " + "1" * 100_000 + "\n"
    _check(_error(HEAD + long_line), 6, "out of range")
    many = HEAD + "".join(f"R{k} b 0 1e-999\n" for k in range(1000))
    _check(_error(many), 6, "underflows")
    # inputs on which a backtracking regex would take quadratic time (minutes at this length)
    _check(_error(HEAD + "R1 a 0 " + "1" * 100_000 + "x1\n"), 6, "bad value '1111")
    _check(_error(HEAD + "R1 a 0 1k" + " " * 100_000 + "x\n"), 6, "unexpected 'x'")
    _check(_error(HEAD + "R1 a 0 1k" + " =" * 50_000 + "\n"), 6, "'1K' is not supported")
    _check(_error(HEAD + "R1 a 0 1" + "e" * 100_000 + "1\n"), 6, "bad value")
    _check(_error(HEAD + "R1 a 0 " + "1." * 50_000 + "\n"), 6, "bad value")
    assert time.perf_counter() - start < 10.0


def test_empty_and_title_only_netlists():
    _check(_error(""), None, "empty")
    _check(_error("\n  \n"), None, "empty")
    _check(_error("title\n* only a comment\n.op\n.end\n"), None, "no element cards")


def test_messages_quote_the_offending_text():
    error = _error(HEAD + "R1 a 0 12.5.6k\n")
    assert re.search(r"line 6: bad value '12\.5\.6k' for the resistance", str(error))


def test_a_path_like_object_other_than_pathlib(tmp_path):
    class Where:
        def __fspath__(self):
            return str(tmp_path / "n.cir")

    pathlib.Path(Where()).write_text(HEAD)
    assert kh.from_netlist(Where()).node_names == ("a", "b", "0")
