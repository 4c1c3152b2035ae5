"""The OnlineStore on Redis: the same contract as ``SQLiteOnlineStore``, for
several API replicas (or projects) sharing one server.

Chosen by ``store.online: redis://host:port/db`` (``rediss://`` for TLS), with
an optional ``?prefix=proj1:`` so several projects can share a server. Every
key of a project starts with its prefix (default ``personable:``):

- ``docs``    hash, profile id -> profile document (JSON)
- ``lookup``  hash, ``kind:value`` -> profile id (what ``resolve`` reads)
- ``owned``   hash, profile id -> the lookup keys given for it (msgpack), so a
  removed profile's keys can go with it
- ``meta``    hash, ``watermark`` -> the offline store's ``updated_at`` applied
- ``recs``    hash, profile id -> recommendation payload (the live generation)

Hashes rather than one key per profile: a write of 50k documents is a handful
of commands, and a generation of recommendations is one key, so swapping it is
one RENAME. A prefix with a hash tag (``{proj1}:``) keeps a project on one
Redis Cluster slot, which MULTI/EXEC and the scripts below need.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from functools import wraps
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
import redis

from ..errors import ConfigError, StoreError
from ..identity.lookup import PROFILE, candidate_keys
from ..privacy.erasure_files import stands_alone

if TYPE_CHECKING:
    from ..identity.keyed import IdentityHasher

DEFAULT_PREFIX = "personable:"
CHUNK = 2000  # fields per HSET: big enough to cost few round trips, small enough to stream
STAGING_TTL = 24 * 3600  # a generation abandoned by a crashed writer expires on its own

# Drop removed profiles, their documents, and those of their lookup keys that
# still point at them (a merge re-points most of them to the survivor in the
# same call). KEYS: docs, lookup, owned; ARGV: removed profile ids.
_REMOVE = """
for _, pid in ipairs(ARGV) do
  local packed = redis.call('HGET', KEYS[3], pid)
  if packed then
    for _, key in ipairs(cmsgpack.unpack(packed)) do
      if redis.call('HGET', KEYS[2], key) == pid then redis.call('HDEL', KEYS[2], key) end
    end
    redis.call('HDEL', KEYS[3], pid)
  end
  redis.call('HDEL', KEYS[1], pid)
