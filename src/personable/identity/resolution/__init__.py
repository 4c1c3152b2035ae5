"""Probabilistic identity resolution (Fellegi-Sunter, trained with Splink)."""
