"""The write path: raw records in, stored events and updated profiles out."""
