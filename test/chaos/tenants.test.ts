/**
 * One operator, many tenants: what a tenant who may create CloudInstances in one namespace can
 * make the operator do. The real operator process (debug logs) against the in-memory API
 * server, the simulators, and loopback listeners playing the attacker.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startChaosWorld, sleep, type ChaosWorld, type OperatorProcess } from "./world.ts";
import { assertNoSecretLeaked } from "./scenarios.ts";
import { startHostile } from "../sim/hostile.ts";
import { CloudInstanceResource } from "../../src/kube/resources.ts";
import { credentialsSecret, instanceManifest } from "../sim/all.ts";
import { SecretResource } from "../../src/kube/resources.ts";
import type { CloudInstance } from "../../src/api/index.ts";
import { MAX_MESSAGE_BYTES } from "../../src/util/cap-message.ts";

let world: ChaosWorld;
let operator: OperatorProcess;

before(async () => {
  world = await startChaosWorld({ namespace: "tenants" });
  operator = await world.startOperator();
});
after(
  async () => {
    await operator.stop();
    await world.close();
  },
  { timeout: 60_000 },
);

const synced = (o: CloudInstance | undefined) => o?.status?.conditions?.find((c) => c.type === "Synced");
const ready = (o: CloudInstance | undefined) =>
  o?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
const object = (name: string, namespace = "tenants") =>
  world.instances().find((o) => o.metadata.namespace === namespace && o.metadata.name === name);

/** A namespace of its own with a credentials Secret for the shared zomro account. */
async function tenantOn(
  namespace: string,
  name: string,
  spec: Record<string, unknown> = {},
  annotations = {},
) {
  const sim = world.sims.get("zomro");
  assert.ok(sim);
  await world.kube
    .create(SecretResource, credentialsSecret({ name: "zomro-creds", namespace }, sim.credentials) as never)
    .catch(() => undefined);
  const manifest = instanceManifest("zomro", { name, namespace, endpoint: sim.url }, spec) as {
    metadata: Record<string, unknown>;
  };
  manifest.metadata.annotations = annotations;
  await world.kube.create(CloudInstanceResource, manifest as never);
}

async function until(what: string, pred: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) assert.fail(`timed out: ${what}`);
    await sleep(100);
  }
}

async function instanceAt(name: string, endpoint: string): Promise<void> {
  await world.kube.create(
    CloudInstanceResource,
    instanceManifest("m2s", { name, namespace: "tenants", endpoint }) as never,
  );
}

test("an endpoint the admin did not allow gets no request and no credential", async () => {
  // 127.0.0.2 is loopback too, but the operator here may only call 127.0.0.1 (the simulators).
  const attacker = await startHostile({ host: "127.0.0.2" });
  try {
    await instanceAt("exfiltrate", `${attacker.url}/v1`);
    await until("EndpointNotAllowed", () => synced(object("exfiltrate"))?.reason === "EndpointNotAllowed");
    assert.match(synced(object("exfiltrate"))?.message ?? "", /--allowed-endpoints/);
    await sleep(1500);
    assert.equal(attacker.requests.length, 0, "not a single request reached the attacker");
  } finally {
    await attacker.close();
  }
});

test("a provider answering a 20,000-character error: status and Events carry at most 1 KiB of it", async () => {
  const provider = await startHostile();
  try {
    await instanceAt("huge-error", `${provider.url}/v1`);
    await until("the provider's error on status", () => synced(object("huge-error"))?.status === "False");
    const message = synced(object("huge-error"))?.message ?? "";
    assert.ok(Buffer.byteLength(message) <= MAX_MESSAGE_BYTES, `${String(message.length)} characters`);
    assert.match(message, /internal-service-detail/);
    assert.match(message, /\[cut\]$/);
  } finally {
    await provider.close();
  }
});

test("two tenants on one account: one tenant's providerOptions never steer the other's calls", async () => {
  const zomro = world.sims.get("zomro");
  assert.ok(zomro);
  // Tenant A maps "stop" to the delete function; the driver is shared by the account.
  await tenantOn("tenant-a", "a", { providerOptions: { functions: { stop: "instances.delete" } } });
  await tenantOn("tenant-b", "b");
  await until("both Ready", () => ready(object("a", "tenant-a")) && ready(object("b", "tenant-b")), 60_000);
  const idB = object("b", "tenant-b")?.status?.instanceID;
  assert.ok(idB);
  await world.kube.patch(CloudInstanceResource, "tenant-b", "b", { spec: { powerState: "Stopped" } });
  await until(
    "b Stopped",
    () => ready(object("b", "tenant-b")) && object("b", "tenant-b")?.status?.phase === "Stopped",
    60_000,
  );
  assert.equal(object("b", "tenant-b")?.status?.instanceID, idB, "still the same VM");
  assert.ok(
    zomro.vms().some((v) => v.id === idB),
    "B's VM was stopped with B's own function names, not deleted with A's",
  );
});

test("a tenant cannot adopt another tenant's VM, nor delete it by deleting its own object", async () => {
  const zomro = world.sims.get("zomro");
  assert.ok(zomro);
  const victim = object("a", "tenant-a");
  const id = victim?.status?.instanceID;
  assert.ok(id);
  await tenantOn("tenant-c", "thief", {}, { "compute.instance-operator.dev/external-id": id });
  await until("AdoptionRefused", () => synced(object("thief", "tenant-c"))?.reason === "AdoptionRefused");
  await world.kube.delete(CloudInstanceResource, "tenant-c", "thief");
  await until("thief gone", () => object("thief", "tenant-c") === undefined);
  assert.ok(
    zomro.vms().some((v) => v.id === id && v.ownerUID === victim.metadata.uid),
    "the victim's VM is still there",
  );
});

test("no credential in debug logs, Events, status or /metrics", async () => {
  assert.match(
    await world.scrapeMetrics(),
    /cloud_instance_provider_requests_total/,
    "the scan reads /metrics",
  );
  const scan = await assertNoSecretLeaked(world, ["tenants", "tenant-a", "tenant-b", "tenant-c"]);
  assert.ok(scan.scannedBytes > 0);
});
