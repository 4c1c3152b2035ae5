"""Privacy: consent per purpose, enforced at every use of a profile (docs/privacy.md)."""
