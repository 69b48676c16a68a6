// What the report page and the follow-up page share: cleaning and listing
// attachments, collecting an envelope into a Blob, uploading with progress,
// and reading the portal's error pages.

import { utf8Encode } from './bytes.js';
import { _, languageHeaders } from './i18n.js';
import { ScrubError, scrubFile } from './scrub.js';
import { sha256Blob } from './sha256.js';

// A file name is kept only if it is plain and visible (crypto/SPEC.md §11.1).
const FORBIDDEN = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}/\\]/u;

export function attachmentName(name, index) {
  const nfc = name.normalize('NFC');
  const fits = utf8Encode(nfc).length <= 255 && nfc !== '.' && nfc !== '..';
  return nfc && fits && !FORBIDDEN.test(nfc) ? nfc : `attachment-${index}`;
}

/**
 * Clean each file (JPEG and PNG lose their metadata) and list it: {manifest,
 * cleaned}. A damaged image throws ScrubError with `index`, the file's number from 1.
 */
export async function prepareAttachments(files, say) {
  const manifest = [];
  const cleaned = [];
  for (const [i, file] of files.entries()) {
    say(_("Cleaning and checking file {n} of {total}…", { n: i + 1, total: files.length }));
    let scrubbedFile;
    try {
      scrubbedFile = await scrubFile(file);
    } catch (error) {
      if (error instanceof ScrubError) error.index = i + 1; // which file, for the message beside the field
      throw error;
    }
    const { blob, mediaType, scrubbed } = scrubbedFile;
    manifest.push({
      name: attachmentName(file.name, i + 1),
      media_type: mediaType,
      size: blob.size,
      sha256: await sha256Blob(blob),
      scrubbed,
    });
    cleaned.push(blob);
  }
  return { manifest, cleaned };
}

/** An envelope's pieces, gathered into one Blob for upload. */
export async function collect(pieces) {
  const parts = [];
  for await (const piece of pieces) parts.push(piece);
  return new Blob(parts, { type: 'application/octet-stream' });
}

/** POST `body` to `url`, reporting upload progress on `progress`; resolves to the XHR. */
export function upload(url, body, progress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open('POST', url);
    for (const [name, value] of Object.entries(languageHeaders())) request.setRequestHeader(name, value);
    request.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) progress.value = event.loaded / event.total;
    });
    request.addEventListener('load', () => resolve(request));
    request.addEventListener('error', () => reject(new Error(_("The connection failed. Nothing was stored; please try again."))));
    request.send(body);
  });
}

/** The portal's own words from an error page, or a plain fallback. */
export function errorText(request) {
  const page = new DOMParser().parseFromString(request.responseText, 'text/html');
  return page.querySelector('.error')?.textContent ?? _("The portal refused it ({status}).", { status: request.status });
}

export function paragraph(text, className) {
  const element = document.createElement('p');
  element.textContent = text;
  if (className) element.className = className;
  return element;
}
