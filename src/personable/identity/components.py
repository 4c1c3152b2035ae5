"""Stitching a whole batch at once: the identity graph's connected components,
computed over arrays, with the exact union-find of ``stitcher`` for the few
components its guards can change.

A batch of a busy site links a few hundred thousand identifiers. Walking them
one by one in Python (``stitcher._UnionFind``) cost ~10 s of a 1M-event import;
most of that graph needs no walk at all. The union-find's guard refuses a link
only when the component it would make holds more distinct userIds than
allowed, so a component that holds no more than that *in total* ends exactly
as a plain connected component does. Those are computed here with
``scipy.sparse.csgraph`` and named by the union-find's own rules (the oldest
existing profile survives; a new component takes the id of its first-seen
identifier). Only the components over the limit -- a shared device, a family
email -- go through the union-find, row by row in event-time order, which is
what makes its verdicts order-dependent. A test holds both paths to the same
plan on random graphs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from .stitcher import (
    ANON, USER, Conflict, ExistingProfile, LinkRow, Node, StitchPlan, plan_rows, profile_id_for, shared_holders,
)

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Links:
    """The identifiers a batch saw together: one row per distinct combination.

    ``table`` has a column ``slot_<j>`` per identifier slot (``kinds[j]`` is its
    kind; null = absent), ``alias_value`` / ``alias_kind`` (an alias event's
    previousId, and whether it names a known userId or an anonymousId) and
    ``first_ts`` (the combination's earliest event). Rows come in any order; the
    stitcher orders them by event time."""

    table: pa.Table
    kinds: tuple[str, ...]


@dataclass(frozen=True)
class Existing:
    """What the identity graph already holds for a batch's identifiers."""

    nodes: pa.Table      # kind, value, profile_id: the batch's identifiers already known
    profiles: pa.Table   # profile_id, created_at: the profiles they belong to
    users: pa.Table      # profile_id, value: every userId of those profiles


def _text(column: Any) -> pa.Array:
    """A string array (a store may hand an all-null column of type null)."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return arr if arr.type == pa.string() else pc.cast(arr, pa.string())


def ordered_rows(links: Links) -> pa.Table:
    """Event-time order; ties broken by the identifiers, so a batch stitches the
    same way on every store (``ORDER BY`` collations differ between them)."""
    t = links.table
    if t.num_rows == 0:
        return t
    columns = ["first_ts", *(f"slot_{j}" for j in range(len(links.kinds))), "alias_value"]
    return t.take(pc.sort_indices(t, sort_keys=[(c, "ascending", "at_start") for c in columns]))


class _Nodes:
    """Integer ids for (kind, value) pairs, whatever column they come from."""

    def __init__(self, parts: list[tuple[pa.Array, Any]]):
        # parts: (values, kind) with kind a str or an array of kind strings
        self.kinds: list[str] = sorted({k for _, kind in parts
                                        for k in ([kind] if isinstance(kind, str) else pc.unique(_text(kind)).to_pylist())
                                        if k is not None})
        code = {k: i for i, k in enumerate(self.kinds)}
        kind_set = pa.array(self.kinds, pa.string())
        values = pa.chunked_array([_text(v) for v, _ in parts], pa.string()).combine_chunks()
        # Columns of kinds are coded in arrays (a backfill's chunk knows ~200k nodes).
        kind_codes = np.concatenate([
            np.full(len(v), code.get(kind, -1), np.int64) if isinstance(kind, str)
            else np.asarray(pc.index_in(_text(kind), value_set=kind_set).fill_null(-1)
                            .to_numpy(zero_copy_only=False), np.int64)
            for v, kind in parts]) if parts else np.zeros(0, np.int64)
        encoded = pc.dictionary_encode(values)
        self.dictionary = encoded.dictionary
        value_codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        valid = (value_codes >= 0) & (kind_codes >= 0)
        keys = np.where(valid, value_codes * max(len(self.kinds), 1) + kind_codes, -1)
        uniq, inverse = np.unique(keys[valid], return_inverse=True)
        self.key = uniq
        ids = np.full(len(keys), -1, np.int64)
        ids[valid] = inverse
        self._ids = ids
        self._offsets = np.cumsum([0] + [len(v) for v, _ in parts])
        self.count = len(uniq)

    def ids(self, part: int) -> IntArray:
        """Node ids of the ``part``-th input (-1 where absent)."""
        return self._ids[self._offsets[part]:self._offsets[part + 1]]

    def kind_of(self, node: IntArray) -> IntArray:
        return self.key[node] % max(len(self.kinds), 1)

    def kind_code(self, kind: str) -> int:
        return self.kinds.index(kind) if kind in self.kinds else -2

    def node(self, i: int) -> Node:
        k = int(self.key[i])
        return self.kinds[k % len(self.kinds)], str(self.dictionary[k // len(self.kinds)].as_py())

    def table(self, node: IntArray) -> tuple[pa.Array, pa.Array]:
        kinds = pa.array(self.kinds, pa.string()).take(pa.array(self.kind_of(node)))
        values = self.dictionary.take(pa.array(self.key[node] // max(len(self.kinds), 1)))
        return kinds, values


def plan_stitch(links: Links, existing: Existing, max_user_ids: int | None = 1,
                shared: set[Node] | None = None, max_ids_per_identifier: int | None = None) -> StitchPlan:
    """The same plan as ``stitcher.plan_rows`` over the same rows in event-time
    order, computed per component instead of per link."""
    rows = ordered_rows(links)
    n_rows, kinds = rows.num_rows, links.kinds
    slots = [rows.column(f"slot_{j}") for j in range(len(kinds))]
    ex_nodes, ex_users = existing.nodes, existing.users
    nodes = _Nodes([*((s, k) for s, k in zip(slots, kinds)),
                    (rows.column("alias_value"), rows.column("alias_kind")),
                    (ex_nodes.column("value"), ex_nodes.column("kind")),
                    (ex_users.column("value"), USER)])
    if nodes.count == 0:   # no row carries an identifier
        return _empty_plan()
    slot_ids = np.stack([nodes.ids(j) for j in range(len(kinds))], axis=1) if kinds else np.zeros((n_rows, 0), np.int64)
    alias_ids = nodes.ids(len(kinds))
    ex_node_ids, ex_user_ids = nodes.ids(len(kinds) + 1), nodes.ids(len(kinds) + 2)

    # This batch's shared identifiers (held by too many people), and those known before.
    found = _shared_in_batch(nodes, slot_ids, kinds, max_user_ids, max_ids_per_identifier)
    shared_ids = np.zeros(nodes.count, bool)
    shared_ids[list(found)] = True
    for node in shared or ():
        known_id = _node_id(nodes, node)
        if known_id is not None:
            shared_ids[known_id] = True
    conflicts = [Conflict(nodes.node(i), (), holders) for i, holders in
                 sorted(found.items(), key=lambda kv: nodes.node(kv[0]))]

    # Profiles: ids after the identifiers', oldest first (the survivor of a merge).
    profiles = existing.profiles
    if profiles.num_rows:
        # A profile the graph names but that has no row (no created_at) sorts last, as in stitcher._age.
        profiles = profiles.take(pc.sort_indices(profiles, sort_keys=[("created_at", "ascending", "at_end"),
                                                                      ("profile_id", "ascending", "at_end")]))
    profile_names = _text(profiles.column("profile_id"))
    n_nodes, n_profiles = nodes.count, profiles.num_rows
    ex_node_profile = _positions(ex_nodes.column("profile_id"), profile_names)
    ex_user_profile = _positions(ex_users.column("profile_id"), profile_names)

    # Each row: its identifiers less the shared ones; the first left is its anchor.
    present = slot_ids >= 0
    kept = present & ~shared_ids[np.where(present, slot_ids, 0)]
    has_kept = kept.any(axis=1)
    anchor = np.where(has_kept, slot_ids[np.arange(n_rows), kept.argmax(axis=1)], -1) if kinds else np.full(n_rows, -1)
    has_any = present.any(axis=1)
    first_any = slot_ids[np.arange(n_rows), present.argmax(axis=1)] if kinds else np.full(n_rows, -1)
    alias = (alias_ids >= 0) & has_any
    alias_anchor_ok = alias & ~shared_ids[np.where(first_any >= 0, first_any, 0)]

    src = [np.broadcast_to(anchor[:, None], slot_ids.shape)[kept], alias_ids[alias_anchor_ok],
           n_nodes + ex_node_profile, n_nodes + ex_user_profile]
    dst = [slot_ids[kept], first_any[alias_anchor_ok], ex_node_ids, ex_user_ids]
    comp = _components(np.concatenate(src), np.concatenate(dst), n_nodes + n_profiles)
    node_comp, profile_comp = comp[:n_nodes], comp[n_nodes:]

    # Which nodes belong to the plan: those the rows keep, and the known ones.
    in_plan = np.zeros(n_nodes, bool)
    in_plan[slot_ids[kept]] = True
    in_plan[alias_ids[alias]] = True
    in_plan[ex_node_ids] = True
    # First sighting of each identifier: row by row, slot by slot, an alias's previousId last.
    width = len(kinds) + 1
    first_seen = np.full(n_nodes, np.iinfo(np.int64).max, np.int64)
    order = np.arange(n_rows, dtype=np.int64)[:, None] * width + np.arange(len(kinds), dtype=np.int64)[None, :]
    np.minimum.at(first_seen, slot_ids[kept], order[kept])
    np.minimum.at(first_seen, alias_ids[alias], np.arange(n_rows, dtype=np.int64)[alias] * width + len(kinds))

    # The guard: a component with more distinct userIds than allowed needs the union-find.
    n_comp = int(comp.max()) + 1 if len(comp) else 0
    is_user = nodes.kind_of(np.arange(n_nodes)) == nodes.kind_code(USER)
    users_per_comp = np.bincount(node_comp[is_user], minlength=n_comp)
    guarded = users_per_comp > max_user_ids if max_user_ids is not None else np.zeros(n_comp, bool)

    # Name the components that need no walk.
    assignment_nodes = np.flatnonzero(in_plan & ~guarded[node_comp])
    names = np.empty(n_comp, object)
    survivor = np.full(n_comp, n_profiles, np.int64)
    np.minimum.at(survivor, profile_comp, np.arange(n_profiles, dtype=np.int64))
    # Each unguarded component with profiles keeps its oldest; the others merge
    # into it. As arrays: a batch of a backfill touches ~200k profiles, almost
    # all alone in their component. Merges are listed component by component
    # (in the order the profiles first name them), each one's by profile id.
    pnames = np.asarray(profile_names.to_numpy(zero_copy_only=False), object)
    mine = np.arange(n_profiles, dtype=np.int64)
    unguarded = ~guarded[profile_comp]
    names[profile_comp[unguarded]] = pnames[survivor[profile_comp[unguarded]]]
    moving = np.flatnonzero(unguarded & (survivor[profile_comp] != mine))
    merges: list[tuple[str, str]] = []
    if len(moving):
        # A component's survivor is its first profile row, so it orders the components.
        order = np.lexsort((pnames[moving].astype(str), survivor[profile_comp[moving]]))
        moving = moving[order]
        merges = list(zip(pnames[moving].tolist(), pnames[survivor[profile_comp[moving]]].tolist()))
    fresh = np.flatnonzero((survivor == n_profiles) & ~guarded)
    if len(fresh):
        first_node = np.full(n_comp, -1, np.int64)
        firsts = np.full(n_comp, np.iinfo(np.int64).max, np.int64)
        seen = np.flatnonzero(in_plan)
        np.minimum.at(firsts, node_comp[seen], first_seen[seen])
        hit = seen[first_seen[seen] == firsts[node_comp[seen]]]
        first_node[node_comp[hit]] = hit
        fresh = fresh[first_node[fresh] >= 0]
        kinds_of, values_of = nodes.table(first_node[fresh])
        names[fresh] = [profile_id_for(node) for node in zip(kinds_of.to_pylist(), values_of.to_pylist())]

    known = np.zeros(n_nodes, bool)
    known[ex_node_ids] = True
    kind_arr, value_arr = nodes.table(assignment_nodes)
    assign = pa.table({"kind": kind_arr, "value": value_arr,
                       "profile_id": pa.array(names[node_comp[assignment_nodes]].tolist(), pa.string())})
    new_idx = assignment_nodes[~known[assignment_nodes]]
    new_kind, new_value = nodes.table(new_idx)
    plan = StitchPlan(assign, pa.table({"kind": new_kind, "value": new_value}), merges, conflicts)
    if guarded.any():
        _walk_guarded(plan, nodes, slot_ids, alias_ids, guarded, node_comp, profile_comp,
                      profiles, existing, max_user_ids, shared_ids)
    return plan


def _empty_plan() -> StitchPlan:
    text = pa.array([], pa.string())
    return StitchPlan(pa.table({"kind": text, "value": text, "profile_id": text}),
                      pa.table({"kind": text, "value": text}), [], [])


def _positions(values: Any, names: pa.Array) -> IntArray:
    """Each value's position in ``names`` (every value is one of them)."""
    return np.asarray(pc.index_in(_text(values), value_set=names).to_numpy(zero_copy_only=False), np.int64)


def _node_id(nodes: _Nodes, node: Node) -> int | None:
    kind = nodes.kind_code(node[0])
    if kind < 0:
        return None
    hits = np.flatnonzero(pc.equal(nodes.dictionary, node[1]).to_numpy(zero_copy_only=False))
    if not len(hits):
        return None
    key = int(hits[0]) * len(nodes.kinds) + kind
    i = int(np.searchsorted(nodes.key, key))
    return i if i < len(nodes.key) and nodes.key[i] == key else None


def _components(src: IntArray, dst: IntArray, n: int) -> IntArray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(src), np.int8), (src, dst)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=False)
    return np.asarray(labels, np.int64)


