import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createLogger } from "../../../src/observability/logger.ts";
import { HttpClientFactory, type HttpResponse } from "../../../src/providers/http/client.ts";
import { definition, MosOptionsSchema, type MosOptions } from "../../../src/providers/mos/index.ts";
import { parseBody } from "../../../src/providers/mos/api.ts";
import type { DesiredMachine, Driver, MachineRef } from "../../../src/providers/driver.ts";
import { QuotaOrBillingError, UnauthorizedError } from "../../../src/providers/errors.ts";
import { desiredMachine, observeUntil, testHttp } from "../harness.ts";
import { SIMULATORS } from "../../sim/all.ts";
import { startMosSimulator, type MosSimulator } from "../../sim/mos/index.ts";

let sim: MosSimulator;
let http: HttpClientFactory;
let d: Driver<MosOptions>;
let uid = 0;
const balances: { account: string; balance: number }[] = [];
const options = MosOptionsSchema.parse({});
const IMAGE = "019c6db6-55fa-443d-ac0c-182e3379d175";

function driver(
  credentials: Record<string, string> = sim.credentials,
  endpoint = sim.url,
): Driver<MosOptions> {
  return definition.create({
    credentials,
    secretName: "ns/mos",
    endpoint,
    http,
    logger: createLogger({ level: "silent" }),
    reportBalance: (account, balance) => balances.push({ account, balance }),
  });
}
function desired(over: Partial<DesiredMachine<MosOptions>> = {}): DesiredMachine<MosOptions> {
  return desiredMachine(SIMULATORS.mos.spec, options, { ownerUID: `mos-${String(++uid)}`, ...over });
}
const response = (text: string, type: string): HttpResponse => ({
  status: 200,
  headers: { "content-type": type },
  text,
  json: () => JSON.parse(text) as unknown,
});

before(async () => {
  sim = await startMosSimulator({ faults: { transitionMs: 20 } });
  http = testHttp();
  d = driver();
});
after(async () => {
  await http.close();
  await sim.close();
});

describe("MOS answers", () => {
  test("XML and JSON forms of the document parse to the same shape", () => {
    const fromXml = parseBody(
      response(
        '<?xml version="1.0" encoding="utf-8"?><ErrorResponse><Error><message>No enough balance</message><code>406</code></Error></ErrorResponse>',
        "application/xml",
      ),
    );
    assert.deepEqual(fromXml, {
      "?xml": "",
      ErrorResponse: { Error: { message: "No enough balance", code: "406" } },
    });
    const one = parseBody(
      response(
        "<DescribeInstancesResponse><InstanceSet><Instance><status>ready</status><instanceId>027f</instanceId></Instance><Total>1</Total></InstanceSet></DescribeInstancesResponse>",
        "application/xml",
      ),
    ) as { DescribeInstancesResponse: { InstanceSet: { Instance: unknown[] } } };
    assert.ok(
      Array.isArray(one.DescribeInstancesResponse.InstanceSet.Instance),
      "one Instance is still a list",
    );
    assert.deepEqual(parseBody(response('{"GetBalanceResponse":{"balance":16.66}}', "application/json")), {
      GetBalanceResponse: { balance: 16.66 },
    });
  });
});

