"""RemoteEngine: the Engine's read/import API over HTTP, for a CLI that finds a
running server owning the project (see ``personable.server.run``)."""

from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import httpx

from .config import Config
from .errors import NotFound, PersonableError, Problem, ServerUnavailable
from .ports import IngestReport


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


@contextmanager
def _in_import_folder(cfg: Config, path: str | Path) -> Iterator[str]:
    """The CLI's own file, as a path inside the server's import folder.

    The server reads only from ``server.import_dir``; the CLI, on the same
    machine and not confined, links (or copies) the user's file in for the call."""
    from .errors import ImportFailed

    src = Path(path).resolve()
    root = (cfg.project_dir / cfg.server.import_dir).resolve()
    if _inside(src, root):
        yield str(src)
        return
    if not src.is_file():
        raise ImportFailed(f"{path}: no such file")
    root.mkdir(parents=True, exist_ok=True)
    staged = root / f".cli-{uuid.uuid4().hex[:12]}-{src.name}"
    try:
        os.link(src, staged)
    except OSError:
        shutil.copyfile(src, staged)
    try:
        yield str(staged)
    finally:
        staged.unlink(missing_ok=True)


class RemoteEngine:
    remote = True

    def __init__(self, cfg: Config, url: str):
        self.config = cfg
        self.url = url
        token = cfg.admin_token() or ""
        self._http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=None)

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            response = self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise ServerUnavailable(f"the server at {self.url} did not answer: {exc}") from exc
        if response.status_code >= 400:
            try:
                err = response.json()["error"]
            except (ValueError, KeyError, TypeError) as exc:
                raise PersonableError(f"server answered {response.status_code}: {response.text[:200]}") from exc
            exc_type = NotFound if response.status_code == 404 else PersonableError
            error = exc_type(err.get("message", "error"))
            error.code = err.get("code", error.code)
            error.status = response.status_code  # the CLI's exit code follows it
            error.details = [Problem(d.get("path", ""), d.get("problem", "")) for d in err.get("details") or []]
            raise error
        return response.json()

    def ingest(self, path: str | Path, kind: str = "events", file_format: str | None = None,
               mapping: dict[str, str] | None = None, source: str = "import", progress: Any = None, **_: Any) -> IngestReport:
        with _in_import_folder(self.config, path) as staged:
            # (the staged name ends with the file's own name, so the format still shows)
            body = {"path": staged, "kind": kind, "format": file_format, "mapping": mapping or {}, "source": source}
            data = self._call("POST", "/v1/admin/ingest", json=body)
        data["origin"] = str(path)
        return IngestReport(**data)

    def profile(self, identifier: str, recent_events: int = 20) -> dict[str, Any]:
        from urllib.parse import quote

        return self._call("GET", f"/v1/profiles/{quote(identifier, safe='')}",
                          params={"events": recent_events, "fresh": "true"})

    def quarantine(self, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/quarantine", params={"limit": limit, "offset": offset, "fresh": "true"})["items"]

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/v1/stats", params={"fresh": "true"})

    @property
    def quality(self) -> "RemoteQuality":
        return RemoteQuality(self)

    @property
    def resolution(self) -> "RemoteResolution":
        return RemoteResolution(self)

    @property
    def segments(self) -> "RemoteSegments":
        return RemoteSegments(self)

    @property
    def recommend(self) -> "RemoteRecommend":
        return RemoteRecommend(self)

    def close(self) -> None:
        self._http.close()


class RemoteQuality:
    """``engine.quality`` over HTTP."""

    def __init__(self, remote: RemoteEngine):
        self._r = remote

    def report(self, fields: list[str] | None = None, save: bool = True) -> dict[str, Any]:
        return self._r._call("GET", "/v1/quality", params={"field": fields or [], "save": str(save).lower(), "fresh": "true"})

    def history(self, limit: int = 10) -> list[dict[str, Any]]:
        return self._r._call("GET", "/v1/quality/history", params={"limit": limit})["items"]

    def clean(self) -> dict[str, Any]:
        return self._r._call("POST", "/v1/admin/quality/clean")

    def impute(self) -> dict[str, Any]:
        return self._r._call("POST", "/v1/admin/quality/impute")


class RemoteResolution:
    """``engine.resolution`` over HTTP."""

    def __init__(self, remote: RemoteEngine):
        self._r = remote

    def run(self, actor: str = "resolver", progress: Any = None) -> dict[str, Any]:
        return self._r._call("POST", "/v1/admin/resolve")

    def review(self, status: str = "review", limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        return self._r._call("GET", "/v1/resolve/review", params={"status": status, "limit": limit, "offset": offset})["items"]

    def decide(self, left: str, right: str, accept: bool, actor: str = "reviewer") -> dict[str, Any]:
        return self._r._call("POST", "/v1/resolve/review/decision",
                             json={"left": left, "right": right, "decision": "accept" if accept else "reject", "actor": actor})

    def explain(self, identifier: str) -> dict[str, Any]:
        from urllib.parse import quote

        return self._r._call("GET", f"/v1/resolve/explain/{quote(identifier, safe='')}")

    def undo(self, merged_profile: str, actor: str = "reviewer") -> dict[str, Any]:
        return self._r._call("POST", "/v1/resolve/undo", json={"profile": merged_profile, "actor": actor})


def open_project(project: str | Path = ".", clock: Any = None) -> Any:
    """The Engine for a project: local, or remote when a server owns the project
    (``clock``, to work as of another time, is for local work only)."""
    from .config import load_config
    from .server.run import running_server

    cfg = load_config(project)
    info = running_server(cfg)
    if info:
        return RemoteEngine(cfg, info["url"])
    from .engine import Engine

    return Engine(cfg, clock=clock)


class RemoteSegments:
    """``engine.segments`` over HTTP."""

    def __init__(self, remote: RemoteEngine):
        self._r = remote

    def list(self) -> list[dict[str, Any]]:
        return self._r._call("GET", "/v1/segments", params={"fresh": "true"})["items"]

    def show(self, segment_id: str) -> dict[str, Any]:
        return self._r._call("GET", f"/v1/segments/{segment_id}", params={"fresh": "true"})

    def members(self, segment_id: str, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        return self._r._call("GET", f"/v1/segments/{segment_id}/members", params={"limit": limit, "offset": offset})["items"]

    def history(self, profile: str | None = None, segment_id: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if profile:
            params["profile"] = profile
        return self._r._call("GET", f"/v1/segments/{segment_id}/history", params=params)["items"]

    def refresh(self, segment_ids: list[str] | None = None, cause: str = "manual") -> dict[str, Any]:
        return self._r._call("POST", "/v1/admin/segments/refresh", params={"segment": segment_ids or []})

    def export(self, segment_id: str, path: str, fmt: str | None = None) -> dict[str, Any]:
        from pathlib import Path as _Path

        # The server writes only into its export folder; the CLI moves the file to where its user asked.
        target = _Path(path).resolve()
        fmt = fmt or ("parquet" if str(path).endswith(".parquet") else "csv")
        root = (self._r.config.project_dir / self._r.config.server.export_dir).resolve()
        staged = target if _inside(target, root) else root / f".cli-{uuid.uuid4().hex[:12]}-{target.name}"
        result = self._r._call("POST", f"/v1/admin/segments/{segment_id}/export",
                               json={"path": str(staged), "format": fmt})
        if staged != target:
            shutil.move(str(staged), str(target))
        return {**result, "path": str(path)}

    def compute(self) -> dict[str, Any]:
        return self._r._call("POST", "/v1/admin/segments/compute")

    def transitions(self, profile: str, key: str | None = None) -> list[dict[str, Any]]:
        from urllib.parse import quote

        items = self._r._call("GET", f"/v1/profiles/{quote(profile, safe='')}/history")["computed"]
        return [i for i in items if key is None or i["key"] == key]



class RemoteRecommend:
    """``engine.recommend`` over HTTP."""

    def __init__(self, remote: RemoteEngine):
        self._r = remote

    def recommend(self, identifier: str, placement: str | None = None, n: int | None = None,
                  context: dict[str, Any] | None = None) -> dict[str, Any]:
        from urllib.parse import quote

        params: dict[str, Any] = {k: v for k, v in {"placement": placement, "n": n}.items() if v is not None}
        for key, value in (context or {}).items():
            params[key] = ",".join(value) if isinstance(value, list) else value
        return self._r._call("GET", f"/v1/recommendations/{quote(identifier, safe='')}", params=params)

    def train(self, progress: Any = None) -> dict[str, Any]:
        return self._r._call("POST", "/v1/admin/recommend/train")

    def import_catalog(self, path: str | Path) -> dict[str, Any]:
        with _in_import_folder(self._r.config, path) as staged:
            return self._r._call("POST", "/v1/admin/items/import", json={"path": staged})

    def evaluate(self, split: str = "temporal", k: int = 10, ratio: float = 0.8, progress: Any = None) -> dict[str, Any]:
        return self._r._call("POST", "/v1/admin/recommend/evaluate", json={"split": split, "k": k, "ratio": ratio})
