// digits.js reads every decimal digit as Python's unicodedata.decimal does
// (tests/vectors/digits.json, made by tests/vectors/generate_digits.py).

import assert from 'node:assert/strict';
import test from 'node:test';

import { asciiDigits, decimalText, digitValue, wholeNumberText } from '../../portal/web/static/js/digits.js';
import { loadVectors } from './support.mjs';

const vectors = loadVectors('digits.json');

test('the vector file names its schema and holds the scripts reporters use', () => {
  assert.equal(vectors.schema, 'cso-digit-vectors/v1');
  const firsts = new Set(vectors.digits.map((run) => run.first));
  for (const zero of [0x30, 0x660, 0x6f0, 0x966, 0x9e6, 0xe50, 0x1040, 0xff10]) assert.ok(firsts.has(zero), zero.toString(16));
});

test('every decimal digit of Python\'s Unicode has the value Python gives it', () => {
  const wrong = [];
  let count = 0;
  for (const { first, values } of vectors.digits) {
    [...values].forEach((expected, i) => {
      const char = String.fromCodePoint(first + i);
      count += 1;
      if (asciiDigits(char) !== expected) wrong.push(`U+${(first + i).toString(16)}: ${asciiDigits(char)}, not ${expected}`);
    });
  }
  assert.deepEqual(wrong, []);
  assert.ok(count >= 650, `only ${count} digits`);
});

test('a digit the server\'s Unicode does not know passes unchanged, as the server leaves it', () => {
  const known = new Set();
  for (const { first, values } of vectors.digits) [...values].forEach((_, i) => known.add(first + i));
  let newer = 0;
  for (let point = 0; point <= 0x10ffff; point++) {
    if (point >= 0xd800 && point <= 0xdfff) continue;
    const char = String.fromCodePoint(point);
    if (!known.has(point) && /\p{Nd}/u.test(char)) {
      newer += 1;
      assert.equal(asciiDigits(char), char, `U+${point.toString(16)}`);
      assert.equal(digitValue(char), undefined);
    }
  }
  // Node's Unicode is newer than Python 3.11's: the case is real, not hypothetical
  assert.ok(newer > 0, 'no digit newer than the vectors: nothing was tested');
});

test('what is no decimal digit passes unchanged', () => {
  for (const { name, input } of vectors.not_digits) assert.equal(asciiDigits(input), input, name);
  const narrative = 'رأينا ٣ قوارب عند ٢٢٫٥ شمالاً، الساعة ١٤:٠٠'; // free text is never passed here, but even so
  assert.equal(asciiDigits(narrative), 'رأينا 3 قوارب عند 22٫5 شمالاً، الساعة 14:00');
  assert.equal(asciiDigits('no digits at all'), 'no digits at all');
});

test('mixed scripts, whole numbers and decimals', () => {
  assert.equal(asciiDigits('१२३ ၄၅၆ ๗๘๙ ０'), '123 456 789 0');
  assert.equal(asciiDigits('۱۲۳۴'), '1234');
  assert.equal(digitValue('𝟗'), 9); // MATHEMATICAL BOLD DIGIT NINE, in a run of fifty
  assert.equal(digitValue('𝟿'), 9); // MATHEMATICAL MONOSPACE DIGIT NINE, the end of that run
  assert.equal(wholeNumberText('١٬٢٣٤'), '1234');
  assert.equal(wholeNumberText('١٢٬٣٤'), '12٬34'); // not grouped in threes: left to be refused
  assert.equal(wholeNumberText('1,234'), '1,234');
  assert.equal(decimalText('٢٢٫٢٧'), '22.27');
  assert.equal(decimalText('22,27'), '22.27');
  assert.equal(decimalText("22°16,2'N, 091°48,5'E"), "22°16.2'N, 091°48.5'E");
  assert.equal(decimalText('1,2,3'), '1.2.3');
  assert.equal(decimalText('22, 27'), '22, 27');
});
