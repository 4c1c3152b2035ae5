"""The Engine on each OnlineStore adapter (SQLite, Redis): what it materializes
answers the same as direct reads of the offline DuckDB file, it is rebuilt
after a crash, and recommendations trained by the Engine are served from it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from personable import Engine
from personable.clock import SimulatedClock
from personable.errors import StoreError

T = "2026-02-01T10:00:00Z"
ADAPTERS = [pytest.param("sqlite", id="sqlite"), pytest.param("redis", id="redis", marks=pytest.mark.services)]


@pytest.fixture(params=ADAPTERS)
def online(request, project: Path) -> str:
    """Points the project's ``store.online`` at the adapter under test; returns its URL."""
    if request.param == "sqlite":
        return "sqlite:///.personable/online.sqlite"
    url = request.getfixturevalue("redis_url")
    cfg = project / "personable.yaml"
    text = cfg.read_text()
    assert "online: sqlite:///.personable/online.sqlite" in text
    # Quoted: a prefix ending in ':' would otherwise read as YAML.
    cfg.write_text(text.replace("online: sqlite:///.personable/online.sqlite", f'online: "{url}"'))
    return url


def _wipe(url: str, project: Path) -> None:
    """As if the process died between the offline commit and the online write."""
    if url.startswith("sqlite"):
        for f in (project / ".personable").glob("online.sqlite*"):
            f.unlink()
        return
    import redis

    from personable.adapters.redis_online import parse_url

    client_url, prefix = parse_url(url)
    client = redis.Redis.from_url(client_url)
    client.unlink(*client.keys(f"{prefix}*"))
    client.close()


def _fill(engine):
    engine.page(anonymous_id="a1", name="Home", timestamp="2026-02-01T09:00:00Z",
                context={"consent": {"categoryPreferences": {"ads": False}}})
    engine.identify("u1", {"email": "Ann@Example.com", "plan": "pro", "tags": ["a", 1]}, anonymous_id="a1", timestamp=T)
    engine.identify("u0", {"phone": "+1 415 555 0101"}, timestamp="2026-01-01T09:00:00Z")
    engine.alias("u1", "u0", timestamp="2026-02-02T09:00:00Z")
    engine.track("u1", "Order Completed", {"order_id": "o1", "revenue": 12.5, "products": [{"product_id": "p", "price": 12.5}]},
                 timestamp="2026-02-03T09:00:00Z")


@pytest.mark.parametrize("identifier", ["u1", "u0", "a1", "email:ann@example.com", "phone:(415) 555-0101", "user_id:u0"])
def test_materialized_and_direct_reads_agree(project, online, identifier):
    with Engine(project) as engine:
        _fill(engine)
        assert "materialized" in engine.online.capabilities
        assert type(engine.online).__name__ == ("RedisOnlineStore" if online.startswith("redis") else "SQLiteOnlineStore")
        pid = engine.resolve(identifier)
        assert pid is not None and pid == engine.store.resolve(identifier, "US", engine.components.hasher)
        materialized = engine.online.profile(pid, 50)
        direct = engine.store.profile(pid, 50)
        assert materialized == direct
        assert materialized["traits"]["tags"] == ["a", 1]
        assert materialized["recent_events"][0]["properties"]["products"][0]["price"] == 12.5
        assert materialized["consents"]["ads"]["granted"] is False
        assert len(materialized["merged_from"]) >= 1
        for old in materialized["merged_from"]:
            assert engine.resolve(f"profile:{old}") == pid == engine.store.resolve(f"profile:{old}")


def test_online_store_is_rebuilt_after_a_crash(project, online):
    with Engine(project) as e:
        _fill(e)
        before = e.profile("u1")
    _wipe(online, project)
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


def test_recommendations_are_trained_into_and_served_from_the_online_store(tmp_path, project, online):
    from personable.simulator import StoreSpec, simulate

    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    sim = simulate(tmp_path / "sim", StoreSpec(customers=300, days=30, seed=11))
    with Engine(project, clock=SimulatedClock(start + timedelta(days=30))) as engine:
        engine.ingest(sim.events_path)
        engine.recommend.import_catalog(sim.catalog_path)
        trained = engine.recommend.train()
        assert trained["profiles"] > 100
        someone = next(r["profile_id"] for r in engine.sql(
            "SELECT profile_id FROM profiles ORDER BY profile_id LIMIT 1").to_pylist())
        stored = engine.online.recommendations(someone)
        assert stored is not None
        served = engine.recommend.recommend(someone, "home", n=5)
        assert 0 < len(served["items"]) <= 5
    # Read back by a new Engine: the lists live in the online store, not in memory.
    with Engine(project, clock=SimulatedClock(start + timedelta(days=30))) as engine:
        assert engine.online.recommendations(someone) == stored
        assert engine.recommend.recommend(someone, "home", n=5)["items"] == served["items"]


def test_an_unreachable_online_store_is_a_clear_error(project):
    import socket

    with socket.socket() as s:   # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = project / "personable.yaml"
    cfg.write_text(cfg.read_text().replace("online: sqlite:///.personable/online.sqlite",
                                           f"online: redis://:secret@127.0.0.1:{port}/0"))
    with pytest.raises(StoreError, match=f"cannot reach the online store at redis://127.0.0.1:{port}/0") as err:
        Engine(project)
    assert "secret" not in str(err.value)
