"""The Engine: configuration -> adapters -> services. The Python API.

>>> from personable import Engine
>>> engine = Engine("my-project")            # folder with personable.yaml
>>> engine.identify("u1", traits={"email": "ann@example.com"})
>>> engine.track("u1", "Order Completed", {"order_id": "o1", "revenue": 42.0})
>>> engine.profile("email:ann@example.com")["computed"]["revenue"]
42.0
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import orjson
import pyarrow as pa

from .clock import Clock
from .compose import CONFIGURED, Configured, compose
from .config import Config, load_config
from .errors import ErrorList, ImportFailed, NotFound, StoreError, ValidationFailed
from .events.message_id import ensure_message_id
from .events.validate import check_event
from .ports import PROFILES_CHANGED, EventBus, IngestReport, Positions, ProfilesChanged, StagedInput
from .ports.eventlog import EventLog, beyond, covers, furthest

if TYPE_CHECKING:
    from .identity.resolution.service import ResolutionService
    from .predict.service import ModelsService
    from .quality.service import QualityService
    from .recommend.service import RecommendService

FILE_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}
RECORD_KINDS = ("events", "crm", "orders")
Progress = Callable[[int, int], None]
LOG_STREAM = "http"
Accepted = tuple[bytes, str, datetime]  # (event JSON, source, received at)


class Engine:
    """A thin facade over the components ``compose`` builds: the Python API,
    and what the CLI and the HTTP layer call (a :class:`personable.api.PersonableAPI`)."""

    remote = False  # the project's own files (personable.client.RemoteEngine: a server's API)

    def __init__(self, project: str | Path | Config = ".", *, clock: Clock | None = None,
                 event_log: EventLog | None | Configured = CONFIGURED):
        """``event_log``: the log the configuration names, unless given (the
        server's store process follows the log its HTTP process writes)."""
        config = project if isinstance(project, Config) else load_config(project)
        self.components = c = compose(config, clock, event_log)
        self.config, self.bus = config, c.bus
        self.store, self.online, self.log = c.offline, c.online, c.log
        self.settings = c.write_path.settings
        self.segments = c.segments
        self.privacy = c.privacy
        self.audit = c.audit
        self._progress = threading.Condition()
        # Set by a reader waiting for fresh data: the log worker stops letting a batch gather.
        self.hurry = threading.Event()
        # After a crash: profiles stored but not yet in the online store, and events
        # acknowledged but not yet stored, are brought up to date now.
        self._recover()
        self._applied: dict[int, int] = self.store.committed_positions(LOG_STREAM) if self.log is not None else {}
        self.catch_up()
        self.worker_running = False    # a LogWorker (the server's) stores the log: it says so here
        self.privacy.settle = (self._stored_now, self._log_let_go)

    @property
    def clock(self) -> Clock:
        """Injected when the engine is built (``Engine(..., clock=)``): every
        service holds it, so it cannot be swapped afterwards."""
        return self.components.clock

    # -- lifecycle -------------------------------------------------------------
    def close(self) -> None:
        self.components.close()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- validation -------------------------------------------------------------
    def validate(self, events: list[Any], path: str = "batch", received_at: datetime | None = None) -> ErrorList:
        errors = ErrorList()
        now = received_at or self.clock.now()
        skew = timedelta(hours=self.config.max_future_skew_hours)
        for i, event in enumerate(events):
            check_event(event, f"{path}[{i}]" if path else "", errors, received_at=now,
                        max_future=skew, junk=self.config.identity.junk_values)
        return errors

    # -- the write path -----------------------------------------------------------
    def write_lines(self, lines: list[bytes | str], source: str, origin: str,
                    received_at: datetime | None = None, validated: bool = False) -> IngestReport:
        """Write already-serialized JSON events; returns once they are durable.

        Lines are validated in bulk unless ``validated`` says the Python validator
        (:meth:`validate`) already passed them; failures go to quarantine."""
        table = pa.table({"line": pa.array([l.decode() if isinstance(l, bytes) else l for l in lines], pa.string())})
        return self._write_table(table, source, origin, received_at, validated)

    def _write_table(self, table: pa.Table, source: str, origin: str, received_at: datetime | None,
                     validated: bool, log_positions: Positions | None = None) -> IngestReport:
        staged = StagedInput(source=source, origin=origin, lines=table, validated=validated,
                             log_positions=log_positions, received_at=received_at or self.clock.now())
        report = self._commit(self.store.batch(staged, self.settings), log_positions)
        self.bus.publish("events.stored", report.as_dict())
        return report

    def _commit(self, batch_context: Any, log_positions: Positions | None = None) -> IngestReport:
        """One batch through the write path; then ``profiles.changed`` (realtime
        segments and the online projection react to it)."""
        changes = _Changes()
        report = self._write_batch(batch_context, changes, log_positions)
        changes.publish(self.bus)
        return report

    def _write_batch(self, batch_context: Any, changes: "_Changes",
                     log_positions: Positions | None = None) -> IngestReport:
        """One batch through the write path, committed; what it changed is added
        to ``changes`` (published by the caller)."""
        with batch_context as batch:
            report = self.components.write_path.write(batch)
            if log_positions is not None:
                batch.commit_log_positions(LOG_STREAM, log_positions)
            touched, removed = batch.changed_profiles()
            watermark = batch.now
        changes.add(touched, removed, watermark)
        return report

    def warm_up(self) -> None:
        """Do the one-time work of the first batch now (imports, building the
        realtime segment expressions, planning the write path), before a server
        takes traffic: done on the first request it held the interpreter for ~0.1 s.
        The store compiles each expression the first time it runs it."""
        for seg in self.segments.definitions():
            self.segments.realtime_expr(seg)
        # An empty batch through the whole write path: first-time planning and imports.
        self._write_table(pa.table({"line": pa.array([], pa.string())}), "warm-up", "warm-up", None, True)
        # The served recommender, if one was trained: loading it took the first request ~1 s.
        try:
            self.recommend.served()
        except NotFound:
            pass

    def defer_realtime(self) -> None:
        """Judge realtime segments in ``flush_realtime`` calls instead of after every batch."""
        self.components.realtime.defer()

    def flush_realtime(self) -> int:
        """Re-judge segments for every profile touched since the last flush;
        returns how many profiles were judged."""
        return self.components.realtime.flush()

    # -- the request path: accept durably, store in the background -------------
    def accept(self, items: list[Accepted]) -> Positions:
        """Durably accept validated events; returns the log's positions past them.

        With an event log (the default) this is one fsync'ed append, and the
        events reach profiles when :meth:`process_log` runs (the server's worker).
        With ``memory://`` they are written to the store right here."""
        if self.log is None:
            self._write_accepted(items, None)
            return {}
        return self.log.append([log_record(*item) for item in items])

    def _write_accepted(self, items: list[Accepted], log_positions: Positions | None) -> IngestReport:
        table = pa.table({
            "line": pa.array([line.decode() for line, _, _ in items], pa.string()),
            "source": pa.array([source for _, source, _ in items], pa.string()),
            "received_at": pa.array([at for _, _, at in items], pa.timestamp("us", tz="UTC")),
        })
        return self._write_table(table, "http", "http", None, True, log_positions)

    def process_log(self, max_records: int = 50_000) -> int:
        """Move the next batch of accepted events from the log into the store.

        The log positions are committed in the same transaction as the events, so a
        crash anywhere replays exactly what was not stored. Returns how many
        records were processed (0: nothing pending)."""
        if self.log is None:
            return 0
        committed = self.store.committed_positions(LOG_STREAM)
        records, end = self.log.read(committed, max_records)
        if records:
            self._write_accepted([_log_item(r) for r in records], end)
        else:
            # Idle: the writer may have closed a segment that is all stored (it rolls
            # them by age): it goes now, so the log keeps nothing beyond its job.
            self.log.release(committed)
        self._advanced(committed, end)
        return len(records)

    def set_aside_next(self, why: str) -> int:
        """Quarantine the next record of the event log instead of storing it, and
        commit its position: a record the store refuses, alone and again and
        again (the log worker's judgement), must not hold back every record
        after it. Returns how many were set aside (0: nothing pending)."""
        if self.log is None:
            return 0
        committed = self.store.committed_positions(LOG_STREAM)
        records, end = self.log.read(committed, 1)
        if not records:
            return 0
        refused = [(records[0], why)]
        if len(records) > 1:
            # An encrypted log reads one append (a group commit of requests) as a whole: each of its records
            # is stored alone, and only those the store refuses are set aside.
            refused = []
            for record in records:
                try:
                    self._write_accepted([_log_item(record)], None)
                except Exception as exc:      # noqa: BLE001 -- whatever the store refused it for is the reason
                    refused.append((record, f"{type(exc).__name__}: {exc}"))
        rows = []
        for record, reason in refused:
            line, source, at = _log_item(record)
            try:
                event = orjson.loads(line)
                message_id = event.get("messageId") if isinstance(event, dict) else None
            except orjson.JSONDecodeError:
                message_id = None
            rows.append(http_quarantine_row(at, source, None, message_id,
                                            [{"path": "$", "problem": f"could not be stored: {reason}"[:1000]}],
                                            line.decode("utf-8", "replace")))
        # Quarantined first: a crash before the position is committed sets it aside twice, never loses it.
        self.store.add_quarantine(rows)
        self._write_table(pa.table({"line": pa.array([], pa.string())}), "http", "http", None, True, end)
        self._advanced(committed, end)
        return len(refused)

    def _advanced(self, committed: Positions, end: Positions) -> None:
        if beyond(end, committed):
            self.log.release(end)
        with self._progress:
            # Stored and in the online store: what `fresh` reads wait for.
            self._applied = furthest(self._applied, end)
            self._progress.notify_all()

    def catch_up(self) -> None:
        while self.process_log():
            pass

    def wait_processed(self, positions: Positions | None = None, timeout: float = 30.0) -> bool:
        """Block until the log up to ``positions`` (default: everything accepted so far) is stored."""
        if self.log is None:
            return True
        target = self.log.end() if positions is None else positions
        self.hurry.set()
        with self._progress:
            done = self._progress.wait_for(lambda: covers(self._applied, target), timeout)
        if done and self.components.realtime.deferred:
            self.flush_realtime()  # a fresh read sees segment memberships too
        return done

    # -- what an erasure waits for on the event log (privacy/erasure.py) -----------------------
    def _stored_now(self) -> Positions:
        """Everything the log holds so far, stored (by the worker, or here when none runs); its end."""
        if self.log is None:
            return {}
        end = self.log.end()
        if not self.worker_running:
            self.catch_up()
        elif not self.wait_processed(end, timeout=60.0):
            raise StoreError("the event log is not being stored (a minute passed): the erasure did not start")
        return end

    def _log_let_go(self, end: Positions, timeout: float = 20.0) -> bool:
        """Whether the log has deleted everything before ``end`` (it rolls segments within seconds)."""
        if self.log is None:
            return True
        deadline = time.monotonic() + timeout
        while not covers(self.log.retained(), end):
            if time.monotonic() > deadline:
                return False
            if not self.worker_running:
                self.process_log()     # idle: releases the segments that are all stored
            time.sleep(0.2)
        return True

    def send(self, events: list[dict[str, Any]], source: str = "python") -> IngestReport:
        """Validate and write Segment-Spec events; invalid input raises ValidationFailed."""
        now = self.clock.now()
        errors = self.validate(events, received_at=now)
        if errors:
            raise ValidationFailed(f"{len(errors.items)} problem(s) in the events", details=errors.items)
        lines = []
        for event in events:
            event = dict(event)
            # Without a time of its own an event happened now; stamped before the
            # content hash, so two calls alike in all else stay two events.
            event.setdefault("timestamp", now.isoformat())
            lines.append(orjson.dumps(ensure_message_id(event), default=str))
        return self.write_lines(lines, source, "python", now, validated=True)

    def _call(self, etype: str, user_id: str | None, anonymous_id: str | None, **fields: Any) -> IngestReport:
        event = {"type": etype, **{k: v for k, v in fields.items() if v is not None}}
        if user_id is not None:
            event["userId"] = user_id
        if anonymous_id is not None:
            event["anonymousId"] = anonymous_id
        if isinstance(event.get("timestamp"), datetime):
            event["timestamp"] = event["timestamp"].isoformat()
        return self.send([event])

    def identify(self, user_id: str | None = None, traits: dict | None = None, *, anonymous_id: str | None = None, **kw: Any) -> IngestReport:
        return self._call("identify", user_id, anonymous_id, traits=traits or {}, **kw)

    def track(self, user_id: str | None, event: str, properties: dict | None = None, *, anonymous_id: str | None = None, **kw: Any) -> IngestReport:
        return self._call("track", user_id, anonymous_id, event=event, properties=properties or {}, **kw)

    def page(self, user_id: str | None = None, name: str | None = None, properties: dict | None = None, *, anonymous_id: str | None = None, **kw: Any) -> IngestReport:
        return self._call("page", user_id, anonymous_id, name=name, properties=properties or {}, **kw)

    def screen(self, user_id: str | None = None, name: str | None = None, properties: dict | None = None, *, anonymous_id: str | None = None, **kw: Any) -> IngestReport:
        return self._call("screen", user_id, anonymous_id, name=name, properties=properties or {}, **kw)

    def group(self, user_id: str | None, group_id: str, traits: dict | None = None, *, anonymous_id: str | None = None, **kw: Any) -> IngestReport:
        return self._call("group", user_id, anonymous_id, groupId=group_id, traits=traits or {}, **kw)

    def alias(self, user_id: str, previous_id: str, **kw: Any) -> IngestReport:
        return self._call("alias", user_id, None, previousId=previous_id, **kw)

    # -- file imports -------------------------------------------------------------
    def ingest(self, path: str | Path, kind: str = "events", file_format: str | None = None,
               mapping: dict[str, str] | None = None, source: str = "import",
               chunk_size: int = 250_000, progress: Progress | None = None) -> IngestReport:
        path = Path(path)
        if not path.exists():
            raise ImportFailed(f"{path}: no such file")
        if kind not in RECORD_KINDS:
            raise ImportFailed(f"unknown import kind {kind!r}; use {', '.join(RECORD_KINDS)}")
        fmt = file_format or FILE_FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise ImportFailed(f"{path}: cannot tell the format from the extension; pass --format jsonl|csv|parquet")
        merged = {**self.config.imports.get(kind, {}), **(mapping or {})}
        staged = StagedInput(source=source, origin=str(path), file=str(path.resolve()), file_format=fmt,
                             record_kind=kind, mapping=merged, require_timestamp=(kind != "crm"),
                             received_at=self.clock.now(), order_event=self.config.order_event)
        total = IngestReport(origin=str(path))
        # A backfill: each chunk commits on its own, but the per-profile reactions
        # (realtime segments, online documents) run once, for the union of the
        # profiles the chunks touched -- a profile in every chunk is judged and
        # projected once, not once per chunk. If a chunk fails, what the earlier
        # ones committed is still published; if the process dies, the online
        # store's watermark (older than every chunk) makes the next open judge and
        # project them (``_recover``).
        # The reactions run before the import is closed: a store that finishes an
        # import with work of its own (DuckDB's one checkpoint) then covers
        # theirs too.
        changes = _Changes()
        with self.store.open_file(staged) as imported:
            try:
                n = imported.total
                if progress:
                    progress(0, n)
                first = 1
                while first <= max(n, 1):
                    last = first + chunk_size - 1
                    total.add(self._write_batch(imported.chunk(first, last, self.settings), changes))
                    if progress:
                        progress(min(last, n), n)
                    first = last + 1
            finally:
                changes.publish(self.bus)
        self.bus.publish("events.stored", total.as_dict())
        return total

    def _recover(self) -> None:
        """Profiles a crash left unprojected (newer than the online store's
        watermark: a kill between a commit and its reactions, or an import killed
        between chunks) are judged by realtime segments, then projected -- what
        their ``profiles.changed`` would have done. Called directly, not through
        the bus, so a failing online store fails the open instead of a log line."""
        projection = self.components.projection
        if projection is None:
            return
        touched, newest = projection.pending()
        if touched:
            self.components.realtime.on_changed(ProfilesChanged(tuple(touched), (), newest, origin="recovery"))
            projection.project(touched, [], newest)

    def refresh_online(self) -> None:
        """Bring the online store up to date with every profile changed since it
        last was (after a crash, or batch jobs that changed profiles in bulk)."""
        if self.components.projection is not None:
            self.components.projection.catch_up()

    # -- services -------------------------------------------------------------------
    @property
    def quality(self) -> "QualityService":
        return self.components.quality

    @property
    def models(self) -> "ModelsService":
        return self.components.models

    @property
    def recommend(self) -> "RecommendService":
        return self.components.recommend

    @property
    def resolution(self) -> "ResolutionService":
        return self.components.resolution

    # -- reads --------------------------------------------------------------------
    def resolve(self, identifier: str) -> str | None:
        return self.components.resolve(identifier)

    def profile(self, identifier: str, recent_events: int = 20) -> dict[str, Any]:
        pid = self.resolve(identifier)
        doc = self.online.profile(pid, recent_events) if pid else None
        if doc is None:
            raise NotFound(f"no profile for {identifier!r}")
        return doc

    def quarantine(self, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        rows = self.store.quarantine(limit, offset).to_pylist()
        for row in rows:
            row["received_at"] = row["received_at"].isoformat()
        return rows

    def stats(self) -> dict[str, Any]:
        return self.store.stats()

    def sql(self, query: str, params: Iterable[Any] | None = None) -> pa.Table:
        """Arrow results for notebooks (``.to_pandas()`` / ``polars.from_arrow``)."""
        return self.store.sql(query, list(params or []))


class _Changes:
    """What one or more committed batches changed, published as one
    ``profiles.changed``: touched profiles (less those a later batch merged
    away), removed ones, and the newest batch's watermark."""

    def __init__(self) -> None:
        self.touched: set[str] = set()
        self.removed: set[str] = set()
        self.watermark: datetime | None = None

    def add(self, touched: Iterable[str], removed: Iterable[str], watermark: datetime) -> None:
        self.touched.update(touched)
        self.removed.update(removed)
        self.watermark = watermark

    def publish(self, bus: EventBus) -> None:
        if not self.touched and not self.removed:
            return
        touched = tuple(sorted(self.touched - self.removed))
        bus.publish(PROFILES_CHANGED, ProfilesChanged(touched, tuple(sorted(self.removed)), self.watermark))
        self.touched, self.removed = set(), set()


def http_quarantine_row(at: datetime, source: str, record_no: int | None, message_id: Any,
                        problems: list[dict[str, str]], raw: str) -> dict[str, Any]:
    """A quarantine row for an event that came over HTTP: refused by the
    validator on the request path, or set aside by the log worker."""
    return {"received_at": at, "source": source, "origin": "http", "record_no": record_no,
            "message_id": message_id if isinstance(message_id, str) else None, "problems": problems, "raw": raw}


def log_record(line: bytes, source: str, at: datetime) -> bytes:
    """An accepted event as an event-log record (source, receive time, line); :func:`_log_item` reads it."""
    return b"%s\t%s\t%s" % (source.encode(), at.isoformat().encode(), line)


def _log_item(record: bytes) -> Accepted:
    """An event-log record (source, receive time, line) as the write path takes it."""
    source, at, line = record.split(b"\t", 2)
    return line, source.decode(), datetime.fromisoformat(at.decode())
