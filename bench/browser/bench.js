// Browser benchmark: sealing a Blob with the envelope modules against one raw
// WebCrypto AES-256-GCM call over the same bytes held in one buffer.
import { sealEnvelope } from '/static/js/envelope.js';
import { generateEncryptionKeyPair } from '/static/js/keys.js';

function randomBuffer(size) {
  const buffer = new Uint8Array(size);
  for (let at = 0; at < size; at += 65536) crypto.getRandomValues(buffer.subarray(at, Math.min(size, at + 65536)));
  return buffer;
}

window.bench = async (megabytes, rounds) => {
  const size = megabytes * 1e6;
  const data = randomBuffer(size);
  const blob = new Blob([data]);
  const recipients = [];
  for (let i = 0; i < 3; i++) recipients.push((await generateEncryptionKeyPair()).publicKey);
  const key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt']);
  const ratios = [];
  let bestRaw = Infinity;
  let bestEnvelope = Infinity;
  for (let round = 0; round < rounds; round++) {
    let start = performance.now();
    await crypto.subtle.encrypt({ name: 'AES-GCM', iv: new Uint8Array(12) }, key, data);
    const raw = performance.now() - start;
    start = performance.now();
    const pieces = [];
    for await (const piece of sealEnvelope(blob, recipients)) pieces.push(piece);
    const sealed = new Blob(pieces);
    const envelope = performance.now() - start;
    if (sealed.size < size) throw new Error('short envelope');
    bestRaw = Math.min(bestRaw, raw);
    bestEnvelope = Math.min(bestEnvelope, envelope);
    ratios.push(raw / envelope);
  }
  ratios.sort((a, b) => a - b);
  return { bestRaw, bestEnvelope, median: ratios[Math.floor(ratios.length / 2)] };
};
document.getElementById('ready').textContent = 'ready';
