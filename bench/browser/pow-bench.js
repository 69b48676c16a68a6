// Browser benchmark: how many proof-of-work tries a second the portal's own
// solver makes with WebCrypto SHA-256, over several puzzles.
import { solvePuzzle } from '/static/js/pow.js';

window.bench = async (puzzles, bits) => {
  let tries = 0;
  const start = performance.now();
  for (const puzzle of puzzles) {
    const proof = await solvePuzzle(puzzle, bits);
    tries += Number(proof.slice(proof.lastIndexOf(':') + 1)) + 1;
  }
  return { tries, seconds: (performance.now() - start) / 1000 };
};
document.getElementById('ready').textContent = 'ready';
