"""The catalogue on a real PostgreSQL server: migrations, JSONB, the advisory lock, a campaign.

Needs a server: ``TWINFORGE_TEST_POSTGRES`` is the URL of a database whose role may create
databases (``.ci/run`` starts Debian's PostgreSQL and sets it); each test gets a fresh database
(the ``pg`` fixture of ``conftest.py``). The other catalogue tests (``test_store.py``,
``test_concurrency.py``, ``test_legacy.py``) and the campaign journal's run on both backends.
"""

from __future__ import annotations

import multiprocessing

import pytest
from sqlalchemy import create_engine, make_url, text

from twinforge.catalog import Catalog, migrate
from twinforge.catalog.schema import Base
from twinforge.errors import CatalogError


def test_new_catalogue_matches_the_orm_schema(pg: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with Catalog.open(pg) as cat:
        camp = cat.add_campaign("c", config={"nested": {"list": [1, 2.5, "x"]}})
        assert cat.get(camp.global_id).config == {"nested": {"list": [1, 2.5, "x"]}}
    engine = create_engine(make_url(pg))
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "version_table": migrate.VERSION_TABLE}
        )
        assert compare_metadata(ctx, Base.metadata) == []
        assert migrate.current_revision(conn) == migrate.head_revision()
        kind = conn.execute(
            text("SELECT data_type FROM information_schema.columns "
                 "WHERE table_name = 'campaigns' AND column_name = 'config'")
        ).scalar()  # fmt: skip
        assert kind == "jsonb"
    engine.dispose()


def test_upgrade_of_an_old_catalogue_beside_other_tools(pg: str) -> None:
    engine = create_engine(make_url(pg))
    with engine.begin() as conn:  # twinforge 0.1's tables and an Optuna-style version table
        migrate.upgrade(conn, migrate.BASELINE)
        conn.execute(text(f"DROP TABLE {migrate.VERSION_TABLE}"))
        conn.execute(text("INSERT INTO twinforge_meta VALUES ('schema_version', '1')"))
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('v3.2.0.a')"))
        conn.execute(
            text("INSERT INTO campaigns (name, description, config, created_at, provenance) "
                 "VALUES ('old', '', '{}', now(), '{}')")
        )  # fmt: skip
    with pytest.raises(CatalogError, match="twinforge catalog upgrade"):
        Catalog.open(pg)
    assert Catalog.upgrade(pg) == (migrate.BASELINE, migrate.head_revision())
    with Catalog.open(pg, create=False) as cat:
        assert cat.find("old", "campaigns") is not None
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "v3.2.0.a"
    engine.dispose()


def _open_and_add(url: str, name: str) -> str:
    with Catalog.open(url) as cat:
        return cat.add_campaign(name).global_id


def test_concurrent_first_open_creates_the_schema_once(pg: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        ids = pool.starmap(_open_and_add, [(pg, f"c{i}") for i in range(8)])
    assert len(set(ids)) == 8
    with Catalog.open(pg, create=False) as cat:
        assert cat.count("campaigns") == 8


def test_a_campaign_journal_on_postgresql(pg: str, tmp_path) -> None:
    from twinforge.campaign import CampaignConfig, merge_campaign, run_campaign

    cfg = CampaignConfig.model_validate(
        {
            "name": "pg", "simulator": {"name": "synthetic-test", "detector": "tiny"},
            "total_points": 40, "points_per_job": 10, "executor": {"kind": "local"},
            "output_dir": str(tmp_path / "{name}"),
        }
    )  # fmt: skip
    with Catalog.open(pg) as cat:
        assert run_campaign(cfg, cat).complete
        assert run_campaign(cfg, cat).skipped == 4
        dataset = merge_campaign(cat, cfg)
        assert dataset.n_events == 40
