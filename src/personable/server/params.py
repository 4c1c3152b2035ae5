"""Typed query parameters shared by the routes.

Every whole-number query parameter is bounded to 64 bits: a larger one (e.g.
``?limit=99999999999999999999``) reached the store and failed there as a 500;
bounded here it is a 400 naming ``query.<name>``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

Int = Annotated[int, Query(ge=INT64_MIN, le=INT64_MAX)]
OptionalInt = Annotated[int | None, Query(ge=INT64_MIN, le=INT64_MAX)]
