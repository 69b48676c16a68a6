// receipt.js: generation, parsing, and derivation matching Python (SPEC.md §14).

import assert from 'node:assert/strict';
import test from 'node:test';

import { toHex } from '../../portal/web/static/js/bytes.js';
import { formatPublicKey } from '../../portal/web/static/js/keys.js';
import { deriveReceiptKeys, formatReceipt, generateReceipt, parseReceipt } from '../../portal/web/static/js/receipt.js';
import { loadVectors } from './support.mjs';

test('§14.1 receipts are 24 digits, spread evenly', () => {
  const counts = new Array(10).fill(0);
  for (let i = 0; i < 400; i++) {
    const receipt = generateReceipt();
    assert.match(receipt, /^[0-9]{24}$/);
    for (const digit of receipt) counts[Number(digit)] += 1;
  }
  for (const count of counts) assert.ok(count > 800 && count < 1120, `digit counts ${counts}`);
});

test('receipts are typed back with or without spaces, never with other digits', () => {
  const digits = '123456789012345678901234';
  assert.equal(formatReceipt(digits), '1234 5678 9012 3456 7890 1234');
  assert.equal(parseReceipt(' 1234 5678-9012 3456 7890 1234 '), digits);
  assert.equal(parseReceipt('1234 5678 9012 3456 7890 123'), null);
  assert.equal(parseReceipt('¹²³4 5678 9012 3456 7890 1234'), null); // superscripts are no digits
  assert.equal(parseReceipt('①234 5678 9012 3456 7890 1234'), null);
  assert.equal(parseReceipt('一234 5678 9012 3456 7890 1234'), null);
  assert.equal(parseReceipt('1234.5678 9012 3456 7890 1234'), null);
});

test('§14.1 digits of any script are read as ASCII, as Receipt.parse reads them', () => {
  const digits = '123456789012345678901234';
  assert.equal(parseReceipt('١٢٣٤ 5678 9012 3456 7890 1234'), digits); // Arabic-Indic
  assert.equal(parseReceipt('۱۲۳۴-۵۶۷۸ ۹۰۱۲ ۳۴۵۶ ۷۸۹۰ ۱۲۳۴'), digits); // Persian
  assert.equal(parseReceipt('१२३४ ५६७८ ९०१२ ३४५६ ७८९० १२३४'), digits); // Devanagari
  assert.equal(parseReceipt('၁၂၃၄ ၅၆၇၈ ၉၀၁၂ ၃၄၅၆ ၇၈၉၀ ၁၂၃၄'), digits); // Myanmar
  assert.equal(parseReceipt('１２３４ ５６７８ ９０１２ ３４５６ ７８９０ １２３４'), digits); // full-width
  assert.equal(parseReceipt('١٢٣٤ 5678 9012 3456 7890 12345'), null);
});

test('§14.2 derivation matches the Python vectors', async () => {
  for (const c of loadVectors('receipt-py.json').cases) {
    const keys = await deriveReceiptKeys(c.receipt);
    assert.equal(toHex(keys.privateKey), c.private_key);
    assert.equal(await formatPublicKey('csoenc1', keys.publicKey), c.public_key);
    assert.equal(toHex(keys.lookupToken), c.lookup_token);
  }
});
