"""The consent policy: may purpose P use this profile now?

One rule, asked by every use of a profile (recommendations, model training
and scoring, segment exports; decisions and journeys later):

1. a recorded consent for the purpose decides (the newest observation wins,
   ``profiles/traits.py``): ``granted`` or ``denied``;
2. otherwise the configured default for the profile's region:
   ``default_allow`` or ``default_deny`` (a purpose or region with no default
   is opt-in, so unknown means no).

The region comes from the profile's country trait (``privacy.region_trait``,
an ISO 3166 two-letter code) through ``privacy.regions``.

The rule is written once, as data (:class:`ConsentPolicy`'s tables); it is
evaluated in Python for one profile document on the request path
(:meth:`ConsentPolicy.for_document`), and as an Ibis expression over the
store for a whole population (:meth:`ConsentPolicy.verdicts`). A test holds
the two to the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import ValidationFailed
from .config import ANY_REGION, USES, PrivacySection

if TYPE_CHECKING:
    import ibis.expr.types as ir

GRANTED, DENIED, DEFAULT_ALLOW, DEFAULT_DENY = "granted", "denied", "default_allow", "default_deny"
REASONS = (GRANTED, DENIED, DEFAULT_ALLOW, DEFAULT_DENY)


@dataclass(frozen=True)
class Verdict:
    purpose: str
    allowed: bool
    reason: str     # one of REASONS
    region: str

    def as_dict(self) -> dict[str, Any]:
        return {"purpose": self.purpose, "allowed": self.allowed, "reason": self.reason, "region": self.region}


class ConsentPolicy:
    def __init__(self, settings: PrivacySection | None = None):
        self.settings = settings or PrivacySection()
        self._region_of = {c: r for r, cs in self.settings.regions.items() for c in cs}

    # -- the rule's data -----------------------------------------------------------------
    def purpose_for(self, use: str) -> str:
        if use not in USES:
            raise ValueError(f"unknown use {use!r}; uses: {', '.join(USES)}")
        return str(getattr(self.settings.uses, use))

    def check_purpose(self, purpose: str) -> str:
        if purpose not in self.settings.purposes:
            raise ValidationFailed(f"unknown purpose {purpose!r}; configured: {', '.join(self.settings.purposes)}")
        return purpose

    def region(self, country: Any) -> str:
        if isinstance(country, str) and country.strip():
            return self._region_of.get(country.strip().upper(), ANY_REGION)
        return self.settings.unknown_country_region or ANY_REGION

    def default(self, purpose: str, region: str) -> bool:
        by_region = self.settings.defaults.get(purpose, {})
        return bool(by_region.get(region, by_region.get(ANY_REGION, False)))

    # -- one profile ---------------------------------------------------------------------
    def decide(self, purpose: str, consents: Mapping[str, Any], country: Any = None) -> Verdict:
        """``consents``: purpose -> {"granted": bool, ...} (a profile document's
        ``consents``) or purpose -> bool."""
        region = self.region(country)
        recorded = consents.get(purpose)
        if isinstance(recorded, Mapping):
            recorded = recorded.get("granted")
        if isinstance(recorded, bool):
            return Verdict(purpose, recorded, GRANTED if recorded else DENIED, region)
        allowed = self.default(purpose, region)
        return Verdict(purpose, allowed, DEFAULT_ALLOW if allowed else DEFAULT_DENY, region)

    def for_document(self, purpose: str, doc: Mapping[str, Any]) -> Verdict:
        """The verdict for a profile document (``profiles/document.py``)."""
        trait = (doc.get("traits") or {}).get(self.settings.region_trait)
        value = trait.get("value") if isinstance(trait, Mapping) else trait
        return self.decide(purpose, doc.get("consents") or {}, value)

    # -- a population, in the store ------------------------------------------------------
    def verdicts(self, purpose: str, profiles: "ir.Table") -> "ir.Table":
        """``profiles`` (any table with a ``profile_id``) with ``allowed`` and
        ``reason`` for ``purpose``: the same rule as :meth:`decide`."""
        import ibis

        from ..tables import PROFILE_CONSENTS, TRAIT_VALUES

        c = PROFILE_CONSENTS.filter(PROFILE_CONSENTS.purpose == purpose).select("profile_id", "granted")
        t = TRAIT_VALUES.filter(TRAIT_VALUES.field == self.settings.region_trait)
        country = t.select(profile_id=t.profile_id, _country=t.value.strip().upper())
        # Renamed: a select of the only column an unbound table declares compiles
        # to SELECT *, which would bring every column of the real relation.
        ids = profiles.select(_pid=profiles.profile_id).distinct()
        j = ids.left_join(c, ids._pid == c.profile_id).left_join(country, ids._pid == country.profile_id)
        known = j._country.notnull() & (j._country != "")
        unknown_region = self.settings.unknown_country_region or ANY_REGION
        region_cases = [(known & j._country.isin(list(cs)), ibis.literal(r)) for r, cs in self.settings.regions.items()]
        region = ibis.cases(*region_cases, else_=ibis.ifelse(known, ANY_REGION, unknown_region)) \
            if region_cases else ibis.ifelse(known, ANY_REGION, unknown_region)
        regions = [*self.settings.regions, ANY_REGION]
        default = ibis.cases(*[(region == r, ibis.literal(self.default(purpose, r))) for r in regions],
                             else_=ibis.literal(self.default(purpose, ANY_REGION)))
        allowed = ibis.coalesce(j.granted, default)
        reason = ibis.cases((j.granted, GRANTED), (~j.granted, DENIED), (default, DEFAULT_ALLOW),
                            else_=ibis.literal(DEFAULT_DENY))
        return j.select(profile_id=j._pid, allowed=allowed, reason=reason, region=region)
