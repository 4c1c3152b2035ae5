"""The Fellegi-Sunter model, trained and applied with Splink.

``train_and_predict`` takes person records (Arrow: ``unique_id`` plus the
configured fields, and ``source_dataset`` when linking two sets) and returns
the scored candidate pairs with, per comparison, the level reached and its
match weight -- what an explanation of a merge shows. Splink runs on its own
in-memory DuckDB here; its SparkAPI is the path to a cluster (the settings
built below do not depend on the backend).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import pyarrow as pa

from ...errors import PersonableError
from .config import ResolutionConfig


class ResolutionFailed(PersonableError):
    code = "resolution_failed"
    status = 400


@dataclass
class Scored:
    pairs: pa.Table                    # unique_id_l, unique_id_r, match_probability, match_weight, explanation
    model: dict[str, Any]              # Splink's model JSON (m and u of every level)
    comparisons: list[str]
    training: str = "em"               # how m was learned: labels | em | defaults


def _splink() -> tuple[Any, Any, Any, Any, Any]:   # splink, its comparison library, Linker, SettingsCreator, block_on
    try:
        import splink
        import splink.comparison_library as cl
        from splink import Linker, SettingsCreator, block_on
    except ImportError as exc:  # pragma: no cover - the [resolve] extra
        raise ResolutionFailed("probabilistic resolution needs Splink: pip install 'personable[resolve]'") from exc
    return splink, cl, Linker, SettingsCreator, block_on


def comparison_for(kind: str, column: str, cl: Any) -> Any:
    """The Splink comparison suited to a kind of field."""
    if kind == "name":
        return cl.NameComparison(column)
    if kind == "email":
        return cl.EmailComparison(column)
    if kind == "phone":
        return cl.LevenshteinAtThresholds(column, [1, 2])
    if kind == "date":
        return cl.DateOfBirthComparison(column, input_is_string=True)
    if kind == "text":
        return cl.JaroWinklerAtThresholds(column, [0.9, 0.8])
    if kind == "postcode":
        return cl.LevenshteinAtThresholds(column, [1, 2])
    if kind == "number":
        return cl.LevenshteinAtThresholds(column, [1, 2])
    return cl.ExactMatch(column)


def settings_for(cfg: ResolutionConfig, link_type: str, retain: list[str] | None = None) -> Any:
    _, cl, _, SettingsCreator, block_on = _splink()
    return SettingsCreator(
        link_type=link_type,
        blocking_rules_to_generate_predictions=[block_on(*rule) for rule in cfg.blocking],
        comparisons=[comparison_for(kind, name, cl) for name, kind in cfg.fields],
        retain_intermediate_calculation_columns=True,
        retain_matching_columns=True,
        additional_columns_to_retain=list(retain or []),
    )


# Below this many known-matching record pairs, m is learned by EM instead.
MIN_LABELLED_PAIRS = 30


def _labelled_pairs(tables: list[pa.Table], label: str) -> int:
    from collections import Counter

    counts: Counter[Any] = Counter()   # label values: whatever the records carry
    for t in tables:
        counts.update(v for v in t.column(label).to_pylist() if v is not None)
    return sum(n * (n - 1) // 2 for n in counts.values())


def _levels(linker: Any) -> dict[str, dict[int, str]]:
    """comparison output name -> {gamma value: level label}."""
    out: dict[str, dict[int, str]] = {}
    for comparison in linker._settings_obj.comparisons:
        out[comparison.output_column_name] = {
            level.comparison_vector_value: level.label_for_charts for level in comparison.comparison_levels}
    return out


def train_and_predict(records: pa.Table | Sequence[pa.Table], cfg: ResolutionConfig, threshold: float,
                      db: Any, link_type: str = "dedupe_only", em_rules: list[tuple[str, ...]] | None = None,
                      seed: int = 7, label: str | None = None) -> Scored:
    """Train without hand labels, then score every candidate pair at or above ``threshold``.

    u comes from random pairs (almost all non-matches). m, the agreement pattern
    of true matches, comes from ``label`` when records carry one that already
    groups some of them -- here the deterministic profile: records the identity
    graph joined by userId or email are matches, with the typos and blanks real
    matches have -- and otherwise from EM under each blocking rule. (EM alone
    drifts when deterministic stitching has already joined nearly every match:
    the few left cannot anchor it.)

    ``db`` is a Splink ``DatabaseAPI`` from the backend (``ResolutionLedger.splink_api``)."""
    splink, _cl, Linker, _SettingsCreator, block_on = _splink()
    tables: list[pa.Table] = list(records) if isinstance(records, (list, tuple)) else [records]
    if sum(t.num_rows for t in tables) < 2:
        return Scored(_empty_pairs(), {}, [], "defaults")
    frames = [db.register(t, table_name=f"records_{i}") for i, t in enumerate(tables)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            linker = Linker(frames if len(frames) > 1 else frames[0],
                            settings_for(cfg, link_type, [label] if label else None), log_level=logging.ERROR)
            deterministic = [block_on(*rule) for rule in cfg.blocking]
            try:
                linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.8)
            except Exception as exc:  # no pair agrees under any rule: keep Splink's prior
                logging.getLogger("personable.resolution").info("prior match probability kept: %s", exc)
            settings = linker._settings_obj
            if not 0.0 < settings._probability_two_random_records_match < 1.0:
                # No candidate pair at all gives a prior of 0, whose weight is -infinity;
                # one in a billion says "very unlikely" and keeps the arithmetic finite.
                settings._probability_two_random_records_match = 1e-9
            linker.training.estimate_u_using_random_sampling(max_pairs=cfg.u_max_pairs, seed=seed)
            trained = 0
            by_labels = bool(label and _labelled_pairs(tables, label) >= MIN_LABELLED_PAIRS)
            if by_labels:
                linker.training.estimate_m_from_label_column(label)
                trained = 1
            for rule in ([] if by_labels else (em_rules or cfg.blocking)):
                # A rule fixing every field leaves nothing to estimate; skip it.
                if len(rule) >= len(cfg.fields):
                    continue
                # A failed EM session leaves Splink's model without the comparisons it
                # set aside for that session; keep a copy to put back.
                before = linker._settings_obj.core_model_settings.copy()
                try:
                    linker.training.estimate_parameters_using_expectation_maximisation(block_on(*rule))
                    trained += 1
                except Exception as exc:  # too few pairs under one rule: the others still train
                    linker._settings_obj.core_model_settings = before
                    logging.getLogger("personable.resolution").info("EM under %s skipped: %s", rule, exc)
            # Nothing to learn m from (a handful of records, no candidate pairs under
            # any rule): Splink's default m values stand, and the summary says so.
            training = "labels" if by_labels else ("em" if trained else "defaults")
            predictions = linker.inference.predict(threshold_match_probability=threshold)
            columns = [c.unquote().name for c in predictions.columns]
            names = [c.output_column_name for c in linker._settings_obj.comparisons]
            pairs = _explained(predictions.as_pandas_dataframe(), _levels(linker), names, columns)
            model = linker.misc.save_model_to_json()
        except ResolutionFailed:
            raise
        except Exception as exc:
            raise ResolutionFailed(f"Splink could not resolve these records: {exc}") from exc
    return Scored(pairs, model, names, training)


def _empty_pairs() -> pa.Table:
    return pa.table({"unique_id_l": pa.array([], pa.string()), "unique_id_r": pa.array([], pa.string()),
                     "match_probability": pa.array([], pa.float64()), "match_weight": pa.array([], pa.float64()),
                     "explanation": pa.array([], pa.string())})


def _explained(frame: Any, levels: dict[str, dict[int, str]], names: list[str], columns: list[str]) -> pa.Table:
    """Ids, scores and one JSON explanation per pair: each comparison's level,
    match weight (term-frequency adjustment included) and the two values."""
    import orjson

    def col(name: str) -> list[Any]:
        return frame[name].tolist() if name in columns else [None] * len(frame)

    def text(value: Any) -> str | None:
        return None if value is None or value != value else str(value)  # NaN is missing

    per_comparison = []
    for name in names:
        weights, tf = col(f"mw_{name}"), col(f"mw_tf_adj_{name}")
        per_comparison.append((name, levels.get(name, {}), col(f"gamma_{name}"), weights, tf,
                               col(f"{name}_l"), col(f"{name}_r")))
    explanations = []
    for i in range(len(frame)):
        parts = []
        for name, named_levels, gamma, weights, tf, left, right in per_comparison:
            weight = float(weights[i] or 0) + float(tf[i] or 0)
            g = gamma[i]
            parts.append({"comparison": name, "level": named_levels.get(int(g)) if g is not None else None,
                          "match_weight": round(weight, 4), "left": text(left[i]), "right": text(right[i])})
        explanations.append(orjson.dumps(parts).decode())
    out = {
        "unique_id_l": pa.array([str(v) for v in col("unique_id_l")], pa.string()),
        "unique_id_r": pa.array([str(v) for v in col("unique_id_r")], pa.string()),
        "match_probability": pa.array(col("match_probability"), pa.float64()),
        "match_weight": pa.array(col("match_weight"), pa.float64()),
        "explanation": pa.array(explanations, pa.string()),
    }
    for c in columns:
        if c.startswith(("source_dataset_", "profile_id_")):
            out[c] = pa.array([text(v) for v in col(c)], pa.string())
    return pa.table(out)
