/** A MOS simulator and drivers on it, for the mos driver's own tests (each file closes its worlds). */
import type { Logger } from "pino";
import { createLogger } from "../../../src/observability/logger.ts";
import { HttpClientFactory, type LimitPolicy } from "../../../src/providers/http/client.ts";
import { definition, MosOptionsSchema, type MosOptions } from "../../../src/providers/mos/index.ts";
import type { DesiredMachine, Driver, DriverContext, MachineRef } from "../../../src/providers/driver.ts";
import { desiredMachine, observeUntil } from "../harness.ts";
import { SIMULATORS } from "../../sim/all.ts";
import type { SimProfile } from "../../sim/common.ts";
import { startMosSimulator, type MosSimulator, type MosSimulatorOptions } from "../../sim/mos/index.ts";

export const IMAGE = SIMULATORS.mos.spec.image;
export const OTHER_IMAGE = "d1620e45-c561-42e7-a2a4-53ae0a389bb9";
const options = MosOptionsSchema.parse({});
let uid = 0;
const closers: (() => Promise<void>)[] = [];

/** Closes every world made so far (a file's `after`). */
export async function closeWorlds(): Promise<void> {
  for (const close of closers.splice(0).reverse()) await close();
}

export interface World {
  sim: MosSimulator;
  http: HttpClientFactory;
  d: Driver<MosOptions>;
  make: (credentials?: Record<string, string>, over?: Partial<DriverContext>) => Driver<MosOptions>;
}

export async function world(
  profile: SimProfile,
  extra: Omit<MosSimulatorOptions, "profile" | "faults"> = {},
  logger: Logger = createLogger({ level: "silent" }),
  /** The account's request rate (tests that make a hundred VMs raise it). */
  limits: Partial<LimitPolicy> = {},
): Promise<World> {
  const sim = await startMosSimulator({ profile, faults: { transitionMs: 20 }, ...extra });
  const http = new HttpClientFactory({
    logger,
    retry: { baseDelayMs: 5, maxDelayMs: 20 },
    defaultLimits: limits,
  });
  closers.push(
    () => sim.close(),
    () => http.close(),
  );
  const make = (
    credentials: Record<string, string> = sim.credentials,
    over: Partial<DriverContext> = {},
  ): Driver<MosOptions> =>
    definition.create({ credentials, secretName: "ns/mos", endpoint: sim.url, http, logger, ...over });
  return { sim, http, d: make(), make };
}

export const desired = (over: Partial<DesiredMachine<MosOptions>> = {}): DesiredMachine<MosOptions> =>
  desiredMachine(SIMULATORS.mos.spec, options, { ownerUID: `minimum-${String(++uid)}`, ...over });
export const total = (sim: MosSimulator): number =>
  [...sim.requestCounts.values()].reduce((a, b) => a + b, 0);
export const calls = (sim: MosSimulator, action: string): number => sim.requestCounts.get(action) ?? 0;

export async function running(d: Driver<MosOptions>, want: DesiredMachine<MosOptions>): Promise<MachineRef> {
  const r = await d.create(want);
  const ref = { id: r.id, providerData: r.providerData ?? {} };
  await observeUntil(d, ref, (o) => o?.providerStatus === "running" && !o.transitional);
  return ref;
}

/** Limits that do not slow a test making a hundred VMs or reading a hundred pages. */
export const FAST: Partial<LimitPolicy> = { qps: 2000, burst: 2000 };
