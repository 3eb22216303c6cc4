import { after, before } from "node:test";
import { createLogger } from "../../../src/observability/logger.ts";
import type { HttpClientFactory } from "../../../src/providers/http/client.ts";
import { definition, type VscaleOptions } from "../../../src/providers/vscale/index.ts";
import type { DesiredMachine, Driver, ObservedMachine } from "../../../src/providers/driver.ts";
import { desiredMachine, testHttp } from "../harness.ts";
import { SIMULATORS } from "../../sim/all.ts";
import type { SimProfile } from "../../sim/common.ts";
import type { FaultKnobs } from "../../sim/common.ts";
import { startVscaleSimulator, type VscaleSimulator } from "../../sim/vscale/index.ts";

/** A Vscale simulator on one profile and drivers on it, started before and closed after the file's tests. */
export interface VscaleWorld {
  readonly sim: VscaleSimulator;
  readonly http: HttpClientFactory;
  /** The shared driver (as the pool would hand it out). */
  readonly d: Driver<VscaleOptions>;
  /** A new driver, as a restarted operator would make (no memory), on these credentials/endpoint. */
  driver(credentials?: Record<string, string>, endpoint?: string): Driver<VscaleOptions>;
  desired(over?: Partial<DesiredMachine<VscaleOptions>>): DesiredMachine<VscaleOptions>;
  /** Every request the simulator answered so far. */
  calls(): number;
}

export function vscaleWorld(
  profile: SimProfile,
  faults: Partial<FaultKnobs> = { transitionMs: 30 },
): VscaleWorld {
  let sim: VscaleSimulator | undefined;
  let http: HttpClientFactory | undefined;
  let d: Driver<VscaleOptions> | undefined;
  let uid = 0;
  const need = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error("the world is not started");
    return v;
  };
  const world: VscaleWorld = {
    get sim() {
      return need(sim);
    },
    get http() {
      return need(http);
    },
    get d() {
      return need(d);
    },
    driver(credentials = need(sim).credentials, endpoint = need(sim).url) {
      return definition.create({
        credentials,
        secretName: "ns/vscale",
        endpoint,
        http: need(http),
        logger: createLogger({ level: "silent" }),
      });
    },
    desired(over = {}) {
      return desiredMachine(
        SIMULATORS.vscale.spec,
        { catalogueTtlSeconds: 600 },
        { ownerUID: `vs-${profile}-${String(++uid)}`, ...over },
      );
    },
    calls: () => [...need(sim).requestCounts.values()].reduce((a, b) => a + b, 0),
  };
  before(async () => {
    sim = await startVscaleSimulator({ profile, faults });
    http = testHttp();
    d = world.driver();
  });
  after(async () => {
    await http?.close();
    await sim?.close();
  });
  return world;
}

export const settled = (status: string) => (m: ObservedMachine | undefined) =>
  m?.providerStatus === status && !m.transitional;
