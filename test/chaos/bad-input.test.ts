/**
 * The bad-input corpus (test/fixtures/bad/): each file is a case — a first YAML document with
 * the expectation, then the objects to apply. Malformed manifests must be refused by the CRD
 * schema with a message naming the field; valid-but-wrong specs must end with Synced=False,
 * the expected reason, the provider's (or the operator's) message and an Event, with no VM
 * created and no retry storm. The operator runs as its own process at debug log level, and
 * nothing it logs, no Event and no status may contain a credential.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import {
  CloudInstanceResource,
  EventResource,
  InstanceTemplateResource,
  SecretResource,
  type Resource,
} from "../../src/kube/resources.ts";
import type { CloudInstance, ProviderName } from "../../src/api/index.ts";
import type { KubeEvent } from "../../src/kube/core-types.ts";
import { PROVIDER_NAMES } from "../../src/api/provider-names.ts";
import type { VscaleSimulator } from "../sim/vscale/index.ts";
import { sleep, startChaosWorld, type ChaosWorld, type OperatorProcess } from "./world.ts";
import { assertNoSecretLeaked } from "./scenarios.ts";

const DIR = join(import.meta.dirname, "..", "fixtures", "bad");
interface Expect {
  rejected?: string;
  reason?: string;
  message?: string;
}
interface Case {
  file: string;
  title: string;
  expect: Expect;
  objects: Record<string, unknown>[];
  namespace: string;
}

const cases: Case[] = readdirSync(DIR)
  .filter((f) => f.endsWith(".yaml"))
  .sort()
  .map((file, i) => {
    const text = readFileSync(join(DIR, file), "utf8");
    const [head, ...docs] = parseAllDocuments(text).map((d) => d.toJS() as Record<string, unknown>);
    return {
      file,
      title: /^# (.*)$/m.exec(text)?.[1] ?? file,
      expect: head?.expect ?? {},
      objects: docs,
      namespace: `bad-${String(i).padStart(2, "0")}`,
    };
  });

let world: ChaosWorld;
let operator: OperatorProcess;
const outcome = new Map<string, string>();
/** Every credential value the cases put in Secrets: none may leak either. */
const usedSecrets: string[] = [];

function fill(obj: Record<string, unknown>, c: Case): Record<string, unknown> {
  const o = structuredClone(obj);
  o.metadata = { ...(o.metadata as object), namespace: c.namespace };
  const spec = o.spec as { provider?: { name?: ProviderName; endpoint?: unknown } } | undefined;
  if (spec?.provider?.endpoint === "SIM" && spec.provider.name)
    spec.provider.endpoint = world.sims.get(spec.provider.name)?.url;
  if (o.kind === "Secret") {
    const data = o.stringData as Record<string, string>;
    for (const [k, v] of Object.entries(data)) {
      if (v === "SIM") data[k] = [...world.sims.values()].find((s) => s.credentials[k])?.credentials[k] ?? "";
      if (v === "READONLY") data[k] = (world.sims.get("vscale") as VscaleSimulator).readOnlyToken;
      if (["apiKey", "secretAccessKey", "token", "password"].includes(k) && data[k])
        usedSecrets.push(data[k]);
    }
  }
  return o;
}
const resourceOf = (kind: unknown): Resource =>
  kind === "Secret"
    ? SecretResource
    : kind === "InstanceTemplate"
      ? InstanceTemplateResource
      : CloudInstanceResource;

before(async () => {
  world = await startChaosWorld();
  operator = world.startOperator();
  for (const c of cases) {
    for (const p of PROVIDER_NAMES)
      await world.kube.create(SecretResource, {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: `${p}-creds`, namespace: c.namespace },
        stringData: { ...world.sims.get(p)?.credentials },
      });
  }
});
after(
  async () => {
    await operator.stop();
    await world.close();
  },
  { timeout: 60_000 },
);

test(`the corpus has at least 50 cases (${String(cases.length)})`, () => {
  assert.ok(cases.length >= 50);
});

