"""Contract of the OnlineStore port, one suite for every adapter: the embedded
SQLite store and Redis (a real redis-server, started by scripts/test-services.sh).

What the Engine and the services rely on: resolving any identifier kind,
documents round-trip, merged-away profiles vanish with their keys, the
watermark survives a reopen, recommendation lists are replaced whole, and
readers never see a half-applied write or a profile without its list while a
retrain swaps a new generation in.
"""

from __future__ import annotations

import threading
from pathlib import Path

import orjson
import pytest

from personable.adapters.registry import open_adapter
from personable.identity.identifiers import normalize_identifier
from personable.identity.keyed import IdentityHasher

ADAPTERS = [pytest.param("sqlite", id="sqlite"), pytest.param("redis", id="redis", marks=pytest.mark.services)]


@pytest.fixture(params=ADAPTERS)
def open_store(request, tmp_path: Path):
    """Opens the store under test (again, for reopen tests); all are closed after."""
    url = "sqlite:///online.sqlite" if request.param == "sqlite" else request.getfixturevalue("redis_url")
    opened = []

    def open_() -> object:
        store = open_adapter(url, tmp_path)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store):
    return open_store()


KEYS = IdentityHasher([("k1", b"contract-test-identity-key-32by")])


def hashed(kind: str, raw: str) -> str:
    """The lookup key the write path stores for an email or a phone (under a project's identity key)."""
    return f"{kind}:{KEYS.digest(normalize_identifier(kind, raw, 'US', frozenset()))}"


def doc(pid: str, events: int = 3, **extra) -> tuple[str, str]:
    body = {"profile_id": pid, "traits": {"name": "Zoë", "tags": ["a", 1]}, "computed": {"revenue": 12.5},
            "recent_events": [{"event": f"e{i}"} for i in range(events)], **extra}
    return pid, orjson.dumps(body).decode()


def test_declares_its_capabilities(store):
    assert {"online", "materialized", "atomic_swap"} <= store.capabilities


@pytest.mark.parametrize("identifier, expected", [
    ("u1", "p1"),                        # a bare id: userId first,
    ("a1", "p1"),                        # then anonymousId,
    ("p1", "p1"),                        # then profile id (its document: no key is given for it)
    ("user_id:u1", "p1"), ("anonymous_id:a1", "p1"), ("profile:p1", "p1"),
    ("profile:old", "p1"),               # a merged-away id redirects
    ("email:Ann@Example.com", "p1"), ("email: ann@example.COM ", "p1"),
    ("phone:(415) 555-0101", "p1"), ("phone:+1 415 555 0101", "p1"),
    ("shared", "p1"),                    # a userId of p1 beats an anonymousId of p2
    ("anonymous_id:shared", "p2"),
    ("nobody", None), ("email:not an email", None), ("profile:p9", None), ("", None),
])
def test_resolves_every_identifier_kind(store, identifier, expected):
    store.apply([doc("p1"), doc("p2")], [
        ("user_id:u1", "p1"), ("anonymous_id:a1", "p1"), ("profile:old", "p1"),
        (hashed("email", "ann@example.com"), "p1"), (hashed("phone", "+14155550101"), "p1"),
        ("user_id:shared", "p1"), ("anonymous_id:shared", "p2"),
    ], [], None)
    assert store.resolve(identifier, "US", KEYS) == expected


def test_documents_round_trip_with_their_recent_events_cut(store):
    pid, body = doc("p1", events=30)
    store.apply([(pid, body)], [("profile:p1", "p1")], [], None)
    whole = orjson.loads(body)
    got = store.profile("p1")
    assert got == {**whole, "recent_events": whole["recent_events"][:20]}
    assert len(store.profile("p1", 5)["recent_events"]) == 5
    assert len(store.profile("p1", 100)["recent_events"]) == 30
    assert store.profile("p2") is None
    store.apply([doc("p1", events=1, traits={"name": "Ann"})], [], [], None)  # a newer document replaces it
    assert store.profile("p1")["traits"] == {"name": "Ann"}


def test_removed_profiles_vanish_with_their_keys(store):
    store.apply([doc("p1"), doc("p2"), doc("p4")], [("user_id:u1", "p1"), ("user_id:u2", "p2"),
                                                    ("anonymous_id:a2", "p2")], [], None)
    assert (store.resolve("p2"), store.resolve("profile:p4")) == ("p2", "p4")
    # p2 merges into p1: its userId and its old id now lead to p1; its
    # anonymousId was not carried over, so nothing answers for it any more.
    store.apply([doc("p1")], [("user_id:u1", "p1"), ("user_id:u2", "p1"), ("profile:p2", "p1")], ["p2"], None)
    assert store.profile("p2") is None
    assert store.resolve("u2") == store.resolve("profile:p2") == "p1"
    assert store.resolve("a2") is None
    # Removed without a survivor (no redirect key): its own id no longer resolves.
    store.apply([], [], ["p4"], None)
    assert store.resolve("p4") is None and store.resolve("profile:p4") is None
    # A profile removed and written back in one call ends written.
    store.apply([doc("p3")], [("user_id:u3", "p3")], ["p3"], None)
    assert store.profile("p3") is not None and store.resolve("u3") == "p3"


