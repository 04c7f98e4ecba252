"""Circuit topology, compiled once from the elements: node numbering, held, driven and free
nodes, the energy weight of each amplifier domain, floating-node checks, and bounded elements
(ideal diodes) as bounds. A pure function of the elements' terminals and roles; no parameter
values are read except static ones (amplifier gains, bounds' maximum drops), but for
``check_values`` (concrete values: zero conductances, contradictory diodes) and
``cut_off_free`` (the same cut, inside jit)."""

import dataclasses
from collections.abc import Hashable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ._custom_types import NodeRef, as_names, node_name
from ._elements import (
    AbstractBounded,
    AbstractDissipative,
    AbstractDriven,
    AbstractElement,
    AbstractHeld,
    AbstractSource,
    _concrete,
)

# the roles that put terms in the energy, and those whose elements join two nodes into one
# energy domain (no amplifier between them) or give a node a path to a held one
ENERGY_ROLES = (AbstractDissipative, AbstractSource)
_DOMAIN_ROLES = (AbstractDissipative, AbstractBounded)
_ANCHOR_ROLES = (AbstractDissipative, AbstractDriven)


@dataclasses.dataclass(frozen=True)
class Topology:
    """What ``Circuit`` needs to know about its graph (numpy arrays, host side)."""

    elements: tuple
    terminals: list  # per element: int array (terminals, k) of node indices
    energy_weights: list  # per element: the 1/A² weight of its amplifier domain, (k,)
    names: dict  # node name → index
    input_names: list
    outputs: tuple
    out_idx: np.ndarray
    free: list  # free node indices, in order
    root: np.ndarray  # per node: its free index, or n_free + held slot (driven: its source's)
    gain: np.ndarray  # per node: the amplifier gain from its root
    node_weight: np.ndarray
    bounds: tuple  # (node, ref, scale, offset, upper) lists: bounded elements to held nodes
    coupled: bool  # a bounded element joins two free nodes


def held_order(elements: Sequence[AbstractElement]) -> list[tuple[int, AbstractHeld]]:
    """(index, element) of the held elements in the order of their slots: those that take
    inputs (in element order, sharing out the inputs vector), then the others."""
    held = [(i, e) for i, e in enumerate(elements) if isinstance(e, AbstractHeld)]
    return [h for h in held if h[1].input_names()] + [h for h in held if not h[1].input_names()]


