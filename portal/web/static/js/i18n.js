// The browser's messages in the page's language.
//
// The page carries its catalog in <script type="application/json"
// id="cso-messages">: a flat JSON object from a short key of each English
// msgid (messageKey) to its translation,
// made from the same gettext catalogs as the server's pages
// (portal/web/i18n.py), holding only the messages this page's bundle can
// show. It is in the page rather than fetched: on a satellite link a request
// of its own would cost a response's headers and, before the modules could
// run, a wait. Being read at once, a module that imports this one may call
// _() in its own top-level constants.
//
// Msgids are plain English string literals, written _("...") so that Babel's
// JavaScript extractor finds them; placeholders are {name}. What _() returns
// is text: put it into textContent, never into innerHTML. A translation is
// data, and so is every value filled into it.
//
// Whatever goes wrong (no block, a damaged catalog), the messages stay
// English: better than blank text, or a page whose scripts never run.

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
 * The key of `msgid` in a page's catalog: FNV-1a (32 bits) of its UTF-8
 * bytes, in base 36. A key of six or seven letters instead of the English
 * sentence keeps a language's catalog to its own words; the server writes
 * the same keys (portal/web/i18n.py, message_key) and refuses a catalog in
 * which two msgids would share one.
 */
export function messageKey(msgid) {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(msgid)) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return hash.toString(36);
}

/**
 * The usable entries of a parsed catalog (key to translation), as a Map (so
 * that a key such as "constructor" never finds anything inherited). A
 * translation that is not a non-empty string is left out.
 */
export function catalogEntries(parsed) {
  const entries = new Map();
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return entries;
  for (const [key, text] of Object.entries(parsed)) {
    if (typeof text === 'string' && text !== '') entries.set(key, text);
  }
  return entries;
}

function loadCatalog() {
  // English is the msgids themselves: its pages carry no catalog.
  if (LANGUAGE === 'en') return new Map();
  const block = globalThis.document?.getElementById?.('cso-messages');
  if (!block) return new Map();
  try {
    return catalogEntries(JSON.parse(block.textContent));
  } catch {
    return new Map();
  }
}

const catalog = loadCatalog();

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
  return fill(translated(msgid), params);
}

// A translation that drops or invents a placeholder is not used: the English
// msgid then shows, with nothing missing from it.
function translated(msgid) {
  if (catalog.size === 0) return msgid;
  const text = catalog.get(messageKey(msgid));
  return text !== undefined && placeholders(text) === placeholders(msgid) ? text : msgid;
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