test("malformed manifests are refused by the CRD schema with a message naming the field", async () => {
  for (const c of cases.filter((x) => x.expect.rejected !== undefined)) {
    const objects = c.objects.map((o) => fill(o, c));
    const last = objects.pop();
    for (const o of objects) await world.kube.create(resourceOf(o.kind), o as never);
    await assert.rejects(
      () => world.kube.create(resourceOf(last?.kind), last as never),
      (e: unknown) => e instanceof Error && e.message.includes(c.expect.rejected ?? ""),
      `${c.file}: ${c.title}`,
    );
    outcome.set(c.file, "rejected");
  }
});

test("valid-by-schema but wrong specs: Synced=False, reason, message, an Event, no VM, no retry storm", async () => {
  const semantic = cases.filter((x) => x.expect.reason !== undefined);
  for (const c of semantic)
    for (const o of c.objects.map((x) => fill(x, c))) await world.kube.create(resourceOf(o.kind), o as never);

  const subject = (c: Case): CloudInstance | undefined =>
    world.instances().find((o) => o.metadata.namespace === c.namespace && o.metadata.name === "subject");
  const synced = (c: Case) => subject(c)?.status?.conditions?.find((x) => x.type === "Synced");
  const deadline = Date.now() + 60_000;
  for (;;) {
    const pending = semantic.filter((c) => {
      const s = synced(c);
      return !(
        s?.status === "False" &&
        s.reason === c.expect.reason &&
        s.message.includes(c.expect.message ?? "")
      );
    });
    if (pending.length === 0) break;
    if (Date.now() > deadline)
      assert.fail(
        pending
          .map(
            (c) =>
              `${c.file}: expected ${String(c.expect.reason)} /${String(c.expect.message)}/, got ${JSON.stringify(synced(c))}`,
          )
          .join("\n"),
      );
    await sleep(200);
  }

  // Events are recorded asynchronously: give them a moment to land.
  const hasEvent = (items: KubeEvent[], c: Case): boolean =>
    items.some(
      (e) => e.involvedObject.name === "subject" && e.reason === c.expect.reason && e.type === "Warning",
    );
  let events: KubeEvent[][] = [];
  for (let i = 0; i < 50; i++) {
    events = (
      await Promise.all(semantic.map((c) => world.kube.list(EventResource, { namespace: c.namespace })))
    ).map((l) => l.items);
    if (semantic.every((c, k) => hasEvent(events[k] ?? [], c))) break;
    await sleep(100);
  }
  semantic.forEach((c, i) => {
    assert.ok(
      events[i]?.some(
        (e) => e.involvedObject.name === "subject" && e.reason === c.expect.reason && e.type === "Warning",
      ),
      `${c.file}: a Warning Event with reason ${String(c.expect.reason)}`,
    );
    const uid = subject(c)?.metadata.uid;
    for (const sim of world.sims.values())
      assert.equal(sim.vms().filter((v) => v.ownerUID === uid).length, 0, `${c.file}: no VM created`);
    outcome.set(c.file, String(c.expect.reason));
  });

  // No retry storm: over two resync periods, at most a few provider calls per case.
  const calls = (): number =>
    [...world.sims.values()].reduce(
      (a, s) => a + [...s.requestCounts.values()].reduce((x, y) => x + y, 0),
      0,
    );
  const before = calls();
  await sleep(6_000);
  const during = calls() - before;
  assert.ok(
    during <= semantic.length * 4,
    `${String(during)} provider calls in 6 s for ${String(semantic.length)} failing objects`,
  );
});

test("no credential in the operator's debug logs, the Events or any status", async () => {
  const scan = await assertNoSecretLeaked(
    world,
    cases.map((c) => c.namespace),
    usedSecrets,
  );
  assert.ok(scan.secrets >= 8, `${String(scan.secrets)} distinct secrets scanned for`);
  assert.ok(outcome.size >= 50, `${String(outcome.size)} cases checked`);
});
