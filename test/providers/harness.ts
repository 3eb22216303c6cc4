import assert from "node:assert/strict";
import { Writable } from "node:stream";
import type { Logger } from "pino";
import { createLogger } from "../../src/observability/logger.ts";
import type { DesiredMachine, Driver, MachineRef, ObservedMachine } from "../../src/providers/driver.ts";
import { HttpClientFactory } from "../../src/providers/http/client.ts";

/** A debug-level logger whose lines the test can scan (for secrets, for request lines). */
export function captureLogs(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({
    level: "debug",
    destination: new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    }),
  });
  return { logger, lines };
}

/** Reads a VM until it satisfies `pred` (simulator transitions take tens of ms in tests). */
export async function observeUntil<O>(
  driver: Driver<O>,
  ref: MachineRef,
  pred: (m: ObservedMachine | undefined) => boolean,
  what = "the expected state",
): Promise<ObservedMachine | undefined> {
  let last: ObservedMachine | undefined;
  for (let i = 0; i < 1500; i++) {
    last = await driver.get(ref);
    if (pred(last)) return last;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`VM ${ref.id} never reached ${what}; last seen ${JSON.stringify(last ?? null)}`);
}

/** The HTTP layer as drivers get it, with quick retries so fault tests stay fast. */
export function testHttp(logger: Logger = createLogger({ level: "silent" })): HttpClientFactory {
  return new HttpClientFactory({ logger, retry: { baseDelayMs: 5, maxDelayMs: 20 } });
}

/** A desired VM from a provider's simulator kit (a spec its simulator accepts), with overrides. */
export function desiredMachine<O>(
  spec: { region?: string; plan: string; image: string },
  options: O,
  over: Partial<DesiredMachine<O>> = {},
): DesiredMachine<O> {
  return {
    ownerUID: "owner",
    namespace: "ns",
    name: "web",
    region: spec.region,
    plan: spec.plan,
    image: spec.image,
    sshKeys: [],
    tags: [],
    powerState: "Running",
    options,
    providerData: {},
    clusterID: "testcluster",
    ...over,
  };
}
