"""The language of the reporter pages: chosen in the address or guessed, kept in links."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from flask.testing import FlaskClient

from portal.web.i18n import NOT_SHIPPED, SHIPPED
from tests.integration.portal_server import plain_form


def _html_tag(page: str) -> str:
    match = re.search(r"<html[^>]*>", page)
    assert match, page[:200]
    return match.group(0)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
class TestLanguageInTheAddress:
    def test_lang_parameter_sets_lang_and_dir(self, client: FlaskClient) -> None:
        page = client.get("/?lang=ar").get_data(as_text=True)
        assert 'lang="ar"' in _html_tag(page)
        assert 'dir="rtl"' in _html_tag(page)
        page = client.get("/?lang=tl").get_data(as_text=True)
        assert 'lang="tl"' in _html_tag(page)
        assert 'dir="ltr"' in _html_tag(page)

    def test_entry_path_serves_the_form_in_that_language(self, client: FlaskClient) -> None:
        for language in SHIPPED:
            answer = client.get(f"/{language.code}/")
            assert answer.status_code == 200, language.code
            assert f'lang="{language.code}"' in _html_tag(answer.get_data(as_text=True))
        assert client.get("/de/").status_code == 404
        assert client.get("/static/").status_code == 404

    def test_links_and_form_actions_keep_an_explicit_choice(self, client: FlaskClient) -> None:
        page = client.get("/?lang=vi").get_data(as_text=True)
        assert 'href="/followup?lang=vi"' in page
        assert re.search(r'<form id="report" method="get" action="/\?lang=vi"', page)
        page = client.get("/followup?lang=vi").get_data(as_text=True)
        assert re.search(r'action="/followup\?lang=vi"', page)

    def test_without_a_choice_links_carry_no_language(self, client: FlaskClient) -> None:
        page = client.get("/", headers={"Accept-Language": "ru"}).get_data(as_text=True)
        assert 'lang="ru"' in _html_tag(page)
        assert 'href="/followup"' in page

    def test_unshipped_language_falls_back_to_english_and_says_so(
        self, client: FlaskClient
    ) -> None:
        for answer in (
            client.get("/?lang=de"),
            client.get("/", headers={"Accept-Language": "de-DE,de;q=0.9"}),
        ):
            page = answer.get_data(as_text=True)
            assert 'lang="en"' in _html_tag(page)
            assert NOT_SHIPPED in page

    def test_english_browser_gets_no_notice(self, client: FlaskClient) -> None:
        page = client.get("/", headers={"Accept-Language": "en-US,en;q=0.5"}).get_data(as_text=True)
        assert NOT_SHIPPED not in page

    def test_answers_vary_by_accept_language_and_set_no_language_cookie(
        self, client: FlaskClient
    ) -> None:
        answer = client.get("/?lang=ar")
        assert "Accept-Language" in answer.headers.get("Vary", "")
        for cookie in answer.headers.getlist("Set-Cookie"):
            assert "lang" not in cookie.split("=", 1)[0].lower()

    def test_picker_links_every_language_named_in_its_own_script(self, client: FlaskClient) -> None:
        page = client.get("/?lang=my").get_data(as_text=True)
        for language in SHIPPED:
            assert f'hreflang="{language.code}"' in page
            assert language.name in page
        assert re.search(r'aria-current="true"[^>]*>မြန်မာ<|hreflang="my"[^>]*aria-current', page)

    def test_browser_catalog_is_json_per_language(self, client: FlaskClient) -> None:
        assert client.get("/i18n/en.json").get_json() == {}
        for language in SHIPPED[1:]:
            answer = client.get(f"/i18n/{language.code}.json")
            assert answer.status_code == 200
            assert answer.mimetype == "application/json"
            catalog = json.loads(answer.get_data())
            assert isinstance(catalog, dict)
            assert catalog, language.code
        assert client.get("/i18n/de.json").status_code == 404
        assert client.get("/i18n/..%2fmessages.json").status_code == 404

    def test_a_report_sent_in_a_chosen_language_gets_its_receipt_in_it_without_a_picker(
        self, client: FlaskClient
    ) -> None:
        """Tor Browser says English; the reporter chose Arabic in the address.

        The receipt page must stay Arabic (the 303 keeps ``lang``) and must not
        offer the picker: every one of its links would leave the one page that
        shows the receipt, for good.
        """
        form = {
            **plain_form(client, "other"),
            "category": "other",
            "narrative": "رأيت قاربًا قرب المرسى",
        }
        answer = client.post(
            "/submit-plain?lang=ar",
            data=form,
            content_type="multipart/form-data",
            headers={"Accept-Language": "en-US,en;q=0.5"},
        )
        assert answer.status_code == 303
        assert answer.headers["Location"] == "/received?lang=ar"
        page = client.get("/received?lang=ar", headers={"Accept-Language": "en-US"})
        text = page.get_data(as_text=True)
        assert 'lang="ar" dir="rtl"' in _html_tag(text)
        assert re.search(r'id="receipt">[0-9 ]{29}<', text)
        assert 'class="languages"' not in text
        again = client.get("/received?lang=ar").get_data(as_text=True)
        assert 'class="languages"' in again  # "already received": the picker is back


#: elements with no end tag, and options (whose end tag may be left out): none holds a label
_NOT_HOLDING_LABELS = frozenset({"input", "option", "meta", "link", "br", "img", "hr"})


class _FormShows(HTMLParser):
    """What rules.js reads from the form (``onForm``): each field's label words and choices.

    A label's (or a group's legend's) own text, not that of an element inside
    it (the "(required)" mark), trimmed; the values of a list's options but
    the empty one, and of a group's boxes. Fields inside ``<template>`` count.
    """

    def __init__(self) -> None:
        super().__init__()
        self.labels: dict[str, str] = {}
        self.choices: dict[str, list[str]] = {}
        self._open: list[tuple[str, str | None]] = []  # (tag, field whose label it is)
        self._group: str | None = None  # the field of the <fieldset> or <select> we are in

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        ident = attr.get("id") or ""
        if tag in ("fieldset", "select") and ident.startswith("f-"):
            self._group = ident[2:]
            self.choices[self._group] = []
        if tag == "input" and attr.get("type") == "checkbox" and self._group:
            self.choices[self._group].append(attr.get("value") or "")
        elif tag == "option" and self._group and attr.get("value"):
            self.choices[self._group].append(attr["value"] or "")
        if tag in _NOT_HOLDING_LABELS:
            return
        owner = None
        if tag == "label" and (attr.get("for") or "").startswith("f-"):
            owner = (attr["for"] or "")[2:]
        elif tag == "legend" and self._group and self._open[-1][0] == "fieldset":
            owner = self._group
        if owner is not None:
            self.labels[owner] = ""
        self._open.append((tag, owner))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("fieldset", "select"):
            self._group = None
        if tag not in _NOT_HOLDING_LABELS and self._open and self._open[-1][0] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._open and self._open[-1][1] is not None:
            self.labels[self._open[-1][1]] += data


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("step", ["/", "/?category=other"], ids=["step-1", "step-2"])
def test_the_form_names_every_field_as_the_server_s_messages_do(
    client: FlaskClient, step: str
) -> None:
    """The rules JSON leaves out each label and choice: the form itself must give them right."""
    from flask_babel import force_locale

    from portal.web.fields import FIELDS

    for language in SHIPPED:
        page = client.get(f"{step}{'&' if '?' in step else '?'}lang={language.code}")
        text = page.get_data(as_text=True)
        found = re.search(r'<script type="application/json" id="form-rules">(.*?)</script>', text)
        assert found is not None
        rules = {rule["name"]: rule for rule in json.loads(found.group(1))["fields"]}
        form = _FormShows()
        form.feed(text)
        with client.application.test_request_context("/"), force_locale(language.locale):
            for f in FIELDS:
                named = rules[f.name].get("label") or form.labels[f.name].strip()
                assert named == str(f.name_in_messages), (language.code, f.name)
                offered = form.choices.get(f.name, [])
                assert offered == [value for value, _ in f.choices], (language.code, f.name)
