// The follow-up page: the reporter's inbox, opened with the receipt.
//
// With JavaScript on, the receipt never leaves the browser. This module:
//   1. derives the reporter's private key and the lookup token from the
//      typed receipt (PBKDF2, crypto/SPEC.md §14) and sends only the public
//      locator and the token to /followup/lookup;
//   2. opens the reviewers' replies, which arrive still encrypted, with the
//      private key, and shows them with the report's status;
//   3. seals an answer (cso-followup/v1 JSON) and its attachments to the
//      reviewers listed in the signed key directory, solves the proof-of-work
//      puzzle and uploads only ciphertext to /followup/send.
// Without JavaScript the same form posts the receipt to /followup and the
// server does this work in memory; the page says which mode is in effect.

import { fromBase64Url, toHex, utf8Decode, utf8Encode } from './bytes.js';
import { openToBytes } from './envelope.js';
import { _, around, languageHeaders } from './i18n.js';
import { proveWork } from './pow.js';
import { deriveReceiptKeys, parseReceipt } from './receipt.js';
import { sealForReviewers } from './reviewers.js';
import { collect, errorText, paragraph, prepareAttachments, upload } from './sending.js';

const lookupForm = document.getElementById('lookup');
const statusLine = document.getElementById('status');
const thread = document.getElementById('thread');
const csrfToken = lookupForm.elements.namedItem('csrf_token').value;
const STATUS_WORDS = { received: _("received"), 'under-review': _("under review"), closed: _("closed") };
const MAX_MESSAGE_CHARS = 20000;

document.getElementById('mode').textContent = _("Your browser works out your keys from the receipt and opens the reviewers' messages itself. The receipt never leaves this page; the server sees only encrypted messages.");

function say(text) {
  statusLine.textContent = text;
}

/** The text of one reply envelope, or null if it does not open or is not a reply. */
async function openReply(envelope, privateKey) {
  try {
    const document = JSON.parse(utf8Decode(await openToBytes(fromBase64Url(envelope), privateKey)));
    return document?.schema === 'cso-reply/v1' && typeof document.message === 'string' ? document.message : null;
  } catch {
    return null;
  }
}

async function showConversation(answer, keys, locator) {
  const heading = document.createElement('h2');
  heading.textContent = _("Your report");
  const [before, after] = around(_("Sent on {day}. Status: {status}."), 'status', { day: answer.received_on });
  const status = paragraph(before);
  const strong = document.createElement('strong');
  strong.id = 'report-status';
  strong.textContent = STATUS_WORDS[answer.status] ?? answer.status;
  status.append(strong, after);
  const repliesHeading = document.createElement('h2');
  repliesHeading.textContent = _("Messages from the reviewers");
  const list = document.createElement('ol');
  list.className = 'messages';
  list.id = 'messages';
  for (const reply of answer.replies) {
    const item = document.createElement('li');
    item.className = 'message';
    const text = await openReply(reply.envelope, keys.privateKey);
    const shown = text === null ? paragraph(_("This message could not be opened."), 'error') : paragraph(text, 'message-text');
    if (text !== null) shown.dir = 'auto'; // the reviewers may write in a script of either direction
    item.append(paragraph(reply.received_on, 'message-day'), shown);
    list.append(item);
  }
  const parts = [heading, status, repliesHeading];
  parts.push(answer.replies.length
    ? list
    : paragraph(_("No message yet. Reviewers work offline and in batches; please look again in a few days.")));
  if (answer.sent_on.length) {
    const count = answer.sent_on.length;
    const days = answer.sent_on.join(', ');
    parts.push(paragraph(count === 1
      ? _("You have sent 1 message since your report (on {days}). Only the reviewers can read them.", { days })
      : _("You have sent {count} messages since your report (on {days}). Only the reviewers can read them.", {
        count, days,
      })));
  }
  parts.push(answerForm(keys, locator));
  thread.replaceChildren(...parts);
  thread.hidden = false;
  lookupForm.hidden = true;
}

