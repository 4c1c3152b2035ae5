"""The ``privacy:`` section of personable.yaml: purposes, where consent comes
from, what unknown consent means per region, and which purpose each use asks for::

    privacy:
      policy_version: "2026-11"        # recorded with every consent change
      purposes: [analytics, personalization, marketing_email, marketing_sms, advertising, sale_or_share]
      categories:                      # Segment's context.consent.categoryPreferences names -> purposes
        Marketing: [marketing_email, marketing_sms]
        DataSharing: [sale_or_share]
      gpc_denies: [sale_or_share]      # what a browser's Sec-GPC: 1 withdraws
      regions: {eu: [DE, FR, ...]}     # country code (the profile's `country` trait) -> region
      unknown_country_region: null     # the region of a profile whose country is unknown (null: "*")
      defaults:                        # consent when a profile has none for a purpose, per region
        marketing_email: {eu: false, "*": true}
      uses:                            # the purpose each use of a profile asks for
        recommendations: personalization

A purpose absent from ``defaults`` (or a region absent from its entry, with no
``"*"``) is opt-in: without a recorded grant it is refused.

Kept free of heavy imports (``import personable.config`` must stay fast).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from ..settings import Section, fail

DEFAULT_PURPOSES = ("analytics", "personalization", "marketing_email", "marketing_sms", "advertising",
                    "sale_or_share")
ANY_REGION = "*"

# The category names Segment's Consent Management and common consent managers
# send in context.consent.categoryPreferences. A name that is itself a purpose
# needs no entry; a name neither listed nor a purpose is recorded as it came.
DEFAULT_CATEGORIES: dict[str, list[str]] = {
    "Analytics": ["analytics"], "Personalization": ["personalization"], "Functional": ["personalization"],
    "Marketing": ["marketing_email", "marketing_sms"], "Advertising": ["advertising"],
    "DataSharing": ["sale_or_share"], "email_marketing": ["marketing_email"], "sms_marketing": ["marketing_sms"],
}

# EU and EEA members and the UK: GDPR (and UK GDPR) make marketing opt-in.
EU_COUNTRIES = ("AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
                "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO", "GB")

# Opt-in for marketing, advertising and sale in the EU; opt-out elsewhere (CCPA's model).
DEFAULT_DEFAULTS: dict[str, dict[str, bool]] = {
    "analytics": {ANY_REGION: True},
    "personalization": {ANY_REGION: True},
    "marketing_email": {"eu": False, ANY_REGION: True},
    "marketing_sms": {"eu": False, ANY_REGION: True},
    "advertising": {"eu": False, ANY_REGION: True},
    "sale_or_share": {"eu": False, ANY_REGION: True},
}

# Every use of a profile that consent governs, and the purpose it asks for by default.
USES = ("collection", "recommendations", "training", "scoring", "segment_export")
# Traits that name or locate a person (GDPR's "personal data" beyond ids).
PII_TRAITS = ("email", "phone", "first_name", "last_name", "name", "address", "street", "postcode", "birth_date",
              "birthday")
# What the write path does with the events of a profile refused for collection.
COLLECTION_MODES = ("minimize", "drop", "keep")


def _country(code: str) -> str:
    if len(code) != 2 or not code.isalpha():
        raise ValueError(f"must be a two-letter ISO 3166 country code, got {code!r}")
    return code.upper()


Name = Annotated[str, Field(min_length=1, max_length=64)]


class UsesSection(Section):
    """The purpose each use of a profile asks the consent policy for."""

    collection: Name = "analytics"
    """Storing a profile's events as its behaviour (what happens to refused ones: privacy.collection_refused)."""
    recommendations: Name = "personalization"
    """Personalized recommendations; a refused profile gets the popular list."""
    training: Name = "analytics"
    """A profile's rows in model training sets."""
    scoring: Name = "personalization"
    """Model scores written for a profile."""
    segment_export: Name = "advertising"
    """Segment member exports to files (for third parties)."""


Days = Annotated[int, Field(ge=1)] | None


class RetentionSection(Section):
    """How long data is kept (docs/privacy.md, "Retention"); null: forever."""

    events: dict[Name, Days] = {}
    """Event type (page, track, ...) or track event name (Product Viewed) -> days; "*" for every other event."""
    mode: Literal["anonymize", "delete"] = "anonymize"
    """Expired events: anonymize (kept only as counts, in events_minimized: the aggregates stay true) or delete."""
    quarantine_days: Days = 30
    """Records that failed validation."""
    refusals_days: Days = None
    """The consent policy's refusals."""
    minimized_days: Days = None
    """Minimized events (counts without ids)."""

    @property
    def configured(self) -> bool:
        return any(v is not None for v in self.events.values()) or any(
            d is not None for d in (self.quarantine_days, self.refusals_days, self.minimized_days))


class DpSection(Section):
    """Anonymized aggregates: differential privacy for reports that leave the project (docs/privacy.md)."""

    budget: Annotated[float, Field(gt=0)] = 10.0
    """The project's total ε: releases are refused once they have spent it."""
    k: Annotated[int, Field(ge=0)] = 10
    """Cells whose released count is below this are suppressed (k-anonymity); a release may ask for more."""
    events: Annotated[list[Name], Field(min_length=1)] = ["Product Viewed", "Product Added", "Checkout Started",
                                                           "Order Completed"]
    """The cells of an event_counts release, fixed here: cells taken from the data would say which events exist."""


