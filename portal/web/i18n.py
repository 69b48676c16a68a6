"""The reporter's language: which one a page is in, and how it stays chosen.

Most seafarers are not native English speakers, and a frightened rating
should be able to report in their own language. The pages, the messages the
server writes and the messages the browser writes all come from one set of
gettext catalogs (``portal/web/translations/<locale>/LC_MESSAGES/``):
``messages`` for the server, ``js`` for the browser. A page with a script
carries the browser's part inside it, as a JSON data block holding only the
messages that page's bundle can show (:func:`page_messages`): no request of
its own, no second set of response headers on a satellite link. The whole
catalog is also served as JSON (``/i18n/<code>.json``) for tools and checks.

How a request's language is chosen, first match wins:

1. the address: ``?lang=<code>`` on any page, or ``/<code>/`` as a way into
   the report form (a link a CSO can hand out to a crew);
2. the browser's ``Accept-Language`` header (a guess; Tor Browser always
   says English, which is why every page has a language picker).

There is no cookie: an explicit choice travels in the links, form actions
and redirects the portal writes (``url_for`` adds ``lang``), so it lasts
exactly as long as the reporter follows the portal's own links. A language
asked for that the portal does not ship gives English, and the page says so.

The language never reaches a log. The report document records its code
(``language``), so the reviewers know what the narrative is written in.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babel.support import Translations
from flask import Flask, Response, abort, g, request, url_for
from flask_babel import Babel
from markupsafe import Markup
from werkzeug.routing import BuildError

#: where the catalogs live, in the usual gettext layout (Weblate reads it as it is)
TRANSLATIONS = Path(__file__).resolve().parent / "translations"


@dataclass(frozen=True)
class Language:
    """One shipped language."""

    code: str  #: BCP 47, as in the address and the report document
    locale: str  #: Babel's locale identifier, also the catalog's folder
    name: str  #: its name in its own script, for the picker
    english: str  #: its name in English, for the README and the reviewers
    direction: str = "ltr"


#: the shipped languages, in the picker's order: English first, then by the
#: size of the crews who speak them (BIMCO/ICS manpower), then the rest
SHIPPED: tuple[Language, ...] = (
    Language("en", "en", "English", "English"),
    Language("tl", "fil", "Tagalog", "Filipino (Tagalog)"),
    Language("zh-Hans", "zh_Hans", "简体中文", "Chinese (Simplified)"),
    Language("id", "id", "Bahasa Indonesia", "Indonesian"),
    Language("ru", "ru", "Русский", "Russian"),
    Language("uk", "uk", "Українська", "Ukrainian"),
    Language("hi", "hi", "हिन्दी", "Hindi"),
    Language("vi", "vi", "Tiếng Việt", "Vietnamese"),
    Language("my", "my", "မြန်မာ", "Burmese"),
    Language("ar", "ar", "العربية", "Arabic", "rtl"),
    Language("fr", "fr", "Français", "French"),
    Language("es", "es", "Español", "Spanish"),
)
ENGLISH = SHIPPED[0]
BY_CODE = {language.code: language for language in SHIPPED}

#: primary subtags (lower case) of what browsers send, beyond the codes themselves
_ALIASES = {"fil": "tl", "zh": "zh-Hans", "in": "id", "my": "my", "bur": "my"}
#: Chinese written in traditional characters: not shipped, so not Simplified either
_TRADITIONAL = re.compile(r"^zh-(hant|tw|hk|mo)\b")

#: shown in English when the language asked for is not shipped
NOT_SHIPPED = (
    "This page is not yet available in the language you asked for, so it is shown "
    "in English. You can pick another language above."
)


def language_for(tag: str) -> Language | None:
    """The shipped language a BCP 47 tag asks for, or None."""
    tag = tag.strip().replace("_", "-").lower()
    if not tag or len(tag) > 35:
        return None
    for language in SHIPPED:
        if tag == language.code.lower():
            return language
    if _TRADITIONAL.match(tag):
        return None
    primary = tag.split("-", 1)[0]
    code = _ALIASES.get(primary, primary)
    return BY_CODE.get(code)


@dataclass(frozen=True)
class Choice:
    """A request's language, and how it was chosen."""

    language: Language
    explicit: bool  #: asked for in the address: links carry it on
    notice: str | None = None  #: why the page is in English, when it is


