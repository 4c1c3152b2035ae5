"""Deterministic identity stitching: a union-find over identifiers with guards.

Every event links the identifiers it carries (userId, anonymousId, configured
identifier traits; alias links previousId to userId). Components of that graph
are profiles. Two guards keep junk from collapsing people together, in the
spirit of PostHog's "merge protection":

* an ordinary link never joins two components that both hold userIds when
  together they would hold more than ``max_user_ids`` (a shared device, a
  family email);
  ``alias`` is an explicit instruction to merge and is allowed;
* junk values never become nodes (filtered before they get here).

Links are applied in event-time order, so a shared anonymousId stays with the
first user that claimed it. The result is a plan the store applies: new
identities, merges of existing profiles, and refused links for the report.

This module is the exact, link-by-link definition. The write path stitches a
whole batch through ``components.plan_stitch``, which gets the same plan from
the graph's connected components and walks only the components the guard can
change through ``plan_rows``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable

import pyarrow as pa

Node = tuple[str, str]  # (kind, value)

USER = "user_id"
ANON = "anonymous_id"


@dataclass
class LinkRow:
    """Identifiers seen together (one distinct combination from a batch)."""

    nodes: list[Node]
    alias: bool = False


@dataclass
class ExistingProfile:
    profile_id: str
    created_at: object  # sortable (datetime); None: the profile has no row
    user_ids: frozenset[str]


@dataclass
class Conflict:
    node: Node
    kept_profile_users: tuple[str, ...]
    refused_users: tuple[str, ...]


@dataclass
class StitchPlan:
    assignment: pa.Table                  # kind, value, profile_id: every batch node -> final profile id
    new_nodes: pa.Table                   # kind, value: nodes to insert into the identity graph
    merges: list[tuple[str, str]]         # (from_profile, into_profile)
    conflicts: list[Conflict] = field(default_factory=list)

    def assigned(self) -> dict[Node, str]:
        return {(k, v): p for k, v, p in zip(*(self.assignment.column(c).to_pylist()
                                               for c in ("kind", "value", "profile_id")))}


def _age(profile: ExistingProfile) -> tuple[bool, object, str]:
    """Oldest first; a profile the graph names but that has no row (an older
    version's refused link left such nodes) sorts after every dated one."""
    return (profile.created_at is None, profile.created_at if profile.created_at is not None else 0,
            profile.profile_id)


def profile_id_for(node: Node) -> str:
    """Deterministic id for a profile first seen through ``node``."""
    return "p_" + hashlib.sha256(f"{node[0]}:{node[1]}".encode()).hexdigest()[:20]


class _UnionFind:
    def __init__(self) -> None:
        self.index: dict[Node, int] = {}   # identifiers, and ("profile", id) for existing profiles
        self.parent: list[int] = []
        self.users: list[frozenset[str]] = []
        self.profiles: list[frozenset[str]] = []
        self.first: list[Node] = []

    def add(self, key: Node, users: frozenset[str] = frozenset(), profiles: frozenset[str] = frozenset()) -> int:
        i = self.index.get(key)
        if i is None:
            i = len(self.parent)
            self.index[key] = i
            self.parent.append(i)
            self.users.append(users)
            self.profiles.append(profiles)
            self.first.append(key)
        return i

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:
            self.parent[i], i = root, self.parent[i]
        return root

    def union(self, a: int, b: int, max_users: int | None) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        users = self.users[ra] | self.users[rb]
        # Refused only when both sides bring userIds: a side without any (a new
        # device, an email) adds no one, even to a component an alias took past
        # the limit (refusing it left the identifier with a profile of its own
        # and no row, and broke every later batch that carried it).
        if max_users is not None and len(users) > max_users and self.users[ra] and self.users[rb]:
            return False
        # The older component (lower index = seen earlier) is the survivor.
        if rb < ra:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.users[ra] = users
        self.profiles[ra] = self.profiles[ra] | self.profiles[rb]
        return True


def shared_identifiers(rows: list[LinkRow], max_user_ids: int = 1,
                       max_ids: int | None = None) -> dict[Node, tuple[str, ...]]:
    """Identifier-trait nodes (email, phone, ...) held by several people: carried
    by rows of more distinct userIds than allowed, or of more distinct ids
    (userIds and anonymousIds) than ``max_ids`` -- a switchboard number, a
    family email, a placeholder. Maps each to the ids that carried it."""
    users: dict[Node, set[str]] = {}
    ids: dict[Node, set[Node]] = {}
    for row in rows:
        if row.alias:
            continue
        row_users = {n[1] for n in row.nodes if n[0] == USER}
        row_ids = {n for n in row.nodes if n[0] in (USER, ANON)}
        for n in row.nodes:
            if n[0] not in (USER, ANON):
                users.setdefault(n, set()).update(row_users)
                ids.setdefault(n, set()).update(row_ids)
    return {n: shared_holders(i[1] for i in ids[n]) for n in ids
            if len(users[n]) > max_user_ids or (max_ids is not None and len(ids[n]) > max_ids)}


def shared_holders(values: Iterable[str]) -> tuple[str, ...]:
    """The ids a shared identifier's conflict names (the first 20, sorted)."""
    return tuple(sorted(values))[:20]


def plan_stitch_rows(
    rows: Iterable[LinkRow],
    existing_nodes: dict[Node, str],
    existing_profiles: dict[str, ExistingProfile],
    max_user_ids: int = 1,
    shared: set[Node] | None = None,
    max_ids_per_identifier: int | None = None,
) -> StitchPlan:
    """``shared``: identifier-trait nodes known to be held by several people; they
    link nothing (nor do those that this batch shows to be shared, which are
    returned as conflicts so later batches know), so a record carrying one does
    not join whoever claimed it first."""
    rows = list(rows)
    found = shared_identifiers(rows, max_user_ids, max_ids_per_identifier)
    plan = plan_rows(rows, existing_nodes, existing_profiles, max_user_ids, set(shared or ()) | set(found))
    plan.conflicts[:0] = [Conflict(node, (), holders) for node, holders in sorted(found.items())]
    return plan


def plan_rows(rows: list[LinkRow], existing_nodes: dict[Node, str], existing_profiles: dict[str, ExistingProfile],
              max_user_ids: int | None, shared: set[Node]) -> StitchPlan:
    """The union-find over ``rows`` in their order, ``shared`` nodes left out."""
    uf = _UnionFind()
    # Existing profiles first, oldest first, so they win survivor ties.
    for prof in sorted(existing_profiles.values(), key=_age):
        uf.add(("profile", prof.profile_id), prof.user_ids, frozenset([prof.profile_id]))
    for node, pid in existing_nodes.items():
        i = uf.add(node, frozenset([node[1]]) if node[0] == USER else frozenset())
        uf.union(uf.index[("profile", pid)], i, None)

    conflicts: list[Conflict] = []
    for row in rows:
        nodes = [n for n in row.nodes if n not in shared]
        if not nodes:
            continue
        row = LinkRow(nodes, row.alias)
        idx = [uf.add(n, frozenset([n[1]]) if n[0] == USER else frozenset()) for n in row.nodes]
        anchor = idx[0]
        for node, i in zip(row.nodes[1:], idx[1:]):
            if not uf.union(anchor, i, None if row.alias else max_user_ids):
                ra, rb = uf.find(anchor), uf.find(i)
                conflicts.append(Conflict(node, tuple(sorted(uf.users[rb])), tuple(sorted(uf.users[ra]))))

    # Name each component: its oldest existing profile, else a new deterministic id.
    names: dict[int, str] = {}
    merges: list[tuple[str, str]] = []
    for i in uf.index.values():
        root = uf.find(i)
        if root in names:
            continue
        profiles = uf.profiles[root]
        if profiles:
            survivor_key = uf.first[root]
            survivor = survivor_key[1] if survivor_key[0] == "profile" else min(profiles)
            names[root] = survivor
            merges.extend((p, survivor) for p in sorted(profiles) if p != survivor)
        else:
            names[root] = profile_id_for(uf.first[root])

    assignment: dict[Node, str] = {}
    new_nodes: list[Node] = []
    for key, i in uf.index.items():
        if key[0] == "profile":
            continue
        assignment[key] = names[uf.find(i)]
        if key not in existing_nodes:
            new_nodes.append(key)
    return StitchPlan(
        pa.table({"kind": pa.array([n[0] for n in assignment], pa.string()),
                  "value": pa.array([n[1] for n in assignment], pa.string()),
                  "profile_id": pa.array(list(assignment.values()), pa.string())}),
        pa.table({"kind": pa.array([n[0] for n in new_nodes], pa.string()),
                  "value": pa.array([n[1] for n in new_nodes], pa.string())}),
        merges, conflicts)