def _shared_in_batch(nodes: _Nodes, slot_ids: IntArray, kinds: tuple[str, ...], max_user_ids: int | None,
                     max_ids: int | None) -> dict[int, tuple[str, ...]]:
    """Identifier-trait nodes carried by rows of more distinct userIds (or ids) than
    allowed; see ``stitcher.shared_identifiers``."""
    trait_slots = [j for j, k in enumerate(kinds) if k not in (USER, ANON)]
    id_slots = [j for j, k in enumerate(kinds) if k in (USER, ANON)]
    pairs = [np.stack([slot_ids[:, t], slot_ids[:, i]], axis=1) for t in trait_slots for i in id_slots]
    if not pairs:
        return {}
    both = np.concatenate(pairs)
    both = both[(both[:, 0] >= 0) & (both[:, 1] >= 0)]
    both = np.unique(both, axis=0)
    users = both[nodes.kind_of(both[:, 1]) == nodes.kind_code(USER)]
    n_users = np.bincount(users[:, 0], minlength=nodes.count)
    n_ids = np.bincount(both[:, 0], minlength=nodes.count)
    over = n_users > (max_user_ids if max_user_ids is not None else np.iinfo(np.int64).max)
    if max_ids is not None:
        over |= n_ids > max_ids
    found: dict[int, tuple[str, ...]] = {}
    for node in np.flatnonzero(over).tolist():
        held = both[both[:, 0] == node, 1]
        found[node] = shared_holders([nodes.node(int(i))[1] for i in held])
    return found


