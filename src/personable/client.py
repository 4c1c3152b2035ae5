"""RemoteEngine: the project over the HTTP API, for a CLI that finds a running
server owning the project (see ``personable.server.run``).

It satisfies :class:`personable.api.PersonableAPI` as the Engine does (mypy
checks both in ``adapters/conformance.py``): the same methods and arguments,
and the server's errors raised again as the same PersonableError subclass.
"""

from __future__ import annotations

import builtins
import os
import shutil
import uuid
from datetime import datetime
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator
from urllib.parse import quote

import httpx

from .api import FileProgress, PersonableAPI, Row, StepProgress
from .config import Config
from .errors import ImportFailed, PersonableError, ServerRunning, ServerUnavailable, error_from_dict
from .ports import IngestReport

if TYPE_CHECKING:
    from .clock import Clock
    from .predict.drift import DriftThresholds


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _staged_name(root: Path, name: str) -> Path:
    return root / f".cli-{uuid.uuid4().hex[:12]}-{name}"


@contextmanager
def _in_import_folder(cfg: Config, path: str | Path) -> Iterator[str]:
    """The CLI's own file, as a path inside the server's import folder.

    The server reads only from ``server.import_dir``; the CLI, on the same
    machine and not confined, links (or copies) the user's file in for the call.
    (The staged name ends with the file's own name, so the format still shows.)"""
    src = Path(path).resolve()
    root = (cfg.project_dir / cfg.server.import_dir).resolve()
    if _inside(src, root):
        yield str(src)
        return
    if not src.is_file():
        raise ImportFailed(f"{path}: no such file")
    root.mkdir(parents=True, exist_ok=True)
    staged = _staged_name(root, src.name)
    try:
        os.link(src, staged)
    except OSError:
        shutil.copyfile(src, staged)
    try:
        yield str(staged)
    finally:
        staged.unlink(missing_ok=True)


def _object(data: Any) -> Row:
    if not isinstance(data, dict):
        raise PersonableError(f"the server answered {type(data).__name__}, not an object")
    return data


def _items(data: Any) -> list[Row]:
    items = _object(data).get("items")
    if not isinstance(items, list):
        raise PersonableError("the server's answer has no `items` list")
    return items


FRESH = {"fresh": "true"}  # reads wait for what was accepted before them (read your writes)


class RemoteEngine:
    remote = True

    def __init__(self, cfg: Config, url: str, tls_cert: str | None = None):
        """``tls_cert``: the certificate an HTTPS server serves with, trusted for it (it may be self-signed)."""
        self.config = cfg
        self.url = url
        token = cfg.admin_token() or ""
        self._http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=None,
                                  verify=_trust(tls_cert) if tls_cert else True)
        self.segments = RemoteSegments(self)
        self.quality = RemoteQuality(self)
        self.resolution = RemoteResolution(self)
        self.recommend = RemoteRecommend(self)
        self.models = RemoteModels(self)
        self.privacy = RemotePrivacy(self)
        self.audit = RemoteAudit(self)

    def call(self, method: str, path: str, **kw: Any) -> Any:
        """One request; the JSON answer, or the server's error raised as its own class."""
        return self._send(method, path, **kw).json()

    def text(self, method: str, path: str, **kw: Any) -> str:
        """A non-JSON answer (CSV), with errors raised as for :meth:`call`."""
        return self._send(method, path, **kw).text

    def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise ServerUnavailable(f"the server at {self.url} did not answer: {exc}") from exc
        _raise_for(response)
        return response

    def ingest(self, path: str | Path, kind: str = "events", file_format: str | None = None,
               mapping: dict[str, str] | None = None, source: str = "import", chunk_size: int = 250_000,
               progress: FileProgress | None = None) -> IngestReport:
        with _in_import_folder(self.config, path) as staged:
            body = {"path": staged, "kind": kind, "format": file_format, "mapping": mapping or {}, "source": source,
                    "chunk_size": chunk_size}
            data = _object(self.call("POST", "/v1/admin/ingest", json=body))
        data["origin"] = str(path)
        report = IngestReport(**data)
        if progress:  # the server does the work in one call: progress is reported once, when it is done
            progress(report.received, report.received)
        return report

    def profile(self, identifier: str, recent_events: int = 20) -> Row:
        return _object(self.call("GET", f"/v1/profiles/{quote(identifier, safe='')}",
                                 params={"events": recent_events, **FRESH}))

    def quarantine(self, limit: int = 50, offset: int = 0) -> list[Row]:
        return _items(self.call("GET", "/v1/quarantine", params={"limit": limit, "offset": offset, **FRESH}))

    def stats(self) -> Row:
        return _object(self.call("GET", "/v1/stats", params=FRESH))

    def close(self) -> None:
        self._http.close()


