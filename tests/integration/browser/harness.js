// Test harness: exposes the browser modules to the Chromium test as
// window.harness. Loaded as a module from the same origin, under the CSP
// the portal uses, so a module that needed 'unsafe-*' or another origin
// would fail here.

import { fromBase64, fromHex, joinBytes, toBase64 } from '/static/js/bytes.js';
import { openToBytes } from '/static/js/envelope.js';
import { sealForReviewers } from '/static/js/reviewers.js';

async function collect(pieces) {
  const parts = [];
  for await (const piece of pieces) parts.push(piece);
  return joinBytes(parts);
}

window.harness = {
  /** Seal the file chosen in #attachment to the directory's reviewers; base64 envelope. */
  async sealChosenFile(directoryText, signerToken) {
    const file = document.getElementById('attachment').files[0];
    try {
      const { pieces } = await sealForReviewers(file, directoryText, signerToken, new Date());
      return { envelope: toBase64(await collect(pieces)), size: file.size };
    } catch (error) {
      return { error: error.name, message: error.message };
    }
  },
  /** Open a base64 envelope (as a Blob) with a hex private key. */
  async open(envelopeB64, privateKeyHex) {
    const blob = new Blob([fromBase64(envelopeB64)]);
    try {
      return { plaintext: toBase64(await openToBytes(blob, fromHex(privateKeyHex))) };
    } catch (error) {
      return { failureClass: error.failureClass ?? error.name };
    }
  },
};
document.getElementById('ready').textContent = 'ready';
