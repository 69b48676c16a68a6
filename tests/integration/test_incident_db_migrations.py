"""Each incident-db migration goes up and down cleanly, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect

from incident_db.db import VERSION_TABLE, downgrade, upgrade

TABLES = {"incident", "incident_tag", "provenance", "reviewer_batch", "feed_import",
          "incident_link"}  # fmt: skip
MEMBER_TABLES = {"member", "invitation", "passkey", "recovery_code", "member_session",
                 "audit_event", "webauthn_challenge"}  # fmt: skip


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_0001_up_down_up(database_url: str) -> None:
    upgrade(database_url, "0001")
    assert _tables(database_url) == TABLES | {VERSION_TABLE}
    downgrade(database_url, "base")
    assert _tables(database_url) == {VERSION_TABLE}
    upgrade(database_url, "0001")
    assert _tables(database_url) == TABLES | {VERSION_TABLE}


def test_0002_up_down_up(database_url: str) -> None:
    """The members' tables come and go without touching the incidents'."""
    upgrade(database_url, "0002")
    assert _tables(database_url) == TABLES | MEMBER_TABLES | {VERSION_TABLE}
    downgrade(database_url, "0001")
    assert _tables(database_url) == TABLES | {VERSION_TABLE}
    upgrade(database_url, "0002")
    assert _tables(database_url) == TABLES | MEMBER_TABLES | {VERSION_TABLE}


def test_0003_up_down_up(database_url: str) -> None:
    """incident.kind is backfilled; the spatial index follows writes; down removes it all."""
    from sqlalchemy import text

    upgrade(database_url, "0002")
    engine = create_engine(database_url)
    rows = (
        ("a", "piracy-armed-robbery", "boarded", None, 1.5, 103.8),
        ("b", "suspicious-approach", None, None, None, None),
        ("c", "piracy-armed-robbery", None, "attempted", 4.0, 7.0),
    )
    insert = text(
        "INSERT INTO incident (id, origin, category, incident_type, outcome, latitude, "
        "longitude, verification_status, content_sha256, added_at) VALUES (:id, 'external', "
        ":category, :type, :outcome, :lat, :lon, 'unverified', '', '2024-01-01 00:00:00')"
    )
    keys = ("id", "category", "type", "outcome", "lat", "lon")
    with engine.begin() as connection:
        connection.execute(insert, [dict(zip(keys, row, strict=True)) for row in rows])
    engine.dispose()
    upgrade(database_url, "0003")
    engine = create_engine(database_url)
    sqlite = engine.dialect.name == "sqlite"
    try:
        with engine.begin() as connection:
            kinds = dict(connection.execute(text("SELECT id, kind FROM incident")).all())
            assert kinds == {"a": "actual-attack", "b": "suspicious-approach",
                             "c": "attempted-attack"}  # fmt: skip
            connection.execute(text("UPDATE incident SET latitude = 50.0 WHERE id = 'c'"))
            connection.execute(text("DELETE FROM incident WHERE id = 'a'"))
            if sqlite:
                indexed = connection.execute(
                    text(
                        "SELECT incident.id, min_lat FROM incident_rtree "
                        "JOIN incident ON incident.rowid = incident_rtree.id"
                    )
                ).all()
                assert indexed == [("c", 50.0)]
            else:
                names = inspect(connection).get_indexes("incident")
                assert "ix_incident_point" in {index["name"] for index in names}
    finally:
        engine.dispose()
    tables = _tables(database_url)
    assert ("incident_rtree" in tables) is sqlite
    downgrade(database_url, "0002")
    assert _tables(database_url) == TABLES | MEMBER_TABLES | {VERSION_TABLE}
    engine = create_engine(database_url)
    try:
        columns = {column["name"] for column in inspect(engine).get_columns("incident")}
        assert "kind" not in columns
        assert "ix_incident_point" not in {
            i["name"] for i in inspect(engine).get_indexes("incident")
        }
    finally:
        engine.dispose()
    upgrade(database_url, "0003")


def test_0004_up_down_up(database_url: str) -> None:
    """The incident history comes and goes, with its append-only guard."""
    upgrade(database_url, "0003")
    before = _tables(database_url)
    upgrade(database_url, "0004")
    assert _tables(database_url) == before | {"incident_change"}
    downgrade(database_url, "0003")
    assert _tables(database_url) == before
    upgrade(database_url, "0004")
    assert "incident_change" in _tables(database_url)


def test_0005_up_down_up(database_url: str) -> None:
    """The attachment tables come and go after 0004, leaving the others as they were."""
    upgrade(database_url, "0004")
    before = _tables(database_url)
    upgrade(database_url, "0005")
    assert _tables(database_url) == before | {"attachment_content", "incident_attachment"}
    downgrade(database_url, "0004")
    assert _tables(database_url) == before
    upgrade(database_url, "0005")
    assert {"attachment_content", "incident_attachment"} <= _tables(database_url)


def _attachment_batch(url: str) -> tuple[bool, set[str], set[str]]:
    """Whether incident_attachment.batch_id may be empty; the table's indexes and foreign keys."""
    engine = create_engine(url)
    try:
        found = inspect(engine)
        nullable = {c["name"]: c["nullable"] for c in found.get_columns("incident_attachment")}
        indexes = {i["name"] for i in found.get_indexes("incident_attachment")}
        keys = {k["referred_table"] for k in found.get_foreign_keys("incident_attachment")}
    finally:
        engine.dispose()
    return nullable["batch_id"], indexes, keys


def test_0006_up_down_up(database_url: str) -> None:
    """An editor's attachment needs no batch after 0006; the table keeps its index and keys."""
    upgrade(database_url, "0005")
    required = _attachment_batch(database_url)
    assert required[0] is False
    upgrade(database_url, "0006")
    assert _attachment_batch(database_url) == (True, *required[1:])
    assert "ix_incident_attachment_sha256" in required[1]
    assert required[2] == {"incident", "attachment_content", "reviewer_batch"}
    downgrade(database_url, "0005")
    assert _attachment_batch(database_url) == required
    upgrade(database_url, "0006")
    assert _attachment_batch(database_url)[0] is True


def test_models_match_the_migrations(database_url: str) -> None:
    """No model change is missing its migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    import incident_db.attachments  # (its tables are on Base too)
    import incident_db.members  # noqa: F401  (its tables are on Base too)
    from incident_db.models import Base

    upgrade(database_url)
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            # the R*Tree (0003) is a virtual table and its shadow tables: no model has them
            spatial = {"incident_rtree", "ix_incident_point"}
            opts = {
                "version_table": VERSION_TABLE,
                "include_name": lambda name, _kind, _parent: (
                    not str(name).startswith(tuple(spatial))
                ),
            }
            context = MigrationContext.configure(connection, opts=opts)
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_it_can_share_a_database_with_the_portal(database_url: str) -> None:
    """Its own version table: the portal's migrations and these do not collide."""
    from portal.storage.db import upgrade as upgrade_portal

    upgrade_portal(database_url)
    upgrade(database_url)
    tables = _tables(database_url)
    assert {"alembic_version", VERSION_TABLE, "submission", "incident"} <= tables
