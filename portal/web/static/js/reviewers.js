// Sealing to the vetted reviewers, and to nobody else (SPEC.md §10.3).
//
// The page never passes reviewer keys to the envelope code directly: it
// passes the signed key directory as served, and the organisation key pinned
// in the page. Nothing is encrypted, and no byte is produced, unless the
// directory verifies and is current; the envelope is then sealed to exactly
// the keys it lists, in its order.

import { verifyDirectory } from './directory.js';
import { sealEnvelope } from './envelope.js';

/**
 * Verify `directoryText` against `trustedSignerToken` at `now`, then return
 * {directory, pieces}: the verified directory and an async iterator of the
 * envelope's pieces for `source` (a Blob or Uint8Array). Throws DirectoryError
 * (before anything is encrypted) if the directory does not verify or has
 * expired.
 */
export async function sealForReviewers(source, directoryText, trustedSignerToken, now) {
  const directory = await verifyDirectory(directoryText, trustedSignerToken, now);
  return { directory, pieces: sealEnvelope(source, directory.recipientKeys) };
}