def test_a_merge_undone_gives_the_profile_its_own_id_back(store):
    # p2 merged into p1 (its id redirects), then the merge is undone: p2 is
    # written again, and no key is given for its own id.
    store.apply([doc("p1")], [("user_id:u2", "p1"), ("profile:p2", "p1")], ["p2"], None)
    assert store.resolve("p2") == "p1"
    store.apply([doc("p1"), doc("p2")], [("user_id:u2", "p2")], [], None)
    assert store.resolve("p2") == store.resolve("profile:p2") == store.resolve("u2") == "p2"
    assert store.resolve("p1") == "p1"


def test_a_key_given_twice_in_one_call_goes_to_the_last_profile_named(store):
    store.apply([doc("p1"), doc("p2")], [("user_id:x", "p2"), ("user_id:y", "p1"), ("user_id:x", "p1"),
                                         ("user_id:y", "p2")], [], None)
    assert store.resolve("x") == "p1" and store.resolve("y") == "p2"


def test_a_key_moved_to_another_profile_stays_when_its_old_owner_goes(store):
    store.apply([doc("p1")], [("user_id:u1", "p1"), ("user_id:x", "p1")], [], None)
    store.apply([doc("p2")], [("user_id:x", "p2")], [], None)   # e.g. an unmerge gave x to p2
    store.apply([], [], ["p1"], None)
    assert store.resolve("x") == "p2" and store.resolve("u1") is None


def test_watermark_and_documents_survive_a_reopen(open_store):
    first = open_store()
    assert first.watermark() is None
    first.apply([doc("p1")], [("user_id:u1", "p1")], [], "2026-02-01T10:00:00+00:00")
    first.apply([doc("p2")], [("user_id:u2", "p2")], [], None)   # no watermark given: the old one stays
    first.close()
    again = open_store()
    assert again.watermark() == "2026-02-01T10:00:00+00:00"
    assert again.resolve("u2") == "p2" and again.profile("p1")["profile_id"] == "p1"


def test_a_big_apply_lands_whole(store):
    n = 5_003   # more than a few of the adapters' internal batches
    store.apply((doc(f"p{i}", events=1) for i in range(n)),
                ((f"user_id:u{i}", f"p{i}") for i in range(n)), [], "w")
    assert all(store.resolve(f"u{i}") == f"p{i}" for i in range(0, n, 97))
    assert store.profile(f"p{n - 1}")["profile_id"] == f"p{n - 1}"
    store.apply([], [], [f"p{i}" for i in range(n - 1)], None)
    assert store.resolve("u0") is None and store.resolve(f"u{n - 1}") == f"p{n - 1}"


def test_recommendations_put_get_and_replace_all(store):
    assert store.recommendations("p1") is None
    store.put_recommendations([("p1", b'{"items": [1]}'), ("p2", b'{"items": [2]}')], replace_all=True)
    assert store.recommendations("p1") == b'{"items": [1]}'
    store.put_recommendations([("p2", b'{"items": [22]}'), ("p3", b"\x00\xff")])   # adds and overwrites
    assert store.recommendations("p1") == b'{"items": [1]}' and store.recommendations("p2") == b'{"items": [22]}'
    assert store.recommendations("p3") == b"\x00\xff"
    # A full replacement, handed over as a generator bigger than any internal batch.
    store.put_recommendations(((f"q{i}", f"{i}".encode()) for i in range(12_001)), replace_all=True)
    assert store.recommendations("p1") is None and store.recommendations("p3") is None
    assert store.recommendations("q0") == b"0" and store.recommendations("q12000") == b"12000"
    store.put_recommendations([], replace_all=True)
    assert store.recommendations("q0") is None


def test_a_failed_replacement_leaves_the_old_lists(store):
    store.put_recommendations([("p1", b"old")], replace_all=True)

    def broken():
        for i in range(7_000):
            yield f"p{i}", b"new"
        raise RuntimeError("the ranker failed half way")

    with pytest.raises(RuntimeError, match="half way"):
        store.put_recommendations(broken(), replace_all=True)
    assert store.recommendations("p1") == b"old" and store.recommendations("p2") is None
    store.put_recommendations([("p1", b"newer")], replace_all=True)   # and the next one still works
    assert store.recommendations("p1") == b"newer"


