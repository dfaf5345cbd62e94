"""A database of one's own for a replay, bench or profile run, so runs never see each other."""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa

from workers.settings import Settings


def fresh_namespace(settings: Settings, prefix: str) -> Settings:
    """A database of one's own for a replay or bench: a new PostgreSQL schema (the URL carries
    its search_path, so worker processes use it too) or a new SQLite file."""
    tag = f"{prefix}_{uuid.uuid4().hex[:10]}"
    if settings.postgres:
        engine = sa.create_engine(settings.database_url)
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{tag}"'))
        engine.dispose()
        sep = "&" if "?" in settings.database_url else "?"
        return replace(settings, database_url=f"{settings.database_url}{sep}options={quote(f'-csearch_path={tag}')}")
    home = Path(os.environ.get("INTERCEPT_HOME", "var")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    return replace(settings, database_url=f"sqlite:///{home / (tag + '.sqlite')}")
