// Test helper: seal or open a file with the browser modules, under Node.
//   node node_envelope.mjs seal IN OUT RECIPIENT_HEX...
//   node node_envelope.mjs open IN OUT PRIVATE_KEY_HEX
// Reads IN as a Blob (sliced, like a File in the browser) and streams pieces
// to OUT. On failure prints the failure class on stderr, removes OUT, exits 1.
import { openAsBlob } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { fromHex } from '../../portal/web/static/js/bytes.js';
import { openEnvelope, sealEnvelope } from '../../portal/web/static/js/envelope.js';

const [verb, input, output, ...keys] = process.argv.slice(2);
const source = await openAsBlob(input);
const pieces = verb === 'seal'
  ? sealEnvelope(source, keys.map(fromHex))
  : openEnvelope(source, fromHex(keys[0]));
const handle = await open(output, 'w');
try {
  for await (const piece of pieces) await handle.write(piece);
  await handle.close();
} catch (error) {
  await handle.close();
  await rm(output, { force: true });
  process.stderr.write(`${error.failureClass ?? error.name}\n`);
  process.exit(1);
}
