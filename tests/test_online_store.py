"""Contract of the OnlineStore port: the materialized SQLite store and direct reads
of the offline DuckDB file answer the same, and the materialized one recovers."""

from __future__ import annotations

import pytest

from personable import Engine

T = "2026-02-01T10:00:00Z"


def _fill(engine):
    engine.page(anonymous_id="a1", name="Home", timestamp="2026-02-01T09:00:00Z",
                context={"consent": {"categoryPreferences": {"ads": False}}})
    engine.identify("u1", {"email": "Ann@Example.com", "plan": "pro", "tags": ["a", 1]}, anonymous_id="a1", timestamp=T)
    engine.identify("u0", {"phone": "+1 415 555 0101"}, timestamp="2026-01-01T09:00:00Z")
    engine.alias("u1", "u0", timestamp="2026-02-02T09:00:00Z")
    engine.track("u1", "Order Completed", {"order_id": "o1", "revenue": 12.5, "products": [{"product_id": "p", "price": 12.5}]},
                 timestamp="2026-02-03T09:00:00Z")


@pytest.mark.parametrize("identifier", ["u1", "u0", "a1", "email:ann@example.com", "phone:(415) 555-0101", "user_id:u0"])
def test_materialized_and_direct_reads_agree(engine, identifier):
    _fill(engine)
    assert "materialized" in engine.online.capabilities
    pid = engine.resolve(identifier)
    assert pid is not None and pid == engine.store.resolve(identifier)
    online = engine.online.profile(pid, 50)
    direct = engine.store.profile(pid, 50)
    assert online == direct
    assert online["traits"]["tags"] == ["a", 1]
    assert online["recent_events"][0]["properties"]["products"][0]["price"] == 12.5
    assert online["consents"]["ads"]["granted"] is False
    assert len(online["merged_from"]) >= 1
    for old in online["merged_from"]:
        assert engine.resolve(f"profile:{old}") == pid == engine.store.resolve(f"profile:{old}")


def test_online_store_is_rebuilt_after_a_crash(project):
    with Engine(project) as e:
        _fill(e)
        before = e.profile("u1")
    # As if the process died between the offline commit and the online write.
    for f in (project / ".personable").glob("online.sqlite*"):
        f.unlink()
    with Engine(project) as e:
        assert e.profile("u1") == before
        watermark = e.online.watermark()
    with Engine(project) as e:  # nothing newer than the watermark: nothing rebuilt, same answer
        assert e.online.watermark() == watermark and e.profile("u1") == before


def test_direct_reads_configuration(project):
    cfg = project / "personable.yaml"
    cfg.write_text(cfg.read_text().replace("online: sqlite:///.personable/online.sqlite", "online: duckdb://"))
    with Engine(project) as e:
        _fill(e)
        assert e.online is e.store and e.profile("email:ann@example.com")["computed"]["order_count"] == 1
