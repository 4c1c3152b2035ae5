"""Confining the server's file access to the configured folders.

Admin routes take file paths (imports, catalog imports, segment exports). The
server reads and writes only inside ``server.import_dir`` / ``server.export_dir``:
before, ``/v1/admin/ingest`` of ``/etc/passwd`` or another project's keys.json
showed their lines in the quarantine, and an export could overwrite any file.
Paths are resolved with symlinks followed, so a link inside the folder that
points out of it is refused too. The CLI working on its own, without a server,
is not confined: those are the user's own files.
"""

from __future__ import annotations

from pathlib import Path

from ..config import Config
from ..errors import PathNotAllowed, Problem


def folder(cfg: Config, which: str) -> Path:
    name = cfg.server.import_dir if which == "import" else cfg.server.export_dir
    return (cfg.project_dir / name).resolve()


def confined(cfg: Config, given: str, which: str, field: str = "path") -> Path:
    """``given`` as a path inside the import or export folder, or PathNotAllowed.

    A relative path is taken inside the folder; an absolute one must lie in it."""
    root = folder(cfg, which)
    setting = f"server.{which}_dir"
    if ".." in Path(given).parts:
        raise PathNotAllowed(f"{given!r}: paths with '..' are refused", [Problem(field, "must not contain '..'")])
    path = Path(given) if Path(given).is_absolute() else root / given
    resolved = path.resolve()
    if resolved != root and root not in resolved.parents:
        raise PathNotAllowed(
            f"{given!r} is outside the server's {which} folder {root} ({setting}); put the file there "
            "or run the command without a server", [Problem(field, f"must be inside {root}")])
    if which == "export":
        resolved.parent.mkdir(parents=True, exist_ok=True)
    return resolved
