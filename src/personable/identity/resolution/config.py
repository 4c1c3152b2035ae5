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
from typing import Any

from ...errors import ErrorList

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


def parse_resolution(raw: Any, errors: ErrorList) -> ResolutionConfig:
    if raw is None:
        return ResolutionConfig()
    path = "identity.resolution"
    if not isinstance(raw, dict):
        errors.add(path, "must be a mapping (fields, blocking, match_probability, ...)")
        return ResolutionConfig()
    fields_raw = raw.get("fields", DEFAULT_FIELDS)
    fields: list[tuple[str, str]] = []
    if not isinstance(fields_raw, dict) or not fields_raw:
        errors.add(f"{path}.fields", "must be a non-empty mapping of trait: comparison")
    else:
        for name, kind in fields_raw.items():
            if kind not in COMPARISONS:
                errors.add(f"{path}.fields.{name}", f"must be one of {', '.join(COMPARISONS)}, got {kind!r}")
            else:
                fields.append((str(name), kind))
    names = {f for f, _ in fields}
    blocking_raw = raw.get("blocking", [list(b) for b in DEFAULT_BLOCKING])
    blocking: list[tuple[str, ...]] = []
    if not isinstance(blocking_raw, list) or not blocking_raw:
        errors.add(f"{path}.blocking", "must be a non-empty list of field lists, e.g. [[email], [first_name, last_name]]")
    else:
        for i, rule in enumerate(blocking_raw):
            rule = [rule] if isinstance(rule, str) else rule
            if not isinstance(rule, list) or not rule or not all(isinstance(f, str) for f in rule):
                errors.add(f"{path}.blocking[{i}]", "must be a list of field names")
                continue
            missing = [f for f in rule if f not in names]
            if missing:
                errors.add(f"{path}.blocking[{i}]", f"uses fields not under fields: {', '.join(missing)}")
                continue
            blocking.append(tuple(rule))
    out: dict[str, Any] = {}
    for key, kind, low, high in (("match_probability", float, 0.0, 1.0), ("review_probability", float, 0.0, 1.0),
                                 ("max_shared", int, 1, None), ("max_cluster_size", int, 2, None),
                                 ("u_max_pairs", float, 1e3, None)):
        if key not in raw:
            continue
        value = raw[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool) or value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            errors.add(f"{path}.{key}", f"must be a {kind.__name__} {bounds}, got {raw[key]!r}")
            continue
        out[key] = value
    merge_known = raw.get("merge_known_users", False)
    if not isinstance(merge_known, bool):
        errors.add(f"{path}.merge_known_users", "must be true or false")
        merge_known = False
    cfg = ResolutionConfig(fields=tuple(fields) or ResolutionConfig.fields, blocking=tuple(blocking) or DEFAULT_BLOCKING,
                           merge_known_users=merge_known, **out)
    if cfg.review_probability > cfg.match_probability:
        errors.add(f"{path}.review_probability", "must not be above match_probability")
    return cfg
