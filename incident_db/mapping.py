"""Column mappings for external feeds: which CSV column feeds which record field.

A mapping is a TOML file (``incident_db/mappings/NAME.toml`` ships with the
project; any other path works too). It says which string means "no value",
which column gives which field, how the feed's words translate into the
taxonomy's slugs, which columns are deliberately left out, and, optionally,
keyword rules that read details out of a free-text description (regular
expressions; ``{{name}}`` in one stands for the snippet of that name). Every
column of the file must be either mapped or left out on purpose, so a feed
that grows a column (a ship's name, say) is refused until someone decides.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from incident_db.errors import FeedError
from incident_db.taxonomy import VOCABULARIES

SHIPPED = Path(__file__).with_name("mappings")
#: fields a column may feed: the record's, bar identity, links and verification
SLUG_FIELDS = frozenset(
    {"category", "report_type", "incident_type", "location_type", "vessel_type",
     "vessel_status", "boarding_method", "outcome"}
)  # fmt: skip
LIST_FIELDS = frozenset({"weapons", "boarding_points", "stolen", "actions_taken", "reported_to"})
COUNT_FIELDS = frozenset({"perpetrators_min", "perpetrators_max"})
OTHER_FIELDS = frozenset({"date", "time", "latitude", "longitude", "place", "narrative", "source"})
FIELDS = SLUG_FIELDS | LIST_FIELDS | COUNT_FIELDS | OTHER_FIELDS
_TOP = frozenset(
    {"name", "credit", "nulls", "date_format", "bare_time", "list_separator", "constants",
     "columns", "ignored", "values", "outcome_from_incident_type", "derive", "snippets",
     "perpetrators_from_narrative"}
)  # fmt: skip


@dataclass(frozen=True)
class DeriveRule:
    """Set ``field`` to ``value`` when the narrative matches ``pattern`` and not ``unless``."""

    field: str
    value: str
    pattern: re.Pattern[str]
    unless: re.Pattern[str] | None = None


@dataclass(frozen=True)
class FeedMapping:
    """A loaded, checked column mapping."""

    name: str
    credit: str
    nulls: frozenset[str]
    date_format: str
    bare_time: str  # what a time without "UTC" or "LT" means: "local" or "utc"
    list_separator: str
    constants: Mapping[str, str]
    columns: Mapping[str, str]  # field → column
    ignored: frozenset[str]
    values: Mapping[str, Mapping[str, str]]  # field → normalised word → slug ("" = no value)
    outcome_from_incident_type: Mapping[str, str]
    derive: tuple[DeriveRule, ...]
    perpetrators_from_narrative: bool


def shipped_names() -> list[str]:
    """The names of the mappings that ship with the project."""
    return sorted(p.stem for p in SHIPPED.glob("*.toml"))


def normalise_word(text: str) -> str:
    """How feed values are compared with a mapping's words: trimmed, lower case, single spaces."""
    return " ".join(text.split()).lower()


def locate(name_or_path: str) -> Path:
    """A mapping file: ``name_or_path`` itself if it exists, else a shipped mapping by name."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if re.fullmatch(r"[a-z0-9-]+", name_or_path) and (SHIPPED / f"{name_or_path}.toml").is_file():
        return SHIPPED / f"{name_or_path}.toml"
    raise FeedError(
        f"no mapping file {name_or_path!r}, and no shipped mapping of that name "
        f"(shipped: {', '.join(shipped_names())})"
    )


def _slug_for(field: str, value: Any, where: str) -> str:
    vocabulary = VOCABULARIES.get(field)
    if not isinstance(value, str) or (value != "" and vocabulary and value not in vocabulary):
        raise FeedError(f"mapping {where}: {value!r} is not a {field} value")
    return value


def _regex(text: Any, where: str) -> re.Pattern[str]:
    try:
        return re.compile(str(text), re.IGNORECASE)
    except re.error as error:
        raise FeedError(f"mapping {where}: bad pattern: {error}") from None


def load_mapping(name_or_path: str) -> FeedMapping:
    """Read and check a mapping; raise :class:`FeedError` saying what is wrong."""
    path = locate(name_or_path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise FeedError(f"mapping {path.name}: {error}") from None
    unknown = set(document) - _TOP
    if unknown:
        raise FeedError(f"mapping {path.name}: unknown setting {sorted(unknown)[0]!r}")
    name = document.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9-]{1,60}", name):
        raise FeedError(f"mapping {path.name}: name must be 1-60 of a-z, 0-9 and -")
    columns = dict(document.get("columns", {}))
    for field in columns:
        if field not in FIELDS:
            raise FeedError(f"mapping {path.name}: no record field {field!r} to map a column to")
    constants = {
        field: _slug_for(field, value, f"constants.{field}")
        for field, value in dict(document.get("constants", {})).items()
    }
    if "category" not in columns and "category" not in constants:
        raise FeedError(f"mapping {path.name}: category needs a column or a constant")
    values: dict[str, dict[str, str]] = {}
    for field, table in dict(document.get("values", {})).items():
        if field not in SLUG_FIELDS | LIST_FIELDS:
            raise FeedError(f"mapping {path.name}: values for {field!r}, which takes no slugs")
        values[field] = {
            normalise_word(word) if word != "*" else "*": _slug_for(field, slug, f"values.{field}")
            for word, slug in dict(table).items()
        }
    outcomes = {
        _slug_for("incident_type", kind, "outcome_from_incident_type"): _slug_for(
            "outcome", outcome, "outcome_from_incident_type"
        )
        for kind, outcome in dict(document.get("outcome_from_incident_type", {})).items()
    }
    snippets = {str(k): str(v) for k, v in dict(document.get("snippets", {})).items()}

    def expand(pattern: Any) -> str:
        """Replace each ``{{name}}`` with the snippet of that name."""
        text = str(pattern)
        for key, snippet in snippets.items():
            text = text.replace("{{" + key + "}}", snippet)
        return text

    rules = []
    for number, rule in enumerate(document.get("derive", []), start=1):
        where = f"derive #{number}"
        if "{{" in expand(rule.get("pattern")):
            raise FeedError(f"mapping {where}: pattern names an unknown snippet")
        field = rule.get("field")
        if field not in SLUG_FIELDS | LIST_FIELDS:
            raise FeedError(f"mapping {where}: field {field!r} cannot be derived")
        unless = rule.get("unless")
        rules.append(
            DeriveRule(field, _slug_for(field, rule.get("value"), where),
                       _regex(expand(rule.get("pattern")), where),
                       None if unless is None else _regex(expand(unless), where))
        )  # fmt: skip
    bare_time = document.get("bare_time", "local")
    if bare_time not in ("local", "utc"):
        raise FeedError(f"mapping {path.name}: bare_time is local or utc")
    return FeedMapping(
        name=name,
        credit=str(document.get("credit", "")),
        nulls=frozenset(str(v) for v in document.get("nulls", ["", "NA"])),
        date_format=str(document.get("date_format", "%Y-%m-%d")),
        bare_time=bare_time,
        list_separator=str(document.get("list_separator", ";")),
        constants=constants,
        columns=columns,
        ignored=frozenset(str(c) for c in document.get("ignored", [])),
        values=values,
        outcome_from_incident_type=outcomes,
        derive=tuple(rules),
        perpetrators_from_narrative=bool(document.get("perpetrators_from_narrative", False)),
    )
