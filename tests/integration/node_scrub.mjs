// Test helper: clean files with the browser's scrub.js, under Node.
//   node node_scrub.mjs jpeg|png IN OUT [IN OUT ...]
//   node node_scrub.mjs file IN OUT [DECLARED_TYPE]
// jpeg and png run scrubJpeg or scrubPng on each IN and write the result to
// its OUT. A file refused with ScrubError gets no OUT and one line
// 'ScrubError' on stderr, and the exit status is 1 (several pairs in one run
// save starting Node for each; the caller tells them apart by the missing
// OUT). file runs scrubFile on IN read as a Blob and prints
// {"mediaType", "scrubbed"} as JSON on stdout. Anything but a ScrubError is
// not caught, so it can never pass for a refusal.
import { openAsBlob } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { ScrubError, scrubFile, scrubJpeg, scrubPng } from '../../portal/web/static/js/scrub.js';

const [kind, ...args] = process.argv.slice(2);

async function refused(output) {
  await rm(output, { force: true });
  process.stderr.write('ScrubError\n');
  process.exitCode = 1;
}

if (kind === 'file') {
  const [input, output, declared = ''] = args;
  try {
    const result = await scrubFile(await openAsBlob(input, { type: declared }));
    await writeFile(output, new Uint8Array(await result.blob.arrayBuffer()));
    process.stdout.write(`${JSON.stringify({ mediaType: result.mediaType, scrubbed: result.scrubbed })}\n`);
  } catch (error) {
    if (!(error instanceof ScrubError)) throw error;
    await refused(output);
  }
} else {
  const scrub = { jpeg: scrubJpeg, png: scrubPng }[kind];
  if (scrub === undefined || args.length === 0 || args.length % 2 !== 0) {
    throw new Error('usage: node_scrub.mjs jpeg|png IN OUT [IN OUT ...]');
  }
  for (let i = 0; i < args.length; i += 2) {
    const [input, output] = [args[i], args[i + 1]];
    try {
      await writeFile(output, scrub(new Uint8Array(await readFile(input))));
    } catch (error) {
      if (!(error instanceof ScrubError)) throw error;
      await refused(output);
    }
  }
}
