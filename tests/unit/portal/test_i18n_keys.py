"""The keys of a page's catalog: the server's message_key and i18n.js's messageKey agree."""

from __future__ import annotations

import json

import pytest

from portal.web.i18n import SHIPPED, STATIC, Language, browser_catalog, message_key

#: the same vectors as tests/js/i18n.test.mjs ("message keys are FNV-1a ...")
VECTORS = {
    "Report received": "1vzn7p2",
    "Encrypting file {n} of {total}…": "1lqbljj",
    "": "ztntfp",
    " 中文 ": "15sib8x",
}


@pytest.mark.parametrize(("msgid", "key"), VECTORS.items())
def test_message_key(msgid: str, key: str) -> None:
    assert message_key(msgid) == key


@pytest.mark.parametrize("language", SHIPPED[1:], ids=lambda language: language.code)
def test_every_browser_message_reaches_a_bundle(language: Language) -> None:
    """No msgid is lost to escaping: each is found, as written, in some page's bundle."""

    bundles = "".join(path.read_text(encoding="utf-8") for path in (STATIC / "bundle").glob("*.js"))
    code = language.code
    missing = [
        msgid
        for msgid in json.loads(browser_catalog(code))
        if msgid not in bundles and json.dumps(msgid, ensure_ascii=False)[1:-1] not in bundles
    ]
    assert missing == []
