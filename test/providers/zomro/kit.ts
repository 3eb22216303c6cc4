import { createLogger } from "../../../src/observability/logger.ts";
import type { HttpClientFactory } from "../../../src/providers/http/client.ts";
import { definition, ZomroOptionsSchema, type ZomroOptions } from "../../../src/providers/zomro/index.ts";
import type { DesiredMachine, Driver, DriverContext } from "../../../src/providers/driver.ts";
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
  extra: Pick<DriverContext, "maxPages"> = {},
): Driver<ZomroOptions> {
  return definition.create({
    credentials,
    secretName: "ns/zomro",
    endpoint: sim.url,
    http,
    logger: createLogger({ level: "silent" }),
    ...extra,
  });
}

/**
 * A service ordered past the operator, straight at the simulator (a VM someone made by hand, or
 * one an older operator marked): `fields` go into the order form as given.
 */
export async function orderByHand(sim: ZomroSimulator, fields: Record<string, string>): Promise<string> {
  const { username = "", password = "" } = sim.credentials;
  const res = await fetch(sim.url, {
    method: "POST",
    body: new URLSearchParams({
      func: "v2.instances.order.param",
      out: "json",
      authinfo: `${username}:${password}`,
      sok: "ok",
      licence_agreement: "on",
      pricelist: SIMULATORS.zomro.spec.plan,
      ostempl: SIMULATORS.zomro.spec.image,
      ...fields,
    }),
  });
  const body = (await res.json()) as { doc?: { id?: { $?: string } } };
  const id = body.doc?.id?.$;
  if (id === undefined) throw new Error(`the simulator refused the order: ${JSON.stringify(body)}`);
  return id;
}

/** Every request the simulator answered. */
export const totalRequests = (sim: ZomroSimulator): number =>
  [...sim.requestCounts.values()].reduce((a, b) => a + b, 0);

let uid = 0;
/** A desire the simulator accepts, with an owner UID of its own. */
export function zomroDesired(over: Partial<DesiredMachine<ZomroOptions>> = {}): DesiredMachine<ZomroOptions> {
  return desiredMachine(SIMULATORS.zomro.spec, zomroOptions, { ownerUID: `zo-${String(++uid)}`, ...over });
}
