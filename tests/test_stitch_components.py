"""The write path stitches a batch by connected components
(``identity.components``); the union-find of ``identity.stitcher`` is the
definition. Both must give the same plan on any batch: random graphs with
shared devices, family emails, aliases and existing profiles."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest

from personable.identity.components import Existing, Links, ordered_rows, plan_stitch
from personable.identity.stitcher import ANON, USER, ExistingProfile, LinkRow, plan_stitch_rows

KINDS = (USER, ANON, "email", "phone")
TWO_EMAILS = (USER, ANON, "email", "email")   # two identifier traits of one kind
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _batch(rng: random.Random, rows: int, pool: int, kinds: tuple[str, ...] = KINDS,
           one_pool: bool = False) -> pa.Table:
    """``one_pool``: every kind draws from the same values ("v-3" as a userId and an anonymousId)."""
    def pick(kind: str, p_null: float) -> str | None:
        return None if rng.random() < p_null else f"{'v' if one_pool else kind}-{rng.randrange(pool)}"

    data: dict[str, list] = {f"slot_{j}": [] for j in range(len(kinds))}
    data |= {"alias_value": [], "alias_kind": [], "first_ts": []}
    for _ in range(rows):
        for j, (kind, p) in enumerate(zip(kinds, (0.5, 0.2, 0.7, 0.85))):
            data[f"slot_{j}"].append(pick(kind, p))
        alias = rng.random() < 0.08
        kind = rng.choice((USER, ANON))
        data["alias_value"].append(f"{'v' if one_pool else kind}-{rng.randrange(pool)}" if alias else None)
        data["alias_kind"].append(kind if alias else None)
        # Few distinct times, so ties between rows are common.
        data["first_ts"].append(T0 + timedelta(minutes=rng.randrange(rows // 3 + 1)))
    return pa.table(data)


def _graph(rng: random.Random, batch: pa.Table, profiles: int,
           kinds: tuple[str, ...] = KINDS) -> tuple[Existing, dict, dict]:
    """A store's graph that knows some of the batch's identifiers (and more).
    Some profiles have no row (created_at None), as an older version could leave."""
    batch_nodes = set()
    for j, kind in enumerate(kinds):
        batch_nodes |= {(kind, v) for v in batch.column(f"slot_{j}").to_pylist() if v is not None}
    batch_nodes |= {(k, v) for k, v in zip(batch.column("alias_kind").to_pylist(),
                                           batch.column("alias_value").to_pylist()) if v is not None}
    pids = [f"p_old{i}" for i in range(profiles)]
    graph: dict[tuple[str, str], str] = {}
    for node in sorted(batch_nodes):
        if pids and rng.random() < 0.3:
            graph[node] = rng.choice(pids)
    for i, pid in enumerate(pids):   # userIds the batch does not carry
        if rng.random() < 0.5:
            graph[(USER, f"elsewhere-{i}")] = pid
    known = {n: p for n, p in graph.items() if n in batch_nodes}
    used = sorted(set(known.values()))
    created = {p: None if rng.random() < 0.1 else T0 - timedelta(days=rng.randrange(5)) for p in used}  # ties on purpose
    users = sorted((p, n[1]) for n, p in graph.items() if n[0] == USER and p in created)
    existing = Existing(
        pa.table({"kind": [n[0] for n in known], "value": [n[1] for n in known], "profile_id": list(known.values())},
                 schema=pa.schema([("kind", pa.string()), ("value", pa.string()), ("profile_id", pa.string())])),
        pa.table({"profile_id": pa.array(used, pa.string()),
                  "created_at": pa.array([created[p] for p in used], pa.timestamp("us", tz="UTC"))}),
        pa.table({"profile_id": pa.array([u[0] for u in users], pa.string()),
                  "value": pa.array([u[1] for u in users], pa.string())}))
    user_sets: dict[str, set[str]] = {}
    for p, v in users:
        user_sets.setdefault(p, set()).add(v)
    reference_profiles = {p: ExistingProfile(p, created[p], frozenset(user_sets.get(p, ()))) for p in used}
    return existing, known, reference_profiles


def _reference_rows(links: Links) -> list[LinkRow]:
    """The rows as the union-find reads them: in the components' order."""
    t = ordered_rows(links)
    out: list[LinkRow] = []
    for r in range(t.num_rows):
        nodes = [(kind, t.column(f"slot_{j}")[r].as_py()) for j, kind in enumerate(links.kinds)]
        nodes = [n for n in nodes if n[1] is not None]
        if nodes:
            out.append(LinkRow(nodes))
        prev = t.column("alias_value")[r].as_py()
        if prev is not None and nodes:
            out.append(LinkRow([nodes[0], (t.column("alias_kind")[r].as_py(), prev)], alias=True))
    return out


