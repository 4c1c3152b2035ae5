"""Which observation of a trait or a consent a profile keeps.

Traits: per (profile, key) the newest observation by event time, or the oldest
for keys whose policy is ``first_write_wins``; an imputed value only stands in
until a real observation arrives. Placeholders for "no value" (quality status
``missing``) are not observations, and ``consent`` is not a trait (it is the
consent map, kept apart). Consents: the newest observation per purpose wins,
each timed no later than the batch received it (ties: the later one in the batch; within one event a Global Privacy Control
signal, then a purpose named as such, then a category mapped onto it); every
observation is also logged, with how it arrived (``via``: context, traits, gpc,
api) and the policy version in force.

Consent maps name purposes or consent categories (``privacy.categories``: e.g.
Segment's ``Marketing`` -> ``marketing_email`` and ``marketing_sms``); a name
neither mapped nor a purpose is recorded as it came.

The adapter lists the batch's observations as long tables (``_trait_kv``,
``_consent_kv``: one row per key, the value as JSON text); these
expressions pick the winners, and ``REPLACES`` says when a winner replaces
what is stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import ibis.expr.types as ir

TS = "timestamp('UTC')"   # personable.tables.TS, without importing Ibis

FIRST_WRITE_WINS, LAST_WRITE_WINS = "first_write_wins", "last_write_wins"
IMPUTED = "imputed"
CONSENT_KEY = "consent"

# When the batch's winner replaces the stored row: "older" = its observation
# is older than the stored one; "not_older" = at least as new.
Replaces = Literal["older", "not_older"]
REPLACES: dict[str, Replaces] = {FIRST_WRITE_WINS: "older", LAST_WRITE_WINS: "not_older"}

TRAIT_COLUMNS = ("profile_id", "key", "value", "observed_at", "source", "message_id", "raw_value", "origin")
CONSENT_COLUMNS = ("profile_id", "purpose", "granted", "observed_at", "source", "message_id", "via",
                   "policy_version")
GPC = "gpc"   # via of a Global Privacy Control signal: it withdraws privacy.gpc_denies


def _observations() -> tuple["ir.Table", "ir.Table"]:
    import ibis

    return (ibis.table({
        "profile_id": "string", "seq": "int64", "timestamp": TS, "source": "string", "message_id": "string",
        "key": "string", "value": "json", "raw_value": "json", "origin": "string", "status": "string",
    }, name="_trait_kv"), ibis.table({
        "profile_id": "string", "seq": "int64", "timestamp": TS, "source": "string", "message_id": "string",
        "purpose": "string", "granted": "boolean", "via": "string",
    }, name="_consent_kv"))


def _first_per(t: "ir.Table", key: str, newest: bool) -> "ir.Table":
    import ibis

    order = [ibis.desc(t.timestamp) if newest else ibis.asc(t.timestamp), ibis.desc(t.seq)]
    ranked = t.mutate(_rank=ibis.row_number().over(group_by=[t.profile_id, t[key]], order_by=order))
    return ranked.filter(ranked._rank == 0).drop("_rank")


def trait_winners(policies: dict[str, str], default: str) -> dict[str, "ir.Table"]:
    """Per policy, the batch's winning observation of each (profile, key)."""
    import ibis

    t = _observations()[0]
    kept = t.filter((t.key != CONSENT_KEY) & (t.status.isnull() | (t.status != "missing")))
    first_keys = sorted(k for k, p in policies.items() if p == FIRST_WRITE_WINS)
    last_keys = sorted(k for k, p in policies.items() if p == LAST_WRITE_WINS)
    if default == FIRST_WRITE_WINS:
        is_first = ~kept.key.isin(last_keys) if last_keys else ibis.literal(True)
    else:
        is_first = kept.key.isin(first_keys) if first_keys else ibis.literal(False)
    out = {}
    for policy, rows in ((FIRST_WRITE_WINS, kept.filter(is_first)), (LAST_WRITE_WINS, kept.filter(~is_first))):
        won = _first_per(rows, "key", newest=(policy == LAST_WRITE_WINS))
        out[policy] = won.select(profile_id=won.profile_id, key=won.key, value=won.value, observed_at=won.timestamp,
                                 source=won.source, message_id=won.message_id, raw_value=won.raw_value,
                                 origin=won.origin)
    return out


