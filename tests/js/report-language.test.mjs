// The report document names the language of the page the reporter used
// (portal/web/report.py's "language"): a short, well-formed code, else "en".

import assert from 'node:assert/strict';
import test from 'node:test';

import { documentLanguage } from '../../portal/web/static/js/report-send.js';

test('the shipped languages pass as they are', () => {
  for (const code of ['en', 'tl', 'zh-Hans', 'id', 'ru', 'uk', 'hi', 'vi', 'my', 'ar', 'fr', 'es']) {
    assert.equal(documentLanguage(code), code);
  }
});

test('anything that is not a short well-formed code becomes "en"', () => {
  for (const code of ['', 'e', 'english', 'en_US', 'en-', 'zh-Hans-CN-x-private', 'ar\n', '<b>', 'en-😀']) {
    assert.equal(documentLanguage(code), 'en', JSON.stringify(code));
  }
});

test('without a page, the language is "en"', () => {
  assert.equal(documentLanguage(), 'en');
});
