"""The language of the reporter pages: chosen in the address or guessed, kept in links."""

from __future__ import annotations

import json
import re

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
