// Digits in any script, read as ASCII before a number, date or position is
// checked: the twin of portal/web/digits.py, which explains why. Both pass
// tests/vectors/digits.json, every decimal digit of Python's Unicode.
//
// The digits are those of the server's Unicode (Python 3.11: Unicode 14), not
// the browser's: a newer browser knows digits the server does not (Kawi,
// Nag Mundari, ...), and a number the browser read the server would refuse
// without JavaScript. So the zero of every run of ten is listed here, made
// from Python's unicodedata (tests/vectors/generate_digits.py checks this list
// against it); any other character, \p{Nd} or not, passes unchanged.
const ZEROS = [
  0x30, 0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66, 0xde6,
  0xe50, 0xed0, 0xf20, 0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80, 0x1a90, 0x1b50,
  0x1bb0, 0x1c40, 0x1c50, 0xa620, 0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0, 0xff10, 0x104a0,
  0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450, 0x114d0, 0x11650, 0x116c0,
  0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60, 0x16ac0, 0x16b50, 0x1d7ce,
  0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0,
];
const VALUES = new Map();
for (const zero of ZEROS) {
  for (let value = 0; value < 10; value++) VALUES.set(String.fromCodePoint(zero + value), value);
}
const ANY_DIGIT = new RegExp(`[${ZEROS.map((zero) => `\\u{${zero.toString(16)}}-\\u{${(zero + 9).toString(16)}}`).join('')}]`, 'gu');
const ARABIC_DECIMAL = '\u066b';
const ARABIC_THOUSANDS = '\u066c';
const GROUPED = new RegExp(`^[0-9]{1,3}(?:${ARABIC_THOUSANDS}[0-9]{3})+$`);
const DECIMAL_COMMA = /([0-9]),(?=[0-9])/g; // no look-behind: older Safari refuses it

/** The value (0-9) of the decimal digit `char`, or undefined if the server would not read it as one. */
export function digitValue(char) {
  return VALUES.get(char);
}

/** `text` with each decimal digit of any script replaced by its ASCII digit; nothing else changes. */
export function asciiDigits(text) {
  return String(text).replace(ANY_DIGIT, (char) => String(VALUES.get(char)));
}

/** A typed whole number in ASCII digits, Arabic thousands separators dropped where they group in threes. */
export function wholeNumberText(text) {
  const ascii = asciiDigits(text);
  return GROUPED.test(ascii) ? ascii.replaceAll(ARABIC_THOUSANDS, '') : ascii;
}

/** A typed decimal number in ASCII: digits, and "." for the Arabic decimal separator or a comma between digits. */
export function decimalText(text) {
  return asciiDigits(text).replaceAll(ARABIC_DECIMAL, '.').replace(DECIMAL_COMMA, '$1.');
}
