"""A seeded simulator of an online store, with the ground truth kept beside it."""

from .store import SimulatedStore, StoreSpec, simulate

__all__ = ["SimulatedStore", "StoreSpec", "simulate"]