def choose(asked: str | None, accept: list[tuple[str, float]]) -> Choice:
    """The language of a request from its ``lang`` (address) and ``Accept-Language``."""
    if asked is not None:
        language = language_for(asked)
        if language is None:
            return Choice(ENGLISH, False, NOT_SHIPPED)
        return Choice(language, True)
    other_than_english = False
    for tag, quality in accept:
        if quality <= 0 or tag == "*":
            continue
        language = language_for(tag)
        if language is not None:
            return Choice(language, False)
        other_than_english = True
    return Choice(ENGLISH, False, NOT_SHIPPED if other_than_english else None)


def current() -> Language:
    """The language of the request being served (English outside a request)."""
    choice = g.get("language_choice")
    return choice.language if choice is not None else ENGLISH


@functools.cache
def browser_catalog(code: str) -> bytes:
    """The browser's messages in ``code``: a JSON object from msgid to translation.

    Read once from the compiled ``js`` catalog. English, and a language whose
    catalog is missing, is ``{}``: the browser then shows its English msgids.
    """
    language = BY_CODE[code]
    messages: dict[str, str] = {}
    if language is not ENGLISH:
        catalog = Translations.load(str(TRANSLATIONS), [language.locale], domain="js")
        for key, value in getattr(catalog, "_catalog", {}).items():
            if isinstance(key, str) and key and value:
                messages[key] = value
    return json.dumps(messages, ensure_ascii=False, sort_keys=True).encode()


#: where the pages' bundles live (scripts/bundle.py writes them)
STATIC = Path(__file__).resolve().parent / "static"


@functools.cache
def _page_messages(code: str, bundle: str) -> Markup:
    browser_msgids()  # refuses keys that clash, before any page carries one
    messages = json.loads(browser_catalog(code))
    source = (STATIC / bundle).read_text(encoding="utf-8")
    # A msgid stays a string literal in the bundle (esbuild keeps strings, --charset=utf8):
    # as written, or with JSON's escapes where it holds a quote, a backslash or a newline.
    written = [
        msgid
        for msgid in messages
        if msgid in source or json.dumps(msgid, ensure_ascii=False)[1:-1] in source
    ]
    used = {message_key(msgid): messages[msgid] for msgid in written}
    return script_json(used)


def clashing_keys(msgids: Any) -> list[tuple[str, str]]:
    """Pairs of ``msgids`` that share a :func:`message_key` (none may, translated or not).

    A clash between a message still untranslated in some language and a
    translated one would show the other message's words (i18n.js finds the key),
    so every msgid the browser can ask for counts, not only a catalog's own.
    """
    seen: dict[str, str] = {}
    clashes = []
    for msgid in msgids:
        key = message_key(msgid)
        if key in seen and seen[key] != msgid:
            clashes.append((seen[key], msgid))
        seen.setdefault(key, msgid)
    return clashes


@functools.cache
def browser_msgids() -> tuple[str, ...]:
    """Every msgid of the browser's messages (``js.pot``), checked to have distinct keys."""
    from babel.messages.pofile import read_po

    with (TRANSLATIONS / "js.pot").open("rb") as template:
        msgids = tuple(str(m.id) for m in read_po(template) if m.id and isinstance(m.id, str))
    if clashes := clashing_keys(msgids):
        raise RuntimeError(f"browser msgids share a key, change message_key: {clashes[:3]}")
    return msgids