def test_a_long_replacement_holds_up_neither_readers_nor_writers(open_store):
    """While a retrain is still producing its lists, the old ones are served
    and the write path goes on writing profiles."""
    trainer, write_path, reader = open_store(), open_store(), open_store()
    trainer.put_recommendations([("p1", b"old")], replace_all=True)
    during = {}

    def ranked():
        for i in range(12_000):
            if i == 9_000:   # well past the first batches: the new generation is half written
                write_path.apply([doc("p1")], [("user_id:u1", "p1")], [], "w1")
                during.update(recs=reader.recommendations("p1"), doc=reader.profile(reader.resolve("u1") or "-"))
            yield f"p{i}", b"new"

    trainer.put_recommendations(ranked(), replace_all=True)
    assert during["recs"] == b"old" and during["doc"]["profile_id"] == "p1"
    assert reader.recommendations("p1") == b"new" and reader.watermark() == "w1"


def _hammer(read, stop: threading.Event, seen: list, failures: list) -> None:
    while not stop.is_set():
        try:
            seen.append(read())
        except Exception as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)
            return


def test_readers_never_see_a_profile_go_cold_during_a_retrain(open_store):
    """Readers hammer one profile's list and document while a writer replaces
    every list again and again, and rewrites the documents: never None, and a
    reader never goes back to an older generation."""
    writer, reader = open_store(), open_store()
    writer.apply([doc("p1")], [("user_id:u1", "p1")], [], None)
    writer.put_recommendations([("p1", b"0")], replace_all=True)
    stop, lists, docs, failures = threading.Event(), [], [], []
    threads = [threading.Thread(target=_hammer, args=(lambda: reader.recommendations("p1"), stop, lists, failures)),
               threading.Thread(target=_hammer, args=(lambda: reader.profile(reader.resolve("u1") or "-"), stop, docs,
                                                      failures))]
    for t in threads:
        t.start()
    try:
        for gen in range(1, 16):
            # p1 sits in the middle of a generation written in several batches.
            rows = ((f"p{i}", str(gen).encode()) for i in range(-6_000, 6_000))
            writer.put_recommendations(rows, replace_all=True)
            writer.apply([doc("p1", events=gen)], [("user_id:u1", "p1")], [], None)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not failures
    assert lists and None not in lists and docs and None not in docs
    generations = [int(x) for x in lists]
    # Never back to an older generation (the reader may stop before it sees the last swap:
    # the final reads below check that the last generation is what stays).
    assert generations == sorted(generations)
    assert reader.recommendations("p-6000") == b"15" and reader.recommendations("p5999") == b"15"


def _watch(check, work) -> list[str]:
    """Run ``check`` in a loop on another thread while ``work`` runs; its complaints."""
    stop, failures = threading.Event(), []

    def loop() -> None:
        while not stop.is_set():
            check(failures)

    t = threading.Thread(target=loop)
    t.start()
    try:
        work()
    finally:
        stop.set()
        t.join()
    return failures


def test_an_apply_is_seen_whole_or_not_at_all(open_store):
    """A reader that sees a new document also sees its keys (and the other way
    round), and one that sees a merged-away document gone also sees its keys
    moved to the survivor (and the other way round). Each phase only moves one
    way, so reading one side and then the other proves the pair was written
    together."""
    writer, reader = open_store(), open_store()
    n = 300

    def added(failures: list[str]) -> None:
        for i in range(0, n, 7):
            if reader.resolve(f"u{i}") == f"p{i}" and reader.profile(f"p{i}") is None:
                failures.append(f"u{i} visible before p{i}'s document")
            if reader.profile(f"p{i}") is not None and reader.resolve(f"u{i}") != f"p{i}":
                failures.append(f"p{i} visible before its key")

    def write() -> None:
        for i in range(n):
            writer.apply([doc(f"p{i}")] + [doc(f"filler{i}-{j}") for j in range(20)],
                         [(f"user_id:u{i}", f"p{i}")] + [(f"user_id:f{i}-{j}", f"filler{i}-{j}") for j in range(20)],
                         [], None)

    assert not _watch(added, write)

    def merged(failures: list[str]) -> None:
        for i in range(0, n, 6):
            if reader.resolve(f"u{i}") == "survivor" and reader.profile(f"p{i}") is not None:
                failures.append(f"u{i} moved before p{i} was removed")
            if reader.profile(f"p{i}") is None and reader.resolve(f"u{i}") != "survivor":
                failures.append(f"p{i} removed before its key moved")

    def merge() -> None:
        for i in range(0, n, 2):
            writer.apply([doc("survivor")], [(f"user_id:u{i}", "survivor")], [f"p{i}"], None)

    assert not _watch(merged, merge)
    assert reader.resolve("u0") == "survivor" and reader.profile("p0") is None and reader.resolve("u1") == "p1"
