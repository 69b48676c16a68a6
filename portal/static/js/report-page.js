// The report page: encrypt in the browser, upload only ciphertext.
//
// With JavaScript on, the form never posts its fields. This module:
//   1. fetches the signed key directory and verifies it against the
//      organisation key pinned in the page (nothing is encrypted otherwise);
//   2. builds the report JSON (cso-report/v1) from the visible fields;
//   3. strips metadata from JPEG and PNG attachments, and lists every
//      attachment in the manifest with its size and SHA-256;
//   4. seals the report and each attachment to the reviewers, solves the
//      portal's proof-of-work puzzle, and uploads the envelopes, with
//      progress, to /submit.
// Without JavaScript the same form posts to /submit-plain and the server
// encrypts on arrival; the page says which mode is in effect.

import { toHex, utf8Encode } from './bytes.js';
import { formatPublicKey } from './keys.js';
import { proveWork } from './pow.js';
import { deriveReceiptKeys, formatReceipt, generateReceipt } from './receipt.js';
import { sealForReviewers } from './reviewers.js';
import { collect, errorText, paragraph, prepareAttachments, upload } from './sending.js';

const form = document.getElementById('report');
const statusLine = document.getElementById('status');
const progress = document.getElementById('progress');
const categorySelect = form.elements.namedItem('category');

document.getElementById('mode').textContent =
  'Your browser encrypts this report and every file for the vetted reviewers before anything ' +
  'is sent. The server only ever receives the encrypted copy. Photos are cleaned of location ' +
  'and camera data first.';

function say(text) {
  statusLine.textContent = text;
}

// Show only the fields that apply to the chosen category.
function applyCategory() {
  const chosen = categorySelect.value;
  for (const field of form.querySelectorAll('.field[data-categories]')) {
    const applies = chosen === '' || field.dataset.categories.split(' ').includes(chosen);
    field.classList.toggle('hidden-by-category', !applies);
  }
}
categorySelect.addEventListener('change', applyCategory);
applyCategory();

function fieldValue(element) {
  const value = element.value.trim();
  if (value === '') return undefined;
  switch (element.dataset.kind) {
    case 'count':
      return Number.parseInt(value, 10);
    case 'coordinate':
      return Number.parseFloat(value);
    case 'long_text':
      return value.replace(/\r\n/g, '\n').normalize('NFC');
    default:
      return value.normalize('NFC');
  }
}

// The same document the server builds without JavaScript (portal/report.py).
function collectFields() {
  const report = {};
  const identity = {};
  for (const element of form.querySelectorAll('[data-kind]')) {
    if (element.closest('.hidden-by-category')) continue;
    const target = element.name.startsWith('identity_') ? identity : report;
    if (element.dataset.kind === 'multi') {
      if (element.checked) (target[element.name] ??= []).push(element.value);
      continue;
    }
    const value = fieldValue(element);
    if (value !== undefined) target[element.name] = value;
  }
  return { report, identity };
}

async function encryptAll(directoryText, organisationKey, reporterKey) {
  const files = Array.from(form.elements.namedItem('attachments').files);
  const { manifest, cleaned } = await prepareAttachments(files, say);
  const reportDocument = {
    schema: 'cso-report/v1',
    encrypted_by: 'browser',
    ...collectFields(),
    attachments: manifest,
    reporter_key: reporterKey, // crypto/SPEC.md §14.3: so the reviewers can answer
  };
  const now = new Date();
  const sealOne = async (source) => {
    const { pieces } = await sealForReviewers(source, directoryText, organisationKey, now);
    return collect(pieces);
  };
  say('Encrypting…');
  const report = await sealOne(utf8Encode(JSON.stringify(reportDocument)));
  const attachments = [];
  for (const [i, blob] of cleaned.entries()) {
    say(`Encrypting file ${i + 1} of ${cleaned.length}…`);
    attachments.push(await sealOne(blob));
  }
  return { report, attachments };
}

function followupLink() {
  const line = paragraph('To read the reviewers\' questions later, go to ');
  const link = document.createElement('a');
  link.href = '/followup';
  link.textContent = 'your conversation';
  line.append(link, ' and type the receipt.');
  return line;
}

function showReceipt(receiptText) {
  const box = document.createElement('div');
  box.className = 'receipt';
  box.id = 'done';
  const digits = paragraph(receiptText, 'receipt-digits');
  digits.id = 'receipt';
  box.append(
    paragraph('Your report was received. Your receipt:'),
    digits,
    paragraph(
      'Write it down or keep it somewhere only you can see. With it you can come back to read ' +
      "the reviewers' questions and answer them. It is shown only this once: nobody, not even " +
      'the reviewers, can look it up for you.',
    ),
    paragraph(
      'Your report was encrypted in your browser for the vetted reviewers only; the server keeps ' +
      'only the encrypted copy and nothing about who sent it. Thank you.',
    ),
    followupLink(),
  );
  form.replaceWith(box);
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (!form.reportValidity()) return;
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  progress.hidden = false;
  progress.value = 0;
  try {
    say("Checking the reviewers' keys…");
    const response = await fetch('/keys/directory.json', { cache: 'no-store', credentials: 'same-origin' });
    if (!response.ok) throw new Error('The portal cannot accept reports right now. Nothing was sent.');
    const organisationKey = document.querySelector('meta[name="cso-organisation-key"]').content;
    // The receipt is made here and never leaves the browser; the portal gets
    // only its public locator and the derived lookup token (SPEC.md §14).
    say('Making your receipt…');
    const receipt = generateReceipt();
    const keys = await deriveReceiptKeys(receipt);
    const reporterKey = await formatPublicKey('csoenc1', keys.publicKey);
    const { report, attachments } = await encryptAll(await response.text(), organisationKey, reporterKey);
    say('Doing the anti-spam check (a few seconds)…');
    const proof = await proveWork('submit');
    const body = new FormData();
    body.append('csrf_token', form.elements.namedItem('csrf_token').value);
    body.append('proof', proof);
    body.append('receipt_locator', receipt.slice(0, 4));
    body.append('receipt_token', toHex(keys.lookupToken));
    body.append('report', report, 'report');
    for (const [i, blob] of attachments.entries()) body.append('attachment', blob, `attachment-${i + 1}`);
    say('Sending the encrypted report…');
    const answer = await upload('/submit', body, progress);
    if (answer.status !== 200) throw new Error(errorText(answer));
    progress.value = 1;
    showReceipt(formatReceipt(receipt));
  } catch (error) {
    // Key-directory failures must stop everything: never fall back to sending plaintext.
    say(error.name === 'DirectoryError'
      ? "The reviewers' keys could not be verified, so nothing was encrypted or sent. Please try again later."
      : error.message);
    button.disabled = false;
    progress.hidden = true;
  }
});
