"""The state folder is the owner's alone: ``.personable/`` and every folder in
it 0700, every file 0600. Stores, the event log, keys and models all live
there; a world-readable store file would hand out every profile."""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE, FILE_MODE = 0o700, 0o600


def protect(state_dir: Path) -> None:
    """Make ``state_dir`` (created if missing) and what it holds owner-only."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(state_dir, DIR_MODE)
    for root, dirs, files in os.walk(state_dir):
        for name in dirs:
            _chmod(Path(root) / name, DIR_MODE)
        for name in files:
            _chmod(Path(root) / name, FILE_MODE)


def _chmod(path: Path, mode: int) -> None:
    try:
        if not path.is_symlink() and (path.stat().st_mode & 0o777) != mode:
            os.chmod(path, mode)
    except FileNotFoundError:    # a temporary file gone meanwhile
        pass
