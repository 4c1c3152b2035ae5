"""The official Segment Python SDK, pointed at our server, lands events and
anonymous -> identified stitching shows in the profile API."""

from __future__ import annotations

from segment.analytics import Client


def test_segment_sdk_round_trip(server):
    errors = []
    client = Client(write_key=server.write_key, host=server.url, sync_mode=True,
                    on_error=lambda e, batch: errors.append(e), max_retries=1)
    client.page(anonymous_id="sdk-anon", name="Home", properties={"path": "/"})
    client.track(anonymous_id="sdk-anon", event="Product Viewed", properties={"product_id": "p1", "price": 9.5})
    client.track(anonymous_id="sdk-anon", event="Product Added", properties={"product_id": "p1", "price": 9.5})
    client.identify(user_id="sdk-user", anonymous_id="sdk-anon", traits={"email": "sdk@example.com", "plan": "pro"})
    client.track(user_id="sdk-user", event="Order Completed",
                 properties={"order_id": "o-1", "revenue": 9.5, "currency": "USD",
                             "products": [{"product_id": "p1", "price": 9.5, "quantity": 1}]})
    client.flush()
    assert not errors
    with server.client() as c:
        # fresh=true: wait until everything acknowledged so far is stored (read your writes).
        prof = c.get("/v1/profiles/sdk-user", headers=server.admin, params={"fresh": "true"}).json()
        assert prof["computed"]["event_count"] == 5
        assert prof["computed"]["order_count"] == 1 and prof["computed"]["revenue"] == 9.5
        assert prof["traits"]["plan"] == "pro"
        kinds = {i["kind"] for i in prof["identities"]}
        assert {"user_id", "anonymous_id", "email"} <= kinds
        # Any identifier resolves to the same person.
        for ident in ("sdk-anon", "email:SDK@example.com", prof["profile_id"]):
            assert c.get(f"/v1/profiles/{ident}", headers=server.admin).json()["profile_id"] == prof["profile_id"]
