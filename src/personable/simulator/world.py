"""The simulated world: catalog, latent segments and customers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CATEGORIES = {
    "electronics": (["Voltix", "Nordtek", "Aperture"], ["Headphones", "Charger", "Speaker", "Keyboard", "Monitor"], 120.0),
    "books": (["Quillhouse", "Papyra"], ["Novel", "Cookbook", "Atlas", "Biography"], 18.0),
    "home": (["Hearthly", "Casa Viva"], ["Lamp", "Rug", "Vase", "Kettle", "Blanket"], 45.0),
    "fashion": (["Loomwear", "Urbana", "Selvedge"], ["Jacket", "Sneakers", "Scarf", "Jeans"], 60.0),
    "beauty": (["Glowen", "Purelle"], ["Serum", "Lipstick", "Shampoo", "Perfume"], 25.0),
    "sports": (["Stridex", "Peakform"], ["Yoga Mat", "Racket", "Bottle", "Running Shorts"], 35.0),
    "toys": (["Tinkerly", "Blokk"], ["Puzzle", "Robot Kit", "Plush Bear", "Board Game"], 22.0),
    "grocery": (["Fieldfare", "Mill & Stone"], ["Coffee Beans", "Olive Oil", "Granola", "Tea"], 9.0),
}
ADJECTIVES = ["Classic", "Compact", "Premium", "Everyday", "Eco", "Deluxe", "Smart", "Vintage"]


@dataclass(frozen=True)
class Segment:
    name: str
    share: float
    visits_per_day: float
    views_per_session: float
    add_to_cart: float      # per product view
    remove_from_cart: float
    checkout: float         # per session with a cart
    order: float            # per checkout
    price_affinity: float   # >1 likes expensive items
    churn_per_day: float
    taste_concentration: float
    # How they arrive (share of sessions by campaign medium: organic, cpc, social,
    # referral) and how often an order uses a coupon: habits a segment shows
    # beyond the funnel, as real ones do (bargain hunters come through ads and
    # use coupons; window shoppers scroll in from social).
    channel_mix: tuple[float, float, float, float] = (0.25, 0.25, 0.25, 0.25)
    coupon_rate: float = 0.1
    # When in the simulated period they first visit (fractions of it): new
    # explorers are new, they arrive late.
    first_visit_span: tuple[float, float] = (0.0, 0.5)


SEGMENTS = (
    Segment("loyal_big_spender", 0.15, 0.35, 6, 0.22, 0.05, 0.75, 0.90, 1.8, 0.002, 3.0, (0.55, 0.10, 0.10, 0.25), 0.05),
    Segment("bargain_hunter", 0.30, 0.25, 9, 0.12, 0.25, 0.45, 0.65, 0.5, 0.006, 1.0, (0.15, 0.45, 0.15, 0.25), 0.70),
    Segment("window_shopper", 0.35, 0.20, 5, 0.04, 0.35, 0.20, 0.35, 1.0, 0.010, 0.7, (0.15, 0.20, 0.55, 0.10), 0.10),
    Segment("new_explorer", 0.20, 0.30, 7, 0.10, 0.15, 0.40, 0.60, 1.1, 0.004, 0.4, (0.20, 0.15, 0.15, 0.50), 0.20,
            (0.5, 0.85)),
)


@dataclass
class Catalog:
    product_id: list[str]
    category: list[str]
    brand: list[str]
    name: list[str]
    price: np.ndarray
    description: list[str]
    category_index: np.ndarray


def make_catalog(rng: np.random.Generator, n_products: int) -> Catalog:
    cats = list(CATEGORIES)
    ids, cat, brand, name, price, desc, cidx = [], [], [], [], [], [], []
    for i in range(n_products):
        c = i % len(cats)
        brands, nouns, base = CATEGORIES[cats[c]]
        b = brands[rng.integers(len(brands))]
        noun = nouns[rng.integers(len(nouns))]
        adj = ADJECTIVES[rng.integers(len(ADJECTIVES))]
        p = round(float(base * rng.lognormal(0, 0.5)), 2)
        ids.append(f"sku-{i:05d}")
        cat.append(cats[c])
        brand.append(b)
        name.append(f"{b} {adj} {noun}")
        price.append(p)
        desc.append(f"{adj.lower()} {noun.lower()} by {b} for {cats[c]} lovers")
        cidx.append(c)
    return Catalog(ids, cat, brand, name, np.array(price), desc, np.array(cidx))
