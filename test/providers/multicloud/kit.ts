/** What the multicloud driver tests share: a driver on a simulator, desires, counting requests. */
import { createLogger } from "../../../src/observability/logger.ts";
import { HttpClientFactory } from "../../../src/providers/http/client.ts";
import {
  definition,
  MulticloudOptionsSchema,
  type MulticloudOptions,
} from "../../../src/providers/multicloud/index.ts";
import type { DesiredMachine, DesiredTemplate, Driver } from "../../../src/providers/driver.ts";
import { desiredMachine } from "../harness.ts";
import { SIMULATORS } from "../../sim/all.ts";
import type { MulticloudSimulator } from "../../sim/multicloud/index.ts";

export const options = MulticloudOptionsSchema.parse({ cloud: "aliyun" });
let uid = 0;

/**
 * HTTP for tests that send hundreds of requests in a row: the operator's per-credential limit
 * (20 per second) would make them wait, not test anything more.
 */
export const unthrottledHttp = (): HttpClientFactory =>
  new HttpClientFactory({
    logger: createLogger({ level: "silent" }),
    retry: { baseDelayMs: 5, maxDelayMs: 20 },
    defaultLimits: { qps: 10_000, burst: 10_000 },
  });

/** A fresh driver (its own empty catalogue cache) on the simulator. */
export function makeDriver(
  http: HttpClientFactory,
  sim: MulticloudSimulator,
  credentials: Record<string, string> = {},
  endpoint = sim.url,
): Driver<MulticloudOptions> {
  return definition.create({
    credentials,
    secretName: undefined,
    endpoint,
    http,
    logger: createLogger({ level: "silent" }),
  });
}

export function desired(
  over: Partial<DesiredMachine<MulticloudOptions>> = {},
): DesiredMachine<MulticloudOptions> {
  return desiredMachine(SIMULATORS.multicloud.spec, options, { ownerUID: `mc-${String(++uid)}`, ...over });
}

export function template(
  over: Partial<DesiredTemplate<MulticloudOptions>> = {},
): DesiredTemplate<MulticloudOptions> {
  return {
    ownerUID: `tpl-${String(++uid)}`,
    namespace: "ns",
    name: "pool",
    region: "cn-beijing",
    plan: "1Core-2GB",
    image: "centos7u2_64_40G_cloudinit_20160728.raw",
    sshKeys: [],
    tags: [],
    options,
    providerData: {},
    ...over,
  };
}

/** Requests the simulator answered. */
export const requests = (sim: MulticloudSimulator): number =>
  [...sim.requestCounts.values()].reduce((a, b) => a + b, 0);

export const running = (o: { phase: string; transitional: boolean } | undefined): boolean =>
  o?.phase === "Running" && !o.transitional;
