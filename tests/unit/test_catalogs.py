"""The translation catalogs: complete, faithful to their placeholders, honest about review.

The build refuses a catalog with a gap (scripts/catalogs.py compile); these
tests pin that refusal, run Babel's own ``pybabel compile --statistics`` over
every catalog, and check that the templates follow the code and the README
follows the catalogs' headers.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import catalogs  # noqa: E402

from portal.web.i18n import SHIPPED, TRANSLATIONS  # noqa: E402

TRANSLATED = [language for language in SHIPPED if language.code != "en"]


def _catalog(locale: str, domain: str):
    path = catalogs.po_path(locale, domain)
    with path.open("rb") as source:
        return read_po(source, locale=locale, domain=domain)


@pytest.mark.parametrize("domain", catalogs.DOMAINS)
def test_the_templates_follow_the_code(domain: str) -> None:
    """A message added to the code without `catalogs.py extract` fails here."""
    with (TRANSLATIONS / f"{domain}.pot").open("rb") as source:
        committed = {m.id for m in read_po(source) if m.id}
    made = {m.id for m in catalogs.template(domain) if m.id}
    assert made - committed == set(), "run: python scripts/catalogs.py extract && update"
    assert committed - made == set(), "run: python scripts/catalogs.py extract && update"


@pytest.mark.parametrize("language", TRANSLATED, ids=lambda language: language.code)
@pytest.mark.parametrize("domain", catalogs.DOMAINS)
def test_every_catalog_covers_every_message_faithfully(language, domain: str) -> None:
    pot = catalogs.template(domain)
    found = catalogs.problems(_catalog(language.locale, domain), domain, pot)
    assert found == []


def test_pybabel_compiles_every_catalog_with_nothing_fuzzy_or_missing(tmp_path: Path) -> None:
    copy = tmp_path / "translations"
    shutil.copytree(TRANSLATIONS, copy, ignore=shutil.ignore_patterns("*.mo"))
    pybabel = Path(sys.executable).with_name("pybabel")
    for domain in catalogs.DOMAINS:
        done = subprocess.run(
            [str(pybabel), "compile", "-d", str(copy), "-D", domain, "--statistics"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        report = done.stdout + done.stderr
        lines = [line for line in report.splitlines() if "translated" in line]
        assert len(lines) == len(TRANSLATED), report
        for line in lines:
            assert "fuzzy" not in line, line
            assert "untranslated" not in line, line
        assert len(list(copy.glob(f"*/LC_MESSAGES/{domain}.mo"))) == len(TRANSLATED)


def test_a_lost_placeholder_or_stray_markup_is_refused() -> None:
    pot = catalogs.template("messages")
    catalog = _catalog("fr", "messages")
    victim = next(m for m in catalog if m.id and isinstance(m.id, str) and "%(" in m.id)
    victim.string = re.sub(r"%\(\w+\)s", "", victim.string)
    tagged = next(m for m in catalog if m.id and isinstance(m.id, str) and "<strong>" in m.id)
    tagged.string = tagged.string.replace("<strong>", "<strong onclick=x>")
    braced = next(m for m in catalog if m.id and isinstance(m.id, str) and "{" in m.id)
    braced.string = braced.string.replace("{", "{x", 1)
    found = catalogs.problems(catalog, "messages", pot)
    assert any(victim.id in line and "placeholders" in line for line in found)
    assert any(tagged.id in line and "markup" in line for line in found)
    assert any(braced.id in line and "placeholders" in line for line in found)


def test_a_fuzzy_or_empty_entry_is_refused() -> None:
    pot = catalogs.template("js")
    catalog = _catalog("ar", "js")
    entries = [m for m in catalog if m.id]
    entries[0].flags.add("fuzzy")
    entries[1].string = ""
    found = catalogs.problems(catalog, "js", pot)
    assert any(line.startswith("fuzzy:") for line in found)
    assert any(line.startswith("untranslated:") for line in found)


def test_the_build_step_fails_on_a_gap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "translations"
    shutil.copytree(TRANSLATIONS, copy, ignore=shutil.ignore_patterns("*.mo"))
    monkeypatch.setattr(catalogs, "TRANSLATIONS", copy)
    assert catalogs.compile_all(tmp_path / "whole") == 0
    po = copy / "es" / "LC_MESSAGES" / "js.po"
    catalog = catalogs._read(po, "es")
    next(message for message in catalog if message.id).string = ""
    catalogs._write(catalog, po)
    assert catalogs.compile_all(tmp_path / "gap") == 1


@pytest.mark.parametrize("language", TRANSLATED, ids=lambda language: language.code)
def test_each_catalog_states_its_review_and_the_readme_agrees(language) -> None:
    state = catalogs.review_state(_catalog(language.locale, "messages"))
    assert state in catalogs.STATES
    assert catalogs.review_state(_catalog(language.locale, "js")) == state
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    row = re.search(
        rf"^\| [^|]+ \| `{re.escape(language.code)}` \|[^|]+\| ([^|]+) \|$", readme, re.M
    )
    assert row, f"README's table of languages has no row for {language.code}"
    assert row.group(1).strip() == catalogs.STATES[state]
