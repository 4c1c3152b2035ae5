"""The offline store on PostgreSQL (psycopg 3)."""

from .store import PostgresStore

__all__ = ["PostgresStore"]