ANY_SOURCE = "*"
FieldPath = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$")]


class MinimizeRule(Section):
    """What to keep of one field of a source's events, cut at collection (privacy/minimize.py)."""

    field: FieldPath
    """A dotted path into the event: context.ip, context.userAgent, properties.query, traits.birthday."""
    keep: Literal["nothing", "ip_prefix", "device_class", "truncate"] = "nothing"
    """nothing (the field is dropped), ip_prefix (the address's network), device_class (mobile, tablet, desktop,
    bot), truncate (the first ``length`` characters)."""
    source: Name = ANY_SOURCE
    """The source whose events it applies to ("*": every source)."""
    ipv4_bits: Annotated[int, Field(ge=0, le=32)] = 24
    ipv6_bits: Annotated[int, Field(ge=0, le=128)] = 48
    length: Annotated[int, Field(ge=0)] = 0
    """truncate: the characters kept (at least 1)."""

    @model_validator(mode="after")
    def _length_to_truncate(self) -> "MinimizeRule":
        if self.keep == "truncate" and self.length < 1:
            fail([(("length",), "keep: truncate needs the characters to keep (length: 1 or more)", self.length)])
        return self


class PrivacySection(Section):
    """Consent per purpose, enforced at every use (docs/privacy.md)."""

    policy_version: Name = "1"
    """The privacy policy in force: recorded with every consent change."""
    purposes: Annotated[list[Name], Field(min_length=1)] = list(DEFAULT_PURPOSES)
    """What consent is asked for."""
    categories: dict[Name, list[Name]] = {k: list(v) for k, v in DEFAULT_CATEGORIES.items()}
    """Consent category names (Segment's context.consent.categoryPreferences, traits.consent) -> purposes."""
    gpc_denies: list[Name] = ["sale_or_share"]
    """Purposes a Global Privacy Control signal (the Sec-GPC: 1 header, or context.consent.gpc) withdraws."""
    regions: dict[Name, list[Annotated[str, AfterValidator(_country)]]] = {"eu": list(EU_COUNTRIES)}
    """Region name -> country codes (read from the profile's region_trait)."""
    region_trait: Name = "country"
    """The profile trait holding its ISO 3166 two-letter country code."""
    unknown_country_region: Name | None = None
    """The region whose defaults apply when a profile's country is unknown (null: the "*" defaults)."""
    defaults: dict[Name, dict[Name, bool]] = {k: dict(v) for k, v in DEFAULT_DEFAULTS.items()}
    """Consent assumed when a profile has none for a purpose: per region, "*" for any other; absent: refused."""
    uses: UsesSection = UsesSection()
    retention: RetentionSection = RetentionSection()
    dp: DpSection = DpSection()
    pii_traits: list[Name] = list(PII_TRAITS)
    """Traits that hold personal data beyond ids: an erasure seeks their values everywhere (raw text included)."""
    minimize: list[MinimizeRule] = []
    """Fields cut down at collection, per source, before anything keeps them (e.g. the IP to its /24)."""
    collection_refused: Literal[COLLECTION_MODES] = "minimize"  # type: ignore[valid-type]
    """The events of a profile refused for collection: minimize (kept only as counts: type, name, time, source,
    device, channel, revenue, without ids, context, traits or properties, and linked to no profile), drop (not
    stored), or keep (stored as any other). The profile itself keeps its identities, traits and consents."""

    @model_validator(mode="after")
    def _known_names(self) -> "PrivacySection":
        purposes, regions = set(self.purposes), set(self.regions)
        problems: list[tuple[tuple[str | int, ...], str, Any]] = []

        def purpose(loc: tuple[str | int, ...], name: str) -> None:
            if name not in purposes:
                problems.append((loc, f"unknown purpose {name!r}; privacy.purposes lists "
                                      f"{', '.join(self.purposes)}", name))

        for category, targets in self.categories.items():
            for i, name in enumerate(targets):
                purpose(("categories", category, i), name)
        for i, name in enumerate(self.gpc_denies):
            purpose(("gpc_denies", i), name)
        for name, by_region in self.defaults.items():
            purpose(("defaults", name), name)
            for region in by_region:
                if region != ANY_REGION and region not in regions:
                    problems.append((("defaults", name, region), f"unknown region {region!r}; privacy.regions "
                                     f"defines {', '.join(sorted(regions)) or 'none'} (\"*\": any other)", region))
        for use in USES:
            purpose(("uses", use), getattr(self.uses, use))
        if self.unknown_country_region is not None and self.unknown_country_region not in regions:
            problems.append((("unknown_country_region",), f"unknown region {self.unknown_country_region!r}",
                             self.unknown_country_region))
        seen: dict[str, str] = {}
        for region, countries in self.regions.items():
            for i, code in enumerate(countries):
                if seen.setdefault(code, region) != region:
                    problems.append((("regions", region, i), f"{code} is already in region {seen[code]!r}", code))
        fail(problems)
        return self
