"""The keys of a page's catalog: the server's message_key and i18n.js's messageKey agree."""

from __future__ import annotations

import json

import pytest

from portal.web.i18n import (
    SHIPPED,
    STATIC,
    Language,
    browser_catalog,
    browser_msgids,
    clashing_keys,
    message_key,
)

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


def test_no_two_browser_messages_share_a_key() -> None:
    """Every msgid of js.pot, translated anywhere or not: a clash would show the wrong words."""
    msgids = browser_msgids()
    assert len(msgids) > 50
    assert clashing_keys(msgids) == []


def test_a_crafted_clash_is_found() -> None:
    """An outside review found this pair: 32-bit keys can be made to clash on purpose."""
    crafted = "Not sent: the portal refused the report. ulqtibw"
    assert message_key(crafted) == message_key("Report received")
    assert clashing_keys(["Report received", crafted]) == [("Report received", crafted)]
