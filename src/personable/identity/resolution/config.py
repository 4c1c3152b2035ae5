"""The ``identity.resolution`` section of personable.yaml.

    identity:
      resolution:
        fields:                      # trait: how two values are compared
          first_name: name
          last_name: name
          email: email
          phone: phone
          country: exact
          signup_date: date
        blocking:                    # candidate pairs agree on all fields of one rule
          - [email]
          - [phone]
          - [first_name, last_name]
        match_probability: 0.95      # at or above: merged automatically
        review_probability: 0.6      # between the two: a person decides
        max_shared: 5                # a value on more records than this is not evidence
        max_cluster_size: 10         # larger clusters are blocked and reported
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from ...settings import Section, fail, one_of

COMPARISONS = ("name", "email", "phone", "exact", "date", "text", "postcode", "number")

DEFAULT_FIELDS = {"first_name": "name", "last_name": "name", "email": "email", "phone": "phone",
                  "birth_date": "date", "postcode": "postcode", "city": "text", "country": "exact"}
DEFAULT_BLOCKING = (("email",), ("phone",), ("first_name", "last_name"), ("birth_date", "first_name"),
                    ("birth_date", "last_name"), ("birth_date", "postcode"))


@dataclass(frozen=True)
class ResolutionConfig:
    fields: tuple[tuple[str, str], ...] = tuple(DEFAULT_FIELDS.items())
    blocking: tuple[tuple[str, ...], ...] = DEFAULT_BLOCKING
    match_probability: float = 0.95
    review_probability: float = 0.6
    max_shared: int = 5
    max_cluster_size: int = 10
    merge_known_users: bool = False   # auto-merge two profiles that both have a userId?
    u_max_pairs: float = 1e6

    @property
    def field_names(self) -> list[str]:
        return [f for f, _ in self.fields]


# One blocking rule: a field name, or a list of them.
BlockingRule = one_of({"field": str, "fields": Annotated[list[str], Field(min_length=1)]},
                      lambda v: "field" if isinstance(v, str) else "fields" if isinstance(v, list) else None,
                      "must be a field name or a list of field names")


class ResolutionSection(Section):
    """Probabilistic identity resolution, `personable resolve` (docs/identity-resolution.md)."""

    fields: Annotated[dict[str, Literal[COMPARISONS]], Field(min_length=1)] = dict(DEFAULT_FIELDS)  # type: ignore[valid-type]
    """trait: how two values are compared (name, email, phone, exact, date, text, postcode, number)."""
    blocking: Annotated[list[BlockingRule], Field(min_length=1)] = [list(b) for b in DEFAULT_BLOCKING]  # type: ignore[valid-type]
    """Candidate pairs agree on every field of one rule, e.g. [[email], [first_name, last_name]]."""
    match_probability: Annotated[float, Field(ge=0, le=1)] = 0.95
    """At or above: merged automatically (explained, undoable)."""
    review_probability: Annotated[float, Field(ge=0, le=1)] = 0.6
    """Between this and match_probability: a person decides (`personable resolve review`)."""
    max_shared: Annotated[int, Field(ge=1)] = 5
    """A value on more records than this is not evidence."""
    max_cluster_size: Annotated[int, Field(ge=2)] = 10
    """A bigger cluster is blocked and reported, not merged."""
    merge_known_users: bool = False
    """Auto-merge two profiles that both have a userId."""
    u_max_pairs: Annotated[float, Field(ge=1e3)] = 1e6
    """How many random pairs estimate the u probabilities."""

    @model_validator(mode="after")
    def _consistent(self) -> "ResolutionSection":
        problems: list[tuple[tuple[str | int, ...], str, Any]] = []
        for i, rule in enumerate(self.blocking):
            missing = [f for f in _as_list(rule) if f not in self.fields]
            if missing:
                problems.append((("blocking", i), f"uses fields not under fields: {', '.join(missing)}", rule))
        if self.review_probability > self.match_probability:
            problems.append((("review_probability",), "must not be above match_probability", self.review_probability))
        fail(problems)
        return self

    def to_config(self) -> ResolutionConfig:
        return ResolutionConfig(
            fields=tuple(self.fields.items()), blocking=tuple(tuple(_as_list(b)) for b in self.blocking),
            match_probability=self.match_probability, review_probability=self.review_probability,
            max_shared=self.max_shared, max_cluster_size=self.max_cluster_size,
            merge_known_users=self.merge_known_users, u_max_pairs=self.u_max_pairs)


def _as_list(rule: str | list[str]) -> list[str]:
    return [rule] if isinstance(rule, str) else list(rule)
