// The report form's rules, checked in the browser exactly as the server
// checks them (portal/web/report.py), from the rules JSON the page embeds
// (<script type="application/json" id="form-rules">, made by
// portal.web.field_rules.form_rules from the one field table): the same fields, the
// same limits, the same words. There is no second list here: what the JSON
// leaves out is a default, or what the form itself shows (a field's label, its
// choices), read from the form.
//
// Values come in as the form would post them: for each field name, the
// list of strings sent (a checkbox group sends one per ticked box).
// Everything filled is checked, whatever the category: a value the reporter
// typed is sent, never dropped.

import { asciiDigits, wholeNumberText } from './digits.js';
import { parseCoordinate, parsePosition } from './position.js';

/** The rules JSON embedded in `doc`, made whole from the form the page shows (wholeRules). */
export function readRules(doc = globalThis.document) {
  const json = JSON.parse(doc.getElementById('form-rules').textContent);
  return wholeRules(json, (name) => onForm(doc, name));
}

/**
 * The rules with what form_rules leaves out put back. `onForm(name)` gives
 * what the form shows of a field, {label, choices}: the words of its label,
 * which name it in messages unless its rule names it otherwise (by a shorter
 * name), and the values it offers. A rule naming no categories serves every
 * category (the category field's choices); `required` is false unless set,
 * and `min`, `max` and `example` are null unless given.
 */
export function wholeRules(json, onForm) {
  const fields = json.fields.map((rule) => {
    const { label, choices } = onForm(rule.name);
    return { label, choices, required: false, min: null, max: null, example: null, ...rule };
  });
  const every = fields.find((rule) => rule.name === 'category').choices;
  for (const rule of fields) rule.categories ??= [...every];
  return { ...json, fields };
}

// What the form shows of field `name` (see wholeRules). The page says a
// field's name once, in its <label> (for a group of boxes, its <legend>): the
// words before the "(required)" mark, an element of its own. Its choices are
// the values of its boxes or its list's options, but the empty "nothing
// chosen". Until the script shows step 2, its fields are in <template
// id="details">, whose content the document's own search does not reach.
const TEXT_NODE = 3; // Node.TEXT_NODE
function onForm(doc, name) {
  for (const place of [doc, doc.getElementById('details')?.content]) {
    const control = place?.getElementById(`f-${name}`);
    if (!control) continue;
    const group = control.localName === 'fieldset';
    const words = group ? control.querySelector('legend') : place.querySelector(`label[for="f-${name}"]`);
    const own = [...words.childNodes].filter((node) => node.nodeType === TEXT_NODE);
    const values = group ? [...control.querySelectorAll('input[type=checkbox]')] : [...(control.options ?? [])];
    return {
      label: own.map((node) => node.data).join('').trim(),
      choices: values.map((element) => element.value).filter((value) => value !== ''),
    };
  }
  throw new Error(`the form has no field ${name}`);
}

/** Message `key` with its {placeholders} filled from `values` (as str.format does). */
export function formatMessage(rules, key, values = {}) {
  return rules.messages[key].replace(/\{(\w+)\}/g, (_, name) => String(values[name]));
}

// The placeholders a message about field `rule` may use (portal.web.field_rules.message).
function fieldValues(rule) {
  const { label, min, max, max_length: maxLength, example } = rule;
  return { label, min, max, max_length: maxLength, example };
}

/** A problem: {field, key, message}; `field` is null for the content rule. */
function problem(rules, key, rule = null, extra = {}) {
  const values = rule ? { ...fieldValues(rule), ...extra } : extra;
  return { field: rule?.name ?? null, key, message: formatMessage(rules, key, values) };
}

class Refusal extends Error {
  constructor(found) {
    super(found.message);
    this.found = found;
  }
}

// Python's str.strip() and str.isspace(), to the character.
const PY_SPACE = '\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const EDGES = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');
const strip = (text) => text.replace(EDGES, '');
const filled = (values) => (values ?? []).filter((v) => strip(v) !== '');
const ASCII_DIGITS = /^[0-9]+$/;
// Characters no text may hold (report.py's is_bad_char): control, surrogate,
// private use, the replacement character of damaged encodings, and the
// noncharacters (U+FDD0..U+FDEF and the last two of every plane). Not the
// unassigned (Cn): which those are depends on each side's Unicode version.
const BAD_CHARS = /[\p{Cc}\p{Cs}\p{Co}\ufffd\ufdd0-\ufdef]/u;
const isNoncharacterEnd = (char) => (char.codePointAt(0) & 0xfffe) === 0xfffe;
// datetime.strptime(value, "%Y-%m-%dT%H:%M"), letter case ignored as strptime ignores it.
const LOCAL_TIME = /^([0-9]{4})-(1[0-2]|0[1-9]|[1-9])-(3[01]|[12][0-9]|0[1-9]|[1-9]| [1-9])T(2[0-3]|[01][0-9]|[0-9]):([0-5][0-9]|[0-9])$/i;

function badChars(text, long) {
  for (const char of text) {
    if (long && (char === '\n' || char === '\t')) continue;
    if (BAD_CHARS.test(char) || isNoncharacterEnd(char)) return true;
  }
  return false;
}