def message_key(msgid: str) -> str:
    """The key of ``msgid`` in a page's catalog: FNV-1a (32 bits) of its UTF-8, base 36.

    i18n.js's ``messageKey`` computes the same; a few letters instead of the
    English sentence keep each language's catalog to its own words.
    """
    value = 0x811C9DC5
    for byte in msgid.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    digits = ""
    while True:
        value, digit = divmod(value, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[digit] + digits
        if not value:
            return digits


def page_messages(bundle: str) -> Markup:
    """For templates: the messages of ``bundle`` (a path under static/) in the page's language.

    A JSON object from :func:`message_key` to translation for ``<script
    type="application/json" id="cso-messages">``, which i18n.js reads: only the
    msgids written in that bundle, so a language adds to a page its own words
    for that page and no more.
    """
    return _page_messages(current().code, bundle)


def script_json(document: Any) -> Markup:
    """``document`` as compact JSON that cannot end the ``<script>`` element holding it."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    for char in "<>&":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return Markup(text)  # noqa: S704 - no "<" or "&" is left to be read as markup


def _entry_codes() -> str:
    return ", ".join(f"'{language.code}'" for language in SHIPPED)


def install(app: Flask, *, pages: bool = True) -> None:
    """Choose each request's language, keep an explicit choice in links, serve the catalogs.

    Without ``pages`` (the reviewers' sync API, which speaks to programs) the
    application answers in English only and serves no catalog.
    """
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    app.config["BABEL_DEFAULT_LOCALE"] = "en"
    Babel(app, locale_selector=lambda: current().locale)
    if not pages:
        return
    app.jinja_env.globals["page_messages"] = page_messages

    @app.url_value_preprocessor
    def _entry(endpoint: str | None, values: dict[str, Any] | None) -> None:
        entry = values.pop("lang_path", None) if values else None
        asked = request.args.get("lang", entry)
        accept = [(tag, quality) for tag, quality in request.accept_languages]
        choice = choose(asked, accept)
        g.language_choice = choice
        g.lang_code = choice.language.code

    @app.url_defaults
    def _keep(endpoint: str, values: dict[str, Any]) -> None:
        choice = g.get("language_choice")
        if choice is None or not choice.explicit or endpoint == "static":
            return
        if endpoint == "i18n_catalog" or "lang_path" in values:
            return
        values.setdefault("lang", choice.language.code)

    @app.context_processor
    def _page() -> dict[str, Any]:
        choice = g.get("language_choice") or Choice(ENGLISH, False)
        return {
            "page_lang": choice.language.code,
            "page_dir": choice.language.direction,
            "language_links": language_links(choice.language),
            "language_notice": choice.notice,
            "lang_explicit": choice.explicit,
        }

    @app.after_request
    def _vary(response: Response) -> Response:
        # the same address can answer in another language for another browser
        response.vary.add("Accept-Language")
        return response

    def catalog(code: str) -> Response:
        if code not in BY_CODE:
            abort(404)
        return Response(browser_catalog(code), mimetype="application/json")

    app.add_url_rule("/i18n/<code>.json", "i18n_catalog", catalog, methods=["GET"])
    if "intake.form" in app.view_functions:
        app.add_url_rule(
            f"/<any({_entry_codes()}):lang_path>/",
            "intake.form",
            methods=["GET"],
        )


@dataclass(frozen=True)
class LanguageLink:
    """One entry of the picker."""

    code: str
    name: str
    href: str
    current: bool
    dir: str


def language_links(shown: Language) -> list[LanguageLink]:
    """The picker: this page in every shipped language.

    A page that came from a GET links to itself with the other ``lang`` (and
    the rest of its address kept, such as the chosen category); a page that
    answered a POST cannot be fetched again, so it links to the report form.
    """
    endpoint = request.endpoint if request.method == "GET" else None
    arguments: dict[str, str] = {}
    if endpoint in (None, "static", "i18n_catalog") or request.view_args:
        endpoint = "intake.form"
    elif endpoint == "intake.form":
        # the one thing of the address worth keeping: a category the form knows.
        # Nothing else is copied, so no link ever echoes what someone typed there.
        from portal.web.fields import ALL

        category = request.args.get("category")
        if category in ALL:
            arguments["category"] = category
    links = []
    for language in SHIPPED:
        try:
            href = url_for(endpoint, **{**arguments, "lang": language.code})
        except BuildError:  # an endpoint whose address needs more than the language
            href = url_for("intake.form", lang=language.code)
        links.append(
            LanguageLink(language.code, language.name, href, language is shown, language.direction)
        )
    return links
