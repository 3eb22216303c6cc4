// The fields of a DecideInput that specifications of the pure layer rarely vary, written once
// for every test that feeds decide().
import type { DecideInput } from "../../../src/controller/cloudinstance/decide.ts";

export const NOW = Date.parse("2026-01-01T00:10:00Z");

/** A DecideInput from the parts a test cares about; the rest as a quiet, ordinary pass. */
export function decideInput(
  parts: Pick<DecideInput, "spec" | "observation" | "capabilities"> & Partial<DecideInput>,
): DecideInput {
  return {
    generation: 1,
    deleting: false,
    status: {},
    adopted: false,
    uid: "uid-1",
    forceAdopt: false,
    now: NOW,
    timing: {
      pollInitialMs: 1000,
      pollMaxMs: 30_000,
      resyncMs: 300_000,
      hardStopAfterMs: 120_000,
      noProgressLimit: 3,
      unknownStatusAfterMs: 600_000,
    },
    reconcileRequestedAt: undefined,
    restartRequestedAt: undefined,
    stoppingForMs: undefined,
    jitter: 0.5,
    ...parts,
  };
}