function answerForm(keys, locator) {
  const form = document.createElement('form');
  form.id = 'answer';
  const heading = document.createElement('h2');
  heading.textContent = _("Answer or add something");
  const label = document.createElement('label');
  label.htmlFor = 'f-message';
  label.textContent = _("Your message");
  const text = document.createElement('textarea');
  text.id = 'f-message';
  text.name = 'message';
  text.dir = 'auto';
  text.rows = 8;
  text.maxLength = MAX_MESSAGE_CHARS;
  text.required = true;
  const fileLabel = document.createElement('label');
  fileLabel.htmlFor = 'f-attachments';
  fileLabel.textContent = _("Photos or files");
  const files = document.createElement('input');
  files.id = 'f-attachments';
  files.type = 'file';
  files.multiple = true;
  const button = document.createElement('button');
  button.type = 'submit';
  button.textContent = _("Encrypt and send");
  const progress = document.createElement('progress');
  progress.max = 1;
  progress.hidden = true;
  const line = paragraph('', 'status');
  line.id = 'answer-status';
  line.setAttribute('role', 'status');
  const field = (...children) => {
    const div = document.createElement('div');
    div.className = 'field';
    div.append(...children);
    return div;
  };
  form.append(heading, field(label, text), field(fileLabel, files), button, progress, line);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!form.reportValidity()) return;
    button.disabled = true;
    progress.hidden = false;
    try {
      await sendAnswer(text.value, Array.from(files.files), keys, locator, progress, (t) => { line.textContent = t; });
      const done = paragraph(
        _("Your message was encrypted for the reviewers and sent. Come back with your receipt to read their answer."),
      );
      done.id = 'done';
      form.replaceWith(done);
    } catch (error) {
      line.textContent = error.name === 'DirectoryError'
        ? _("The reviewers' keys could not be verified, so nothing was encrypted or sent. Please try again later.")
        : error.message;
      button.disabled = false;
      progress.hidden = true;
    }
  });
  return form;
}

async function sendAnswer(message, files, keys, locator, progress, sayHere) {
  const trimmed = message.replace(/\r\n/g, '\n').normalize('NFC').trim();
  if (!trimmed) throw new Error(_("The message is empty."));
  sayHere(_("Checking the reviewers' keys…"));
  const response = await fetch('/keys/directory.json', {
    cache: 'no-store', credentials: 'same-origin', headers: languageHeaders(),
  });
  if (!response.ok) throw new Error(_("The portal cannot accept messages right now. Nothing was sent."));
  const directoryText = await response.text();
  const organisationKey = document.querySelector('meta[name="cso-organisation-key"]').content;
  const { manifest, cleaned } = await prepareAttachments(files, sayHere);
  const document_ = { schema: 'cso-followup/v1', encrypted_by: 'browser', message: trimmed, attachments: manifest };
  const now = new Date();
  const sealOne = async (source) => collect((await sealForReviewers(source, directoryText, organisationKey, now)).pieces);
  sayHere(_("Encrypting…"));
  const sealedMessage = await sealOne(utf8Encode(JSON.stringify(document_)));
  const sealedFiles = [];
  for (const blob of cleaned) sealedFiles.push(await sealOne(blob));
  sayHere(_("Doing the anti-spam check (a few seconds)…"));
  const proof = await proveWork('followup');
  const body = new FormData();
  body.append('csrf_token', csrfToken);
  body.append('proof', proof);
  body.append('receipt_locator', locator);
  body.append('receipt_token', toHex(keys.lookupToken));
  body.append('message', sealedMessage, 'message');
  for (const [i, blob] of sealedFiles.entries()) body.append('attachment', blob, `attachment-${i + 1}`);
  sayHere(_("Sending the encrypted message…"));
  const answer = await upload('/followup/send', body, progress);
  if (answer.status !== 200) throw new Error(errorText(answer));
}

lookupForm.addEventListener('submit', async (event) => {
  event.preventDefault();
  const digits = parseReceipt(lookupForm.elements.namedItem('receipt').value);
  if (digits === null) {
    say(_("A receipt is 24 digits (spaces between the groups are fine)."));
    return;
  }
  const button = lookupForm.querySelector('button[type=submit]');
  button.disabled = true;
  try {
    say(_("Working out your keys from the receipt (a few seconds)…"));
    const keys = await deriveReceiptKeys(digits);
    const locator = digits.slice(0, 4);
    const body = new FormData();
    body.append('csrf_token', csrfToken);
    body.append('receipt_locator', locator);
    body.append('receipt_token', toHex(keys.lookupToken));
    say(_("Looking for your report…"));
    const response = await fetch('/followup/lookup', {
      method: 'POST', body, credentials: 'same-origin', headers: languageHeaders(),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(answer.error ?? _("The portal could not look the receipt up ({status}).", { status: response.status }));
    }
    say('');
    await showConversation(answer, keys, locator);
  } catch (error) {
    say(error.message);
  } finally {
    button.disabled = false;
  }
});
