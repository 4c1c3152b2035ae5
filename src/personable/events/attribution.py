"""A batch's new events as they are stored: attributed to a profile, with
revenue in the reporting currency.

Revenue: an amount without a currency is taken to be in the reporting
currency; one in a currency without a configured rate stays NULL (the quality
report counts those) rather than being summed as if it were. An event belongs
to the profile of its userId, else of its anonymousId.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ibis.expr.types as ir

TS = "timestamp('UTC')"   # personable.tables.TS, without importing Ibis
# The batch's new events (the write path's ``_new``), column -> Ibis type.
NEW_EVENT_COLUMNS = {
    "seq": "int64", "message_id": "string", "type": "string", "event": "string", "name": "string",
    "user_id": "string", "anonymous_id": "string", "previous_id": "string", "group_id": "string",
    "timestamp": TS, "original_timestamp": TS, "sent_at": TS, "received_at": TS,
    "context": "json", "properties": "json", "traits": "json", "consent_context": "json", "consent_traits": "json",
    "device": "string", "channel": "string", "revenue": "float64", "currency": "string", "source": "string",
}


def stored_events(reporting_currency: str) -> "ir.Table":
    import ibis

    n = ibis.table(NEW_EVENT_COLUMNS, name="_new")
    assignment = ibis.table({"kind": "string", "value": "string", "profile_id": "string"}, name="_assign")
    rates = ibis.table({"currency": "string", "rate": "float64"}, name="_rates")
    std = ibis.table({"seq": "int64", "std_traits": "json"}, name="_std_traits")
    u = assignment.filter(assignment.kind == "user_id").select(u_value="value", u_profile="profile_id")
    a = assignment.filter(assignment.kind == "anonymous_id").select(a_value="value", a_profile="profile_id")
    r = rates.select(r_currency="currency", rate="rate")
    s = std.select(s_seq="seq", std_traits="std_traits")
    j = (n.left_join(u, n.user_id == u.u_value).left_join(a, n.anonymous_id == a.a_value)
         .left_join(r, n.currency == r.r_currency).left_join(s, n.seq == s.s_seq))
    in_reporting = j.currency.isnull() | (j.currency == reporting_currency)
    return j.select(
        *[j[c] for c in n.columns],
        profile_id=j.u_profile.coalesce(j.a_profile),
        revenue_reporting=ibis.ifelse(in_reporting, j.revenue, j.revenue * j.rate),
        std_traits=j.std_traits,
    )