def _mapped_consents(categories: tuple[tuple[str, tuple[str, ...]], ...], gpc_denies: tuple[str, ...]) -> "ir.Table":
    """The batch's consent observations with categories mapped onto purposes
    and a GPC signal turned into denials; ``_prio`` breaks ties within an event."""
    import ibis

    observed = _observations()[1]
    # A consent counts from when it was received at the latest: an event stamped in
    # the future (clock skew is allowed up to events.max_future_skew_hours) must not
    # outrank a withdrawal made after it arrived.
    clock = ibis.table({"now": TS}, name="_batch_clock")
    j = observed.cross_join(clock)
    c = j.select(*[j[n] for n in observed.columns if n != "timestamp"], timestamp=ibis.least(j.timestamp, j.now))
    names = [name for name, _ in categories]
    signalled = c.via == GPC
    as_sent = c.filter(~signalled & ~c.purpose.isin(names)) if names else c.filter(~signalled)
    parts = [as_sent.mutate(_prio=ibis.literal(1))]
    parts += [c.filter(~signalled & (c.purpose == name)).mutate(purpose=ibis.literal(p), _prio=ibis.literal(0))
              for name, purposes in categories for p in purposes]
    parts += [c.filter(signalled).mutate(purpose=ibis.literal(p), granted=ibis.literal(False), _prio=ibis.literal(2))
              for p in gpc_denies]
    return ibis.union(*parts) if len(parts) > 1 else parts[0]


def consent_log(categories: tuple[tuple[str, tuple[str, ...]], ...] = (), gpc_denies: tuple[str, ...] = (),
                policy_version: str | None = None) -> "ir.Table":
    """Every consent observation of the batch, in batch order."""
    import ibis

    c = _mapped_consents(categories, gpc_denies)
    return c.order_by([c.seq, c._prio]).select(
        c.profile_id, c.purpose, c.granted, observed_at=c.timestamp, source=c.source, message_id=c.message_id,
        via=c.via, policy_version=ibis.literal(policy_version, type="string"))


def consent_winners(categories: tuple[tuple[str, tuple[str, ...]], ...] = (), gpc_denies: tuple[str, ...] = (),
                    policy_version: str | None = None) -> "ir.Table":
    import ibis

    t = _mapped_consents(categories, gpc_denies)
    ranked = t.mutate(_rank=ibis.row_number().over(
        group_by=[t.profile_id, t.purpose], order_by=[ibis.desc(t.timestamp), ibis.desc(t.seq), ibis.desc(t._prio)]))
    won = ranked.filter(ranked._rank == 0)
    return won.select(won.profile_id, won.purpose, won.granted, observed_at=won.timestamp, source=won.source,
                      message_id=won.message_id, via=won.via,
                      policy_version=ibis.literal(policy_version, type="string"))


def _moved(table: str, key: str, columns: tuple[str, ...], types: dict[str, str],
           newest: bool, keys: tuple[list[str], bool] | None = None) -> "ir.Table":
    import ibis

    rows = ibis.table({c: types[c] for c in columns}, name=table)
    m = ibis.table({"from_profile": "string", "into_profile": "string"}, name="_merges")
    j = rows.join(m, rows.profile_id == m.from_profile)
    if keys is not None:
        names, inside = keys
        if names:
            j = j.filter(j[key].isin(names) if inside else ~j[key].isin(names))
        elif inside:
            j = j.filter(ibis.literal(False))
    order = ibis.desc(j.observed_at) if newest else ibis.asc(j.observed_at)
    ranked = j.mutate(_rank=ibis.row_number().over(group_by=[j.into_profile, j[key]], order_by=[order]))
    won = ranked.filter(ranked._rank == 0)
    return won.select(profile_id=won.into_profile, **{c: won[c] for c in columns if c != "profile_id"})


def moved_traits(policies: dict[str, str], default: str) -> dict[str, "ir.Table"]:
    """Per policy, the traits of profiles merged away, moved onto their
    survivor: among them the newest per key wins (the oldest for
    first_write_wins keys); the upsert then compares it with the survivor's
    own row by the same policy (``REPLACES``)."""
    firsts = sorted(k for k, p in policies.items() if p == FIRST_WRITE_WINS)
    lasts = sorted(k for k, p in policies.items() if p == LAST_WRITE_WINS)
    # Which keys are first_write_wins: the listed ones, or all but the listed last ones.
    first_keys = (lasts, False) if default == FIRST_WRITE_WINS else (firsts, True)
    last_keys = (lasts, True) if default == FIRST_WRITE_WINS else (firsts, False)
    return {FIRST_WRITE_WINS: _moved("profile_traits", "key", TRAIT_COLUMNS, TRAIT_TYPES, False, first_keys),
            LAST_WRITE_WINS: _moved("profile_traits", "key", TRAIT_COLUMNS, TRAIT_TYPES, True, last_keys)}


def moved_consents() -> "ir.Table":
    """The consents of profiles merged away, moved onto their survivor: the newest per purpose."""
    return _moved("profile_consents", "purpose", CONSENT_COLUMNS, CONSENT_TYPES, True)


TRAIT_TYPES = {"profile_id": "string", "key": "string", "value": "json", "observed_at": TS, "source": "string",
               "message_id": "string", "raw_value": "json", "origin": "string"}
CONSENT_TYPES = {"profile_id": "string", "purpose": "string", "granted": "boolean", "observed_at": TS,
                 "source": "string", "message_id": "string", "via": "string", "policy_version": "string"}
