"""Each Alembic migration goes up and down cleanly, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect, text

from portal.storage.db import downgrade, upgrade


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _columns(url: str, table: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {c["name"] for c in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def test_0002_up_down(database_url: str) -> None:
    upgrade(database_url, "0002")
    assert {"receipt_locator", "receipt_hash"} <= _columns(database_url, "submission")
    downgrade(database_url, "0001")
    assert _columns(database_url, "submission") == {"id", "received_on"}


def test_0001_up_down_up(database_url: str) -> None:
    upgrade(database_url, "0001")
    assert _tables(database_url) == {"submission", "part"}
    downgrade(database_url, "base")
    assert _tables(database_url) == set()
    upgrade(database_url, "0002")
    assert _tables(database_url) == {"submission", "part"}


def test_0003_up_down_keeps_submissions_in_order(database_url: str) -> None:
    upgrade(database_url, "0002")
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            for index, day in enumerate(("2026-11-02", "2026-11-01")):
                connection.execute(
                    text(
                        "INSERT INTO submission (id, received_on, receipt_locator, receipt_hash)"
                        " VALUES (:id, :day, '1234', 'x')"
                    ),
                    {"id": f"{index:032x}", "day": day},
                )
        upgrade(database_url, "0003")
        assert {"inbox_entry", "reviewer_account", "sync_challenge", "sync_session",
                "reply"} <= _tables(database_url)  # fmt: skip
        assert "sha256" in _columns(database_url, "part")
        with engine.connect() as connection:
            order = (
                connection.execute(text("SELECT submission_id FROM inbox_entry ORDER BY seq"))
                .scalars()
                .all()
            )
            status = connection.execute(text("SELECT DISTINCT status FROM submission")).scalars()
            assert list(status) == ["received"]
        assert order == [f"{1:032x}", f"{0:032x}"]  # arrival day order
    finally:
        engine.dispose()
    downgrade(database_url, "0002")
    assert _tables(database_url) == {"submission", "part"}
    assert "status" not in _columns(database_url, "submission")


def test_models_match_the_migrations(database_url: str) -> None:
    """No model change is missing its migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from portal.storage.models import Base

    upgrade(database_url)
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_0005_up_down_adds_the_receipt_index(database_url: str) -> None:
    upgrade(database_url, "0004")
    assert "receipt_index" not in _columns(database_url, "submission")
    upgrade(database_url, "0005")
    assert "receipt_index" in _columns(database_url, "submission")
    downgrade(database_url, "0004")
    assert "receipt_index" not in _columns(database_url, "submission")


def test_0006_up_down_takes_the_anti_abuse_times_out(database_url: str) -> None:
    upgrade(database_url, "0005")
    assert {"spent_puzzle", "rate_budget"} <= _tables(database_url)
    upgrade(database_url, "0006")
    assert not {"spent_puzzle", "rate_budget"} & _tables(database_url)
    downgrade(database_url, "0005")
    assert {"spent_puzzle", "rate_budget"} <= _tables(database_url)
    assert _columns(database_url, "rate_budget") == {"name", "tokens", "updated_at"}


def test_0007_up_down_adds_the_team_relay(database_url: str) -> None:
    upgrade(database_url, "0006")
    assert "team_update" not in _tables(database_url)
    upgrade(database_url, "0007")
    assert "team_update" in _tables(database_url)
    assert _columns(database_url, "team_update") == {
        "seq", "update_id", "data", "size", "received_on", "account_id"
    }  # fmt: skip
    assert "team_cursor" in _columns(database_url, "reviewer_account")
    downgrade(database_url, "0006")
    assert "team_update" not in _tables(database_url)
    assert "team_cursor" not in _columns(database_url, "reviewer_account")
