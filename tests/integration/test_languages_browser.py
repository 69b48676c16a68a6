"""Reporters in their own language, in real Chromium against the real portal (issue 15).

One portal under gunicorn and one Chromium serve the whole module (each test
opens its own browser context, with or without JavaScript): the checks are
about what the reporter sees and what the reviewers decrypt, and none needs a
fresh database, since every report is found again by its receipt.

* an Arabic page is laid out right to left: measured, not only its ``dir``;
* an Arabic narrative mixing scripts, Latin words and digits of two kinds
  arrives byte for byte, with the report's ``language``;
* a receipt typed in Arabic-Indic digits opens the conversation;
* a report from a Tagalog or Chinese page carries the same slugs as one from
  the English page, with and without JavaScript;
* after a send, focus and the live region speak the page's language;
* the language picker works from the keyboard and shows where focus is.
"""

# ruff: noqa: RUF001 -- Arabic-Indic digits are the point of these tests

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from crypto.envelope import open_bytes
from crypto.receipt import Receipt
from portal.storage.models import Submission
from tests.conftest import DemoPortal
from tests.integration.chromium import launched
from tests.integration.portal_server import fresh_demo, serve_portal

#: typed from the Arabic page: Arabic, Latin words, ASCII and Arabic-Indic digits, a dash
ARABIC_NARRATIVE = "شوهد زورق سريع Yamaha 40HP على بعد 2.5 ميل، الساعة ٠٣:١٥ — MV Test-7?"
#: ASCII digits to Arabic-Indic ones (U+0660..U+0669)
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
#: the canonical answers every language's form must send (choices picked by value)
SLUGS = {
    "category": "piracy-or-armed-robbery",
    "vessel_status": "anchored",
    "weapons": ["knives-or-machetes", "guns"],
}


@pytest.fixture(scope="module")
def demo(demo_template: DemoPortal, tmp_path_factory: pytest.TempPathFactory) -> DemoPortal:
    """The demo data directory with an empty SQLite database, once for the module."""
    return fresh_demo(demo_template, tmp_path_factory.mktemp("languages"))


