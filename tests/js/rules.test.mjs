// rules.js gives the verdict portal/web/report.py gives, word for word, on a
// table of cases: the server's own build_report runs (in Python) on the same
// posted values, and the rules JSON is the one portal.web.field_rules.form_rules makes,
// made whole (wholeRules) with each field's label and choices as the page's form shows them.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import test from 'node:test';
import { fileURLToPath } from 'node:url';

import { checkFiles, checkReport, formatMessage, hasContent, wholeRules } from '../../portal/web/static/js/rules.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VENV_PYTHON = `${ROOT}.venv/bin/python`;
const PYTHON = process.env.PYTHON ?? (existsSync(VENV_PYTHON) ? VENV_PYTHON : 'python3');
const MIB = 1024 * 1024;

// Build the rules and judge each case with the server's code.
const SERVER_SIDE = `
import json, sys
from portal.web.attachment_limits import browser_attachment_limits
from portal.web.field_rules import form_rules
from portal.web.fields import FIELDS
from portal.web.report import InvalidReportError, build_report

count, per_file, total = browser_attachment_limits(200 * 1024 * 1024, 10)
rules = form_rules(count, per_file, total, plain_max_file_bytes=25 * 1024 * 1024,
                   plain_max_total_bytes=25 * 1024 * 1024)
verdicts = []
for values in json.load(sys.stdin):
    try:
        document = build_report(values, [], "browser")
    except InvalidReportError as error:
        verdicts.append({"problems": [{"field": p.field, "key": p.key, "message": str(p)}
                                      for p in error.problems]})
    else:
        verdicts.append({"problems": [], "report": document["report"],
                         "identity": document["identity"]})
# what the page's form shows of each field, as rules.js reads it there
form = {f.name: {"label": str(f.label), "choices": [value for value, _ in f.choices]} for f in FIELDS}
json.dump({"rules": rules, "form": form, "verdicts": verdicts}, sys.stdout)
`;

const NARRATIVE = { narrative: ['Boarded at anchor.'] };
const PIRACY = { category: ['piracy-or-armed-robbery'] };

const CASES = {
  'an empty form': {},
  'only spaces': { category: ['  '], narrative: [' \u3000\x1c '] },
  'only the category': { ...PIRACY },
  'the category and identity only': { ...PIRACY, identity_company: ['Acme Shipping'] },
  'a narrative': { ...PIRACY, ...NARRATIVE },
  'one detail besides the category': { ...PIRACY, place_name: ['Lagos anchorage'] },
  'an impossible latitude': { ...PIRACY, latitude: ['95'] },
  'an impossible longitude, minus and letter': { ...PIRACY, latitude: ['1.5'], longitude: ['-12E'] },
  'degrees and minutes': { ...PIRACY, latitude: ["22°16.2'N"], longitude: ['091 48.5E'] },
  'a whole position in the latitude field': { ...PIRACY, latitude: ["22°16.2'N 091°48.5'E"] },
  'a whole position with the longitude filled too': {
    ...PIRACY, latitude: ["22°16.2'N 091°48.5'E"], longitude: ['91.8'],
  },
  'minimum above maximum': { ...PIRACY, perpetrators_min: ['5'], perpetrators_max: ['2'] },
  'minimum equal to maximum': { ...PIRACY, perpetrators_min: ['2'], perpetrators_max: ['02'] },
  'a maximum alone': { ...PIRACY, perpetrators_max: ['2'] },
  'the largest count, and one more': { ...PIRACY, crew_injured: ['9999'], crew_killed: ['10000'] },
  'counts that are not whole numbers': {
    ...PIRACY, crew_injured: ['3.0'], crew_killed: ['-1'], crew_missing: ['10000'], crew_hostage: ['٣'],
  },
  'a choice from nowhere': { category: ['not-a-category'], ...NARRATIVE },
  'two values for one choice': { ...PIRACY, category: ['piracy-or-armed-robbery', 'stowaways'], ...NARRATIVE },
  'a ticked box twice': { ...PIRACY, weapons: ['knives-or-machetes', 'knives-or-machetes'] },
  'ticked boxes': { ...PIRACY, weapons: ['knives-or-machetes', 'guns'] },
  'local times': { ...PIRACY, incident_local_time: ['2026-11-21T02:10'], incident_utc_offset: ['+01:00'] },
  'a loose local time strptime takes': { ...PIRACY, incident_local_time: ['2026-1-5t2:1'] },
  'the 30th of February': { ...PIRACY, incident_local_time: ['2026-02-30T01:00'] },
  'a time before 1990': { ...PIRACY, incident_local_time: ['1989-12-31T23:59'] },
  'a UTC offset from nowhere': { ...PIRACY, incident_utc_offset: ['+01:07'], ...NARRATIVE },
  'two lines in a one-line field': { ...PIRACY, place_name: ['Lagos\nanchorage'] },
  'one character too many': { ...PIRACY, place_name: ['x'.repeat(201)] },
  'combining marks counted after NFC': { ...PIRACY, place_name: ['e\u0301'.repeat(200)] },
  'astral characters counted once': { ...PIRACY, place_name: ['🚢'.repeat(200)] },
  'a control character': { ...PIRACY, place_name: ['Lagos\u0007'] },
  'a tab in a one-line field': { ...PIRACY, place_name: ['Lagos\tanchorage'] },
  'tabs and newlines in the narrative': { ...PIRACY, narrative: ['Line one\r\n\tLine two'] },
  'a carriage return alone in the narrative': { ...PIRACY, narrative: ['one\rtwo'] },
  'damaged encoding': { ...PIRACY, narrative: ['caf\ufffd'] },
  'a lone surrogate': { ...PIRACY, narrative: ['half \ud800 a pair'] },
  'private use': { ...PIRACY, narrative: ['\ue000'] },
  // Python 3.11 knows Unicode 14, Node a later one: characters assigned since
  // (U+1FAE8, Unicode 15) or not yet are accepted on both sides (issue 13, F4).
  'an emoji newer than the server\'s Unicode': { ...PIRACY, narrative: ['The crew were shaken \u{1FAE8}'] },
  'emoji from the latest versions': { ...PIRACY, place_name: ['\u{1FABB}\u{1FAE9}\u{1FAC8}\u{1F6DC}'] },
  'a character no version has assigned': { ...PIRACY, place_name: ['tag \u{E0080}'] },
  'a noncharacter': { ...PIRACY, narrative: ['half \ufdd0 done'] },
  'the edges of the noncharacter block': { ...PIRACY, place_name: ['\ufdcf\ufdf0'] },
  'a noncharacter at the end of a plane': { ...PIRACY, place_name: ['end \u{1FFFF}'] },
  'the last code point': { ...PIRACY, narrative: ['\u{10FFFE}'] },
  'U+FFFE': { ...PIRACY, place_name: ['\ufffe'] },
  'text trimmed by Python, not by trim()': { ...PIRACY, place_name: ['\x1cLagos\x1f'] },
  'a name not in the form': { ...PIRACY, ...NARRATIVE, ship_name_please: ['ignored'] },
  'identity kept apart': { ...PIRACY, ...NARRATIVE, identity_vessel: ['MV Example'], identity_imo: ['9999999'] },
  'a field of another category': { category: ['stowaways'], ...NARRATIVE, weapons: ['guns'] },
};