def _walk_guarded(plan: StitchPlan, nodes: _Nodes, slot_ids: IntArray, alias_ids: IntArray,
                  guarded: npt.NDArray[np.bool_], node_comp: IntArray,
                  profile_comp: IntArray, profiles: pa.Table, existing: Existing, max_user_ids: int | None,
                  shared_ids: npt.NDArray[np.bool_]) -> None:
    """The union-find, in event-time order, over the rows of the guarded
    components only (components are independent, so this is what it would do
    over the whole batch)."""
    # Only the rows of guarded components (picked over arrays, not row by row).
    present = slot_ids >= 0
    safe = np.where(present, slot_ids, 0)
    main: npt.NDArray[np.bool_] = np.asarray((present & ~shared_ids[safe] & guarded[node_comp[safe]]).any(axis=1))
    has_alias = alias_ids >= 0
    aliased: npt.NDArray[np.bool_] = np.asarray(
        has_alias & present.any(axis=1) & guarded[node_comp[np.where(has_alias, alias_ids, 0)]])
    link_rows: list[LinkRow] = []
    for r in np.flatnonzero(main | aliased).tolist():
        row_nodes = [nodes.node(int(i)) for i in slot_ids[r] if i >= 0]
        if main[r]:
            link_rows.append(LinkRow(row_nodes))
        if aliased[r]:
            link_rows.append(LinkRow([row_nodes[0], nodes.node(int(alias_ids[r]))], alias=True))
    names = _text(profiles.column("profile_id")).to_pylist()
    created = profiles.column("created_at").to_pylist()
    keep = {names[r] for r in range(len(names)) if guarded[int(profile_comp[r])]}
    users: dict[str, set[str]] = {}
    for pid, value in zip(_text(existing.users.column("profile_id")).to_pylist(),
                          _text(existing.users.column("value")).to_pylist()):
        if pid in keep:
            users.setdefault(pid, set()).add(value)
    ex_profiles = {names[r]: ExistingProfile(names[r], created[r], frozenset(users.get(names[r], ())))
                   for r in range(len(names)) if names[r] in keep}
    ex_nodes = {(k, v): p for k, v, p in zip(_text(existing.nodes.column("kind")).to_pylist(),
                                             _text(existing.nodes.column("value")).to_pylist(),
                                             _text(existing.nodes.column("profile_id")).to_pylist()) if p in keep}
    shared = {nodes.node(int(i)) for i in np.flatnonzero(shared_ids)}
    walked = plan_rows(link_rows, ex_nodes, ex_profiles, max_user_ids, shared)
    plan.assignment = pa.concat_tables([plan.assignment, walked.assignment])
    plan.new_nodes = pa.concat_tables([plan.new_nodes, walked.new_nodes])
    plan.merges.extend(walked.merges)
    plan.conflicts.extend(walked.conflicts)
