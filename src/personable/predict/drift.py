"""Drift between a reference sample (what a model was trained on) and a
current one (what it scores now), per feature and for the scores: the
two-sample Kolmogorov-Smirnov test and the population stability index."""

from __future__ import annotations

from typing import Any

import numpy as np

from .config import DriftThresholds  # defined beside the configuration, which must not import numpy

__all__ = ["DriftThresholds", "drift_report", "psi"]


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10, floor: float = 1e-4) -> float:
    """Population stability index over quantile bins of the reference."""
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if len(ref) == 0 or len(cur) == 0:
        return float("nan")
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:  # a constant reference: any other value is a shift
        same = np.mean(cur == ref[0])
        return float((1 - same) * np.log((1 - same + floor) / floor)) if same < 1 else 0.0
    edges[0], edges[-1] = -np.inf, np.inf
    p = np.histogram(ref, edges)[0] / len(ref)
    q = np.histogram(cur, edges)[0] / len(cur)
    p, q = np.maximum(p, floor), np.maximum(q, floor)
    return float(np.sum((q - p) * np.log(q / p)))


def drift_report(reference: dict[str, np.ndarray], current: dict[str, np.ndarray],
                 thresholds: DriftThresholds = DriftThresholds()) -> dict[str, Any]:
    """Per column: KS statistic and p-value, PSI, and whether it drifted (PSI
    above its threshold, or a KS p-value below its own)."""
    from scipy.stats import ks_2samp

    columns: list[dict[str, Any]] = []
    for name in reference:
        ref = np.asarray(reference[name], dtype=float)
        cur = np.asarray(current.get(name, []), dtype=float)
        r, c = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
        if len(r) < 2 or len(c) < 2:
            columns.append({"column": name, "ks": None, "ks_pvalue": None, "psi": None, "drifted": False,
                            "note": "too few values to compare"})
            continue
        test = ks_2samp(r, c)
        value = psi(r, c)
        columns.append({"column": name, "ks": float(test.statistic), "ks_pvalue": float(test.pvalue), "psi": value,
                        "drifted": bool(value > thresholds.psi or test.pvalue < thresholds.ks_pvalue),
                        "reference_mean": float(r.mean()), "current_mean": float(c.mean())})
    drifted = [c["column"] for c in columns if c["drifted"]]
    return {"columns": columns, "drifted": drifted, "thresholds": {"psi": thresholds.psi, "ks_pvalue": thresholds.ks_pvalue}}