const serverSide = JSON.parse(execFileSync(PYTHON, ['-c', SERVER_SIDE], {
  cwd: ROOT, input: JSON.stringify(Object.values(CASES)), encoding: 'utf8',
}));
const rules = wholeRules(serverSide.rules, (name) => serverSide.form[name]);

test('every case gets the server\'s verdict, in the server\'s words', () => {
  const names = Object.keys(CASES);
  const differ = [];
  Object.values(CASES).forEach((values, i) => {
    const expected = serverSide.verdicts[i];
    const { report, identity, problems } = checkReport(rules, values);
    const got = problems.length ? { problems } : { problems, report, identity };
    try {
      assert.deepEqual(got, expected);
    } catch {
      differ.push(`${names[i]}: browser ${JSON.stringify(got)}\n  server ${JSON.stringify(expected)}`);
    }
  });
  assert.equal(differ.join('\n'), '');
});

test('the table covers refusals and acceptances of every kind the issue names', () => {
  const keys = new Set(serverSide.verdicts.flatMap((v) => v.problems.map((p) => p.key)));
  for (const key of ['required', 'choice', 'one_value', 'count', 'coordinate', 'local_time', 'one_line',
    'too_long', 'bad_chars', 'order', 'content']) {
    assert.ok(keys.has(key), `no case is refused with "${key}"`);
  }
  assert.ok(serverSide.verdicts.filter((v) => v.problems.length === 0).length >= 8);
});

test('the JSON leaves out what the form shows and every default, and wholeRules puts them back', () => {
  const sent = serverSide.rules.fields;
  // a label only where messages call the field otherwise than its label on the form
  assert.deepEqual(sent.filter((rule) => 'label' in rule).map((rule) => rule.name), ['latitude', 'longitude']);
  assert.ok(sent.every((rule) => !('choices' in rule) && rule.required !== false));
  assert.ok(sent.every((rule) => rule.min !== null && rule.max !== null && rule.example !== null));
  const byName = new Map(rules.fields.map((rule) => [rule.name, rule]));
  const every = serverSide.form.category.choices;
  assert.equal(byName.get('latitude').label, 'Latitude');
  assert.notEqual(serverSide.form.latitude.label, 'Latitude');
  assert.equal(byName.get('perpetrators_min').label, 'Number of perpetrators, at least');
  assert.deepEqual(byName.get('weapons').choices, serverSide.form.weapons.choices);
  assert.deepEqual(byName.get('narrative').categories, every);
  assert.ok(!byName.get('weapons').categories.includes('stowaways'));
  assert.deepEqual(
    [byName.get('category').required, byName.get('place_name').required, byName.get('place_name').choices],
    [true, false, []],
  );
  assert.deepEqual([byName.get('crew_injured').min, byName.get('crew_injured').max], [0, 9999]);
  assert.deepEqual([byName.get('place_name').min, byName.get('place_name').example], [null, null]);
});

