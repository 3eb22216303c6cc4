import { createLogger } from "../../../src/observability/logger.ts";
import type { HttpClientFactory } from "../../../src/providers/http/client.ts";
import { factory, ZomroOptionsSchema, type ZomroOptions } from "../../../src/providers/zomro/index.ts";
import type { DesiredMachine, Driver } from "../../../src/providers/driver.ts";
import { desiredMachine } from "../harness.ts";
import { SIMULATORS } from "../../sim/all.ts";
import type { ZomroSimulator } from "../../sim/zomro/index.ts";

/** The driver's default options (every function name at its default). */
export const zomroOptions: ZomroOptions = ZomroOptionsSchema.parse({});

/** A zomro driver on `sim` through the shared HTTP layer. */
export function zomroDriver(
  sim: ZomroSimulator,
  http: HttpClientFactory,
  credentials: Record<string, string> = sim.credentials,
): Driver<ZomroOptions> {
  return factory.create({
    credentials,
    secretName: "ns/zomro",
    endpoint: sim.url,
    http,
    logger: createLogger({ level: "silent" }),
  });
}

let uid = 0;
/** A desire the simulator accepts, with an owner UID of its own. */
export function zomroDesired(over: Partial<DesiredMachine<ZomroOptions>> = {}): DesiredMachine<ZomroOptions> {
  return desiredMachine(SIMULATORS.zomro.spec, zomroOptions, { ownerUID: `zo-${String(++uid)}`, ...over });
}
