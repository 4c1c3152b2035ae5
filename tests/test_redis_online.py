"""What only the Redis online store has: key prefixes to share a server, URL
parsing, clear errors. Its contract with the Engine is tests/contract/."""

from __future__ import annotations

import pytest

from personable.adapters.redis_online import DEFAULT_PREFIX, RedisOnlineStore, parse_url
from personable.adapters.registry import open_adapter
from personable.errors import ConfigError


def test_urls_carry_the_prefix_apart_from_the_connection_settings():
    assert parse_url("redis://h:6390/2?prefix=proj1:") == ("redis://h:6390/2", "proj1:")
    assert parse_url("redis://h:6390/2") == ("redis://h:6390/2", DEFAULT_PREFIX)
    assert parse_url("rediss://u:pw@h/0?prefix=%7Bshop%7D:&socket_keepalive=true") == (
        "rediss://u:pw@h/0?socket_keepalive=true", "{shop}:")
    with pytest.raises(ConfigError, match="more than one prefix"):
        parse_url("redis://h/0?prefix=a&prefix=b")


def test_a_bad_url_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="bad Redis URL"):
        open_adapter("redis://127.0.0.1:6379/notadb", tmp_path)
    with pytest.raises(ConfigError, match="bad Redis URL .redis://h:port/0"):
        open_adapter("redis://:pw@h:port/0", tmp_path)


def test_projects_with_their_own_prefix_share_a_server(redis_server_url):
    a = RedisOnlineStore(f"{redis_server_url}?prefix=test-share-a:")
    b = RedisOnlineStore(f"{redis_server_url}?prefix=test-share-b:")
    try:
        a.apply([("p1", '{"recent_events": [], "who": "a"}')], [("user_id:u1", "p1")], [], "wa")
        b.apply([("p1", '{"recent_events": [], "who": "b"}')], [("user_id:u2", "p1")], [], None)
        a.put_recommendations([("p1", b"a")], replace_all=True)
        assert a.profile("p1")["who"] == "a" and b.profile("p1")["who"] == "b"
        assert a.resolve("u2") is None and b.resolve("u1") is None
        assert b.watermark() is None and b.recommendations("p1") is None and a.recommendations("p1") == b"a"
        b.put_recommendations([], replace_all=True)
        assert a.recommendations("p1") == b"a"
        assert all(k.startswith((b"test-share-a:", b"test-share-b:")) for k in a._r.keys("test-share-*"))
    finally:
        for store in (a, b):
            store._r.unlink(*store._r.keys(f"{store.prefix}*"))
            store.close()


def test_the_test_servers_are_private_and_give_each_test_a_fresh_database(redis_server_url, postgres_url):
    import psycopg
    import redis

    client = redis.Redis.from_url(redis_server_url)
    assert client.config_get("bind")["bind"] == "127.0.0.1"
    client.close()
    with psycopg.connect(postgres_url) as con:
        assert con.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
        assert con.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0] == 0
        con.execute("CREATE TABLE t (x int)")
