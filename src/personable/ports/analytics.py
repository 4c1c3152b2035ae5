"""Analytics: the domain's queries, as Ibis expressions, run by a backend.

The expressions are built over the unbound tables of ``personable.tables``;
the adapter compiles them for its own dialect. No SQL text crosses this port.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import pyarrow as pa

if TYPE_CHECKING:
    import ibis.expr.types as ir


class Analytics(Protocol):
    def execute(self, expr: "ir.Table") -> pa.Table: ...
