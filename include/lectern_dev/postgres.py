"""Throwaway databases on the real Postgres, for the tests and the benchmarks (LECTERN_TEST_PG_ADMIN_URL, default
the local server's `postgres` database)."""

from __future__ import annotations

import os
import uuid

PG_ADMIN_URL = os.environ.get("LECTERN_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def admin_connection():
    import psycopg2

    connection = psycopg2.connect(PG_ADMIN_URL)
    connection.autocommit = True
    return connection


def create_pg_database(migrated: bool = True, prefix: str = "lectern_test") -> tuple[str, str]:
    """A fresh database: (name, SQLAlchemy URL), migrated to the newest schema unless `migrated` is False."""
    from psycopg2 import sql

    from lectern.state.db import migrate

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    connection = admin_connection()
    connection.cursor().execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    connection.close()
    server = PG_ADMIN_URL.split("://", 1)[1].rsplit("/", 1)[0]
    url = f"postgresql+psycopg2://{server}/{name}"
    if migrated:
        migrate(url)
    return name, url


def drop_pg_database(name: str) -> None:
    from psycopg2 import sql

    from lectern.state.db import engine_for

    engine_for.cache_clear()  # pooled connections would keep the database busy
    connection = admin_connection()
    connection.cursor().execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    connection.close()