describe("mos driver", () => {
  test("pending -> running; the name carries the owner; image and tags kept as metadata", async () => {
    const want = desired({ tags: ["web"] });
    const { id } = await d.create(want);
    const m = await observeUntil(d, { id, providerData: {} }, (o) => o?.providerStatus === "running");
    assert.equal(m?.ownerUID, want.ownerUID);
    assert.equal(m?.image, IMAGE);
    assert.deepEqual(m?.tags, ["web"]);
    assert.ok((m?.addresses.private.length ?? 0) > 0 && (m?.addresses.public.length ?? 0) > 0);
    assert.equal(sim.rejectedSignatures, 0);
    assert.equal(
      sim.requestCounts.get("DescribeInstanceStatus") ?? 0,
      0,
      "no status-only polls: they needed per-VM state in a driver shared by every object",
    );
  });

  test("a short balance is a terminal 406 with MOS's message; the balance reaches the metric", async () => {
    await d.create(desired());
    const account = balances.at(-1)?.account ?? "";
    assert.match(account, /^[0-9a-f]{16}$/, "the metric's account label is a digest");
    assert.ok(!account.includes(sim.credentials.accessKeyId ?? "-"), "never the access key id itself");
    assert.equal(balances.at(-1)?.balance, sim.balance);
    const before = sim.balance;
    sim.balance = 1;
    try {
      await assert.rejects(
        () => d.create(desired({ plan: "large_net" })),
        (e: unknown) => e instanceof QuotaOrBillingError && e.terminal && /No enough balance/.test(e.message),
      );
    } finally {
      sim.balance = before;
    }
  });

  test("a public key is imported once as a key pair and named on create", async () => {
    const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@host";
    await d.create(desired({ sshKeys: [key] }));
    await d.create(desired({ sshKeys: [key] }));
    assert.equal(sim.keyPairs().filter((k) => k.publicKey === key).length, 1);
    assert.equal(sim.requestCounts.get("ImportKeyPair"), 1);
  });

  test("HmacSHA1 signatures are accepted too", async () => {
    const sha1 = driver({ ...sim.credentials, signatureMethod: "HmacSHA1" });
    assert.deepEqual(await sha1.findByOwner!("nobody", desired()), []);
    assert.equal(sim.rejectedSignatures, 0);
  });

  test("a stale clock is an Unauthorized error that says to check the clock (read from an XML error)", async () => {
    const skewed = await startMosSimulator({ now: () => Date.now() + 3_600_000 });
    try {
      await assert.rejects(
        () => driver(skewed.credentials, skewed.url).findByOwner!("x", desired()),
        (e: unknown) =>
          e instanceof UnauthorizedError && /expired/.test(e.message) && /clock/.test(e.message),
      );
    } finally {
      await skewed.close();
    }
  });

  test("every retry is signed afresh (a 503 then success, no signature refused)", async () => {
    const rejected = sim.rejectedSignatures;
    sim.faults.failNext = 1;
    assert.deepEqual(await d.findByOwner!("nobody", desired()), []);
    assert.equal(sim.rejectedSignatures, rejected);
  });

  test("suspend is Failed with a billing reason (no start is sent); a lease about to end is due, renewed once by renew", async () => {
    const { id } = await d.create(desired());
    const ref: MachineRef = { id, providerData: {} };
    await observeUntil(d, ref, (o) => o?.providerStatus === "running");
    sim.mutate(id, { status: "suspend" });
    const renewals = sim.requestCounts.get("RenewInstance") ?? 0;
    const renewing = { ...ref, options: MosOptionsSchema.parse({ autoRenew: true, renewBefore: "24h" }) };
    sim.mutate(id, { expireAt: Date.now() - 60_000 });
    const m = await d.get(renewing);
    assert.equal(m?.phase, "Failed");
    assert.equal(m?.transitional, false);
    assert.match(m?.message ?? "", /billing/);
    assert.match(m?.renewalDue?.message ?? "", /renewBefore 24h: renewing it for 1M/);
    assert.equal((sim.requestCounts.get("RenewInstance") ?? 0) - renewals, 0, "a read bills nothing");
    await d.renew?.(renewing);
    assert.equal((sim.requestCounts.get("RenewInstance") ?? 0) - renewals, 1);
    const after = await d.get(renewing);
    assert.equal(after?.providerStatus, "ready", "renewed out of suspend");
    assert.equal(after?.renewalDue, undefined, "the lease moved: not due any more");
  });

  test("a status in no table is waited on and flagged (mapState); the assumed transitional ones are not", async () => {
    const { id } = await d.create(desired());
    const ref: MachineRef = { id, providerData: {} };
    await observeUntil(d, ref, (o) => o?.providerStatus === "running");
    sim.mutate(id, { status: "migrating" });
    const odd = await d.get(ref);
    assert.equal(odd?.phase, "Provisioning");
    assert.equal(odd?.transitional, true);
    assert.equal(odd?.unknownStatus, true);
    assert.match(odd?.message ?? "", /"migrating"/);
    sim.mutate(id, { status: "resizing" });
    const known = await d.get(ref);
    assert.equal(known?.transitional, true);
    assert.equal(known?.unknownStatus, undefined);
    sim.mutate(id, { status: "running" });
  });

  test("a forced stop is immediate; start only from ready", async () => {
    const { id } = await d.create(desired());
    const ref: MachineRef = { id, providerData: {} };
    await observeUntil(d, ref, (o) => o?.providerStatus === "running");
    await d.hardStop!(ref);
    assert.equal((await d.get(ref))?.providerStatus, "ready");
    await d.start!(ref);
    await observeUntil(d, ref, (o) => o?.providerStatus === "running");
  });
});