function checkText(rules, rule, value) {
  const text = strip(value.replace(/\r\n/g, '\n').normalize('NFC'));
  if ([...text].length > rule.max_length) throw new Refusal(problem(rules, 'too_long', rule));
  if (badChars(text, rule.kind === 'long_text')) throw new Refusal(problem(rules, 'bad_chars', rule));
  return text;
}

function isLocalTime(value) {
  const match = LOCAL_TIME.exec(value);
  if (!match) return false;
  const [year, month, day] = match.slice(1, 4).map((part) => Number.parseInt(part, 10));
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return year >= 1990 && day <= daysInMonth;
}

/** The checked value of one field from its posted strings, or undefined when empty; throws Refusal. */
function checkValue(rules, rule, values) {
  const present = filled(values);
  const refuse = (key) => new Refusal(problem(rules, key, rule));
  if (present.length === 0) {
    if (rule.required) throw refuse('required');
    return undefined;
  }
  if (rule.kind === 'multi') {
    if (present.some((v) => !rule.choices.includes(v)) || new Set(present).size !== present.length) {
      throw refuse('choice');
    }
    return present;
  }
  if (present.length > 1) throw refuse('one_value');
  const value = strip(present[0]);
  // Numbers, times and offsets may be typed in any script's digits (digits.js); free text never changes.
  switch (rule.kind) {
    case 'choice':
      if (!rule.choices.includes(value)) throw refuse('choice');
      return value;
    case 'utc_offset': {
      const offset = asciiDigits(value).replaceAll('\u2212', '-'); // MINUS SIGN
      if (!rule.choices.includes(offset)) throw refuse('choice');
      return offset;
    }
    case 'count': {
      const count = wholeNumberText(value);
      if (!ASCII_DIGITS.test(count) || Number.parseInt(count, 10) > 9999) throw refuse('count');
      return Number.parseInt(count, 10);
    }
    case 'coordinate': {
      const coordinate = parseCoordinate(value, rule.name);
      if (coordinate === null) throw refuse('coordinate');
      return coordinate;
    }
    case 'local_time': {
      const time = asciiDigits(value);
      if (!isLocalTime(time)) throw refuse('local_time');
      return time;
    }
    case 'text':
      if (value.includes('\n')) throw refuse('one_line');
      return checkText(rules, rule, value);
    default:
      return checkText(rules, rule, value);
  }
}

// A whole position typed in the latitude field, the longitude left empty (report.py's _split_position).
function splitPosition(values) {
  const latitude = filled(values.latitude);
  if (latitude.length !== 1 || filled(values.longitude).length > 0) return {};
  const position = parsePosition(latitude[0]);
  return position ? { latitude: position[0], longitude: position[1] } : {};
}

/** The content rule: a narrative, or a detail of the incident besides its category. */
export function hasContent(rules, values) {
  return rules.fields.some(
    (rule) => rule.name !== 'category' && rule.section !== 'identity' && filled(values[rule.name]).length > 0,
  );
}

/**
 * Check every field of `values` ({name: [strings]}) as portal/web/report.py's
 * build_report does. Returns {report, identity, problems}: the report's two
 * parts (only filled fields) and every problem, in the order of the form,
 * each {field, key, message}. Send only when `problems` is empty.
 */
export function checkReport(rules, values) {
  const report = {};
  const identity = {};
  const problems = [];
  const position = splitPosition(values);
  const byName = new Map(rules.fields.map((rule) => [rule.name, rule]));
  for (const rule of rules.fields) {
    let value;
    try {
      value = rule.name in position ? position[rule.name] : checkValue(rules, rule, values[rule.name]);
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      problems.push(error.found);
      continue;
    }
    if (value === undefined) continue;
    (rule.section === 'identity' ? identity : report)[rule.name] = value;
  }
  for (const [lowName, highName] of rules.pairs) {
    const [low, high] = [report[lowName], report[highName]];
    if (low !== undefined && high !== undefined && low > high) {
      problems.push(problem(rules, 'order', byName.get(highName), { other: byName.get(lowName).label }));
    }
  }
  if (!hasContent(rules, values)) problems.push(problem(rules, 'content'));
  return { report, identity, problems };
}

/**
 * The attachment limits, checked on the chosen files before any is read:
 * a list of problems (field "attachments"), empty when they may be sent.
 */
export function checkFiles(rules, files) {
  const limits = rules.attachments;
  const problems = [];
  const refuse = (key, extra) => problems.push({ field: 'attachments', key, message: formatMessage(rules, key, extra) });
  if (files.length > limits.max_count) refuse('too_many_files', { max_count: limits.max_count });
  files.forEach((file, i) => {
    if (file.size > limits.max_file_bytes) refuse('file_too_large', { index: i + 1, limit: limits.max_file_text });
  });
  const total = files.reduce((sum, file) => sum + file.size, 0);
  if (total > limits.max_total_bytes) refuse('total_too_large', { limit: limits.max_total_text });
  return problems;
}
