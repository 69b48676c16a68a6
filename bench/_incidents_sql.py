"""Hand-written SQL computing a brief's counts: the baseline of bench/incidents.py."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

EARTH_RADIUS_NM = 6371.0088 / 1.852
#: the circle as a careful hand-written query would select it: a latitude band on the
#: index first, then the great-circle distance
CIRCLE = (
    "latitude BETWEEN :lat - :band AND :lat + :band AND 2 * "
    f"{EARTH_RADIUS_NM} * asin(sqrt("
    "power(sin(radians(latitude - :lat) / 2), 2) + cos(radians(:lat)) * cos(radians(latitude))"
    " * power(sin(radians(longitude - :lon) / 2), 2))) <= :radius"
)


def raw_counts(connection: Connection, where: str, params: dict[str, Any]) -> dict[str, Any]:
    """The brief's counts for the rows ``where`` selects ("circle" for a radius)."""
    postgres = connection.dialect.name == "postgresql"
    weekday = "EXTRACT(DOW FROM local_date)" if postgres else "strftime('%w', local_date)"
    month = "to_char(local_date, 'YYYY-MM')" if postgres else "strftime('%Y-%m', local_date)"
    condition = CIRCLE if where == "circle" else where
    rows = f"FROM incident WHERE merged_into IS NULL AND {condition}"
    out: dict[str, Any] = {}

    def run(name: str, query: str) -> None:
        out[name] = connection.execute(text(query), params).all()

    run("incidents", f"SELECT COUNT(*), MIN(local_date), MAX(local_date) {rows}")
    run("weekday", f"SELECT {weekday}, COUNT(*) {rows} GROUP BY {weekday}")
    run(
        "hour",
        f"SELECT substr(local_time, 1, 2), COUNT(*) {rows} GROUP BY substr(local_time, 1, 2)",
    )
    run("month", f"SELECT {month}, COUNT(*) {rows} GROUP BY {month}")
    for column in ("category", "incident_type", "vessel_type", "vessel_status", "boarding_method",
                   "outcome", "grade", "origin", "place"):  # fmt: skip
        run(column, f"SELECT {column}, COUNT(*) {rows} GROUP BY {column}")
    crew = ", ".join(
        f"SUM(CASE WHEN crew_{k} > 0 THEN 1 ELSE 0 END), SUM(crew_{k})"
        for k in ("threatened", "tied_up", "assaulted", "injured", "hostage", "kidnapped",
                  "killed", "missing")
    )  # fmt: skip
    run("people", f"SELECT MIN(perpetrators_min), MAX(perpetrators_max), {crew} {rows}")
    # every fragment is a constant of this module: nothing from outside is formatted in
    tagged = "FROM incident_tag t JOIN incident i ON i.id = t.incident_id"
    run("tags", f"SELECT t.facet, t.value, COUNT(*) {tagged} "
        f"WHERE i.id IN (SELECT id {rows}) GROUP BY t.facet, t.value")  # fmt: skip
    run("sources", "SELECT source, COUNT(DISTINCT incident_id) FROM provenance "  # noqa: S608
        f"WHERE incident_id IN (SELECT id {rows}) GROUP BY source")  # fmt: skip
    out["incidents"] = out["incidents"][0][0]
    return out
