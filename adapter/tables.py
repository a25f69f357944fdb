"""Creating the adapter's tables when several processes start at once (API, sync workers on one database)."""

from __future__ import annotations

from sqlalchemy import Engine, MetaData
from sqlalchemy.exc import IntegrityError, ProgrammingError


def create_tables(metadata: MetaData, engine: Engine) -> None:
    """CREATE TABLE IF NOT EXISTS for every table of `metadata`.

    Two processes creating the same table at the same moment on PostgreSQL: the second is refused (a unique
    violation in its catalog, or "relation already exists") although the table now exists. One retry sees it; a
    real failure fails again and propagates.
    """
    try:
        metadata.create_all(engine, checkfirst=True)
    except (IntegrityError, ProgrammingError):
        metadata.create_all(engine, checkfirst=True)