def _find(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _union(parent, i, j):
    ri, rj = _find(parent, i), _find(parent, j)
    if ri != rj:
        parent[max(ri, rj)] = min(ri, rj)


def _pairs(elements, terminals, roles):
    """(element, first terminal node, second terminal node) of the elements of ``roles``."""
    for e, t in zip(elements, terminals, strict=True):
        if isinstance(e, roles):
            for a, c in zip(t[0], t[1], strict=True):
                yield e, int(a), int(c)


def _number_nodes(elements, nodes) -> dict[Hashable, int]:
    names: dict[Hashable, int] = {}
    if nodes is None:
        for e in elements:
            for term in e.terminal_names():
                for n in term:
                    names.setdefault(node_name(n), len(names))
        return names
    for n in as_names(nodes):
        if n in names:
            raise ValueError(f"Circuit: node {n!r} is listed twice in `nodes`.")
        names[n] = len(names)
    return names


def _index(names, n, what) -> int:
    try:
        return names[n]
    except (KeyError, TypeError):
        raise ValueError(
            f"Circuit: {what} refers to unknown node {n!r}; known nodes are "
            f"{list(names)[:20]}{'...' if len(names) > 20 else ''}."
        ) from None


def _terminals(elements, names) -> list[np.ndarray]:
    out = []
    for e in elements:
        rows = e.terminal_names()
        idx = [[_index(names, n, type(e).__name__) for n in term] for term in rows]
        out.append(np.array(idx, dtype=np.int64).reshape(len(rows), e.size))
    return out


def _held_nodes(elements, terminals, names) -> tuple[dict[int, int], list]:
    """Held node → its slot (in ``held_order``), and the input names in input order."""
    node_names = list(names)
    held_slot: dict[int, int] = {}
    input_names = []
    for i, e in held_order(elements):
        for n in terminals[i].reshape(-1):
            if int(n) in held_slot:
                raise ValueError(f"Circuit: node {node_names[n]!r} is held by two sources.")
            held_slot[int(n)] = len(held_slot)
        input_names.extend(e.input_names())
    if not held_slot:
        raise ValueError(
            "Circuit: no node is held by a source; add a Ground (VoltageSource at 0 V) so "
            "that potentials are defined."
        )
    return held_slot, input_names


def _driven_nodes(elements, terminals, held_slot, names) -> dict[int, tuple[int, float]]:
    """Driven node → (its source node, the gain)."""
    driven: dict[int, tuple[int, float]] = {}
    for e, t in zip(elements, terminals, strict=True):
        if not isinstance(e, AbstractDriven):
            continue
        for s, d, a in zip(t[0], t[1], e.gain, strict=True):
            d = int(d)
            if d in held_slot or d in driven:
                raise ValueError(
                    f"Circuit: node {list(names)[d]!r} is driven by an amplifier and also "
                    "held or driven elsewhere."
                )
            driven[d] = (int(s), a)
    return driven


def _roots(n_nodes, held_slot, driven):
    """Free nodes, and per node its root (free index or n_free + held slot) and gain."""
    free = [i for i in range(n_nodes) if i not in held_slot and i not in driven]
    n_free = len(free)
    root = np.zeros(n_nodes, dtype=np.int64)
    gain = np.ones(n_nodes)
    for k, n in enumerate(free):
        root[n] = k
    for n, s in held_slot.items():
        root[n] = n_free + s

    def resolve(n, seen=()):
        if n in driven:
            if n in seen:
                raise ValueError("Circuit: amplifiers form a loop; an amplifier chain must end.")
            s, a = driven[n]
            r, g = resolve(s, (*seen, n))
            return r, a * g
        return root[n], gain[n]

    for n in driven:
        root[n], gain[n] = resolve(n)
    return free, root, gain


def _node_weights(elements, terminals, held_slot, driven, names) -> np.ndarray:
    """Per node, the energy weight of its domain (amplifiers rescale downstream by 1/A²)."""
    n_nodes = len(names)
    parent = list(range(n_nodes))
    for _, a, c in _pairs(elements, terminals, _DOMAIN_ROLES):
        if a not in held_slot and c not in held_slot:
            _union(parent, a, c)
    # domains containing no driven node have weight 1
    driven_domains = {_find(parent, d) for d in driven}
    dom_weight = {
        _find(parent, n): 1.0
        for n in range(n_nodes)
        if n not in held_slot and _find(parent, n) not in driven_domains
    }
    pending = dict(driven)
    for _ in range(len(pending) + 1):
        progressed = False
        for d, (s, a) in list(pending.items()):
            w_src = 1.0 if s in held_slot else dom_weight.get(_find(parent, s))
            if w_src is None:
                continue
            w, rd = w_src / a**2, _find(parent, d)
            if rd in dom_weight and not np.isclose(dom_weight[rd], w, rtol=1e-12):
                raise ValueError(
                    f"Circuit: node {list(names)[d]!r} is reached through amplifiers of "
                    "different total gain; such a circuit has no energy function."
                )
            dom_weight[rd] = w
            del pending[d]
            progressed = True
        if not progressed:
            break
    if pending:
        raise ValueError("Circuit: amplifiers feed back into their own input domain.")
    return np.array(
        [1.0 if n in held_slot else dom_weight[_find(parent, n)] for n in range(n_nodes)]
    )


def _energy_weights(elements, terminals, held_slot, node_weight) -> list:
    out = []
    for e, t in zip(elements, terminals, strict=True):
        w = np.ones(e.size)
        if isinstance(e, ENERGY_ROLES):
            # an element's domain is that of any of its non-held terminals
            for row in t:
                w = np.where([int(x) not in held_slot for x in row], node_weight[row], w)
        out.append(jnp.asarray(w))
    return out


def _check_anchored(elements, terminals, held_slot, free, out_idx, names) -> None:
    """Every free node needs a conducting path to a held node; outputs must not be held."""
    node_names = list(names)
    floating = [
        node_names[n] for n in _unanchored(elements, terminals, held_slot, free, len(names))
    ]
    if floating:
        raise ValueError(
            f"Circuit: node(s) {floating[:10]} float: no path of resistors or diodes joins "
            "them to a held node (ground, a rail or an input), so their potential is undefined."
        )
    for n in out_idx:
        if int(n) in held_slot:
            raise ValueError(f"Circuit: output node {node_names[n]!r} is held by a source.")


def _unanchored(elements, terminals, held_slot, free, n_nodes, conducting=None) -> list[int]:
    """The free nodes with no path to a held node through anchoring elements (with
    ``conducting``, per element a bool array or None, only through those that conduct)."""
    anchor = list(range(n_nodes))
    for k, (e, t) in enumerate(zip(elements, terminals, strict=True)):
        if not isinstance(e, _ANCHOR_ROLES):
            continue
        on = np.ones(e.size, bool) if conducting is None or conducting[k] is None else conducting[k]
        for a, c, ok in zip(t[0], t[1], on, strict=True):
            if ok:
                _union(anchor, int(a), int(c))
    anchored = {_find(anchor, n) for n in held_slot}
    return [n for n in free if _find(anchor, n) not in anchored]


def check_values(topo: "Topology", elements, bounds, held_violations) -> None:
    """Where parameter values are concrete (not traced): raise naming the nodes cut off by
    open elements (zero conductances), a node whose ideal-diode ``bounds`` (lo, hi over the
    free nodes, NaN where inputs set them) contradict, or a bounded element between held
    nodes that ``held_bound_violations`` finds forward-biased."""
    bad = _concrete(held_violations) if held_violations is not None else None
    if bad is not None and np.any(bad):
        names = list(topo.names)
        pairs = [
            (type(e).__name__, names[a], names[c])
            for e, t in zip(topo.elements, topo.terminals, strict=True)
            if isinstance(e, AbstractBounded)
            for a, c in zip(t[0], t[1], strict=True)
        ]
        kind, a, c = pairs[int(np.flatnonzero(bad)[0])]
        raise ValueError(
            f"Circuit: the {kind} {a!r}→{c!r} joins two held nodes whose potentials bias it "
            "forward beyond its cap: it would carry an infinite current; reverse it or change "
            "the sources."
        )
    conducting = [
        _concrete(e.conducts()) if isinstance(e, AbstractDissipative) else None for e in elements
    ]
    if any(c is not None and not np.all(c) for c in conducting):
        _check_conducting(topo, conducting)
    lo, hi = (None, None) if bounds is None else (_concrete(b) for b in bounds)
    if lo is None or hi is None:
        return
    for i in np.flatnonzero(lo > hi)[:1]:
        name = list(topo.names)[topo.free[i]]
        raise ValueError(
            f"Circuit: the ideal diodes at node {name!r} contradict: they hold it at ≥ "
            f"{lo[i]:g} V and at ≤ {hi[i]:g} V, and no potential is both; check the diodes' "
            "orientation and their rails."
        )


def _check_conducting(topo: "Topology", conducting: list) -> None:
    """Raise naming the nodes that only open elements (``conducting`` False, e.g. zero
    conductances: per element a bool array, or None where unknown) join to a held node."""
    held = {n for n in range(len(topo.names)) if topo.root[n] >= len(topo.free)}
    cut = _unanchored(topo.elements, topo.terminals, held, topo.free, len(topo.names), conducting)
    if not cut:
        return
    node_names, cut_set = list(topo.names), set(cut)
    open_links = [
        f"{type(e).__name__} {node_names[a]!r}–{node_names[c]!r}"
        for e, t, on in zip(topo.elements, topo.terminals, conducting, strict=True)
        if on is not None
        for a, c, ok in zip(t[0], t[1], on, strict=True)
        if not ok and (int(a) in cut_set) != (int(c) in cut_set)
    ]
    raise ValueError(
        f"Circuit: node(s) {[node_names[n] for n in cut][:10]} are cut off: their only links "
        f"to a held node are open (zero conductance): {open_links[:6]}, so their potentials "
        "are undefined; give those elements a positive conductance or remove the sub-network."
    )


def held_bound_violations(circuit, inputs):
    """Per bounded element of ``circuit`` (in element order), True where it joins two held (or
    driven) nodes and their drop exceeds its cap: an ideal diode forward-biased between
    sources, which would carry an infinite current and which no free potential can mend."""
    v = circuit.potentials(jnp.zeros(circuit.n_free, circuit.dtype), inputs)
    held = circuit.node_root >= circuit.n_free
    out = [jnp.zeros(0, bool)]
    for e, t in zip(circuit.elements, circuit.terminals, strict=True):
        if isinstance(e, AbstractBounded):
            cap = jnp.asarray(e.max_drop(), v.dtype)
            out.append(held[t[0]] & held[t[1]] & (v[t[0]] - v[t[1]] > cap))
    return jnp.concatenate(out)


def cut_off_free(circuit):
    """Inside jit: per free node of ``circuit``, True where no conducting element joins it to
    a held node. Over roots (free index, or ``n_free`` + held slot; driven nodes share their
    source's, so amplifiers join): label propagation, one scatter per step of the graph's
    diameter; None for a circuit without dissipative elements or free nodes."""
    pairs = [
        (circuit.node_root[t[0]], circuit.node_root[t[1]], e.conducts())
        for e, t in zip(circuit.elements, circuit.terminals, strict=True)
        if isinstance(e, AbstractDissipative)
    ]
    n_free = circuit.n_free
    if not pairs or n_free == 0:
        return None
    a, c, on = (jnp.concatenate(p) for p in zip(*pairs, strict=True))

    def body(carry):
        reach, _ = carry
        new = reach.at[a].max(reach[c] & on).at[c].max(reach[a] & on)
        return new, jnp.any(new != reach)

    reach0 = jnp.arange(n_free + circuit.n_nodes) >= n_free
    reach, _ = jax.lax.while_loop(lambda carry: carry[1], body, (reach0, jnp.array(True)))
    return ~reach[:n_free]


def _bounds(elements, terminals, root, gain, n_free) -> tuple[tuple, bool]:
    """Bounded elements as bounds ``z ≤ scale·ref + offset`` (or ≥) on free potentials."""
    rows, coupled = [], False  # (node, ref, scale, offset, upper) per bound
    for e, t in zip(elements, terminals, strict=True):
        if not isinstance(e, AbstractBounded):
            continue
        caps = np.broadcast_to(np.asarray(e.max_drop(), dtype=float), (e.size,))
        for a, c, m in zip(t[0], t[1], caps, strict=True):
            ra, rc, ga, gc = root[a], root[c], gain[a], gain[c]
            a_free, c_free = ra < n_free, rc < n_free
            if a_free and c_free:
                coupled = True
            elif a_free:  # ga·z ≤ gc·ref + m
                rows.append((ra, rc, gc / ga, m / ga, ga > 0))
            elif c_free:  # ga·ref − m ≤ gc·z
                rows.append((rc, ra, ga / gc, -m / gc, gc < 0))
    return tuple(list(col) for col in zip(*rows, strict=True)) or ([], [], [], [], []), coupled


def compile_topology(
    elements: Sequence[AbstractElement],
    outputs: Sequence[NodeRef] = (),
    nodes: Sequence[NodeRef] | None = None,
) -> Topology:
    """The topology of ``elements`` (see ``Topology``); raises ValueError naming the node
    or element for a circuit without an energy function or with undefined potentials."""
    if isinstance(elements, AbstractElement):
        raise TypeError(f"Circuit: give a list of elements, not {type(elements).__name__}.")
    elements = tuple(elements)
    for e in elements:
        if not isinstance(e, AbstractElement):
            raise ValueError(f"Circuit: {e!r} is not a kirchhoff element.")
    names = _number_nodes(elements, nodes)
    terminals = _terminals(elements, names)
    outputs = as_names(outputs)  # a str (or an int) is one node's name
    for i, n in enumerate(outputs):
        if n in outputs[:i]:
            raise ValueError(f"Circuit: output node {n!r} is listed twice in `outputs`.")
    out_idx = np.array([_index(names, n, "outputs") for n in outputs], dtype=np.int64)
    held_slot, input_names = _held_nodes(elements, terminals, names)
    driven = _driven_nodes(elements, terminals, held_slot, names)
    free, root, gain = _roots(len(names), held_slot, driven)
    node_weight = _node_weights(elements, terminals, held_slot, driven, names)
    energy_weights = _energy_weights(elements, terminals, held_slot, node_weight)
    _check_anchored(elements, terminals, held_slot, free, out_idx, names)
    bounds, coupled = _bounds(elements, terminals, root, gain, len(free))
    return Topology(
        elements,
        terminals,
        energy_weights,
        names,
        input_names,
        outputs,
        out_idx,
        free,
        root,
        gain,
        node_weight,
        bounds,
        coupled,
    )
