"""Recommendations on a project: the catalog, training, the precomputed
top-N per profile, and the request-time answer. Reached as ``engine.recommend``.

``train`` learns from the store's product interactions (views, cart adds,
purchases) and the catalog, registers a version in the model registry
(``recommend``), and writes each profile's top ``top_n`` with the reason for
each item into the online store. ``recommend`` reads that list and adjusts it
with what the request knows and the batch job could not: items viewed or put
in the cart since, the device in hand. It then applies the placement's rules
(purchased, stock, category caps, diversity). A profile with no history gets
what is popular among profiles like it (``fallback_group``), or what is
popular.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np
import orjson
import pandas as pd
import scipy.sparse as sp

from ..errors import NotFound, ValidationFailed
from ..privacy.batch import BatchConsent
from . import generators as G
from .catalog import ORDER_EVENT, interactions_expr, items_from_events, read_catalog_file
from .config import RecommendConfig
from .interactions import Interactions
from .ranker import CandidateRanker
from .rules import apply_rules

if TYPE_CHECKING:
    from ..clock import Clock
    from ..config import Config
    from ..ports import Analytics, Catalog, ModelRegistry, ProfileReads
    from ..privacy.consent import ConsentPolicy
    from ..privacy.refusals import RefusalLog

Resolve = Callable[[str], "str | None"]

BOOSTED_NEIGHBOURS = 30     # per item viewed or in the cart, at request time
USER_TRAITS = ("rfm_segment", "lifecycle_stage", "cluster", "churn_risk", "clv_12m")
LOCATION_TRAITS = ("country",)
REASONS = {
    "als": "people with similar taste liked it", "bpr": "people with similar taste liked it",
    "ease": "people with similar taste liked it", "cooccurrence": "because you viewed {item}",
    "complementary": "goes with {item}", "content": "similar to {item}", "same_category": "more {category}",
    "trending": "trending now", "popularity": "popular right now", "recently_viewed": "you viewed it recently",
}


def _bought_together(order_event: str) -> G.Complementary:
    return G.Complementary(kinds=(order_event,))


def make_generator(name: str, order_event: str = ORDER_EVENT) -> G.Generator:
    if name == "complementary":
        return _bought_together(order_event)
    return G.GENERATORS[name]()


def _available(in_stock: pd.Series) -> np.ndarray:
    """Unknown availability counts as in stock."""
    available: np.ndarray = in_stock.map(lambda v: True if v is None or pd.isna(v) else bool(v)).to_numpy(bool)
    return available   # typed here: pandas is Any to the checker


def _serving_path(artifact: Path) -> Path:
    return artifact.with_name(artifact.stem + "-serving.joblib")


@dataclass
class Recommender:
    """What serving needs, in memory: the fitted ranker's lists are in the
    online store; this holds the catalog and the item-item tables used to
    adjust them at request time."""

    version: int
    item_ids: np.ndarray
    names: np.ndarray
    categories: np.ndarray
    in_stock: np.ndarray
    viewed_with: sp.csr_matrix            # item-item: viewed by the same people
    bought_with: sp.csr_matrix            # item-item: bought by the same people
    vectors: sp.csr_matrix | None         # item text vectors, for diversity
    popular: np.ndarray                   # item indexes, most popular first
    popular_by_group: dict[str, np.ndarray]
    device_lift: dict[str, np.ndarray]    # device -> per-item multiplier from its category's share on that device
    index: dict[str, int] = field(default_factory=dict)

    DENSE_ITEMS = 2000   # up to this many items, item-item tables are kept dense: lookups in microseconds

    def __post_init__(self) -> None:
        self.index = {item: i for i, item in enumerate(self.item_ids.tolist())}
        small = len(self.item_ids) <= self.DENSE_ITEMS
        self._dense: dict[str, np.ndarray] = {}   # viewed, bought, content: item x item
        if small:
            self._dense = {"viewed": self.viewed_with.toarray().astype(np.float32),
                           "bought": self.bought_with.toarray().astype(np.float32)}
            if self.vectors is not None:
                self._dense["content"] = (self.vectors @ self.vectors.T).toarray().astype(np.float32)

    def __getstate__(self) -> dict[str, Any]:
        # The lookup index and dense tables are derived: rebuilt on load, not stored.
        return {k: v for k, v in self.__dict__.items() if k not in ("index", "_dense")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__post_init__()

    def related(self, table: str, item: int, others: list[int]) -> np.ndarray:
        """Similarity of ``item`` to each of ``others`` in one of the item-item
        tables: viewed (together), bought (together), content."""
        dense = self._dense.get(table)
        if dense is not None:
            return dense[item, others]
        if table == "content":
            if self.vectors is None:
                same: np.ndarray = (self.categories[others] == self.categories[item]).astype(float)   # Any: typed
                return same
            return np.asarray((self.vectors[others] @ self.vectors[item].T).todense()).ravel()
        matrix = self.viewed_with if table == "viewed" else self.bought_with
        return np.asarray(matrix[item, others].todense()).ravel()

    def pairwise(self, items: list[int]) -> np.ndarray:
        """For diversity: how alike each pair of items is (their text, else their category)."""
        dense = self._dense.get("content")
        if dense is not None:
            return dense[np.ix_(items, items)]
        alike: np.ndarray   # the sparse vectors and the catalog's columns are Any to the checker
        if self.vectors is not None:
            block = self.vectors[items]
            alike = (block @ block.T).toarray()
        else:
            cats = self.categories[items]
            alike = (cats[:, None] == cats[None, :]).astype(float)
        return alike


class RecommendService:
    def __init__(self, config: "Config", clock: "Clock", analytics: "Analytics", catalog: "Catalog",
                 registry: "ModelRegistry", online: "ProfileReads", resolve: Resolve, policy: "ConsentPolicy",
                 refusals: "RefusalLog"):
        self.config: RecommendConfig = config.recommend
        self.policy, self.refusals = policy, refusals
        self.consent = BatchConsent(policy, analytics, refusals)   # training reads only allowed profiles
        self.order_event = config.order_event
        self.clock, self.analytics, self.catalog_store = clock, analytics, catalog
        self.registry, self.online, self.resolve = registry, online, resolve
        self.dir = config.state_dir / "recommend"
        self._served: Recommender | None = None

    # -- catalog --------------------------------------------------------------------------------------
    def import_catalog(self, path: str | Path) -> dict[str, Any]:
        table = read_catalog_file(path)
        written = self.catalog_store.upsert_items(table, "catalog", self.clock.now())
        if self._served is not None:
            self._refresh_stock(self._served)
        return {"items": written, "file": str(path)}

    def catalog(self) -> pd.DataFrame:
        """The catalog, with items seen only in events added first."""
        seen = self.analytics.execute(items_from_events())
        if seen.num_rows:
            import pyarrow as pa

            seen = seen.append_column("description", pa.nulls(seen.num_rows, pa.string())) \
                .append_column("in_stock", pa.nulls(seen.num_rows, pa.bool_())) \
                .append_column("attributes", pa.nulls(seen.num_rows, pa.string()))
            self.catalog_store.upsert_items(seen, "events", self.clock.now(), only_new=True)
        from ..tables import ITEMS as I

        return self.analytics.execute(I.select("item_id", "name", "category", "brand", "price", "description",
                                               "in_stock").order_by("item_id")).to_pandas()

    # -- data -----------------------------------------------------------------------------------------
    def _interactions(self) -> pd.DataFrame:
        since = self.clock.now() - timedelta(days=self.config.lookback_days)
        frame = self.analytics.execute(self.consent.only_allowed(
            interactions_expr(tuple(self.config.weights), since, self.order_event), key="user")).to_pandas()
        return frame[frame.ts < self.clock.now()]

    def _user_features(self) -> pd.DataFrame:
        """Per profile: its scores and segments-like computed traits, and where it is (country)."""
        from ..tables import COMPUTED_VALUES as C, TRAIT_VALUES as T

        computed = C.filter(C.key.isin(USER_TRAITS)).select("profile_id", "key", "value")
        location = T.filter(T.field.isin(LOCATION_TRAITS)).select("profile_id", key=T.field, value=T.value)
        rows = self.analytics.execute(computed.union(location)).to_pandas()
        if rows.empty:
            return pd.DataFrame(columns=["user"])
        wide = rows.pivot_table(index="profile_id", columns="key", values="value", aggfunc="first").reset_index()
        for col in wide.columns:
            if col in ("churn_risk", "clv_12m"):
                wide[col] = pd.to_numeric(wide[col], errors="coerce")
        return wide.rename(columns={"profile_id": "user"})

    @staticmethod
    def _context(log: pd.DataFrame) -> pd.DataFrame:
        """Each user's latest interaction's device, channel, hour and weekday."""
        last = log.sort_values("ts").groupby("user").tail(1)
        ts = pd.to_datetime(last.ts, utc=True)
        return pd.DataFrame({"user": last.user.to_numpy(), "device": last.device.fillna("?").to_numpy(),
                             "channel": last.channel.fillna("?").to_numpy(), "hour": ts.dt.hour.to_numpy(),
                             "weekday": ts.dt.weekday.to_numpy()})

    # -- training ------------------------------------------------------------------------------------
    def _ranker(self, split: str) -> CandidateRanker:
        # 30 candidates per generator: eight generators make ~150 per profile after overlaps,
        # enough to rank and small enough to train in seconds on thousands of profiles.
        return CandidateRanker([make_generator(g, self.order_event) for g in self.config.generators], candidates=30, split=split)

    def train(self, progress: Any = None) -> dict[str, Any]:
        """Fit the generators and the ranker on the store, register the version,
        and precompute every profile's top-N into the online store. Only the
        profiles the consent policy allows for training are learned from."""
        with self.consent.running("training"):
            return self._train(progress)

    def _train(self, progress: Any) -> dict[str, Any]:
        import joblib

        started = time.perf_counter()
        now = self.clock.now()
        items = self.catalog()
        log = self._interactions()
        if log.empty or log.user.nunique() < 2:
            raise ValidationFailed("nothing to learn from yet: recommendations need product views, cart adds or "
                                   "orders (events with properties.product_id) from at least two profiles")
        item_ids = np.union1d(items.item_id.astype(str).to_numpy(), log.item.astype(str).unique())
        data = Interactions.from_frame(log, self.config.weights, items=item_ids)
        users, context = self._user_features(), self._context(log)
        ranker = self._ranker("temporal").fit(data, items, users, context)
        usable, skipped = ranker.generators_, ranker.skipped_
        served = self._serving_tables(data, items, log, users, {g.name: g for g in usable})
        version = self.registry.register_model(
            "recommend", "recommender", now, None, None, [g.name for g in usable],
            {"generators": [g.name for g in usable], "weights": self.config.weights,
             "lookback_days": self.config.lookback_days, "skipped": skipped},
            {"interactions": int(data.matrix.nnz), "profiles": int(data.shape[0]), "items": int(data.shape[1]),
             **ranker.explain()}, "", "", "manual")
        served.version = version
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"v{version}.joblib"
        # Two files: serving loads only the small one (the catalog and item-item tables), not the ranker.
        joblib.dump(ranker, path)
        joblib.dump(served, _serving_path(path))
        self.registry.set_model_artifact("recommend", version, str(path))
        written = self._precompute(ranker, served, data, users, context, progress)
        self._served = served
        return {"version": version, "profiles": written, "items": int(data.shape[1]),
                "interactions": int(data.matrix.nnz), "generators": [g.name for g in usable], "skipped": skipped,
                "candidate_recall": ranker.recall_, "seconds": round(time.perf_counter() - started, 2)}

    def _serving_tables(self, data: Interactions, items: pd.DataFrame, log: pd.DataFrame, users: pd.DataFrame,
                        fitted: dict[str, G.Generator]) -> Recommender:
        """The item-item tables, popularity and device lifts a request uses; from
        the ranker's own fitted generators where it has them."""
        table = items.set_index("item_id").reindex(data.items)
        # The ranker's generators by name, when it has them and they are of the kind these tables need.
        viewed = fitted.get("cooccurrence")
        if not isinstance(viewed, G.CoOccurrence):
            viewed = G.CoOccurrence().fit(data, items)
        bought = fitted.get("complementary")
        if not isinstance(bought, G.CoOccurrence):
            bought = _bought_together(self.order_event).fit(data, items)
        content = fitted.get("content")
        if not isinstance(content, G.ContentBased):
            content = None
            try:
                content = G.ContentBased().fit(data, items)
            except ValueError:    # no catalog text: diversity falls back to categories
                pass
        vectors = content.item_vectors_ if content is not None else None
        counts = np.asarray(data.seen().sum(axis=0)).ravel()
        by_group = {}
        if self.config.fallback_group in users:
            groups = users.set_index("user")[self.config.fallback_group].reindex(data.users).to_numpy()
            popular = G.Popularity().fit(data, items, groups=groups)
            by_group = {str(g): np.argsort(-v, kind="stable")[:200] for g, v in popular.by_group_.items()}
        categories = table.category.fillna("").astype(str).to_numpy()
        lift = {}
        overall = pd.Series(categories[pd.Index(data.items).get_indexer(log.item.astype(str))]).value_counts(normalize=True)
        for device, part in log.groupby(log.device.fillna("?")):
            share = pd.Series(categories[pd.Index(data.items).get_indexer(part.item.astype(str))]).value_counts(
                normalize=True)
            ratio = (share / overall).reindex(overall.index).fillna(0.0)
            # Shrunk towards 1 and bounded: a device's taste nudges, it does not decide.
            weight = len(part) / (len(part) + 200.0)
            lift[str(device)] = np.clip(1 + weight * (ratio.reindex(categories).fillna(1.0).to_numpy() - 1), 0.7, 1.4)
        stock = _available(table.in_stock)
        return Recommender(0, data.items, table.name.fillna("").astype(str).to_numpy(), categories, stock,
                           viewed.similarity_, bought.similarity_, vectors,
                           np.argsort(-counts, kind="stable")[:500], by_group, lift)

    def _precompute(self, ranker: CandidateRanker, served: Recommender, data: Interactions, users: pd.DataFrame,
                    context: pd.DataFrame, progress: Any) -> int:
        """Every profile's ranked list with reasons, into the online store."""
        rows = np.arange(data.shape[0])
        seen = data.seen()
        names = [g.name for g in ranker.generators_]

        written = 0

        def lists() -> Iterator[tuple[str, bytes]]:
            nonlocal written
            for start in range(0, len(rows), 2000):
                part = rows[start:start + 2000]
                ranked = ranker.rank(data, part, None, context, users).groupby("row", sort=False).head(self.config.top_n)
                # The reason for an item is the generator that ranked it highest.
                source = ranked[[f"rank_{n}" for n in names]].to_numpy().argmin(axis=1)
                row_of, item_of, score_of = ranked.row.to_numpy(), ranked.item.to_numpy(), ranked.score.to_numpy()
                payloads = []
                bounds = np.flatnonzero(np.diff(row_of)) + 1
                for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(row_of)]):
                    r = int(row_of[lo])
                    mine = seen[r].indices.tolist()
                    entries = [[str(served.item_ids[item_of[j]]), round(float(score_of[j]), 4),
                                self._reason(served, names[source[j]], int(item_of[j]), mine)] for j in range(lo, hi)]
                    payloads.append((str(data.users[r]), orjson.dumps({"version": served.version, "items": entries})))
                yield from payloads
                written += len(payloads)
                if progress:
                    progress(min(start + len(part), len(rows)), len(rows))

        # The new lists replace the old ones in one swap: no profile reads as
        # cold-start while they are written.
        self.online.put_recommendations(lists(), replace_all=True)
        return written

    @staticmethod
    def _reason(served: Recommender, source: str, item: int, mine: list[int]) -> str:
        text = REASONS.get(source, "recommended for you")
        if "{item}" in text:
            if not mine:
                return REASONS["als"]
            table = {"cooccurrence": "viewed", "complementary": "bought"}.get(source, "content")
            because = mine[int(np.argmax(served.related(table, item, mine)))]
            return text.format(item=served.names[because] or served.item_ids[because])
        return text.format(category=served.categories[item] or "like this")

    # -- evaluation --------------------------------------------------------------------------------------
    def evaluate(self, split: str = "temporal", k: int = 10, ratio: float = 0.8, progress: Any = None) -> dict[str, Any]:
        """Every configured generator and the ranker, fitted on the earlier (or a
        random) ``ratio`` of each profile's interactions and judged on the rest."""
        from .evaluate import evaluate_split
        from .metrics import stratified_split, temporal_split

        if split not in ("temporal", "random"):
            raise ValidationFailed(f"split must be temporal or random, got {split!r}")
        if not 1 <= k <= 100:
            raise ValidationFailed("k must be between 1 and 100")
        with self.consent.running("training"):     # judging models on people's data is training's use
            items, log = self.catalog(), self._interactions()
        if log.empty or log.user.nunique() < 2:
            raise ValidationFailed("nothing to evaluate yet: no product interactions in the store")
        # One row per (profile, item): its strongest signal and latest time, so a split never cuts a pair in two.
        log = log.assign(weight=log.kind.map(self.config.weights).fillna(0.0))
        log = log.sort_values("weight", ascending=False, kind="stable")
        pairs = log.groupby(["user", "item"], as_index=False).agg(weight=("weight", "sum"), ts=("ts", "max"),
                                                                 kind=("kind", "first"))
        train, test = temporal_split(pairs, ratio) if split == "temporal" else stratified_split(pairs, ratio)
        users = self._user_features()
        models: dict[str, Callable[[], G.Generator | CandidateRanker]] = {
            name: partial(make_generator, name, self.order_event) for name in self.config.generators}
        if "popularity" not in models:
            models["popularity"] = partial(make_generator, "popularity", self.order_event)
        models["ranker"] = partial(self._ranker, split)
        result = evaluate_split(train, test, models, items, users, k, progress=progress)
        result["split"] = split
        return result

    # -- serving ---------------------------------------------------------------------------------------
    def served(self) -> Recommender:
        if self._served is None:
            import joblib

            versions = self.registry.model_versions("recommend")
            if not versions or not versions[-1]["artifact"]:
                raise NotFound("no recommender trained yet; run `personable recommend train`")
            served = joblib.load(_serving_path(Path(versions[-1]["artifact"])))
            self._refresh_stock(served)
            self._served = served
        return self._served

    def _refresh_stock(self, served: Recommender) -> None:
        """Availability changes between trainings: read it from the catalog."""
        from ..tables import ITEMS as I

        stock = self.analytics.execute(I.select("item_id", "in_stock")).to_pandas()
        served.in_stock = _available(stock.set_index("item_id").in_stock.reindex(served.item_ids))

    def recommend(self, identifier: str, placement: str | None = None, n: int | None = None,
                  context: dict[str, Any] | None = None) -> dict[str, Any]:
        """Top ``n`` for a profile (any identifier), adjusted with the request's
        context: ``viewed`` and ``cart`` (item ids), ``device``."""
        served = self.served()
        rules = self.config.placements.get(placement or "default")
        if rules is None:
            raise NotFound(f"unknown placement {placement!r}; defined: {', '.join(sorted(self.config.placements))}")
        n = rules.n if n is None else n
        if not 1 <= n <= 200:
            raise ValidationFailed("n must be between 1 and 200")
        context = context or {}
        pid = self.resolve(identifier)
        doc = self.online.profile(pid, 50) if pid else None
        if not pid or doc is None:
            raise NotFound(f"no profile for {identifier!r}")
        # Consent: without it for personalization, nothing of the profile is used
        # (its list, its history, its segment, its device): the popular list, shaped
        # only by what this request itself says.
        verdict = self.policy.for_document(self.policy.purpose_for("recommendations"), doc)
        if not verdict.allowed:
            self.refusals.refused("recommendations", verdict, pid)
            doc = {}
        payload = self.online.recommendations(pid) if verdict.allowed else None
        scores: dict[int, float] = {}
        reasons: dict[int, str] = {}
        source = "precomputed"
        if payload:
            for item_id, score, reason in orjson.loads(payload)["items"]:
                i = served.index.get(item_id)
                if i is not None:
                    scores[i], reasons[i] = score, reason
        viewed, cart, purchased = self._recent(doc, served, context, self.order_event)
        if not scores:     # cold start: popular among profiles like this one, else popular
            group = str((doc.get("computed") or {}).get(self.config.fallback_group, ""))
            ranked = served.popular_by_group.get(group)
            source = "popular_in_segment" if ranked is not None else "popular"
            ranked = ranked if ranked is not None else served.popular
            label = "popular in your segment" if source == "popular_in_segment" else "popular right now"
            for k, i in enumerate(ranked[:200]):
                scores[int(i)], reasons[int(i)] = -float(k), label
        if scores:   # fresh context on the same scale as the list: its spread decides how much a view moves it
            values = np.array(list(scores.values()))
            spread = float(values.max() - values.min()) or 1.0
            top = float(values.max())
            for table, anchors, text in ((served.viewed_with, viewed, "because you viewed {}"),
                                         (served.bought_with, cart, "goes with {} in your cart")):
                for rank, anchor in enumerate(anchors[:5]):
                    label = text.format(served.names[anchor] or served.item_ids[anchor])
                    lo, hi = table.indptr[anchor], table.indptr[anchor + 1]
                    sims, near = table.data[lo:hi], table.indices[lo:hi]
                    if len(sims) > BOOSTED_NEIGHBOURS:   # the closest few: more would drown the profile's own list
                        keep = np.argpartition(-sims, BOOSTED_NEIGHBOURS - 1)[:BOOSTED_NEIGHBOURS]
                        sims, near = sims[keep], near[keep]
                    boosts = top + spread * 0.5 * sims / (1 + rank) - spread * 0.25
                    for i, boost in zip(near.tolist(), boosts.tolist()):
                        if boost > scores.get(i, -np.inf):
                            scores[i], reasons[i] = boost, label
            device = context.get("device") or (doc.get("computed") or {}).get("last_device") or ""
            lift = served.device_lift.get(str(device))
            if lift is not None:
                lo = float(values.min())
                scores = {i: lo + (s - lo) * float(lift[i]) for i, s in scores.items()}
        if not rules.exclude_purchased and scores:   # repeat purchases welcome here: offer them again
            middle = float(np.median(list(scores.values())))
            for i in purchased:       # whatever else brought it up, it is a repeat purchase
                scores[i], reasons[i] = max(middle, scores.get(i, -np.inf)), "buy again"
        items = list(scores)
        exclude = set(cart) | (set(purchased) if rules.exclude_purchased else set())
        chosen = apply_rules(items, [scores[i] for i in items], n, exclude=exclude,
                             in_stock=served.in_stock if rules.in_stock_only else None, categories=served.categories,
                             max_per_category=rules.max_per_category, diversity=rules.diversity,
                             pairwise=served.pairwise)
        return {"profile_id": pid, "placement": placement or "default", "source": source, "version": served.version,
                "consent": verdict.as_dict(),
                "items": [{"item_id": str(served.item_ids[items[c]]), "name": served.names[items[c]] or None,
                           "category": served.categories[items[c]] or None, "score": round(scores[items[c]], 4),
                           "reason": reasons[items[c]]} for c in chosen]}

    @staticmethod
    def _recent(doc: dict[str, Any], served: Recommender, context: dict[str, Any],
                order_event: str) -> tuple[list[int], list[int], list[int]]:
        """Item indexes viewed (newest first), in the cart, and purchased, from
        the profile's recent events and the request."""
        viewed: list[Any] = []      # item ids as the events carry them (None when missing)
        cart: list[Any] = []
        purchased: list[Any] = []
        ordered_after = False
        for e in doc.get("recent_events") or []:       # newest first
            props = e.get("properties") or {}
            name = e.get("event")
            if name == order_event:
                ordered_after = True
                purchased += [p.get("product_id") for p in props.get("products") or [] if isinstance(p, dict)]
            elif name == "Product Viewed":
                viewed.append(props.get("product_id"))
            elif name == "Product Added" and not ordered_after:
                cart.append(props.get("product_id"))
        viewed = [str(v) for v in context.get("viewed") or []] + viewed
        cart = [str(v) for v in context.get("cart") or []] + cart

        def known(ids: list[Any]) -> list[int]:
            out: list[int] = []
            for item in ids:
                i = served.index.get(str(item)) if item is not None else None
                if i is not None and i not in out:
                    out.append(i)
            return out

        return known(viewed), known(cart), known(purchased)