def _summary(plan):
    # Lists, not sets: a node twice in a plan would break the identity table's key.
    return (sorted(tuple(r.values()) for r in plan.assignment.to_pylist()),
            sorted(tuple(r.values()) for r in plan.new_nodes.to_pylist()),
            sorted(plan.merges), sorted((c.node, c.kept_profile_users, c.refused_users) for c in plan.conflicts))


def _as_postgres_returns(t: pa.Table) -> pa.Table:
    """What PostgreSQL's session hands over: rows back to Arrow, so an all-null
    column has Arrow's null type, and an empty result is all strings."""
    if t.num_rows == 0:
        return pa.table({n: pa.array([], pa.string()) for n in t.column_names})
    return pa.table({n: t.column(n).to_pylist() for n in t.column_names})


@pytest.mark.parametrize("seed", range(80))
def test_components_plan_equals_the_union_find(seed):
    rng = random.Random(seed)
    kinds = TWO_EMAILS if seed % 4 == 3 else KINDS
    batch = _batch(rng, rows=rng.choice((5, 40, 200)), pool=rng.choice((4, 15, 60)), kinds=kinds,
                   one_pool=seed % 5 == 4)
    existing, known, ref_profiles = _graph(rng, batch, profiles=rng.choice((0, 3, 12)), kinds=kinds)
    if seed % 3 == 2:
        batch = _as_postgres_returns(batch)
        existing = Existing(*(_as_postgres_returns(t) for t in (existing.nodes, existing.profiles, existing.users)))
    links = Links(batch, kinds)
    max_users = rng.choice((1, 1, 2, 3))
    max_ids = rng.choice((None, 3, 8))
    shared = {("email", f"email-{rng.randrange(4)}")} if rng.random() < 0.3 else set()
    got = plan_stitch(links, existing, max_users, shared=shared, max_ids_per_identifier=max_ids)
    want = plan_stitch_rows(_reference_rows(links), known, ref_profiles, max_users, shared=shared,
                            max_ids_per_identifier=max_ids)
    assert _summary(got) == _summary(want)


def test_the_guard_still_refuses_a_shared_device():
    """Two users on one anonymousId: the first keeps it, the second is refused
    (the union-find path), while an unrelated visitor is stitched by components."""
    batch = pa.table({
        "slot_0": ["alice", "bob", None], "slot_1": ["dev-1", "dev-1", "dev-2"],
        "slot_2": pa.array([None, None, None], pa.string()), "slot_3": pa.array([None, None, None], pa.string()),
        "alias_value": pa.array([None] * 3, pa.string()), "alias_kind": pa.array([None] * 3, pa.string()),
        "first_ts": [T0, T0 + timedelta(minutes=1), T0]})
    empty = Existing(pa.table({"kind": pa.array([], pa.string()), "value": pa.array([], pa.string()),
                               "profile_id": pa.array([], pa.string())}),
                     pa.table({"profile_id": pa.array([], pa.string()),
                               "created_at": pa.array([], pa.timestamp("us", tz="UTC"))}),
                     pa.table({"profile_id": pa.array([], pa.string()), "value": pa.array([], pa.string())}))
    plan = plan_stitch(Links(batch, KINDS), empty, 1)
    assigned = plan.assigned()
    assert assigned[(ANON, "dev-1")] == assigned[(USER, "alice")] != assigned[(USER, "bob")]
    assert [(c.node, c.refused_users) for c in plan.conflicts] == [((ANON, "dev-1"), ("bob",))]
    assert (ANON, "dev-2") in assigned and plan.merges == []


def test_a_batch_without_identifiers_plans_nothing():
    none = pa.array([None, None], pa.string())
    batch = pa.table({"slot_0": none, "slot_1": none, "slot_2": none, "slot_3": none, "alias_value": none,
                      "alias_kind": none, "first_ts": [T0, T0]})
    empty = Existing(*(_as_postgres_returns(pa.table({c: pa.array([], pa.string()) for c in cols}))
                       for cols in (("kind", "value", "profile_id"), ("profile_id", "created_at"),
                                    ("profile_id", "value"))))
    plan = plan_stitch(Links(batch, KINDS), empty, 1)
    assert plan.assignment.num_rows == plan.new_nodes.num_rows == 0 and plan.merges == plan.conflicts == []
