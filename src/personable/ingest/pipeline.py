"""Orchestration of one batch through the write path.

The store does the bulk work in its own engine (SQL on DuckDB); the decisions
that are domain logic -- how identifiers are normalized and keyed (``identity/keyed.py``), and how the
identity graph is stitched -- are made here, in Python, over the small set of
distinct identifiers in the batch, as arrays.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..config import Config
from ..identity.identifiers import normalize_identifier
from ..identity.components import plan_stitch
from ..ports import BatchWriter, IngestReport, PipelineSettings
from ..quality.apply import standardize_values
from ..quality.rules import batch_violations

if TYPE_CHECKING:
    from ..identity.keyed import IdentityHasher


def settings_from(cfg: Config) -> PipelineSettings:
    return PipelineSettings(
        junk_values=tuple(sorted(cfg.identity.junk_values)),
        identifier_traits=tuple((r.trait, r.kind) for r in cfg.identity.identifiers),
        max_future_hours=cfg.max_future_skew_hours,
        session_timeout_minutes=cfg.session_timeout_minutes,
        trait_default_policy=cfg.trait_default_policy,
        trait_policies=tuple(sorted(cfg.trait_policies.items())),
        reporting_currency=cfg.quality.reporting_currency,
        currency_rates=tuple(sorted(cfg.quality.rates().items())),
        order_event=cfg.order_event,
        consent_categories=tuple(sorted((k, tuple(v)) for k, v in cfg.privacy.categories.items())),
        gpc_denies=tuple(cfg.privacy.gpc_denies),
        policy_version=cfg.privacy.policy_version,
        privacy_json=cfg.privacy.model_dump_json(),
        minimize_json=json.dumps([r.model_dump() for r in cfg.privacy.minimize]) if cfg.privacy.minimize else "",
    )


class WritePath:
    """The domain's half of every batch: quality, identifiers, stitching.

    Built once per configuration; the quality rules' expression is built once
    here too (the store compiles it for its dialect and caches that)."""

    def __init__(self, cfg: Config, hasher: "IdentityHasher"):
        self.cfg, self.hasher = cfg, hasher
        self.settings = settings_from(cfg)
        self.violations = batch_violations(list(cfg.quality.fields))
        self.quarantine_fields = {f.name for f in cfg.quality.fields if f.on_invalid == "quarantine"}

    def write(self, batch: BatchWriter) -> IngestReport:
        cfg = self.cfg
        fields = [(f.name, f.region_from) for f in cfg.quality.fields]
        values = batch.trait_values(fields)
        batch.set_standardized(standardize_values(values, cfg.quality, cfg.identity.default_region))
        if fields:
            batch.check_rules(self.violations, self.quarantine_fields)
        batch.screen()
        ids = batch.identifier_values()
        batch.set_identifier_values([(kind, raw, identifier_node(kind, raw, cfg, self.hasher)) for kind, raw in ids])
        links = batch.links()
        existing = batch.existing()
        plan = plan_stitch(links, existing, cfg.identity.max_user_ids_per_profile,
                           shared=batch.shared_nodes(), max_ids_per_identifier=cfg.identity.max_ids_per_identifier)
        batch.apply(plan)
        return batch.report()


def identifier_node(kind: str, raw: str, cfg: Config, hasher: "IdentityHasher") -> str | None:
    rule_hash = {r.kind: r.hash for r in cfg.identity.identifiers}.get(kind, True)
    norm = normalize_identifier(kind, raw, cfg.identity.default_region, cfg.identity.junk_values)
    if norm is None:
        return None
    return hasher.digest(norm) if rule_hash else norm
