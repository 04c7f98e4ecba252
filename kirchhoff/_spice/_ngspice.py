"""Run ngspice in batch mode on a kirchhoff Circuit and read back its operating point(s)."""

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping

import numpy as np

from .._circuit import Circuit
from ._common import GROUND, format_value
from ._export import SWEEP_NODE, build_deck, deck_lines

_FAILED = re.compile(r"simulation\(s\) aborted|solution failed|op failed", re.IGNORECASE)
_CONVERGENCE = re.compile(
    r"simulation\(s\) aborted|solution failed|singular matrix|timestep too small|"
    r"iteration limit|no convergence|stepping failed",
    re.IGNORECASE,
)
_TELLING = re.compile(r"error|failed|aborted|singular|too small|check node|limit", re.IGNORECASE)
_DONE = "kirchhoff-ngspice-done"
_PAIRS_PER_LINE = 8


class NgspiceError(RuntimeError):
    """Raised by [`ngspice_potentials`][kirchhoff.ngspice_potentials] when ngspice failed, did
    not finish within the timeout, or its output could not be read (e.g. a node missing
    from it). The base of [`NgspiceNotFoundError`][kirchhoff.NgspiceNotFoundError] and
    [`NgspiceConvergenceError`][kirchhoff.NgspiceConvergenceError]; a RuntimeError."""


class NgspiceNotFoundError(NgspiceError):
    """Raised by [`ngspice_potentials`][kirchhoff.ngspice_potentials] when the ngspice
    executable is not installed (or not on PATH), or cannot be started."""


class NgspiceConvergenceError(NgspiceError):
    """Raised by [`ngspice_potentials`][kirchhoff.ngspice_potentials] when ngspice found no
    operating point (for a batch: when its sweep stopped before the last example)."""


