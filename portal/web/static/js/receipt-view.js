// The receipt, once the portal has stored the report: the page becomes the
// receipt page, with its own heading and title, focus on the heading, the
// success said in a live region, and a button to copy the receipt (with a
// way that works where the clipboard API is missing: plain http, older
// browsers).

import { _, around } from './i18n.js';
import { paragraph } from './sending.js';

function followupLink() {
  const [before, after] = around(_("To read the reviewers' questions later, go to {link} and type the receipt."), 'link');
  const line = paragraph(before);
  const link = document.createElement('a');
  link.href = followupHref();
  link.textContent = _("your conversation");
  line.append(link, after);
  return line;
}

// The follow-up page's address as the server wrote it in the page's own links,
// which carry a language the reporter chose (?lang=); else the plain one.
function followupHref() {
  const written = document.querySelector('a[href^="/followup"]')?.getAttribute('href') ?? '';
  return /^\/followup(?:\?lang=[A-Za-z0-9-]+)?$/.test(written) ? written : '/followup';
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
      return _("Copied. On a shared computer, copy something else afterwards: the next person could paste it.");
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
    ? _("Copied. On a shared computer, copy something else afterwards: the next person could paste it.")
    : _("The receipt is selected: copy it with Ctrl+C (or long-press and Copy), or write it down.");
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
  heading.textContent = _("Report received");
  const announce = paragraph('');
  announce.id = 'done-status';
  announce.setAttribute('role', 'status');
  const digits = paragraph(receiptText, 'receipt-digits');
  digits.id = 'receipt';
  const copy = document.createElement('button');
  copy.type = 'button';
  copy.id = 'copy-receipt';
  copy.textContent = _("Copy the receipt");
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
    paragraph(_("Your receipt:")),
    digits,
    actions,
    copied,
    paragraph(_("Write it down or keep it somewhere only you can see. With it you can come back to read the reviewers' questions and answer them. It is shown only this once: nobody, not even the reviewers, can look it up for you.")),
    followupLink(),
  );
  main.replaceChildren(section);
  // The language picker leads to another page, and the receipt is never shown again:
  // while it is on screen, the picker is gone (the page is already in the reporter's language).
  for (const picker of document.querySelectorAll('nav.languages')) picker.hidden = true;
  document.title = _("Report received · CSO portal");
  heading.focus();
  // A live region speaks of changes, not of what it held when it appeared: fill it just after.
  setTimeout(() => {
    announce.textContent = _("Your report was received. It was encrypted in your browser for the vetted reviewers only; the server keeps only the encrypted copy and nothing about who sent it. Thank you.");
  }, 150);
}
