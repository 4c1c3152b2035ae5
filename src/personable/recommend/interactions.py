"""Implicit feedback as a user x item matrix, the common input of every
candidate generator.

Rows are users (profiles, or MovieLens users), columns items; a cell holds the
confidence of the user's interest, the sum of the weights of their
interactions with the item (by default a view counts 1, a cart add 3, a
purchase 5: stronger signals say more). The last time of each pair is kept
for recency ("recently viewed", time-decayed trending).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .config import DEFAULT_WEIGHTS  # kept beside the configuration, which must not import pandas


@dataclass
class Interactions:
    users: np.ndarray                 # row -> user id
    items: np.ndarray                 # column -> item id
    matrix: sp.csr_matrix             # confidence per (user, item)
    last_seen: sp.csr_matrix          # seconds since the epoch of the last interaction (0: none)
    kinds: pd.DataFrame = field(default_factory=pd.DataFrame)   # user, item, kind, ts: the raw log (optional)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, weights: dict[str, float] | None = None,
                   items: np.ndarray | None = None, users: np.ndarray | None = None) -> "Interactions":
        """``frame``: columns user, item, and either weight or kind (an event
        name looked up in ``weights``), and optionally ts (a timestamp)."""
        if frame.empty:
            raise ValueError("no interactions to learn from")
        frame = frame.copy()
        if "weight" not in frame:
            table = weights or DEFAULT_WEIGHTS
            frame["weight"] = frame["kind"].map(table).fillna(0.0)
            frame = frame[frame.weight > 0]
        user_ids = np.asarray(users) if users is not None else np.sort(frame.user.astype(str).unique())
        item_ids = np.asarray(items) if items is not None else np.sort(frame.item.astype(str).unique())
        u = pd.Index(user_ids).get_indexer(frame.user.astype(str))
        i = pd.Index(item_ids).get_indexer(frame.item.astype(str))
        keep = (u >= 0) & (i >= 0)
        shape = (len(user_ids), len(item_ids))
        matrix = sp.csr_matrix((frame.weight.to_numpy(float)[keep], (u[keep], i[keep])), shape=shape)
        matrix.sum_duplicates()
        if "ts" in frame:
            seconds = pd.to_datetime(frame.ts, utc=True).astype("int64").to_numpy()[keep] / 1e9
            pairs = pd.DataFrame({"u": u[keep], "i": i[keep], "s": seconds}).groupby(["u", "i"]).s.max().reset_index()
            last = sp.csr_matrix((pairs.s.to_numpy(), (pairs.u.to_numpy(), pairs.i.to_numpy())), shape=shape)
        else:
            last = sp.csr_matrix(shape)
        kinds = frame.loc[keep, [c for c in ("user", "item", "kind", "ts") if c in frame]].reset_index(drop=True)
        return cls(user_ids.astype(str), item_ids.astype(str), matrix.tocsr(), last.tocsr(), kinds)

    @property
    def shape(self) -> tuple[int, int]:
        shape: tuple[int, int] = self.matrix.shape   # scipy.sparse: Any to the checker
        return shape

    def user_index(self, user: str) -> int | None:
        found = np.flatnonzero(self.users == user)
        return int(found[0]) if len(found) else None

    def seen(self) -> sp.csr_matrix:
        """1 where the user interacted with the item at all."""
        out = self.matrix.copy()
        out.data = np.ones_like(out.data)
        return out