def _executable(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise NgspiceNotFoundError(
            f"ngspice was not found (looked for {name!r} on PATH). Install it, e.g. "
            "`apt-get install ngspice` on Debian/Ubuntu (`brew install ngspice` on macOS), or "
            "pass `executable=` the path of an ngspice binary."
        )
    return path


def read_raw(path: str) -> list[tuple[str, dict[str, np.ndarray]]]:
    """The plots of a SPICE raw file (binary or ASCII), as (plot name, {vector: values})."""
    with open(path, "rb") as f:
        data = f.read()
    plots = []
    pos = 0
    while pos < len(data):
        header: dict[str, str] = {}
        variables: list[str] = []
        in_variables = False
        while True:
            end = data.index(b"\n", pos)
            line = data[pos:end].decode("utf-8", "replace").rstrip("\r")
            pos = end + 1
            if in_variables and line[:1] in ("\t", " "):
                variables.append(line.split()[1].lower())
                continue
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("Binary", "Values"):
                break
            in_variables = key == "Variables"
            header[key] = value.strip()
        n_vars = int(header["No. Variables"])
        n_points = int(header["No. Points"])
        flags = header.get("Flags", "real").lower()
        width = 2 if "complex" in flags else 1
        if len(variables) != n_vars:
            raise NgspiceError(
                f"ngspice's raw file {path} lists {len(variables)} of {n_vars} vectors."
            )
        if key == "Binary":
            count = n_points * n_vars * width
            values = np.frombuffer(data, dtype="<f8", count=count, offset=pos)
            pos += 8 * count
            values = values.reshape(n_points, n_vars, width)[..., 0]
        else:  # ASCII: "index\tvalue" then one value per line, per point
            tokens = data[pos:].decode().split()
            values = np.empty((n_points, n_vars))
            k = 0
            for p in range(n_points):
                k += 1  # the point's index
                for v in range(n_vars):
                    values[p, v] = float(tokens[k].split(",")[0])
                    k += 1
            pos = len(data)
        plots.append((header.get("Plotname", ""), dict(zip(variables, values.T, strict=True))))
        while pos < len(data) and data[pos : pos + 1] in (b"\n", b"\r"):
            pos += 1
    return plots


def _node_vector(vectors: Mapping[str, np.ndarray], spice: str) -> np.ndarray | None:
    for key in (f"v({spice})", spice):
        if key in vectors:
            return vectors[key]
    return None


def _run(executable: str, netlist: str, timeout: float | None) -> dict[str, np.ndarray]:
    with tempfile.TemporaryDirectory(prefix="kirchhoff-ngspice-") as tmp:
        with open(os.path.join(tmp, "circuit.cir"), "w") as f:
            f.write(netlist)
        try:
            proc = subprocess.run(
                [executable, "-b", "circuit.cir"],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            raise NgspiceError(f"ngspice did not finish within {timeout} s.") from err
        except OSError as err:
            raise NgspiceNotFoundError(f"could not start ngspice ({executable}): {err}.") from err
        # ngspice's exit status is 1 on success too when the deck has no .print: read its output
        output = proc.stdout + "\n" + proc.stderr
        raw = os.path.join(tmp, "out.raw")
        if _FAILED.search(output) or not os.path.exists(raw) or _DONE not in proc.stdout:
            telling = list(
                dict.fromkeys(s.strip() for s in output.splitlines() if _TELLING.search(s))
            )
            said = "\n".join(telling[-10:]) or output.strip()[-1500:] or "(nothing)"
            if _CONVERGENCE.search(output):
                raise NgspiceConvergenceError(
                    "ngspice found no operating point (it did not converge): check for nodes "
                    f"without a DC path to a source. ngspice said:\n{said}"
                )
            raise NgspiceError(f"ngspice failed (exit status {proc.returncode}). It said:\n{said}")
        plots = read_raw(raw)
    if len(plots) != 1:
        raise NgspiceError(f"ngspice wrote {len(plots)} plots; expected one.")
    return plots[0][1]


def _control(analysis: str) -> list[str]:
    return [
        ".control",
        "set filetype=binary",
        analysis,
        "write out.raw",
        f"echo {_DONE}",
        ".endc",
        ".end",
    ]


def _pwl_card(k: int, node: str, values: np.ndarray) -> str:
    pairs = [f"{p}, {format_value(v)}" for p, v in enumerate(values)]
    lines = [f"bin{k} {node} 0 v=pwl(v({SWEEP_NODE}),"]
    for start in range(0, len(pairs), _PAIRS_PER_LINE):
        chunk = ", ".join(pairs[start : start + _PAIRS_PER_LINE])
        last = start + _PAIRS_PER_LINE >= len(pairs)
        lines.append(f"+ {chunk}{')' if last else ','}")
    return "\n".join(lines)


def ngspice_potentials(
    circuit: Circuit,
    inputs=None,
    *,
    options: Mapping[str, float | int | bool] | None = None,
    executable: str = "ngspice",
    timeout: float | None = None,
) -> np.ndarray:
    """Node potentials (volts) of ``circuit`` at its DC operating point, simulated by ngspice.

    ``inputs`` has shape ``(n_inputs,)`` (0 V when None) or ``(batch, n_inputs)``; the result has
    shape ``(n_nodes,)`` or ``(batch, n_nodes)``, ordered like ``circuit.node_names`` (the
    potentials that [`Circuit.potentials`][kirchhoff.Circuit.potentials] gives for an
    equilibrium's ``free``). The netlist is that of [`to_netlist`][kirchhoff.to_netlist].

    One example is one ``op`` analysis. A batch runs in one ngspice process as one DC sweep: a
    source ``vkh_index`` steps through 0, 1, …, batch-1 and each input is a behavioural source
    ``pwl(v(kh_sweep), 0, x_0, 1, x_1, …)``, so ngspice sets up and orders its matrix once and
    warm-starts each point from the last (re-running ``op`` with ``alter`` repeats both and costs
    seconds per point on large circuits).

    ``options`` go on the ``.options`` card; by default ``reltol=1e-9 abstol=1e-15 vntol=1e-12
    gmin=1e-15 itl1=1000 itl2=1000`` (and ``temp``/``tnom`` from the diodes' thermal voltage).

    Args:
        circuit: the [`Circuit`][kirchhoff.Circuit] to simulate (concrete parameters).
        inputs: the input potentials, volts, shape ``(n_inputs,)`` or ``(batch, n_inputs)``;
            None: 0 V.
        options: the ``.options`` card's entries, name to value (``True`` for a flag), as
            for [`to_netlist`][kirchhoff.to_netlist]; replaces the defaults when given.
        executable: the ngspice program, a name looked up on PATH or a path (default
            ``"ngspice"``).
        timeout: the longest ngspice may run, seconds; None (the default): no limit.

    Returns:
        The node potentials, volts, a float64 NumPy array of shape ``(n_nodes,)`` or
            ``(batch, n_nodes)``, in the order of ``circuit.node_names``.

    Raises:
        NgspiceNotFoundError: ``executable`` is not found (install ngspice, e.g.
            ``apt-get install ngspice``) or cannot be started.
        NgspiceConvergenceError: ngspice finds no operating point.
        NgspiceError: any other failure, among them a timeout and a node missing from
            ngspice's output.
        ValueError: ``inputs`` has another shape or is not finite, or the circuit cannot be
            exported (as for [`to_netlist`][kirchhoff.to_netlist]).
    """
    exe = _executable(executable)
    x = _checked_inputs(circuit, inputs)
    batched = x.ndim == 2
    batch = x.shape[0] if batched else 1
    if batch == 0:
        return np.zeros((0, circuit.n_nodes))
    if batched and (batch == 1 or circuit.n_inputs == 0):
        one = ngspice_potentials(
            circuit, x[0] if batch else None, options=options, executable=exe, timeout=timeout
        )
        return np.broadcast_to(one, (batch, circuit.n_nodes)).copy()
    deck, lines = _deck_for(circuit, x, batched, options)
    vectors = _run(exe, "\n".join(lines) + "\n", timeout)
    out = _node_potentials(circuit, deck, vectors, batch)
    return out if batched else out[0]


def _checked_inputs(circuit, inputs) -> np.ndarray:
    x = np.zeros(circuit.n_inputs) if inputs is None else np.asarray(inputs, dtype=np.float64)
    if x.ndim not in (1, 2) or x.shape[-1] != circuit.n_inputs:
        raise ValueError(
            f"ngspice_potentials: inputs have shape {x.shape}; the circuit has "
            f"{circuit.n_inputs} input(s), so give shape ({circuit.n_inputs},) or "
            f"(batch, {circuit.n_inputs})."
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("ngspice_potentials: an input is NaN or infinite.")
    return x


def _deck_for(circuit, x, batched: bool, options):
    """The deck and its lines: one ``op`` for an example, a DC sweep of PWL inputs for a batch."""
    if not batched:
        deck = build_deck(circuit, x, options)
        lines = [*deck_lines(deck), *_control("op")]
    else:
        deck = build_deck(circuit, None, options)
        cards = list(deck.cards)
        for k, (position, node) in enumerate(zip(deck.input_cards, deck.input_nodes, strict=True)):
            cards[position] = _pwl_card(k, node, x[:, k])
        cards.append(f"vkh_index {SWEEP_NODE} 0 0")
        lines = [*deck_lines(deck, cards), *_control(f"dc vkh_index 0 {x.shape[0] - 1} 1")]
    return deck, lines


def _node_potentials(circuit, deck, vectors, batch: int) -> np.ndarray:
    """(batch, n_nodes) potentials from ngspice's vectors, in ``circuit.node_names`` order."""
    points = {len(v) for v in vectors.values()}
    if points != {batch}:
        raise NgspiceConvergenceError(
            f"ngspice returned {sorted(points)} point(s) for a batch of {batch}: its sweep stopped "
            "early, so some example has no operating point."
        )
    out = np.zeros((batch, circuit.n_nodes))
    for i, name in enumerate(circuit.node_names):
        spice = deck.node_names[name]
        if spice == GROUND:
            continue
        v = _node_vector(vectors, spice)
        if v is None:
            raise NgspiceError(
                f"node {name!r} (SPICE name {spice!r}) is missing from ngspice's output: no "
                "element in the netlist touches it (a node joined only by zero-conductance "
                "resistors is open in SPICE)."
            )
        out[:, i] = v
    return out
