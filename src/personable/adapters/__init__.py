"""Adapters implement the ports; ``registry`` picks one from a URL."""
