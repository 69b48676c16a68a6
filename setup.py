"""The build step that pyproject.toml cannot say: compile the message catalogs.

The repository holds only the translators' ``.po`` files
(``portal/web/translations/<locale>/LC_MESSAGES/``); the wheel carries the
compiled ``.mo`` files beside them, made here from the sources being built.
The build stops on a translation whose placeholders or markup differ from its
msgid's (``portal/web/catalog_rules.py``): templates trust translations as
HTML, so a ``.po`` edited after the tests ran must not ship unchecked. A fuzzy
entry is left out (gettext then shows the English); ``make test`` refuses any
fuzzy or missing entry long before a release is built (``scripts/catalogs.py``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CATALOGS = Path("portal") / "web" / "translations"
RULES = Path("portal") / "web" / "catalog_rules.py"


def _rules():  # loaded by its path: no Flask, no portal package at build time
    spec = importlib.util.spec_from_file_location("catalog_rules", RULES)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildWithCatalogs(build_py):
    """``build_py``, then every ``.po`` under the catalogs compiled into the build."""

    def run(self) -> None:
        super().run()
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        rules = _rules()
        for po in sorted(CATALOGS.glob("*/LC_MESSAGES/*.po")):
            with po.open("rb") as source:
                catalog = read_po(source, locale=po.parent.parent.name, domain=po.stem)
            faults = []
            for message in catalog:
                if message.id and message.string and not message.fuzzy:
                    ids = message.id if isinstance(message.id, tuple) else (message.id,)
                    strings = (
                        message.string if isinstance(message.string, tuple) else (message.string,)
                    )
                    faults += rules.faults(ids[-1], tuple(s for s in strings if s))
            if faults:
                raise SystemExit(f"{po}: {len(faults)} broken translation(s), first: {faults[0]}")
            target = Path(self.build_lib) / po.with_suffix(".mo")
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as out:
                write_mo(out, catalog, use_fuzzy=False)


setup(cmdclass={"build_py": BuildWithCatalogs})
