// The browser's messages (portal/web/static/js/i18n.js): English without a
// page, a catalog read from the page's JSON data block, and English again
// whenever the catalog is missing or does not fit.

import assert from 'node:assert/strict';
import test from 'node:test';

import { _, around, catalogEntries, languageHeaders, messageKey, pageLanguage } from '../../portal/web/static/js/i18n.js';

const MODULE = '../../portal/web/static/js/i18n.js';

/**
 * A fresh instance of the module loaded in a page with `lang` whose
 * <script id="cso-messages"> holds `block` (text; null: no such element).
 * Returns the module and the element ids it looked up.
 */
async function loadInPage({ lang, block = null }) {
  const asked = [];
  const saved = globalThis.document;
  globalThis.document = {
    documentElement: { lang },
    getElementById: (id) => {
      asked.push(id);
      return id === 'cso-messages' && block !== null ? { textContent: block } : null;
    },
  };
  try {
    const module = await import(`${MODULE}?page=${encodeURIComponent(lang)}-${Math.random()}`);
    return { module, asked };
  } finally {
    globalThis.document = saved;
  }
}

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

test('only non-empty string translations are kept', () => {
  const entries = catalogEntries({ a1: 'Natanggap ang ulat', b2: '', c3: 7, d4: null, constructor: 'x' });
  assert.deepEqual([...entries.keys()], ['a1', 'constructor']);
  for (const bad of [null, [], 'text', 3]) assert.equal(catalogEntries(bad).size, 0);
});

test('message keys are FNV-1a of the UTF-8 msgid in base 36, as the server writes them', () => {
  // the same vectors as tests/unit/portal/test_i18n_keys.py
  assert.equal(messageKey('Report received'), '1vzn7p2');
  assert.equal(messageKey('Encrypting file {n} of {total}…'), '1lqbljj');
  assert.equal(messageKey(''), 'ztntfp');
  assert.equal(messageKey(' 中文 '), '15sib8x');
});

// A catalog as the server writes it: keyed by messageKey.
const keyed = (messages) => JSON.stringify(Object.fromEntries(
  Object.entries(messages).map(([msgid, text]) => [messageKey(msgid), text])));

test('a page in another language reads its catalog from its data block', async () => {
  const { module } = await loadInPage({
    lang: 'tl',
    block: keyed({
      'Report received': 'Natanggap ang ulat',
      'Encrypting file {n} of {total}…': 'Ine-encrypt ang file {n} ng {total}…',
      '{size} KiB': 'KiB', // drops a placeholder
      '{n} files': '{count} na file', // renames one
    }),
  });
  assert.equal(module._('Report received'), 'Natanggap ang ulat');
  assert.equal(module._('Encrypting file {n} of {total}…', { n: 1, total: 2 }), 'Ine-encrypt ang file 1 ng 2…');
  assert.equal(module._('{size} KiB', { size: 3 }), '3 KiB'); // the damaged translations are not used
  assert.equal(module._('{n} files', { n: 2 }), '2 files');
  assert.equal(module._('Copy the receipt'), 'Copy the receipt'); // not translated: English
  assert.equal(module._('constructor'), 'constructor');
  assert.equal(module.pageLanguage(), 'tl');
  assert.deepEqual(module.languageHeaders(), { 'Accept-Language': 'tl' });
});

test('English pages read no catalog', async () => {
  const { module, asked } = await loadInPage({ lang: 'en', block: keyed({ a: 'b' }) });
  assert.deepEqual(asked, []);
  assert.equal(module._('a'), 'a');
});

test('a page without the data block stays English', async () => {
  const { module } = await loadInPage({ lang: 'ar' });
  assert.equal(module._('a'), 'a');
  assert.equal(module.pageLanguage(), 'ar');
});

test('a damaged catalog leaves the messages English, without an exception', async () => {
  for (const block of ['', '<html>not json', '["a", "b"]', 'null', '{"a": ']) {
    const { module } = await loadInPage({ lang: 'my', block });
    assert.equal(module._('Report received'), 'Report received');
    assert.equal(module._('{n} files', { n: 2 }), '2 files');
  }
});

test('a language tag unfit for a header is taken as English', async () => {
  for (const lang of ['', 'x', 'en US', 'zh-Hans\r\nX: y', 'ü']) {
    const { module } = await loadInPage({ lang });
    assert.equal(module.pageLanguage(), 'en', JSON.stringify(lang));
  }
  const { module } = await loadInPage({ lang: 'zh-Hans' });
  assert.equal(module.pageLanguage(), 'zh-Hans');
});
