// Digits of any script and decimal commas (issue 15): rules.js and the
// server's build_report (portal/web/report.py) read them alike, and free text
// is never touched. Each case is judged by both, as in rules.test.mjs.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import test from 'node:test';
import { fileURLToPath } from 'node:url';

import { checkReport, wholeRules } from '../../portal/web/static/js/rules.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VENV_PYTHON = `${ROOT}.venv/bin/python`;
const PYTHON = process.env.PYTHON ?? (existsSync(VENV_PYTHON) ? VENV_PYTHON : 'python3');

const SERVER_SIDE = `
import json, sys
from portal.web.field_rules import form_rules
from portal.web.fields import FIELDS
from portal.web.report import InvalidReportError, build_report

rules = form_rules(10, 1024, 2048, plain_max_file_bytes=1024, plain_max_total_bytes=2048)
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

const PIRACY = { category: ['piracy-or-armed-robbery'] };
const ARABIC_NARRATIVE = 'صعد ٣ رجال إلى السفينة عند ٢٢٫٥ شمالاً، الساعة ٠٢:١٠ — 2 قوارب';

const CASES = {
  'counts in Arabic-Indic, Persian, Devanagari, Myanmar, full-width digits': {
    ...PIRACY, crew_injured: ['٣'], crew_killed: ['۱۲'], crew_missing: ['१०'], crew_hostage: ['၉'],
    perpetrators_min: ['２'], perpetrators_max: ['٩٩٩٩'],
  },
  'a count in Arabic thousands groups': { ...PIRACY, crew_injured: ['١٬٢٣٤'] },
  'Arabic thousands separator out of place': { ...PIRACY, crew_injured: ['١٢٬٣٤'] },
  'a count too large in Thai digits': { ...PIRACY, crew_injured: ['๑๐๐๐๐'] },
  'superscript and circled numbers are no counts': { ...PIRACY, crew_injured: ['²'], crew_killed: ['①'] },
  'a decimal comma in a count': { ...PIRACY, crew_injured: ['1,5'] },
  'a local time in Arabic-Indic digits': {
    ...PIRACY, incident_local_time: ['٢٠٢٦-١١-٢١T٠٢:١٠'], incident_utc_offset: ['+٠٣:٠٠'],
  },
  'a UTC offset with a minus sign': { ...PIRACY, incident_utc_offset: ['\u221205:00'], narrative: ['x'] },
  'a local time in Devanagari digits before 1990': { ...PIRACY, incident_local_time: ['१९८९-१२-३१T२३:५९'] },
  'decimal commas in latitude and longitude': { ...PIRACY, latitude: ['22,27N'], longitude: ["091°48,5'E"] },
  'Arabic digits and decimal separator': { ...PIRACY, latitude: ['٢٢٫٢٧'], longitude: ['٩١٫٨'] },
  'a whole position with decimal commas in the latitude field': { ...PIRACY, latitude: ["22°16,2'N, 091°48,5'E"] },
  'a whole position, comma-separated, no spaces': { ...PIRACY, latitude: ['22,27N,91,8E'] },
  'a whole position in Arabic-Indic digits': { ...PIRACY, latitude: ["٢٢°١٦٫٢'N ٠٩١°٤٨٫٥'E"] },
  'a comma and a space is no decimal comma': { ...PIRACY, latitude: ['22, 27'] },
  'free text keeps its digits': { ...PIRACY, narrative: [ARABIC_NARRATIVE], place_name: ['رصيف ٤'] },
};

const serverSide = JSON.parse(execFileSync(PYTHON, ['-c', SERVER_SIDE], {
  cwd: ROOT, input: JSON.stringify(Object.values(CASES)), encoding: 'utf8',
}));
const rules = wholeRules(serverSide.rules, (name) => serverSide.form[name]);
const names = Object.keys(CASES);
const verdictOf = (name) => serverSide.verdicts[names.indexOf(name)];

test('every case gets the server\'s verdict, in the server\'s words', () => {
  const differ = [];
  Object.values(CASES).forEach((values, i) => {
    const { report, identity, problems } = checkReport(rules, values);
    const got = problems.length ? { problems } : { problems, report, identity };
    try {
      assert.deepEqual(got, serverSide.verdicts[i]);
    } catch {
      differ.push(`${names[i]}: browser ${JSON.stringify(got)}\n  server ${JSON.stringify(serverSide.verdicts[i])}`);
    }
  });
  assert.equal(differ.join('\n'), '');
});

test('the values are read as intended', () => {
  assert.deepEqual(verdictOf('counts in Arabic-Indic, Persian, Devanagari, Myanmar, full-width digits').report, {
    category: 'piracy-or-armed-robbery', crew_injured: 3, crew_killed: 12, crew_missing: 10, crew_hostage: 9,
    perpetrators_min: 2, perpetrators_max: 9999,
  });
  assert.equal(verdictOf('a count in Arabic thousands groups').report.crew_injured, 1234);
  for (const name of ['Arabic thousands separator out of place', 'a count too large in Thai digits',
    'superscript and circled numbers are no counts', 'a decimal comma in a count']) {
    assert.ok(verdictOf(name).problems.every((p) => p.key === 'count') && verdictOf(name).problems.length, name);
  }
  const time = verdictOf('a local time in Arabic-Indic digits').report;
  assert.equal(time.incident_local_time, '2026-11-21T02:10');
  assert.equal(time.incident_utc_offset, '+03:00');
  assert.equal(verdictOf('a UTC offset with a minus sign').report.incident_utc_offset, '-05:00');
  assert.equal(verdictOf('a local time in Devanagari digits before 1990').problems[0].key, 'local_time');
  const commas = verdictOf('decimal commas in latitude and longitude').report;
  assert.deepEqual([commas.latitude, commas.longitude], [22.27, 91.808333]);
  const arabic = verdictOf('Arabic digits and decimal separator').report;
  assert.deepEqual([arabic.latitude, arabic.longitude], [22.27, 91.8]);
  for (const [name, position] of [
    ['a whole position with decimal commas in the latitude field', [22.27, 91.808333]],
    ['a whole position, comma-separated, no spaces', [22.27, 91.8]],
    ['a whole position in Arabic-Indic digits', [22.27, 91.808333]],
  ]) {
    const { report } = verdictOf(name);
    assert.deepEqual([report.latitude, report.longitude], position, name);
  }
  assert.equal(verdictOf('a comma and a space is no decimal comma').problems[0].key, 'coordinate');
});

test('free text arrives exactly as typed', () => {
  const { report } = verdictOf('free text keeps its digits');
  assert.equal(report.narrative, ARABIC_NARRATIVE);
  assert.equal(report.place_name, 'رصيف ٤');
  assert.equal(checkReport(rules, CASES['free text keeps its digits']).report.narrative, ARABIC_NARRATIVE);
});