@pytest.fixture(scope="module")
def url(demo: DemoPortal, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The portal under gunicorn, for the whole module."""
    with serve_portal(demo, tmp_path_factory.mktemp("languages-server")) as server:
        yield server["url"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, launched once; each test opens its own context."""
    with launched() as browser:
        yield browser


def new_page(browser: Any, *, javascript: bool = True) -> Any:
    """A page in a fresh context (no cookies shared), English as the browser's language.

    Script errors fail the test; the context closes with the page.
    """
    context = browser.new_context(java_script_enabled=javascript, locale="en-US")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.problems = problems
    return page


def close(page: Any) -> None:
    """Close the page's context; no script error may have happened."""
    problems = page.problems
    page.context.close()
    assert problems == []


def wait_until_ready(page: Any) -> None:
    page.wait_for_selector("html[data-encryption=ready]", timeout=30_000)


def stored_report(demo: DemoPortal, shown: str) -> dict[str, Any]:
    """Decrypt, with a demo reviewer's key, the report stored for the receipt ``shown``."""
    locator = Receipt.parse(shown).locator
    engine = create_engine(demo.database_url)
    try:
        with Session(engine) as session:
            [submission] = session.scalars(
                select(Submission).where(Submission.receipt_locator == locator)
            ).all()
            blob = submission.parts[0].blob
    finally:
        engine.dispose()
    sealed = (demo.data_dir / "blobs" / blob).read_bytes()
    return json.loads(open_bytes(sealed, demo.identity(0)))  # type: ignore[no-any-return]


def to_step_two(page: Any, category: str) -> None:
    """Choose the category by its slug; without JavaScript, go on to step 2."""
    page.select_option("#f-category", category)
    if page.get_attribute("#report", "data-step") == "category":
        with page.expect_navigation():
            page.click("#next-step button[type=submit]")


def send(page: Any) -> str:
    """Press the page's send button (either kind); return the receipt the page shows."""
    if page.is_visible("#send"):
        wait_until_ready(page)
        page.click("#send")
        page.wait_for_selector("#done", timeout=90_000)
    else:
        with page.expect_navigation(timeout=60_000):
            page.click("#send-plain")
        page.wait_for_selector("#receipt-heading")
    return str(page.text_content("#receipt")).strip()


# --- 1. right to left, measured -------------------------------------------------


def text_box(page: Any, selector: str) -> dict[str, float]:
    """Where the text inside ``selector`` is drawn (not its block, which spans the column)."""
    return page.eval_on_selector(  # type: ignore[no-any-return]
        selector,
        """element => {
            const range = document.createRange();
            range.selectNodeContents(element);
            const box = range.getBoundingClientRect();
            return {left: box.left, right: box.right};
        }""",
    )


def column(page: Any, selector: str) -> dict[str, float]:
    """The content box ``selector`` is laid out in: its section's, else ``main``'s."""
    return page.eval_on_selector(  # type: ignore[no-any-return]
        selector,
        """element => {
            const holder = element.closest('fieldset.section') || element.closest('main');
            const box = holder.getBoundingClientRect();
            const style = getComputedStyle(holder);
            const inset = side => parseFloat(style['padding' + side]) +
                parseFloat(style['border' + side + 'Width']);
            return {left: box.left + inset('Left'), right: box.right - inset('Right')};
        }""",
    )


def assert_starts_on_the(side: str, page: Any, selector: str) -> None:
    """The text of ``selector`` starts at its column's ``side`` edge, well short of the other."""
    main, text = column(page, selector), text_box(page, selector)
    assert main["right"] - main["left"] > 300, main  # a real column, not a squeezed one
    if side == "right":
        assert abs(text["right"] - main["right"]) <= 2, (selector, text, main)
        assert text["left"] - main["left"] > 40, (selector, text, main)
    else:
        assert abs(text["left"] - main["left"]) <= 2, (selector, text, main)
        assert main["right"] - text["right"] > 40, (selector, text, main)


def checkbox_side(page: Any, value: str) -> str:
    """Which side of its label's words the checkbox for ``value`` is drawn on."""
    boxes = page.eval_on_selector(
        f"input[type=checkbox][value='{value}']",
        """box => {
            const words = [...box.parentElement.childNodes].find(
                n => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
            const range = document.createRange();
            range.selectNodeContents(words);
            const text = range.getBoundingClientRect(), mark = box.getBoundingClientRect();
            return {mark: [mark.left, mark.right], text: [text.left, text.right]};
        }""",
    )
    if boxes["mark"][0] >= boxes["text"][1] - 1:
        return "right"
    assert boxes["mark"][1] <= boxes["text"][0] + 1, boxes  # beside the words, not on them
    return "left"


@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
def test_the_arabic_page_is_laid_out_right_to_left(
    browser: Any, url: str, javascript: bool
) -> None:
    page = new_page(browser, javascript=javascript)
    page.goto(url + "/?lang=ar")
    assert page.get_attribute("html", "dir") == "rtl"
    assert page.get_attribute("html", "lang") == "ar"
    assert page.evaluate("getComputedStyle(document.querySelector('main')).direction") == "rtl"
    assert_starts_on_the("right", page, "h1")
    assert_starts_on_the("right", page, "label[for=f-category]")
    to_step_two(page, SLUGS["category"])
    assert page.get_attribute("html", "dir") == "rtl"  # still Arabic on step 2 without scripts
    assert_starts_on_the("right", page, "label[for=f-place_name]")
    assert checkbox_side(page, "guns") == "right"
    close(page)
    # the same measures on the English page come out mirrored: they can tell the two apart
    if javascript:
        page = new_page(browser)
        page.goto(url + "/?lang=en")
        assert_starts_on_the("left", page, "h1")
        to_step_two(page, SLUGS["category"])
        assert checkbox_side(page, "guns") == "left"
        close(page)


# --- 2. and 3. an Arabic report and its receipt --------------------------------------


@pytest.fixture(scope="module")
def arabic_report(browser: Any, url: str, demo: DemoPortal) -> dict[str, Any]:
    """A report typed on the Arabic page and sent by the browser: receipt and decrypted report."""
    page = new_page(browser)
    page.goto(url + "/?lang=ar")
    to_step_two(page, "other")
    narrative = page.locator("#f-narrative")
    direction = narrative.get_attribute("dir")
    narrative.click()
    page.keyboard.insert_text(ARABIC_NARRATIVE)
    shown = send(page)
    close(page)
    return {"receipt": shown, "report": stored_report(demo, shown), "dir": direction}


def test_an_arabic_narrative_arrives_byte_for_byte(arabic_report: dict[str, Any]) -> None:
    assert arabic_report["dir"] == "auto"
    report = arabic_report["report"]
    assert report["encrypted_by"] == "browser"
    assert report["language"] == "ar"
    narrative = report["report"]["narrative"]
    assert narrative.encode() == ARABIC_NARRATIVE.encode(), ascii(narrative)


@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
def test_a_receipt_in_arabic_indic_digits_opens_the_conversation(
    browser: Any, url: str, arabic_report: dict[str, Any], javascript: bool
) -> None:
    typed = arabic_report["receipt"].translate(ARABIC_INDIC)
    assert not any("0" <= c <= "9" for c in typed), typed
    page = new_page(browser, javascript=javascript)
    page.goto(url + "/followup?lang=ar")
    page.fill("#f-receipt", typed)
    page.click("#lookup button[type=submit]")
    page.wait_for_selector("#report-status", timeout=30_000)
    assert page.get_attribute("html", "lang") == "ar"
    assert page.is_visible("#answer")
    close(page)


# --- 4. the same slugs from every language --------------------------------------------


def fill_slugs(page: Any, marker: str) -> None:
    """Answer the questions of ``SLUGS`` by value, never by label, and write a narrative."""
    to_step_two(page, SLUGS["category"])
    page.select_option("#f-vessel_status", value=SLUGS["vessel_status"])
    for value in SLUGS["weapons"]:
        page.check(f"input[name=weapons][value='{value}']")
    page.fill("#f-narrative", marker)


@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
def test_every_language_sends_the_same_slugs(
    browser: Any, url: str, demo: DemoPortal, javascript: bool
) -> None:
    answers = {}
    for code in ("en", "tl", "zh-Hans"):
        page = new_page(browser, javascript=javascript)
        page.goto(f"{url}/?lang={code}")
        marker = f"boarded at anchor ({code}, javascript={javascript})"
        fill_slugs(page, marker)
        assert page.get_attribute("html", "lang") == code  # step 2 kept the language
        shown = send(page)
        close(page)
        report = stored_report(demo, shown)
        assert report["encrypted_by"] == ("browser" if javascript else "server")
        assert report["report"]["narrative"] == marker
        assert report["language"] == code
        answers[code] = {name: report["report"].get(name) for name in SLUGS}
    assert answers["en"] == SLUGS
    assert answers["tl"] == answers["en"]
    assert answers["zh-Hans"] == answers["en"]


# --- 5. after the send: focus and the live region, translated ------------------------


def test_the_receipt_view_speaks_the_page_language(
    browser: Any, url: str, demo: DemoPortal
) -> None:
    catalog = requests.get(url + "/i18n/tl.json", timeout=30).json()
    english = (
        "Your report was received. It was encrypted in your browser for the vetted reviewers "
        "only; the server keeps only the encrypted copy and nothing about who sent it. Thank you."
    )
    expected = catalog.get(english)
    assert expected, "the Tagalog catalog has no translation of the success message"
    assert expected != english
    page = new_page(browser)
    page.goto(url + "/?lang=tl")
    to_step_two(page, "other")
    page.fill("#f-narrative", "tl receipt view")
    send(page)
    assert page.evaluate("document.activeElement.id") == "receipt-heading"
    assert page.text_content("#receipt-heading") == catalog.get("Report received")
    page.wait_for_selector("#done-status:not(:empty)")
    status = page.locator("#done-status")
    assert status.get_attribute("role") == "status" or status.get_attribute("aria-live")
    assert status.text_content() == expected
    close(page)


# --- 6. the picker from the keyboard --------------------------------------------------


def test_the_language_picker_works_from_the_keyboard(browser: Any, url: str) -> None:
    page = new_page(browser)
    page.goto(url + "/")
    assert page.get_attribute("html", "lang") == "en"
    names: list[str] = []
    for _ in range(20):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => {
                const a = document.activeElement;
                return {inPicker: !!a.closest('nav.languages'),
                        hreflang: a.getAttribute('hreflang')};
            }"""
        )
        # the picker comes first: every Tab until Arabic stays inside it
        assert focused["inPicker"], (names, focused)
        names.append(focused["hreflang"])
        if focused["hreflang"] == "ar":
            break
    assert names[0] == "en"
    assert names[-1] == "ar", names
    link = page.locator("nav.languages a[hreflang=ar]")
    assert link.text_content() == "العربية"
    assert link.evaluate("a => a.matches(':focus-visible')")
    outline = link.evaluate(
        "a => { const s = getComputedStyle(a); return [s.outlineStyle, s.outlineWidth]; }"
    )
    assert outline[0] != "none", outline
    assert outline[1] != "0px", outline
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "lang=ar" in page.url or "/ar/" in page.url, page.url
    assert page.get_attribute("html", "lang") == "ar"
    assert page.get_attribute("html", "dir") == "rtl"
    close(page)


@pytest.mark.parametrize("javascript", [True, False], ids=["javascript", "no-javascript"])
def test_numbers_and_positions_typed_in_arabic_indic_digits_arrive_as_numbers(
    browser: Any, url: str, demo: DemoPortal, javascript: bool
) -> None:
    """A count box must not drop digits of another script (a number input does, silently)."""
    page = new_page(browser, javascript=javascript)
    page.goto(url + "/?lang=ar")
    to_step_two(page, "piracy-or-armed-robbery")
    for selector, typed in (
        ("#f-perpetrators_min", "٣"),
        ("#f-perpetrators_max", "١٢"),
        ("#f-latitude", "٢٢٫٢٧"),
        ("#f-longitude", "٠٩١°٤٨٫٥'E"),
    ):
        page.locator(selector).click()
        page.keyboard.insert_text(typed)
        assert page.locator(selector).input_value() == typed, selector
    page.fill("#f-narrative", f"digits {javascript}")
    shown = send(page)
    close(page)
    report = stored_report(demo, shown)["report"]
    assert report["perpetrators_min"] == 3
    assert report["perpetrators_max"] == 12
    assert report["latitude"] == 22.27
    assert report["longitude"] == 91.808333


# --- 7. the browser's own messages name the fields in the page's language ----------


def server_message(code: str, key: str, name: str, **values: Any) -> str:
    """Message ``key`` about field ``name`` as the server words it on a page in ``code``."""
    from flask import Flask
    from flask_babel import Babel, force_locale

    from portal.web.field_rules import message
    from portal.web.fields import BY_NAME
    from portal.web.i18n import BY_CODE, TRANSLATIONS

    app = Flask(__name__)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    Babel(app)
    with app.test_request_context("/"), force_locale(BY_CODE[code].locale):
        other = values.pop("other", None)
        if other is not None:
            values["other"] = BY_NAME[other].name_in_messages
        return message(key, BY_NAME[name], **values)


def test_the_browser_names_each_field_in_the_page_s_language(browser: Any, url: str) -> None:
    """The rules JSON carries no labels: rules.js reads them from the form, step 2 still a template.

    Fields of step 2, both fields of a pair, a field that messages call by a
    shorter name (which the JSON still carries), and the category, whose label
    ends in the "(required)" mark (emptied by a script, as no reporter could).
    """
    from portal.web.i18n import SHIPPED

    page = new_page(browser)
    for language in SHIPPED:
        page.goto(f"{url}/?lang={language.code}")
        wait_until_ready(page)
        page.select_option("#f-category", "piracy-or-armed-robbery")
        for selector, typed in (("#f-perpetrators_min", "5"), ("#f-perpetrators_max", "2"),
                                ("#f-crew_injured", "x"), ("#f-latitude", "x"),
                                ("#f-narrative", "x")):  # fmt: skip
            page.fill(selector, typed)
        page.click("#send")
        shown = {name: page.text_content(f"#error-{name}")
                 for name in ("perpetrators_max", "crew_injured", "latitude")}  # fmt: skip
        assert shown == {
            "perpetrators_max": server_message(language.code, "order", "perpetrators_max",
                                               other="perpetrators_min"),
            "crew_injured": server_message(language.code, "count", "crew_injured"),
            "latitude": server_message(language.code, "coordinate", "latitude"),
        }, language.code  # fmt: skip
        if language.code != "en":
            assert shown["crew_injured"] != server_message("en", "count", "crew_injured")
        page.eval_on_selector("#f-category", "select => { select.value = ''; }")
        page.click("#send")
        required = server_message(language.code, "required", "category")
        assert page.text_content("#error-category") == required, language.code
    close(page)
