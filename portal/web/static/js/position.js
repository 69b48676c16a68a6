// Positions as seafarers write them: the grammar of portal/web/position.py,
// which documents it in full; both pass tests/vectors/positions.json, so
// change the two together.
//
// A coordinate is either
//   decimal degrees           -12.5   12.5°   12.5 S   S12.5
//   degrees, decimal minutes  12°30.5'S   12 30.5S   N 12°30.5′
// Spaces around it are ignored and letters may be either case. Latitude
// takes N or S, longitude E or W; S and W are negative. A minus sign and a
// letter never go together, and degrees with minutes always need the letter.
// Minutes stay below 60; |latitude| ≤ 90, |longitude| ≤ 180. Values are
// rounded to 6 decimals, and zero is never negative. Digits may be of any
// script, and the decimal point the Arabic decimal separator or a comma
// between two digits ("22,27", "22°16,2'N"): the text is read in ASCII first
// (digits.js). A comma with a space after it is never a decimal comma.
//
// A whole position, latitude then longitude each with its letter, may be
// typed in one field ("22°16.2'N 091°48.5'E"); parsePosition splits it,
// at spaces and at most one , ; / or Arabic comma (U+060C) beside a letter.

import { asciiDigits, decimalText } from './digits.js';

const AXES = {
  latitude: { letters: 'NS', limit: 90 },
  longitude: { letters: 'EW', limit: 180 },
};

// "Spaces": space, tab, no-break space, thin space, narrow no-break space.
const SPACES = ' \t\u00a0\u2009\u202f';
const TRIM = new RegExp(`^[${SPACES}\r\n]+|[${SPACES}\r\n]+$`, 'g');
const S = `[${SPACES}]`;
const DEGREE_SIGN = '[°º]';
const MINUTE_SIGN = "['′’]";
const LETTER = '([NSEWnsew])';
const DECIMAL = `(-)?([0-9]{1,3}(?:\\.[0-9]{1,6})?)${S}*${DEGREE_SIGN}?`;
const DECIMAL_MINUTES =
  `([0-9]{1,3})(?:${S}*${DEGREE_SIGN}${S}*|${S}+)([0-9]{1,2}(?:\\.[0-9]{1,4})?)${S}*${MINUTE_SIGN}?`;
const whole = (pattern) => new RegExp(`^(?:${pattern})$`);
// Every accepted shape, in the order portal/web/position.py tries them; each
// yields [letter, minus, decimal degrees, degrees, minutes] (absent ones undefined).
const FORMS = [
  [whole(DECIMAL), (m) => [undefined, m[1], m[2]]],
  [whole(`${DECIMAL}${S}*${LETTER}`), (m) => [m[3], m[1], m[2]]],
  [whole(`${LETTER}${S}*${DECIMAL}`), (m) => [m[1], m[2], m[3]]],
  [whole(`${DECIMAL_MINUTES}${S}*${LETTER}`), (m) => [m[3], undefined, undefined, m[1], m[2]]],
  [whole(`${LETTER}${S}*${DECIMAL_MINUTES}`), (m) => [m[1], undefined, undefined, m[2], m[3]]],
];
const GAP_AFTER = new RegExp(`^${S}*[,;/\u060c]?${S}*`);
const GAP_BEFORE = new RegExp(`${S}*[,;/\u060c]?${S}*$`);
const DIGIT = /[0-9]/;

function trim(text) {
  return String(text).replace(TRIM, '');
}

/** `value` rounded to 6 decimals as Python's round(value, 6) does (no exact ties occur here). */
function round6(value) {
  const rounded = Number(value.toFixed(6));
  return rounded === 0 ? 0 : rounded; // never -0
}

/**
 * The coordinate `text` means on `axis` ("latitude" or "longitude"), as a
 * number rounded to 6 decimals, or null if it is not one.
 */
export function parseCoordinate(text, axis) {
  if (!(axis in AXES)) throw new TypeError('axis is "latitude" or "longitude"');
  const { letters, limit } = AXES[axis];
  // "12,45" could be 12.45 degrees or 12 N 45 E in one box: refused, not guessed
  if (/[0-9],[0-9]/.test(asciiDigits(text)) && !/[NSEWnsew\u00b0\u00ba]/.test(text)) return null;
  const value = trim(decimalText(text));
  let parts = null;
  for (const [form, pick] of FORMS) {
    const match = form.exec(value);
    if (match) {
      parts = pick(match);
      break;
    }
  }
  if (parts === null) return null;
  const [rawLetter, minus, decimal, degrees, minutes] = parts;
  const letter = (rawLetter ?? '').toUpperCase();
  if (letter && !letters.includes(letter)) return null;
  if (letter && minus) return null;
  let magnitude;
  if (decimal !== undefined) {
    magnitude = Number.parseFloat(decimal);
  } else {
    const m = Number.parseFloat(minutes);
    if (m >= 60) return null;
    magnitude = Number.parseInt(degrees, 10) + m / 60;
  }
  if (magnitude > limit) return null;
  const negative = minus === '-' || letter === 'S' || letter === 'W';
  return round6(negative ? -magnitude : magnitude);
}

/**
 * A whole position typed in one field: [latitude, longitude], or null. It
 * holds exactly one N or S and one E or W, N/S first; where the latitude ends
 * is read from where the letters stand, never guessed (portal/web/position.py).
 */
export function parsePosition(text) {
  const value = trim(asciiDigits(text).replaceAll('\u066b', '.'));
  const northSouth = [...value.matchAll(/[NSns]/g)].map((m) => m.index);
  const eastWest = [...value.matchAll(/[EWew]/g)].map((m) => m.index);
  if (northSouth.length !== 1 || eastWest.length !== 1 || northSouth[0] > eastWest[0]) return null;
  const [i, j] = [northSouth[0], eastWest[0]];
  let latitude;
  let longitude;
  if (DIGIT.test(value.slice(0, i))) {
    latitude = value.slice(0, i + 1);
    const rest = value.slice(i + 1);
    longitude = rest.slice(GAP_AFTER.exec(rest)[0].length);
  } else if (DIGIT.test(value.slice(j + 1))) {
    const head = value.slice(0, j);
    latitude = head.slice(0, GAP_BEFORE.exec(head).index);
    longitude = value.slice(j);
  } else {
    return null;
  }
  const lat = parseCoordinate(latitude, 'latitude');
  const lon = parseCoordinate(longitude, 'longitude');
  return lat === null || lon === null ? null : [lat, lon];
}
