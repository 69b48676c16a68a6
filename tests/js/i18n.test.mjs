// The browser's messages (portal/web/static/js/i18n.js): English without a
// page, a catalog read from the page's <meta>, and English again whenever
// the catalog cannot be had or does not fit.

import assert from 'node:assert/strict';
import test from 'node:test';

import { _, around, catalogEntries, languageHeaders, pageLanguage } from '../../portal/web/static/js/i18n.js';

const MODULE = '../../portal/web/static/js/i18n.js';

/**
 * A fresh instance of the module (its own top-level await) loaded in a page
 * with `lang` whose meta names `url`, with `fetch` standing in for the network.
 * Returns the module and the URLs asked for.
 */
async function loadInPage({ lang, url = '/i18n/tl.json', fetch }) {
  const asked = [];
  const saved = { document: globalThis.document, fetch: globalThis.fetch };
  globalThis.document = {
    documentElement: { lang },
    querySelector: (selector) => (selector === 'meta[name="cso-messages"]' && url ? { content: url } : null),
  };
  globalThis.fetch = async (...args) => {
    asked.push(args[0]);
    return fetch(...args);
  };
  try {
    const module = await import(`${MODULE}?page=${encodeURIComponent(lang)}-${Math.random()}`);
    return { module, asked };
  } finally {
    globalThis.document = saved.document;
    globalThis.fetch = saved.fetch;
  }
}

const json = (value, status = 200) => new Response(JSON.stringify(value), {
  status, headers: { 'Content-Type': 'application/json' },
});

test('without a page the messages are the English msgids', () => {
  assert.equal(_('Encrypting your report…'), 'Encrypting your report…');
  assert.equal(pageLanguage(), 'en');
  assert.deepEqual(languageHeaders(), { 'Accept-Language': 'en' });
});

test('placeholders are filled from params, as text', () => {
  assert.equal(_('Encrypting file {n} of {total}…', { n: 2, total: 3 }), 'Encrypting file 2 of 3…');
  assert.equal(_('{size} MiB', { size: '1.5' }), '1.5 MiB');
  assert.equal(_('{a}{a}', { a: 0 }), '00');
  assert.equal(_('Not sent: {problem}', { problem: null }), 'Not sent: null');
  assert.equal(_('Status: {status}', { status: '<b>x</b>' }), 'Status: <b>x</b>');
});

test('a missing or undefined param leaves its placeholder', () => {
  assert.equal(_('Sent on {day}. Status: {status}.', { day: 'Monday' }), 'Sent on Monday. Status: {status}.');
  assert.equal(_('{n} files', { n: undefined }), '{n} files');
  assert.equal(_('{n} files'), '{n} files');
  assert.equal(_('{toString} and {constructor}', {}), '{toString} and {constructor}');
});

test('a value is never read for placeholders itself', () => {
  assert.equal(_('{words} Sending goes on', { words: '{words} {n}', n: 1 }), '{words} {n} Sending goes on');
});

test('around cuts a message at one placeholder and fills both sides', () => {
  assert.deepEqual(around('Sent on {day}. Status: {status}.', 'status', { day: '2024-05-01' }),
    ['Sent on 2024-05-01. Status: ', '.']);
  assert.deepEqual(around('Status: {status}', 'status', { status: 'x' }), ['Status: ', '']);
  assert.deepEqual(around('No placeholder', 'link'), ['No placeholder', '']);
  // a value holding the placeholder's name does not move the cut
  assert.deepEqual(around('On {day}: {status}!', 'status', { day: '{status}' }), ['On {status}: ', '!']);
});

test('only well-formed translations are kept', () => {
  const entries = catalogEntries({
    'Report received': 'Natanggap ang ulat',
    'Encrypting file {n} of {total}…': 'Ine-encrypt ang file {n} ng {total}…',
    '{size} KiB': 'KiB', // drops a placeholder
    '{n} files': '{count} na file', // renames one
    'Copy the receipt': '', // untranslated
    'Your receipt:': 7,
  });
  assert.deepEqual([...entries.keys()], ['Report received', 'Encrypting file {n} of {total}…']);
  for (const bad of [null, [], 'text', 3]) assert.equal(catalogEntries(bad).size, 0);
});

test('a page in another language reads its catalog from the meta', async () => {
  const { module, asked } = await loadInPage({
    lang: 'tl',
    fetch: async () => json({
      'Report received': 'Natanggap ang ulat',
      'Encrypting file {n} of {total}…': 'Ine-encrypt ang file {n} ng {total}…',
      '{size} KiB': 'KiB',
    }),
  });
  assert.deepEqual(asked, ['/i18n/tl.json']);
  assert.equal(module._('Report received'), 'Natanggap ang ulat');
  assert.equal(module._('Encrypting file {n} of {total}…', { n: 1, total: 2 }), 'Ine-encrypt ang file 1 ng 2…');
  assert.equal(module._('{size} KiB', { size: 3 }), '3 KiB'); // the damaged translation is not used
  assert.equal(module._('Copy the receipt'), 'Copy the receipt'); // not translated: English
  assert.equal(module._('constructor'), 'constructor');
  assert.equal(module.pageLanguage(), 'tl');
  assert.deepEqual(module.languageHeaders(), { 'Accept-Language': 'tl' });
});

test('English pages fetch nothing', async () => {
  const { module, asked } = await loadInPage({ lang: 'en', fetch: async () => json({ a: 'b' }) });
  assert.deepEqual(asked, []);
  assert.equal(module._('a'), 'a');
});

test('a page without the meta stays English', async () => {
  const { module, asked } = await loadInPage({ lang: 'ar', url: null, fetch: async () => json({ a: 'b' }) });
  assert.deepEqual(asked, []);
  assert.equal(module._('a'), 'a');
  assert.equal(module.pageLanguage(), 'ar');
});

test('a catalog that cannot be had leaves the messages English, without an exception', async () => {
  const failures = [
    async () => {
      throw new TypeError('Failed to fetch');
    },
    async () => json({ a: 'b' }, 404),
    async () => new Response('<html>not json', { status: 200 }),
    async () => json(['a', 'b']),
  ];
  for (const fetch of failures) {
    const { module, asked } = await loadInPage({ lang: 'my', fetch });
    assert.equal(asked.length, 1);
    assert.equal(module._('Report received'), 'Report received');
    assert.equal(module._('{n} files', { n: 2 }), '2 files');
  }
});

test('a language tag unfit for a header is taken as English', async () => {
  for (const lang of ['', 'x', 'en US', 'zh-Hans\r\nX: y', 'ü']) {
    const { module } = await loadInPage({ lang, url: null, fetch: async () => json({}) });
    assert.equal(module.pageLanguage(), 'en', JSON.stringify(lang));
  }
  const { module } = await loadInPage({ lang: 'zh-Hans', url: null, fetch: async () => json({}) });
  assert.equal(module.pageLanguage(), 'zh-Hans');
});
