"""A database of one's own for a replay, bench or profile run, so runs never see each other."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa

from adapters.db import namespaces
from workers.settings import Settings


def fresh_namespace(settings: Settings, prefix: str) -> Settings:
    """A database of one's own for a replay or bench: a new PostgreSQL schema (the URL carries
    its search_path, so worker processes use it too) or a new SQLite file. Named so that
    `intercept cleanup` finds it (adapters.db.namespaces)."""
    tag = namespaces.new_name(prefix)
    if settings.shard_urls:
        # Shards in separate databases: a namespace of the same name in each.
        fresh = {url: _fresh(url, tag, n) for n, url in enumerate(dict.fromkeys(settings.shard_urls))}
        urls = tuple(fresh[url] for url in settings.shard_urls)
        return replace(settings, database_url=urls[0], shard_urls=urls)
    return replace(settings, database_url=_fresh(settings.database_url, tag))


def _fresh(url: str, tag: str, n: int = 0) -> str:
    if url.startswith("postgresql"):
        engine = sa.create_engine(url)
        try:
            namespaces.create_schema(engine, tag, datetime.now(timezone.utc))
        finally:
            engine.dispose()
        sep = "&" if "?" in url else "?"
        return f"{url}{sep}options={quote(f'-csearch_path={tag}')}"
    home = Path(os.environ.get("INTERCEPT_HOME", "var")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / (tag + (f'-{n}' if n else '') + '.sqlite')}"
