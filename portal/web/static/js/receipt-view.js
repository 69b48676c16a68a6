// The receipt, once the portal has stored the report: the page becomes the
// receipt page, with its own heading and title, focus on the heading, the
// success said in a live region, and a button to copy the receipt (with a
// way that works where the clipboard API is missing: plain http, older
// browsers).

import { paragraph } from './sending.js';

const TITLE = 'Report received · CSO portal';

function followupLink() {
  const line = paragraph('To read the reviewers\' questions later, go to ');
  const link = document.createElement('a');
  link.href = '/followup';
  link.textContent = 'your conversation';
  line.append(link, ' and type the receipt.');
  return line;
}

// Select the receipt's text, so that it can be copied by hand.
function selectText(element) {
  const range = document.createRange();
  range.selectNodeContents(element);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

/** Copy `text`; the answer says what happened, in words for the reporter. */
export async function copyText(text, element) {
  if (navigator.clipboard?.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      return 'Copied. On a shared computer, copy something else afterwards: the next person could paste it.';
    } catch {
      // refused (no permission, page not focused): fall through to the selection
    }
  }
  selectText(element);
  let copied = false;
  try {
    copied = document.execCommand('copy');
  } catch {
    copied = false;
  }
  return copied
    ? 'Copied. On a shared computer, copy something else afterwards: the next person could paste it.'
    : 'The receipt is selected: copy it with Ctrl+C (or long-press and Copy), or write it down.';
}

/** Replace the page's content (inside `main`) with the receipt view for `receiptText`. */
export function showReceipt(main, receiptText) {
  const section = document.createElement('section');
  section.id = 'done';
  section.className = 'receipt';
  section.setAttribute('aria-labelledby', 'receipt-heading');
  const heading = document.createElement('h1');
  heading.id = 'receipt-heading';
  heading.tabIndex = -1;
  heading.textContent = 'Report received';
  const announce = paragraph('');
  announce.id = 'done-status';
  announce.setAttribute('role', 'status');
  const digits = paragraph(receiptText, 'receipt-digits');
  digits.id = 'receipt';
  const copy = document.createElement('button');
  copy.type = 'button';
  copy.id = 'copy-receipt';
  copy.textContent = 'Copy the receipt';
  const copied = paragraph('', 'help');
  copied.id = 'copy-result';
  copied.setAttribute('role', 'status');
  copy.addEventListener('click', async () => {
    copied.textContent = await copyText(receiptText, digits);
  });
  const actions = document.createElement('p');
  actions.append(copy);
  section.append(
    heading,
    announce,
    paragraph('Your receipt:'),
    digits,
    actions,
    copied,
    paragraph(
      'Write it down or keep it somewhere only you can see. With it you can come back to read ' +
      "the reviewers' questions and answer them. It is shown only this once: nobody, not even " +
      'the reviewers, can look it up for you.',
    ),
    followupLink(),
  );
  main.replaceChildren(section);
  document.title = TITLE;
  heading.focus();
  // A live region speaks of changes, not of what it held when it appeared: fill it just after.
  setTimeout(() => {
    announce.textContent =
      'Your report was received. It was encrypted in your browser for the vetted reviewers only; ' +
      'the server keeps only the encrypted copy and nothing about who sent it. Thank you.';
  }, 150);
}