test('wholeRules takes every label and choice from the form it is given', () => {
  const asked = [];
  const onForm = (name) => {
    asked.push(name);
    return { label: `«${name}»`, choices: name === 'category' ? ['a', 'b'] : [] };
  };
  const whole = wholeRules({ fields: [{ name: 'category', kind: 'choice', required: true },
    { name: 'x', kind: 'text', categories: ['b'] }, { name: 'y', kind: 'count', label: 'Y', min: 0 }] }, onForm);
  assert.deepEqual(asked, ['category', 'x', 'y']);
  assert.deepEqual(whole.fields.map((rule) => [rule.label, rule.categories, rule.choices]),
    [['«category»', ['a', 'b'], ['a', 'b']], ['«x»', ['b'], []], ['Y', ['a', 'b'], []]]);
  const problems = checkReport({ ...whole, messages: serverSide.rules.messages, pairs: [] },
    { category: ['c'], x: ['one\ntwo'] }).problems;
  assert.deepEqual(problems.map((p) => p.message),
    ['«category»: not one of the listed choices', '«x»: one line only']);
});

test('a whole position is split into latitude and longitude', () => {
  const { report, problems } = checkReport(rules, CASES['a whole position in the latitude field']);
  assert.deepEqual(problems, []);
  assert.equal(report.latitude, 22.27);
  assert.equal(report.longitude, 91.808333);
});

test('the content rule looks at what was typed, valid or not', () => {
  assert.equal(hasContent(rules, { ...PIRACY }), false);
  assert.equal(hasContent(rules, { ...PIRACY, latitude: ['not a place'] }), true);
  assert.equal(hasContent(rules, { ...PIRACY, identity_contact: ['me'] }), false);
});

test('attachment limits are checked on the files themselves', () => {
  const { max_count: maxCount, max_file_bytes: perFile, max_total_bytes: total } = rules.attachments;
  assert.ok(maxCount === 10 && perFile > 150 * MIB && total <= 200 * MIB, JSON.stringify(rules.attachments));
  const file = (size) => ({ size });
  assert.deepEqual(checkFiles(rules, []), []);
  assert.deepEqual(checkFiles(rules, Array.from({ length: maxCount }, () => file(1))), []);
  const tooMany = checkFiles(rules, Array.from({ length: maxCount + 1 }, () => file(1)));
  assert.deepEqual(tooMany.map((p) => p.key), ['too_many_files']);
  assert.equal(tooMany[0].message, formatMessage(rules, 'too_many_files', { max_count: maxCount }));
  assert.match(tooMany[0].message, /10/);
  const large = checkFiles(rules, [file(10), file(perFile + 1)]).filter((p) => p.key !== 'total_too_large');
  assert.deepEqual(large.map((p) => [p.field, p.key]), [['attachments', 'file_too_large']]);
  assert.match(large[0].message, /file 2 /);
  assert.ok(large[0].message.includes(rules.attachments.max_file_text));
  const half = Math.floor(total / 2) + 1;
  const together = checkFiles(rules, [file(half), file(half)]);
  assert.deepEqual(together.map((p) => p.key), ['total_too_large']);
  assert.ok(together[0].message.includes(rules.attachments.max_total_text));
  assert.deepEqual(checkFiles(rules, [file(perFile), file(total - perFile)]), []);
});

test('new and unassigned characters are accepted, noncharacters refused, on both sides', () => {
  const names = Object.keys(CASES);
  const verdict = (name) => serverSide.verdicts[names.indexOf(name)].problems.map((p) => p.key);
  for (const name of ['an emoji newer than the server\'s Unicode', 'emoji from the latest versions',
    'a character no version has assigned', 'the edges of the noncharacter block']) {
    assert.deepEqual(verdict(name), [], name);
    assert.deepEqual(checkReport(rules, CASES[name]).problems, [], name);
  }
  for (const name of ['a noncharacter', 'a noncharacter at the end of a plane', 'the last code point', 'U+FFFE']) {
    assert.deepEqual(verdict(name), ['bad_chars'], name);
    assert.deepEqual(checkReport(rules, CASES[name]).problems.map((p) => p.key), ['bad_chars'], name);
  }
});
