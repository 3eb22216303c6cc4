/**
 * A repeatable stream of numbers in [0, 1) for model-checking tests: the same seed gives the
 * same operations on every run, so a failure can be replayed.
 */
export function seededRandom(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}
