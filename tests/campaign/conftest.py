"""The catalogue fixtures of tests/catalog, for the campaign journal's tests: ``catalog_url``
is an SQLite file, or a fresh PostgreSQL database where a test parametrises ``backend``
(``both_backends``); see tests/catalog/conftest.py."""

from tests.catalog.conftest import backend, catalog_url, db_path, pg  # noqa: F401 (fixtures)
