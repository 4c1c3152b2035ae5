"""A CRM export on its own, at any size: the person records of a business with
many customers, messy the way the store simulator's CRM is (format variations,
typos and blanks in duplicates, junk emails, a shared switchboard number), with
the true person of every row. For resolution at scale (``make bench``).

Names come from syllables so that a million people have realistic name
diversity (a few dozen real names would make every tenth person a namesake).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from .people import make_person, messy_crm_row
from .world import SEGMENTS

_ONSETS = ["b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "br", "ch",
           "cl", "dr", "fr", "gr", "kr", "pl", "sh", "st", "th", "tr"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ie", "ou", "y"]
_CODAS = ["", "", "n", "r", "l", "s", "m", "th", "nd", "rt", "sk", "ck"]


def _syllable_name(rng: np.random.Generator, syllables: int) -> str:
    parts = [_ONSETS[int(rng.integers(len(_ONSETS)))] + _VOWELS[int(rng.integers(len(_VOWELS)))]
             + _CODAS[int(rng.integers(len(_CODAS)))] for _ in range(syllables)]
    return "".join(parts).capitalize()


@dataclass(frozen=True)
class CrmSpec:
    people: int = 100_000
    duplicate_rate: float = 0.12
    seed: int = 7
    start: datetime = datetime(2024, 1, 1, tzinfo=timezone.utc)


@dataclass
class CrmExport:
    path: Path
    truth_path: Path
    rows: int
    people: int


class _Spec:  # what make_person reads from a store spec
    days = 730


def simulate_crm(out_dir: str | Path, spec: CrmSpec = CrmSpec()) -> CrmExport:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    firsts = [_syllable_name(rng, int(rng.integers(2, 4))) for _ in range(4_000)]
    lasts = [_syllable_name(rng, int(rng.integers(2, 4))) for _ in range(30_000)]
    shares = np.array([s.share for s in SEGMENTS])
    segments = rng.choice(len(SEGMENTS), size=spec.people, p=shares / shares.sum())
    rows: list[dict] = []
    truth: list[str] = []
    for i in range(spec.people):
        person = make_person(rng, i, SEGMENTS[segments[i]], _Spec)
        person.first_name = firsts[int(rng.integers(len(firsts)))]
        person.last_name = lasts[int(rng.integers(len(lasts)))]
        person.email = f"{person.first_name.lower()}.{person.last_name.lower()}{i}@example.com"
        person.signed_up_at = spec.start + timedelta(seconds=int(rng.integers(0, 730 * 86400)))
        for c in range(1 + int(rng.random() < spec.duplicate_rate)):
            rows.append(messy_crm_row(rng, person, variant=c))
            truth.append(person.customer_id)
    order = rng.permutation(len(rows))
    path = out / "crm_customers.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[k] for k in order)
    truth_path = out / "crm_truth.csv"
    with open(truth_path, "w", newline="") as fh:
        fh.write("crm_row,customer_id\n")
        fh.writelines(f"{n + 1},{truth[k]}\n" for n, k in enumerate(order))
    return CrmExport(path, truth_path, len(rows), spec.people)
