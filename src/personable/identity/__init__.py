"""Identity: identifiers, junk guards and deterministic stitching."""
