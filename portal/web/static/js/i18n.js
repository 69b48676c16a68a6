// The browser's messages in the page's language.
//
// The page names its catalog in <meta name="cso-messages" content="/i18n/tl.json">:
// a flat JSON object from English msgid to translation, made from the same
// gettext catalogs as the server's pages (portal/web/i18n.py). It is fetched
// here with a top-level await, so a module that imports this one runs only
// once the messages are in hand, and may call _() in its own top-level
// constants.
//
// Msgids are plain English string literals, written _("...") so that Babel's
// JavaScript extractor finds them; placeholders are {name}. What _() returns
// is text: put it into textContent, never into innerHTML. A translation is
// data, and so is every value filled into it.
//
// Whatever goes wrong (no meta, no link, a damaged catalog), the messages
// stay English: better than blank text, or a page whose scripts never run.

// A catalog is a few kilobytes; past this the link is down and English will do.
const CATALOG_TIMEOUT_MS = 20000;
// What a header value may hold: a BCP 47 tag as the portal writes them ("zh-Hans").
const LANGUAGE_TAG = /^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$/;
const PLACEHOLDER = /\{(\w+)\}/g;

// The page's language (<html lang>), read once: the server sets it and nothing changes it.
const LANGUAGE = (() => {
  const lang = globalThis.document?.documentElement?.lang ?? '';
  return LANGUAGE_TAG.test(lang) ? lang : 'en';
})();

/** The page's language (<html lang>), or "en" where there is no page or no usable tag. */
export function pageLanguage() {
  return LANGUAGE;
}

/**
 * Headers to merge into the portal's own requests, so that the words the
 * server puts into a JSON answer (an error, a wait) come in the page's language.
 */
export function languageHeaders() {
  return { 'Accept-Language': pageLanguage() };
}

// The placeholders of a message, sorted: a translation must use the same ones.
function placeholders(text) {
  return [...text.matchAll(PLACEHOLDER)].map((match) => match[1]).sort().join(' ');
}

/**
 * The usable entries of a parsed catalog, as a Map (so that a msgid such as
 * "constructor" never finds anything inherited). A translation that is not a
 * non-empty string, or that drops or invents a placeholder, is left out: the
 * English msgid then shows, with nothing missing from it.
 */
export function catalogEntries(parsed) {
  const entries = new Map();
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return entries;
  for (const [msgid, text] of Object.entries(parsed)) {
    if (typeof text === 'string' && text !== '' && placeholders(text) === placeholders(msgid)) {
      entries.set(msgid, text);
    }
  }
  return entries;
}

async function loadCatalog() {
  const url = globalThis.document?.querySelector?.('meta[name="cso-messages"]')?.content;
  // English is the msgids themselves: no round trip for an empty catalog.
  if (!url || LANGUAGE === 'en') return new Map();
  try {
    // fetch's defaults (cors, same-origin credentials) match <link rel=preload as=fetch crossorigin>
    const response = await fetch(url, { signal: AbortSignal.timeout(CATALOG_TIMEOUT_MS) });
    return response.ok ? catalogEntries(await response.json()) : new Map();
  } catch {
    return new Map();
  }
}

const catalog = await loadCatalog();

// `text` with each {name} filled from `params` in one pass (a value is never read for placeholders).
function fill(text, params) {
  if (params === undefined || params === null) return text;
  return text.replace(PLACEHOLDER, (placeholder, name) =>
    Object.hasOwn(params, name) && params[name] !== undefined ? String(params[name]) : placeholder);
}

/**
 * `msgid` in the page's language (or as it is), with each {name} filled
 * from `params`. A value is inserted as text (String(value)); a name missing
 * from `params`, or undefined there, leaves its {name} in place.
 */
export function _(msgid, params) {
  return fill(catalog.get(msgid) ?? msgid, params);
}

/**
 * For a sentence with an element in it (a link, a <strong>): `text`, a
 * message from _() called without params, cut at its {name} into [before,
 * after], each then filled from `params`. The element goes between the two.
 * Without that placeholder the whole text comes first.
 */
export function around(text, name, params) {
  const at = text.indexOf(`{${name}}`);
  const [before, after] = at < 0 ? [text, ''] : [text.slice(0, at), text.slice(at + name.length + 2)];
  return [fill(before, params), fill(after, params)];
}
