"""MovieLens-100k, read from the files the ``recbole==1.2.1`` wheel ships
(install it with ``pip install --no-deps recbole==1.2.1``: only its data is
used, never its code, and nothing is downloaded at run time)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import PersonableError


@dataclass
class MovieLens:
    ratings: pd.DataFrame     # user, item, rating, ts
    items: pd.DataFrame       # item_id, name, year, genres
    users: pd.DataFrame       # user, age, gender, occupation


def movielens_folder() -> Path:
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise PersonableError("MovieLens-100k comes from the recbole wheel: pip install --no-deps recbole==1.2.1")
    folder = Path(list(spec.submodule_search_locations)[0]) / "dataset_example" / "ml-100k"
    if not (folder / "ml-100k.inter").exists():
        raise PersonableError(f"no MovieLens-100k files in {folder}; reinstall recbole==1.2.1")
    return folder


def load_movielens_100k() -> MovieLens:
    folder = movielens_folder()

    def read(name: str) -> pd.DataFrame:
        frame = pd.read_csv(folder / f"ml-100k.{name}", sep="\t", dtype=str, keep_default_na=False)
        frame.columns = [c.split(":")[0] for c in frame.columns]
        return frame

    inter = read("inter")
    ratings = pd.DataFrame({"user": inter.user_id, "item": inter.item_id, "rating": inter.rating.astype(float),
                            "ts": pd.to_datetime(inter.timestamp.astype(float).astype("int64"), unit="s", utc=True)})
    item = read("item")
    items = pd.DataFrame({"item_id": item.item_id, "name": item.movie_title, "year": item.release_year,
                          "genres": item["class"], "category": item["class"].str.split(" ").str[0]})
    user = read("user")
    users = pd.DataFrame({"user": user.user_id, "age": pd.to_numeric(user.age, errors="coerce"),
                          "gender": user.gender, "occupation": user.occupation})
    return MovieLens(ratings, items, users)
