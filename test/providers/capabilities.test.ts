/**
 * Capabilities are the action methods a driver has (capabilitiesOf), and the reconciler's
 * decision asks for an action only where the method is there: for every provider (and the toy
 * fixture) and every action, the decision sends the action exactly when the driver has its
 * method, and reports it Unsupported otherwise.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { ProviderName } from "../../src/api/index.ts";
import { decide, type DecideInput, type InstanceAction } from "../../src/controller/cloudinstance/decide.ts";
import { runAction } from "../../src/controller/cloudinstance/reconcile-parts.ts";
import type { ResolvedSpec } from "../../src/controller/cloudinstance/resolve.ts";
import { getCondition } from "../../src/controller/conditions.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { Metrics } from "../../src/observability/metrics.ts";
import type { ProviderDefinition } from "../../src/providers/definition.ts";
import {
  capabilitiesOf,
  methodCapabilities,
  type Driver,
  type ObservedMachine,
} from "../../src/providers/driver.ts";
import { UnsupportedError } from "../../src/providers/errors.ts";
import { HttpClientFactory } from "../../src/providers/http/client.ts";
import { PROVIDERS } from "../../src/providers/registry.ts";
import { decideInput } from "../controller/cloudinstance/input.ts";
import { definition as toy } from "../fixtures/toy-provider/definition.ts";

const logger = createLogger({ level: "silent" });
const http = new HttpClientFactory({ logger, metrics: new Metrics() });
after(() => http.close());

const DEFINITIONS: readonly ProviderDefinition[] = [...PROVIDERS, toy];

/** A driver as the pool builds it; nothing is sent by building one. */
function driverOf(def: ProviderDefinition): Driver<unknown> {
  const credentials = Object.fromEntries(def.credentialKeys.required.map((k) => [k, "x"]));
  return def.create({ credentials, secretName: "ns/creds", endpoint: undefined, http, logger });
}

function vm(over: Partial<ObservedMachine> = {}): ObservedMachine {
  return {
    id: "vm-1",
    providerStatus: "running",
    phase: "Running",
    transitional: false,
    ownerUID: "uid-1",
    plan: "small",
    image: "disk-a",
    region: "r1",
    tags: ["web"],
    addresses: { public: [], private: [] },
    ...over,
  };
}

function input(
  provider: string,
  capabilities: DecideInput["capabilities"],
  over: { spec?: Partial<ResolvedSpec>; machine?: Partial<ObservedMachine> } & Partial<
    Omit<DecideInput, "spec">
  >,
): DecideInput {
  const { spec, machine, ...rest } = over;
  return decideInput({
    status: { observedGeneration: 1, instanceID: "vm-1", phase: "Running" },
    spec: {
      provider: { name: provider as ProviderName },
      region: "r1",
      plan: "small",
      image: "disk-a",
      sshKeys: [],
      tags: ["web"],
      providerOptions: {},
      powerState: "Running",
      deletionPolicy: "Delete",
      updatePolicy: "AllowRebuild",
      managementPolicies: ["Observe", "Create", "Update", "Delete"],
      driftPolicy: "Correct",
      templateProviderData: {},
      ...spec,
    },
    observation: { kind: "found", machine: vm(machine) },
    capabilities,
    ...rest,
  });
}

type Method = "start" | "stop" | "hardStop" | "reboot" | "resize" | "rebuild" | "setTags" | "renew";

/** Each action the decision can send to a VM, the situation that asks for it, and the method it calls. */
const SITUATIONS: readonly {
  method: Method;
  action: InstanceAction;
  over: Parameters<typeof input>[2];
}[] = [
  { method: "start", action: { type: "Start" }, over: { machine: { phase: "Stopped" } } },
  {
    method: "stop",
    action: { type: "Stop", hard: false },
    over: { spec: { powerState: "Stopped" } },
  },
  {
    method: "hardStop",
    action: { type: "Stop", hard: true },
    over: {
      spec: { powerState: "Stopped" },
      machine: { phase: "Stopping", transitional: true },
      stoppingForMs: 121_000,
    },
  },
  { method: "resize", action: { type: "Resize", plan: "large" }, over: { spec: { plan: "large" } } },
  { method: "rebuild", action: { type: "Rebuild", image: "disk-b" }, over: { spec: { image: "disk-b" } } },
  {
    method: "setTags",
    action: { type: "SetTags", tags: ["prod"] },
    over: { spec: { tags: ["prod"] } },
  },
  { method: "reboot", action: { type: "Reboot" }, over: { restartRequestedAt: "r1" } },
  {
    method: "renew",
    action: { type: "Renew", message: "lease ends soon" },
    over: { machine: { renewalDue: { message: "lease ends soon" } } },
  },
];

describe("capabilities are the driver's methods", () => {
  for (const def of DEFINITIONS) {
    test(`${def.provider}: the definition's capabilities are its driver's methods`, () => {
      const driver = driverOf(def);
      assert.equal(
        Object.getPrototypeOf(driver),
        def.driver.prototype,
        "`driver` is the class create builds",
      );
      assert.deepEqual([...capabilitiesOf(driver)].sort(), [...def.capabilities].sort());
      assert.deepEqual([...methodCapabilities(def.driver.prototype as object)], [...def.capabilities]);
      assert.equal(def.mirrorsTemplates, def.capabilities.has("remoteTemplates"));
    });

    for (const s of SITUATIONS)
      test(`${def.provider} × ${s.action.type}${s.method === "hardStop" ? " (hard)" : ""}: sent exactly when the driver has ${s.method}`, () => {
        const driver = driverOf(def);
        const has = typeof driver[s.method] === "function";
        const d = decide(input(def.provider, capabilitiesOf(driver), s.over));
        if (has) assert.deepEqual(d.action, s.action);
        else {
          assert.equal(d.action, undefined, `no ${s.action.type} for a driver without ${s.method}`);
          // A lease only the provider can renew, or a hard stop where a soft one is under way,
          // has nothing to report; every other action the spec asks for is reported.
          if (s.method !== "renew" && s.method !== "hardStop")
            assert.equal(getCondition(d.status.conditions, "Synced")?.reason, "Unsupported");
        }
      });
  }

  test("the toy fixture lacks reboot, resize, rebuild and tags, and has start, stop and findByOwner", () => {
    assert.deepEqual([...toy.capabilities].sort(), ["findByOwner", "start", "stop"]);
  });

  test("runAction refuses an action whose method the driver lacks with UnsupportedError, sending nothing", async () => {
    const driver = driverOf(toy);
    const fenced: string[] = [];
    const desired = {
      ownerUID: "uid-1",
      clusterID: "",
      namespace: "ns",
      name: "web",
      region: undefined,
      plan: "small",
      image: undefined,
      sshKeys: [],
      tags: [],
      powerState: "Running" as const,
      options: {},
      providerData: {},
    };
    for (const action of [{ type: "Reboot" }, { type: "Stop", hard: true }] as const)
      await assert.rejects(
        () =>
          runAction(
            action,
            driver,
            { id: "vm-1", providerData: {} },
            desired,
            { signal: new AbortController().signal },
            (u) => fenced.push(u),
          ),
        (e: unknown) => e instanceof UnsupportedError && e.reason === "Unsupported",
      );
    assert.deepEqual(fenced, ["uid-1", "uid-1"]);
  });
});
