"""The translation catalogs: extract, update, compile and check them.

    python scripts/catalogs.py extract   # the templates (.pot) from the code
    python scripts/catalogs.py update    # each language's .po from the templates
    python scripts/catalogs.py compile [--into DIR]   # .po -> .mo, failing on gaps
    python scripts/catalogs.py check     # what the tests and CI require

Two domains, in the gettext layout that Weblate reads as it is
(``portal/web/translations/<locale>/LC_MESSAGES/<domain>.po``):

* ``messages``: everything the server writes (Python and the Jinja templates),
  plus every label of the incident vocabulary (``incident_db/taxonomy.py``),
  which the form shows translated while the report keeps the slugs;
* ``js``: what the browser's own modules write, ``_("…")`` in
  ``portal/web/static/js``; the portal serves it as JSON (``/i18n/<code>.json``).

Each catalog states its review state in its header comment, on a line
``Review-State: <state>``; ``check`` refuses a catalog without one, and the
README's table of languages is written from them (``states``).

``compile`` refuses, for every shipped language, a fuzzy entry, an empty
translation and a translation whose placeholders (``%(name)s``, ``{name}``)
differ from its msgid's: a reporter must never meet an English gap or a
broken sentence in a page that claims to be in their language.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from incident_db.taxonomy import VOCABULARIES  # noqa: E402
from portal.web.catalog_rules import faults, markup, placeholders  # noqa: E402, F401
from portal.web.i18n import SHIPPED, TRANSLATIONS  # noqa: E402

DOMAINS = ("messages", "js")
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None, "lazy_ngettext": (1, 2)}
#: the review states a catalog may declare
STATES = {
    "source": "the source language",
    "draft": "draft: machine-assisted, needs native review",
    "reviewed": "reviewed by a native speaker",
}
_STATE_LINE = re.compile(r"^Review-State:\s*(\S+)", re.MULTILINE)
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def _sources(domain: str) -> Iterator[tuple[str, int, object, list[str]]]:
    """Every message of ``domain`` in the code: where it is, and its translator comments.

    ``messages`` also takes storage's refusals (``portal/storage``), which are
    marked with ``N_`` and translated by the web layer when it answers with them.
    """
    web = ROOT / "portal" / "web"
    tags = ("Translators:",)
    if domain == "js":
        method_map = [("static/js/**.js", "javascript")]
        found = extract_from_dir(str(web), method_map, keywords={"_": None}, comment_tags=tags)
        for filename, lineno, message, comments, _context in found:
            yield f"portal/web/{filename}", lineno, message, comments
        return
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    found = extract_from_dir(str(web), method_map, options, keywords=KEYWORDS, comment_tags=tags)
    for filename, lineno, message, comments, _context in found:
        yield f"portal/web/{filename}", lineno, message, comments
    storage = ROOT / "portal" / "storage"
    found = extract_from_dir(
        str(storage), [("**.py", "python")], keywords={"N_": None}, comment_tags=tags
    )
    for filename, lineno, message, comments, _context in found:
        yield f"portal/storage/{filename}", lineno, message, comments


def template(domain: str) -> Catalog:
    """The catalog template of ``domain``, made from the code."""
    catalog = Catalog(
        project="cso-portal",
        domain=domain,
        fuzzy=False,
        header_comment=(
            f"# The cso-portal reporter pages: the {domain!r} catalog template.\n"
            "# Made by `python scripts/catalogs.py extract`; do not edit by hand."
        ),
        creation_date=_EPOCH,  # a fixed date: the file changes only when messages do
        msgid_bugs_address="",
    )
    for filename, lineno, message, comments in _sources(domain):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments)
    if domain == "messages":
        for field, labels in VOCABULARIES.items():
            for slug, label in labels.items():
                catalog.add(
                    label,
                    locations=[("incident_db/taxonomy.py", 0)],
                    auto_comments=[f"incident vocabulary: {field} = {slug}"],
                )
    return catalog


def _write(catalog: Catalog, path: Path) -> None:
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=100, sort_output=False, omit_header=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as source:
        return read_po(source, locale=locale, domain=path.stem)


def extract() -> None:
    for domain in DOMAINS:
        catalog = template(domain)
        _write(catalog, TRANSLATIONS / f"{domain}.pot")
        print(f"{domain}.pot: {len(catalog)} messages")


def po_path(locale: str, domain: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / f"{domain}.po"


def translated_languages() -> list:
    return [language for language in SHIPPED if language.code != "en"]


def update() -> None:
    for domain in DOMAINS:
        pot = _read(TRANSLATIONS / f"{domain}.pot")
        for language in translated_languages():
            path = po_path(language.locale, domain)
            if path.exists():
                catalog = _read(path, language.locale)
            else:
                catalog = Catalog(
                    locale=language.locale,
                    domain=domain,
                    project="cso-portal",
                    fuzzy=False,
                    creation_date=_EPOCH,
                    revision_date=_EPOCH,
                    msgid_bugs_address="",
                    language_team=language.english,
                    last_translator="machine-assisted draft (no named translator yet)",
                    header_comment=(
                        f"# {language.english} ({language.code}) translation of the cso-portal"
                        " reporter pages.\n"
                        "# Review-State: draft\n"
                        f"# ({STATES['draft']}: not yet checked by a native speaker)"
                    ),
                )
            catalog.update(pot, no_fuzzy_matching=True)
            catalog.obsolete.clear()
            _write(catalog, path)
            missing = sum(1 for m in catalog if m.id and not _complete(m))
            print(f"{_shown(path)}: {missing} to translate")


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _complete(message: Message) -> bool:
    strings = message.string if isinstance(message.string, tuple) else (message.string,)
    return bool(message.string) and all(strings) and not message.fuzzy


def problems(catalog: Catalog, domain: str, pot: Catalog) -> list[str]:
    """What keeps ``catalog`` from shipping, one line each."""
    found = []
    if catalog.fuzzy:
        found.append("the header is marked fuzzy: gettext tools skip the whole catalog")
    state = review_state(catalog)
    if state not in STATES:
        found.append(f"no valid 'Review-State:' line in the header (got {state!r})")
    for template_message in pot:
        if not template_message.id:
            continue
        message = catalog.get(template_message.id)
        if message is None:
            found.append(f"missing: {template_message.id!r}")
            continue
        if message.fuzzy:
            found.append(f"fuzzy: {message.id!r}")
        if not _complete(message):
            found.append(f"untranslated: {message.id!r}")
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        found.extend(faults(ids[-1], strings))
    return found


def review_state(catalog: Catalog) -> str | None:
    match = _STATE_LINE.search((catalog.header_comment or "").replace("# ", ""))
    return match.group(1) if match else None


def states() -> dict[str, str]:
    """Each translated language's review state, by code (the README's table)."""
    result = {}
    for language in translated_languages():
        path = po_path(language.locale, "messages")
        result[language.code] = (
            review_state(_read(path, language.locale)) if path.exists() else None
        )
    return result


def check() -> int:
    failures = 0
    for domain in DOMAINS:
        pot = template(domain)
        for language in translated_languages():
            path = po_path(language.locale, domain)
            if not path.exists():
                print(f"{_shown(path)}: missing")
                failures += 1
                continue
            found = problems(_read(path, language.locale), domain, pot)
            for line in found[:20]:
                print(f"{_shown(path)}: {line}")
            failures += len(found)
    print("catalogs: ok" if not failures else f"catalogs: {failures} problem(s)")
    return 1 if failures else 0


def compile_all(into: Path | None = None, strict: bool = True) -> int:
    """Write every .mo beside its .po (or under ``into``); non-zero on a gap when strict."""
    failures = 0
    for domain in DOMAINS:
        pot_path = TRANSLATIONS / f"{domain}.pot"
        pot = _read(pot_path) if pot_path.exists() else None
        for language in translated_languages():
            path = po_path(language.locale, domain)
            if not path.exists():
                continue
            catalog = _read(path, language.locale)
            if strict and pot is not None:
                found = problems(catalog, domain, pot)
                for line in found[:20]:
                    print(f"{_shown(path)}: {line}", file=sys.stderr)
                failures += len(found)
            target = path.with_suffix(".mo")
            if into is not None:
                target = into / path.relative_to(TRANSLATIONS).with_suffix(".mo")
            target.parent.mkdir(parents=True, exist_ok=True)
            buffer = io.BytesIO()
            write_mo(buffer, catalog, use_fuzzy=False)
            target.write_bytes(buffer.getvalue())
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("extract", "update", "compile", "check", "states"))
    parser.add_argument("--into", type=Path, help="compile: write the .mo files under DIR")
    parser.add_argument("--lenient", action="store_true", help="compile: do not fail on gaps")
    args = parser.parse_args(argv)
    if args.command == "extract":
        extract()
    elif args.command == "update":
        update()
    elif args.command == "compile":
        return compile_all(args.into, strict=not args.lenient)
    elif args.command == "check":
        return check()
    else:
        for code, state in states().items():
            print(f"{code}\t{state}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