end
return 0
"""

# Point lookup keys at their profile, and record which keys each profile owns:
# the keys given now, plus those given before that still point at it (keys that
# moved to another profile are pruned). One pass over the keys sent once.
# KEYS: lookup, owned; ARGV: profile id, n, key1..keyn, profile id, n, ...
_PUT_KEYS = """
local i = 1
while i <= #ARGV do
  local pid, n = ARGV[i], tonumber(ARGV[i + 1])
  local seen, keys = {}, {}
  for j = i + 2, i + 1 + n do
    local key = ARGV[j]
    redis.call('HSET', KEYS[1], key, pid)
    if not seen[key] then seen[key] = true; keys[#keys + 1] = key end
  end
  local packed = redis.call('HGET', KEYS[2], pid)
  if packed then
    for _, key in ipairs(cmsgpack.unpack(packed)) do
      if not seen[key] and redis.call('HGET', KEYS[1], key) == pid then
        seen[key] = true; keys[#keys + 1] = key
      end
    end
  end
  redis.call('HSET', KEYS[2], pid, cmsgpack.pack(keys))
  i = i + 2 + n
end
return 0
"""

# Swap a fully written generation in: readers see the old hash or the new one,
# never neither. The old one is renamed aside and freed afterwards with UNLINK
# (in the background), so a big generation does not stall the server here.
# KEYS: live, staging, retired.
_SWAP = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('RENAME', KEYS[1], KEYS[3]) end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('RENAME', KEYS[2], KEYS[1])
  redis.call('PERSIST', KEYS[1])
end
return 0
"""

F = TypeVar("F", bound=Callable[..., Any])


def _translated(method: F) -> F:
    """Redis errors leave as StoreError, naming the operation and the server."""

    @wraps(method)
    def wrapper(self: "RedisOnlineStore", *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except redis.RedisError as exc:
            raise StoreError(f"online store {self.url}: {method.__name__} failed: {exc}") from exc

    return wrapper  # type: ignore[return-value]


def _batches(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def parse_url(url: str) -> tuple[str, str]:
    """(the URL redis-py understands, the key prefix) from ``redis://…?prefix=p:``."""
    parts = urlsplit(url)
    db = parts.path.strip("/")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise ConfigError(f"store.online: bad Redis URL {_redacted(url)!r}: {exc}") from exc
    if parts.scheme not in ("redis", "rediss") or not parts.hostname or (db and not db.isdigit()):
        raise ConfigError(f"store.online: bad Redis URL {_redacted(url)!r}: "
                          "expected redis://host:port/db (db a number, e.g. 0)")
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [v for k, v in query if k == "prefix"]
    if len(prefixes) > 1:
        raise ConfigError(f"store.online: {_redacted(url)!r} names more than one prefix")
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefixes[0] if prefixes else DEFAULT_PREFIX


def _text(raw: bytes | str) -> str:
    # The client returns bytes (no decode_responses: payloads are bytes).
    return raw.decode() if isinstance(raw, bytes) else raw


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host))


class RedisOnlineStore:
    # "remote": processes on other hosts can share it (N API replicas).
    capabilities = frozenset({"online", "materialized", "atomic_swap", "remote"})

    def __init__(self, url: str):
        client_url, self.prefix = parse_url(url)
        self.url = _redacted(client_url)
        try:
            # redis-py's client is thread-safe: a pool of connections, one per
            # concurrent caller.
            self._r = redis.Redis.from_url(client_url, socket_connect_timeout=5, socket_timeout=30)
            self._r.ping()
        except ValueError as exc:
            raise ConfigError(f"store.online: bad Redis URL {self.url!r}: {exc}") from exc
        except redis.RedisError as exc:
            raise StoreError(f"cannot reach the online store at {self.url}: {exc}") from exc
        p = self.prefix
        self.k_docs, self.k_lookup, self.k_owned = f"{p}docs", f"{p}lookup", f"{p}owned"
        self.k_meta, self.k_recs = f"{p}meta", f"{p}recs"
        self._remove = self._r.register_script(_REMOVE)
        self._put_keys = self._r.register_script(_PUT_KEYS)
        self._swap = self._r.register_script(_SWAP)

    # -- reads: one round trip each ------------------------------------------------
    @_translated
    def resolve(self, identifier: str, region: str = "US", hasher: "IdentityHasher | None" = None) -> str | None:
        candidates = candidate_keys(identifier, region, hasher)
        if not candidates:
            return None
        # One round trip: the keys, and whether a profile id names a live
        # document (a profile's own id has no key; a merged-away one has).
        pipe = self._r.pipeline(transaction=False)
        pipe.hmget(self.k_lookup, [f"{kind}:{value}" for kind, value in candidates])
        own = [value for kind, value in candidates if kind == PROFILE]
        for value in own:
            pipe.hexists(self.k_docs, value)
        found, *live = pipe.execute()
        for (kind, value), hit in zip(candidates, found):
            if hit is not None:
                return _text(hit)
            if kind == PROFILE and live.pop(0):
                return value
        return None

    @_translated
    def profile(self, profile_id: str, recent_events: int = 20) -> dict[str, Any] | None:
        raw = self._r.hget(self.k_docs, profile_id)
        if raw is None:
            return None
        doc: dict[str, Any] = orjson.loads(raw)
        doc["recent_events"] = doc["recent_events"][:recent_events]
        return doc

    @_translated
    def watermark(self) -> str | None:
        raw = self._r.hget(self.k_meta, "watermark")
        return _text(raw) if raw is not None else None

    @_translated
    def recommendations(self, profile_id: str) -> bytes | None:
        raw = self._r.hget(self.k_recs, profile_id)
        return raw.encode() if isinstance(raw, str) else raw

    # -- writes --------------------------------------------------------------------
    @_translated
    def apply(self, docs: Iterable[tuple[str, str]], keys: Iterable[tuple[str, str]],
              removed: Iterable[str], watermark: str | None) -> None:
        """Write documents and lookup keys, drop merged-away profiles, atomically.

        One MULTI/EXEC pipeline: a reader sees the state before or after the
        call, never a document without its keys. Sent as one batch, so 50k
        documents cost a few round trips, not 50k."""
        removed = list(removed)
        pipe = self._r.pipeline(transaction=True)
        # Removal first, as in SQLite: a profile both removed and written ends written.
        for part in _batches(removed, CHUNK):
            self._remove(keys=[self.k_docs, self.k_lookup, self.k_owned], args=part, client=pipe)
        for part in _batches(docs, CHUNK):
            pipe.hset(self.k_docs, mapping=dict(part))
            # A profile written is live: a redirect of its own id (left by a merge
            # since undone) must not send its id elsewhere. Given keys follow.
            pipe.hdel(self.k_lookup, *(f"{PROFILE}:{pid}" for pid, _ in part))
        # A key given twice goes to the last profile named, as in SQLite; then
        # grouped by profile for the script.
        owned: dict[str, list[str]] = {}
        for key, pid in dict(keys).items():
            owned.setdefault(pid, []).append(key)
        args: list[str | int] = []
        for pid, mine in owned.items():
            args += [pid, len(mine), *mine]
            if len(args) >= CHUNK * 4:
                self._put_keys(keys=[self.k_lookup, self.k_owned], args=args, client=pipe)
                args = []
        if args:
            self._put_keys(keys=[self.k_lookup, self.k_owned], args=args, client=pipe)
        if watermark is not None:
            pipe.hset(self.k_meta, "watermark", watermark)
        pipe.execute()

    @_translated
    def put_recommendations(self, rows: Iterable[tuple[str, bytes]], replace_all: bool = False) -> None:
        """Precomputed recommendations per profile (one JSON payload each).

        ``replace_all``: ``rows`` become the whole set. They are streamed into
        a new generation (a staging hash no reader looks at), which is then
        swapped in by one atomic script: no moment where a profile has no list.
        ``rows`` may be a generator, so a retrain can hand over every profile
        in one call without holding them all in memory."""
        if not replace_all:
            pipe = self._r.pipeline(transaction=True)
            for part in _batches(rows, CHUNK):
                pipe.hset(self.k_recs, mapping=dict(part))
            pipe.execute()
            return
        token = uuid.uuid4().hex
        staging, retired = f"{self.k_recs}:staging:{token}", f"{self.k_recs}:retired:{token}"
        try:
            for part in _batches(rows, CHUNK):
                pipe = self._r.pipeline(transaction=False)
                pipe.hset(staging, mapping=dict(part))
                pipe.expire(staging, STAGING_TTL)
                pipe.execute()
            self._swap(keys=[self.k_recs, staging, retired])
        finally:
            # Both are gone after a good swap; after a failure this frees the
            # half-written generation now rather than at its expiry.
            self._r.unlink(staging, retired)

    @_translated
    def forget(self, profile_ids: list[str]) -> int:
        gone = set(profile_ids)
        had = sum(bool(x) for x in self._r.hmget(self.k_docs, profile_ids)) if profile_ids else 0
        for part in _batches(profile_ids, CHUNK):
            pipe = self._r.pipeline(transaction=True)
            self._remove(keys=[self.k_docs, self.k_lookup, self.k_owned], args=part, client=pipe)
            pipe.hdel(self.k_recs, *part)
            pipe.execute()
        # Keys the owned sets do not know of (written before they were kept) still name the profiles.
        stray = [k for k, v in self._r.hscan_iter(self.k_lookup, count=5000) if _text(v) in gone]
        for part in _batches(stray, CHUNK):
            self._r.hdel(self.k_lookup, *part)
        return had

    @_translated
    def prune_keys(self, kinds: list[str], key_id: str) -> int:
        stale = [k for k, _ in self._r.hscan_iter(self.k_lookup, count=5000)
                 if any(_text(k).startswith(f"{kind}:") and not _text(k).startswith(f"{kind}:{key_id}:")
                        for kind in kinds)]
        for part in _batches(stale, CHUNK):
            self._r.hdel(self.k_lookup, *part)
        return len(stale)

    @_translated
    def scan(self, needles: list[str]) -> list[dict[str, Any]]:
        found = []
        for name, key in (("docs", self.k_docs), ("lookup", self.k_lookup), ("owned", self.k_owned),
                          ("recommendations", self.k_recs)):
            seen: set[str] = set()
            for field, value in self._r.hscan_iter(key, count=5000):
                text = "\n".join(x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in (field, value))
                seen.update(n for n in needles if n in text and stands_alone(n, text))
            if seen:
                found.append({"where": f"online redis {name}", "column": "hash", "values": sorted(seen)})
        return found

    def close(self) -> None:
        self._r.close()