def _raise_for(response: httpx.Response) -> None:
    """The server's error, raised as its own class."""
    if response.status_code < 400:
        return
    try:
        body = response.json()["error"]
        if not isinstance(body, dict):
            raise TypeError("error is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        error = PersonableError(f"the server answered {response.status_code}: {response.text[:200]}")
        error.status = response.status_code   # the CLI's exit code follows it
        raise error from exc
    raise error_from_dict(body, response.status_code)


def _trust(cert: str) -> Any:
    import ssl

    return ssl.create_default_context(cafile=cert)


class _Part:
    def __init__(self, remote: RemoteEngine):
        self._r = remote


class RemoteQuality(_Part):
    """``engine.quality`` over HTTP."""

    def report(self, fields: list[str] | None = None, save: bool = True) -> Row:
        return _object(self._r.call("GET", "/v1/quality",
                                    params={"field": fields or [], "save": str(save).lower(), **FRESH}))

    def history(self, limit: int = 10) -> list[Row]:
        return _items(self._r.call("GET", "/v1/quality/history", params={"limit": limit}))

    def clean(self) -> Row:
        return _object(self._r.call("POST", "/v1/admin/quality/clean"))

    def impute(self) -> Row:
        return _object(self._r.call("POST", "/v1/admin/quality/impute"))


class RemoteResolution(_Part):
    """``engine.resolution`` over HTTP (``progress``: the server runs it in one call; nothing to report)."""

    def run(self, actor: str = "resolver", progress: StepProgress | None = None) -> Row:
        return _object(self._r.call("POST", "/v1/admin/resolve", params={"actor": actor}))

    def review(self, status: str = "review", limit: int = 50, offset: int = 0) -> list[Row]:
        return _items(self._r.call("GET", "/v1/resolve/review",
                                   params={"status": status, "limit": limit, "offset": offset}))

    def decide(self, left: str, right: str, accept: bool, actor: str = "reviewer") -> Row:
        return _object(self._r.call("POST", "/v1/resolve/review/decision", json={
            "left": left, "right": right, "decision": "accept" if accept else "reject", "actor": actor}))

    def explain(self, identifier: str) -> Row:
        return _object(self._r.call("GET", f"/v1/resolve/explain/{quote(identifier, safe='')}"))

    def undo(self, merged_profile: str, actor: str = "reviewer") -> Row:
        return _object(self._r.call("POST", "/v1/resolve/undo", json={"profile": merged_profile, "actor": actor}))


class RemoteSegments(_Part):
    """``engine.segments`` over HTTP."""

    def list(self) -> builtins.list[Row]:
        return _items(self._r.call("GET", "/v1/segments", params=FRESH))

    def show(self, segment_id: str) -> Row:
        return _object(self._r.call("GET", f"/v1/segments/{quote(segment_id, safe='')}", params=FRESH))

    def members(self, segment_id: str, limit: int = 100, offset: int = 0) -> builtins.list[Row]:
        return _items(self._r.call("GET", f"/v1/segments/{quote(segment_id, safe='')}/members",
                                   params={"limit": limit, "offset": offset, **FRESH}))

    def history(self, profile: str | None = None, segment_id: str | None = None,
                limit: int = 200) -> builtins.list[Row]:
        params: dict[str, Any] = {"limit": limit, **FRESH}
        if profile is not None:
            params["profile"] = profile
        if segment_id is not None:
            params["segment"] = segment_id
        return _items(self._r.call("GET", "/v1/memberships", params=params))

    def refresh(self, segment_ids: builtins.list[str] | None = None, cause: str = "refresh") -> Row:
        return _object(self._r.call("POST", "/v1/admin/segments/refresh",
                                    params={"segment": segment_ids or [], "cause": cause}))

    def export(self, segment_id: str, path: str, fmt: str | None = None) -> Row:
        # The server writes only into its export folder; the CLI moves the file to where its user asked.
        target = Path(path).resolve()
        fmt = fmt or ("parquet" if str(path).endswith(".parquet") else "csv")
        cfg = self._r.config
        root = (cfg.project_dir / cfg.server.export_dir).resolve()
        staged = target if _inside(target, root) else _staged_name(root, target.name)
        result = _object(self._r.call("POST", f"/v1/admin/segments/{quote(segment_id, safe='')}/export",
                                      json={"path": str(staged), "format": fmt}))
        if staged != target:
            shutil.move(str(staged), str(target))
        return {**result, "path": str(path)}

    def compute(self) -> Row:
        return _object(self._r.call("POST", "/v1/admin/segments/compute"))

    def transitions(self, profile: str, key: str | None = None) -> builtins.list[Row]:
        params = {**FRESH, **({} if key is None else {"key": key})}
        return _items(self._r.call("GET", f"/v1/profiles/{quote(profile, safe='')}/transitions", params=params))

    def cluster(self, method: str = "kmeans", n_clusters: int | str = "auto", pca: float | int | None = None,
                features: tuple[str, ...] | None = None, stability_boots: int = 5,
                population: str = "customers") -> Row:
        return _object(self._r.call("POST", "/v1/admin/segments/cluster", json={
            "method": method, "n_clusters": n_clusters, "pca": pca, "features": list(features) if features else None,
            "stability_boots": stability_boots, "population": population}))


class RemotePrivacy(_Part):
    """``engine.privacy`` over HTTP."""

    def set_consent(self, identifier: str, purposes: dict[str, bool], source: str = "api",
                    policy_version: str | None = None) -> Row:
        return _object(self._r.call("PUT", f"/v1/profiles/{quote(identifier, safe='')}/consent", params=FRESH,
                                    json={"purposes": purposes, "source": source, "policy_version": policy_version}))

    def consent(self, identifier: str, history: int = 50) -> Row:
        return _object(self._r.call("GET", f"/v1/profiles/{quote(identifier, safe='')}/consent",
                                    params={"history": history, **FRESH}))

    def refusal_counts(self, since: datetime | None = None) -> list[Row]:
        params = {"since": since.isoformat()} if since else {}
        return _items(self._r.call("GET", "/v1/privacy/refusals", params=params))

    def export(self, identifier: str) -> Row:
        return _object(self._r.call("GET", f"/v1/profiles/{quote(identifier, safe='')}/export", params=FRESH))

    def retention(self, dry_run: bool = False) -> Row:
        return _object(self._r.call("POST", "/v1/admin/privacy/retention", params={"dry_run": str(dry_run).lower()}))

    def release(self, report: str, epsilon: float, k: int | None = None) -> Row:
        return _object(self._r.call("POST", "/v1/admin/privacy/release", params=FRESH,
                                    json={"report": report, "epsilon": epsilon, "k": k}))

    def budget(self) -> Row:
        return _object(self._r.call("GET", "/v1/privacy/budget"))

    def erase(self, identifiers: list[str], actor: str = "python") -> Row:
        # The server names the actor: the credential that asked.
        return _object(self._r.call("POST", "/v1/admin/privacy/erasures", json={"identifiers": list(identifiers)}))

    def resume_erasures(self) -> list[Row]:
        return _items(self._r.call("POST", "/v1/admin/privacy/erasures/resume"))

    def verify(self, values: list[str]) -> Row:
        return _object(self._r.call("POST", "/v1/privacy/verify", json={"values": list(values)}))

    def rekey(self) -> Row:
        return _object(self._r.call("POST", "/v1/admin/privacy/rekey"))

    def export_events(self, identifier: str) -> str:
        return self._r.text("GET", f"/v1/profiles/{quote(identifier, safe='')}/export/events.csv", params=FRESH)


class RemoteAudit(_Part):
    """``engine.audit`` over HTTP."""

    def verify(self) -> Row:
        return _object(self._r.call("GET", "/v1/audit/verify"))

    def query(self, actor: str | None = None, action: str | None = None, target: str | None = None,
              since: datetime | None = None, limit: int = 200) -> list[Row]:
        params: dict[str, Any] = {k: v for k, v in {"actor": actor, "action": action, "target": target}.items() if v}
        if since is not None:
            params["since"] = since.isoformat()
        return _items(self._r.call("GET", "/v1/audit", params={**params, "limit": limit}))


class RemoteRecommend(_Part):
    """``engine.recommend`` over HTTP (``progress``: the server trains in one call; nothing to report)."""

    def recommend(self, identifier: str, placement: str | None = None, n: int | None = None,
                  context: dict[str, Any] | None = None) -> Row:
        params: dict[str, Any] = {k: v for k, v in {"placement": placement, "n": n}.items() if v is not None}
        for key, value in (context or {}).items():
            if value is not None:
                params[key] = ",".join(value) if isinstance(value, list) else value
        return _object(self._r.call("GET", f"/v1/recommendations/{quote(identifier, safe='')}", params=params))

    def train(self, progress: Any = None) -> Row:
        return _object(self._r.call("POST", "/v1/admin/recommend/train"))

    def import_catalog(self, path: str | Path) -> Row:
        with _in_import_folder(self._r.config, path) as staged:
            return _object(self._r.call("POST", "/v1/admin/items/import", json={"path": staged}))

    def evaluate(self, split: str = "temporal", k: int = 10, ratio: float = 0.8, progress: Any = None) -> Row:
        return _object(self._r.call("POST", "/v1/admin/recommend/evaluate",
                                    json={"split": split, "k": k, "ratio": ratio}))


class RemoteModels(_Part):
    """``engine.models`` over HTTP."""

    @staticmethod
    def _version(version: int | None) -> dict[str, int]:
        return {} if version is None else {"version": version}

    def train(self, name: str, horizon_days: int | None = None, model: str | None = None,
              reason: str = "manual") -> Row:
        return _object(self._r.call("POST", f"/v1/admin/models/{quote(name, safe='')}/train",
                                    json={"horizon_days": horizon_days, "model": model, "reason": reason}))

    def list(self) -> builtins.list[Row]:
        return _items(self._r.call("GET", "/v1/models"))

    def show(self, name: str, version: int | None = None) -> Row:
        return _object(self._r.call("GET", f"/v1/models/{quote(name, safe='')}", params=self._version(version)))

    def score(self, name: str, version: int | None = None) -> Row:
        return _object(self._r.call("POST", f"/v1/admin/models/{quote(name, safe='')}/score",
                                    params=self._version(version)))

    def evaluate(self, name: str, version: int | None = None) -> Row:
        return _object(self._r.call("POST", f"/v1/admin/models/{quote(name, safe='')}/evaluate",
                                    params=self._version(version)))

    def drift(self, name: str, version: int | None = None, thresholds: DriftThresholds | None = None,
              retrain: bool = False) -> Row:
        params: dict[str, Any] = {**self._version(version), "retrain": str(retrain).lower()}
        if thresholds is not None:
            params.update(psi=thresholds.psi, ks_pvalue=thresholds.ks_pvalue)
        return _object(self._r.call("GET", f"/v1/models/{quote(name, safe='')}/drift", params=params))

    def maintain(self) -> builtins.list[Row]:
        return _items(self._r.call("POST", "/v1/admin/models/maintain"))


def open_project(project: str | Path = ".", clock: Clock | None = None) -> PersonableAPI:
    """The project: the running server's when one owns it, else the Engine on its files.

    ``clock`` (work as of another time, ``--as-of``) needs the project's own
    files: with a server running that is refused, not silently ignored."""
    from .config import load_config
    from .server.run import running_server

    cfg = load_config(project)
    info = running_server(cfg)
    if info:
        if clock is not None:
            raise ServerRunning(f"--as-of works on the project's own files, and the server at {info['url']} owns "
                                "them; stop `personable serve` first")
        return RemoteEngine(cfg, info["url"], info.get("tls_cert"))
    from .engine import Engine

    return Engine(cfg, clock=clock)
