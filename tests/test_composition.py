"""The composition root's wiring, observed from outside: the online projection
reacts to profiles.changed, direct online reads work for every job, and
realtime judging loses no profile when a flush fails."""

from __future__ import annotations

import pytest

from personable import Engine
from personable.ports import PROFILES_CHANGED


def _direct_reads(project):
    cfg = project / "personable.yaml"
    cfg.write_text(cfg.read_text().replace("online: sqlite:///.personable/online.sqlite", "online: duckdb://"))


def _orders(engine, n=6):
    for i in range(n):
        engine.identify(f"u{i}", {"email": f"p{i}@example.com"})
        engine.track(f"u{i}", "Order Completed", {"order_id": f"o{i}", "revenue": 10.0 + i})


def test_direct_online_reads_serve_every_job(project):
    """`store.online: duckdb://` is documented; segment, model and resolution jobs
    crashed on it ('DuckDBStore' object has no attribute 'apply')."""
    _direct_reads(project)
    with Engine(project) as e:
        _orders(e)
        assert e.components.projection is None and e.online is e.store
        assert e.segments.compute()["customers_scored"] == 6
        assert e.segments.refresh()["segments"]
        assert e.profile("u1")["computed"]["rfm_segment"]
        e.resolution.run()
        e.quality.clean()


def test_batch_jobs_reach_the_online_store_through_the_bus(project):
    with Engine(project) as e:
        _orders(e)
        seen = []
        e.bus.subscribe(PROFILES_CHANGED, seen.append)
        e.segments.compute()
        assert {m.origin for m in seen} >= {"computed"}
        # The projection (a subscriber) wrote the new computed traits into SQLite.
        assert "materialized" in e.online.capabilities
        assert e.profile("u2")["computed"]["rfm_segment"] == e.store.profile(e.resolve("u2"))["computed"]["rfm_segment"]


def test_a_failed_realtime_flush_keeps_its_profiles_pending(project, monkeypatch):
    with Engine(project) as e:
        e.segments.create("buyers", {"name": "Buyers", "rule": {"event": "Order Completed"}},
                          refresh=False)
        e.defer_realtime()
        _orders(e, 3)
        realtime = e.components.realtime
        assert realtime.pending() == 3
        real = e.segments.on_batch

        def failing(profile_ids):
            raise RuntimeError("store unavailable")

        monkeypatch.setattr(e.segments, "on_batch", failing)
        with pytest.raises(RuntimeError):
            e.flush_realtime()
        assert realtime.pending() == 3          # nothing lost
        monkeypatch.setattr(e.segments, "on_batch", real)
        assert e.flush_realtime() == 3
        assert realtime.pending() == 0
        assert len(e.segments.members("buyers")) == 3
        assert [s["segment_id"] for s in e.profile("u0")["segments"]] == ["buyers"]   # projected


def test_services_are_built_once(project):
    with Engine(project) as e:
        assert e.models is e.models and e.recommend is e.recommend and e.quality is e.quality
        assert e.segments is e.components.segments


def test_a_full_refresh_never_undoes_newer_realtime_verdicts(project):
    """The scheduled refresh judged members outside the write lock, then applied
    them: a batch judged realtime in between was undone (the 'fresh read does not
    see realtime memberships' flake on a loaded machine)."""
    import threading

    with Engine(project) as e:
        e.segments.create("viewers", {"name": "Viewers", "rule": {"event": "Product Viewed"}}, refresh=False)
        real, gate, judged = e.store.execute, threading.Event(), threading.Event()

        def slow_execute(expr):
            table = real(expr)
            if threading.current_thread().name == "refresher":   # judged, not yet applied
                judged.set()
                gate.wait(10)
            return table

        e.store.execute = slow_execute
        refresher = threading.Thread(target=lambda: e.segments.refresh(["viewers"]), name="refresher")
        refresher.start()
        judged.wait(2)   # set only where members are judged outside the transaction (the old way)
        writer = threading.Thread(target=lambda: e.track("u1", "Product Viewed", {"product_id": "p1"}))
        writer.start()
        writer.join(10)   # stored and judged realtime while the refresh holds an older verdict
        gate.set()
        refresher.join(10)
        assert [m["profile_id"] for m in e.segments.members("viewers")] == [e.resolve("u1")]


def test_what_counts_as_an_order_is_configured_once(project):
    """events.order_event is read by the profile's aggregates and by RFM alike
    (the profile counted 'Order Completed' from SQL while RFM read its own setting)."""
    from personable.config import load_config
    from personable.errors import ConfigError

    cfg = project / "personable.yaml"
    text = cfg.read_text()
    cfg.write_text(text.replace("  order_event: Order Completed", "  order_event: Purchase"))
    with Engine(project) as e:
        e.track("u1", "Purchase", {"order_id": "o1", "revenue": 30.0})
        e.track("u1", "Order Completed", {"order_id": "o2", "revenue": 99.0})   # not an order here
        computed = e.profile("u1")["computed"]
        assert (computed["order_count"], computed["revenue"]) == (1, 30.0)
        assert e.segments.compute()["customers_scored"] == 1
        assert e.profile("u1")["computed"]["rfm_monetary"] is not None
    cfg.write_text(text.replace("lifecycle:", "rfm:\n  order_event: Checkout\nlifecycle:", 1))
    with pytest.raises(ConfigError) as err:
        load_config(project)
    assert err.value.details[0].path == "rfm.order_event"


def test_configured_segments_show_their_realtime_size_before_any_refresh(project):
    """A configured segment's size was read through a definition row only the first
    scheduled refresh wrote: on a loaded server, realtime members were there and the
    segment said size 0 (the segments-over-HTTP flake)."""
    import yaml

    raw = yaml.safe_load((project / "personable.yaml").read_text())
    raw["segments"] = {"uk": {"rule": {"trait": "country", "eq": "GB"}}}
    (project / "personable.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    with Engine(project) as e:
        e.defer_realtime()
        for i in range(3):
            e.identify(f"u{i}", {"country": "GB"})
        assert e.flush_realtime() == 3
        assert e.segments.show("uk")["size"] == 3


def test_an_offline_store_that_lacks_a_capability_is_refused_clearly(project):
    """A store that cannot serve what a project needs (here the SQLite online
    store named as the offline one) is refused with what is missing, not an
    AttributeError mid-job."""
    from personable.errors import ConfigError

    cfg = project / "personable.yaml"
    cfg.write_text(cfg.read_text().replace("offline: duckdb:///.personable/store.duckdb", "offline: sqlite:///x.sqlite"))
    with pytest.raises(ConfigError, match="does not serve .*offline.*segments"):
        Engine(project)


def test_an_orders_file_becomes_the_configured_order_event(project, tmp_path):
    """The orders file import wrote 'Order Completed' whatever events.order_event
    said, so a project counting 'Purchase' saw no orders from its own order files."""
    cfg = project / "personable.yaml"
    cfg.write_text(cfg.read_text().replace("  order_event: Order Completed", "  order_event: Purchase"))
    (tmp_path / "orders.csv").write_text("order_id,customer_id,total,currency,ordered_at\n"
                                         "o1,c1,19.99,USD,2026-01-10T10:00:00Z\n")
    with Engine(project) as e:
        assert e.ingest(tmp_path / "orders.csv", kind="orders").accepted == 1
        assert e.sql("SELECT DISTINCT event FROM events WHERE type = 'track'").to_pylist() == [{"event": "Purchase"}]
        computed = e.profile("c1")["computed"]
        assert (computed["order_count"], computed["revenue"]) == (1, pytest.approx(19.99))
