"""A person in the project's files: found byte by byte, and taken out.

- ``FileScan`` seeks many values at once (an Aho-Corasick automaton, one pass
  per file) in each of the encodings a file may hold text in: UTF-8 (JSON,
  CSV, SQLite, logs), and UTF-16 and UTF-32 (NumPy's string arrays inside a
  pickled model are UTF-32).
- Exports kept in the project's export folder are rewritten without the
  person's rows (recognized as ``person_text.py`` says); model artifacts that hold their rows are deleted (a
  retrain makes them again, from what is left).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
import tempfile
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from .person_text import PersonText

ENCODINGS = (("utf-8", 1), ("utf-16-le", 2), ("utf-32-le", 4))
WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
BLOCK = 64 * 1024 * 1024


class FileScan:
    def __init__(self, needles: Iterable[str]):
        import ahocorasick

        self.needles = sorted({n for n in needles if n})
        self._automaton = ahocorasick.Automaton()
        longest = 1
        for n in self.needles:
            for encoding, unit in ENCODINGS:
                raw = n.encode(encoding)
                longest = max(longest, len(raw))
                # Bytes as latin-1 text: one character per byte, so any byte string is searchable.
                self._automaton.add_word(raw.decode("latin-1"), (n, len(raw), unit))
        self._overlap = longest
        if self.needles:
            self._automaton.make_automaton()

    def file(self, path: Path) -> set[str]:
        """The needles ``path`` holds, in any of the encodings."""
        found: set[str] = set()
        if not self.needles:
            return found
        with open(path, "rb") as fh:
            tail = b""
            while block := fh.read(BLOCK):
                text = (tail + block).decode("latin-1")
                for end, (needle, size, unit) in self._automaton.iter(text):
                    # Text (UTF-8) must stand alone: "a1" is not in "ba1f". NumPy packs fixed-width UTF-32
                    # strings edge to edge, so there any occurrence counts.
                    if unit > 1 or _whole(text, end - size + 1, end + 1, unit):
                        found.add(needle)
                tail = block[-self._overlap - 4:]
        return found

    def tree(self, root: Path) -> list[dict[str, Any]]:
        """Every file under ``root`` that holds a needle, with those it holds."""
        out: list[dict[str, Any]] = []
        if not root.exists():
            return out
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            try:
                found = self.file(path)
            except OSError:        # gone meanwhile (a log segment released)
                continue
            if found:
                out.append({"where": f"file {path}", "values": sorted(found)})
        return out


def _whole(text: str, start: int, stop: int, unit: int) -> bool:
    """Whether the match ``text[start:stop]`` stands alone: no letter, digit or underscore (in its own
    encoding's code units) right before or after it, so ``a1`` is not found inside ``ba1f``."""
    before, after = text[max(start - unit, 0):start], text[stop:stop + unit]
    return not (len(before) == unit and before[0] in WORD and not before[1:].strip("\x00")) and \
        not (len(after) == unit and after[0] in WORD and not after[1:].strip("\x00"))


def stands_alone(needle: str, text: str) -> bool:
    """Whether ``needle`` occurs in ``text`` with no letter, digit or underscore right beside it."""
    start = text.find(needle)
    while start >= 0:
        if _whole(text, start, start + len(needle), 1):
            return True
        start = text.find(needle, start + 1)
    return False


def purge_exports(folder: Path, person: "PersonText") -> list[dict[str, Any]]:
    """Rewrite each export under ``folder`` that holds rows of the person without them (CSV, JSON lines,
    Parquet; other files are left as they are); rows removed per file."""
    report = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []:
        if path.suffix == ".parquet":
            removed = _rewrite_parquet(path, person)
        elif path.suffix in (".csv", ".jsonl", ".ndjson", ".json"):
            removed = _rewrite_lines(path, person)
        else:
            continue
        if removed:
            report.append({"file": str(path), "rows": removed})
    return report


def _rewrite_lines(path: Path, person: "PersonText") -> int:
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".csv":
        header, *rows = list(csv.reader(io.StringIO(text))) or [[]]
        kept = [r for r in rows if not person.in_row(dict(zip(header, r)))]
        if len(kept) < len(rows):
            out = io.StringIO()
            csv.writer(out).writerows([header, *kept])
            _replace(path, out.getvalue().encode())
        return len(rows) - len(kept)
    lines = text.splitlines(keepends=True)
    kept_lines = [line for line in lines if not person.in_json(line)]
    if len(kept_lines) < len(lines):
        _replace(path, "".join(kept_lines).encode())
    return len(lines) - len(kept_lines)


def _rewrite_parquet(path: Path, person: "PersonText") -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    keep = [not person.in_row(row) for row in table.to_pylist()]
    if all(keep):
        return 0
    kept = table.filter(pa.array(keep))
    out = io.BytesIO()
    pq.write_table(kept, out)
    _replace(path, out.getvalue())
    return int(table.num_rows - kept.num_rows)


def purge_artifacts(folder: Path, needles: list[str]) -> list[str]:
    """Model files under ``folder`` that hold the person's rows: deleted. Which went."""
    scan = FileScan(needles)
    gone = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []:
        if scan.file(path):
            path.unlink()
            gone.append(str(path))
    return gone


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` in place of the file, all at once: a crash leaves the old file or the new one.
    The old file's blocks are not overwritten (a filesystem may keep them): see docs/privacy.md."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".erasing", dir=path.parent)   # 0600, unique
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
