"""RudderStack's official Python SDK against a real `personable serve`: its
identify traits (sent in context.traits only) reach the profile, and a batch
we refuse is a 4xx it treats as final instead of retrying."""

from __future__ import annotations

import pytest
from rudderstack.analytics.client import Client
from rudderstack.analytics.request import APIError


def _client(server, errors):
    return Client(write_key=server.write_key, host=server.url, sync_mode=True, max_retries=3,
                  on_error=lambda e, batch: errors.append(e))


def test_rudderstack_identify_traits_reach_the_profile(server):
    errors: list = []
    client = _client(server, errors)
    client.track(anonymous_id="rs-anon", event="Product Viewed", properties={"product_id": "p1"})
    client.identify(user_id="rs-user", anonymous_id="rs-anon", traits={"email": "rs@example.com", "plan": "pro"})
    client.flush()
    assert not errors
    with server.client() as c:
        prof = c.get("/v1/profiles/rs-user", headers=server.admin, params={"fresh": "true"}).json()
    assert prof["traits"]["plan"] == "pro" and prof["traits"]["email"] == "rs@example.com"
    assert prof["computed"]["event_count"] == 2 and "email" in {i["kind"] for i in prof["identities"]}


def test_a_refused_batch_is_final_for_the_sdk(server):
    client = _client(server, [])
    # In sync mode the SDK raises what it got: an APIError with our 400, which its
    # retry policy treats as final (before: a KeyError on our error body, retried).
    with pytest.raises(APIError) as got:
        client.track(user_id="rs-bad", event="Order Completed", properties={"order_id": "o1", "revenue": "lots"})
    assert got.value.status == 400 and got.value.code == "validation_failed"
