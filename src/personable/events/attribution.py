"""A batch's new events as they are stored: attributed to a profile, with
revenue in the reporting currency.

Revenue: an amount without a currency is taken to be in the reporting
currency; one in a currency without a configured rate stays NULL (the quality
report counts those) rather than being summed as if it were. An event belongs
to the profile of its userId, else of its anonymousId.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from ..tables import TS

NEW_EVENTS = ibis.table({
    "seq": "int64", "message_id": "string", "type": "string", "event": "string", "name": "string",
    "user_id": "string", "anonymous_id": "string", "previous_id": "string", "group_id": "string",
    "timestamp": TS, "original_timestamp": TS, "sent_at": TS, "received_at": TS,
    "context": "json", "properties": "json", "traits": "json", "consent_context": "json", "consent_traits": "json",
    "device": "string", "channel": "string", "revenue": "float64", "currency": "string", "source": "string",
}, name="_new")
ASSIGNMENT = ibis.table({"kind": "string", "value": "string", "profile_id": "string"}, name="_assign")
RATES = ibis.table({"currency": "string", "rate": "float64"}, name="_rates")
STD_TRAITS = ibis.table({"seq": "int64", "std_traits": "json"}, name="_std_traits")


def stored_events(reporting_currency: str) -> ir.Table:
    n = NEW_EVENTS
    u = ASSIGNMENT.filter(ASSIGNMENT.kind == "user_id").select(u_value="value", u_profile="profile_id")
    a = ASSIGNMENT.filter(ASSIGNMENT.kind == "anonymous_id").select(a_value="value", a_profile="profile_id")
    r = RATES.select(r_currency="currency", rate="rate")
    s = STD_TRAITS.select(s_seq="seq", std_traits="std_traits")
    j = (n.left_join(u, n.user_id == u.u_value).left_join(a, n.anonymous_id == a.a_value)
         .left_join(r, n.currency == r.r_currency).left_join(s, n.seq == s.s_seq))
    in_reporting = j.currency.isnull() | (j.currency == reporting_currency)
    return j.select(
        *[j[c] for c in n.columns],
        profile_id=j.u_profile.coalesce(j.a_profile),
        revenue_reporting=ibis.ifelse(in_reporting, j.revenue, j.revenue * j.rate),
        std_traits=j.std_traits,
    )
