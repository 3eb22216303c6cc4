/**
 * The driver contract: one suite every provider driver runs against its own simulator, over
 * HTTP, through the shared HTTP layer. It checks what the reconciler relies on — phases,
 * ownership lookup, idempotent delete, typed errors, retries of reads, no duplicate on a
 * failed create, no secret in any message or log line — and skips what a driver cannot do
 * (the action methods it does not have: capabilitiesOf).
 *
 * A provider's `contract.test.ts` calls `runDriverContract(subject)` once.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { Metrics } from "../../src/observability/metrics.ts";
import { HttpClientFactory } from "../../src/providers/http/client.ts";
import { DriverPool } from "../../src/providers/pool.ts";
import {
  capabilitiesOf,
  type Capability,
  type DesiredMachine,
  type Driver,
  type MachineRef,
  type ObservedMachine,
} from "../../src/providers/driver.ts";
import type { ProviderDefinition } from "../../src/providers/definition.ts";
import {
  CredentialsError,
  InvalidRequestError,
  ProviderError,
  UnauthorizedError,
} from "../../src/providers/errors.ts";
import type { ProviderName } from "../../src/api/index.ts";
import { SIM_PROFILES, type SimProfile, type Simulator } from "../sim/common.ts";
import { captureLogs } from "./harness.ts";

export interface ContractSubject<O> {
  provider: string;
  definition: ProviderDefinition<string, O>;
  /** A fresh simulator playing `profile`, with fast transitions (e.g. transitionMs 20). */
  startSimulator(profile: SimProfile): Promise<Simulator>;
  /** A valid desire (region/plan/image/options the simulator accepts). */
  desired(overrides?: Partial<DesiredMachine<O>>): DesiredMachine<O>;
  /** A valid larger plan (omit when the driver cannot resize). */
  resizeTo?: string;
  /** A valid other image (omit when the driver cannot rebuild). */
  rebuildTo?: string;
  /** An id the simulator has never issued, in the provider's id format (default "999999999"). */
  unknownId?: string;
  /** Credentials the simulator must refuse; omit when the provider API has no authentication. */
  badCredentials?: (good: Readonly<Record<string, string>>) => Record<string, string>;
  /**
   * false when the provider publishes no image catalogue: an unknown image is then refused by
   * the provider at create, which must be an InvalidRequestError and create nothing.
   */
  imageCatalogue?: boolean;
  /** Credential keys whose values are secret (default: the definition's required keys). */
  secretCredentialKeys?: readonly string[];
}

const WAIT_MS = 15_000;

/** Runs the contract once per simulator profile: the strict (document-only) API and the default one. */
export function runDriverContract<O>(subject: ContractSubject<O>): void {
  for (const profile of SIM_PROFILES) runDriverContractOn(subject, profile);
}

function runDriverContractOn<O>(subject: ContractSubject<O>, profile: SimProfile): void {
  let sim: Simulator;
  let http: HttpClientFactory;
  let driver: Driver<O>;
  const { logger, lines: logLines } = captureLogs();
  const errorMessages: string[] = [];
  const created: MachineRef[] = [];
  let uidCounter = 0;
  const uid = (label: string): string => `contract-${label}-${String(++uidCounter)}-${String(process.pid)}`;

  function make(credentials: Readonly<Record<string, string>> = sim.credentials): Driver<O> {
    return subject.definition.create({
      credentials,
      secretName: `ns/${subject.provider}-creds`,
      endpoint: sim.url,
      http,
      logger,
    });
  }

  /** Records every error message so the final check can scan them for secrets. */
  async function capture<T>(p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (err) {
      if (err instanceof Error) errorMessages.push(err.message, String(err.stack));
      throw err;
    }
  }

  async function waitFor(
    ref: MachineRef,
    what: string,
    pred: (m: ObservedMachine | undefined) => boolean,
  ): Promise<ObservedMachine | undefined> {
    const deadline = Date.now() + WAIT_MS;
    let last: ObservedMachine | undefined;
    while (Date.now() < deadline) {
      last = await capture(driver.get(ref));
      if (pred(last)) return last;
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.fail(
      `${subject.provider}: VM ${ref.id} never became ${what}; last seen ${JSON.stringify(last ?? null)}`,
    );
  }
  const settled = (phase: string) => (m: ObservedMachine | undefined) =>
    m !== undefined && m.phase === phase && !m.transitional;

  async function createRunning(label: string, over: Partial<DesiredMachine<O>> = {}): Promise<MachineRef> {
    const desired = subject.desired({ ownerUID: uid(label), ...over });
    const result = await capture(driver.create(desired));
    const ref: MachineRef = {
      id: result.id,
      providerData: { ...desired.providerData, ...result.providerData },
    };
    created.push(ref);
    await waitFor(ref, "Running", settled("Running"));
    return ref;
  }

  const can = (c: Capability): boolean => capabilitiesOf(driver).has(c);

  describe(`driver contract: ${subject.provider} (${profile} profile)`, () => {
    before(async () => {
      sim = await subject.startSimulator(profile);
      http = new HttpClientFactory({
        logger,
        metrics: new Metrics(),
        retry: { baseDelayMs: 5, maxDelayMs: 20 },
      });
      driver = make();
    });
    after(async () => {
      await http.close();
      await sim.close();
    });

    test("the definition describes itself: provider, endpoint, credential keys, options schema", () => {
      assert.equal(subject.definition.provider, subject.provider);
      assert.equal(driver.provider, subject.provider);
      assert.match(subject.definition.defaultEndpoint, /^https?:\/\//);
      const parsed = subject.definition.optionsSchema.safeParse(subject.desired().options);
      assert.ok(parsed.success, "the subject's default options satisfy the schema");
      assert.equal(subject.definition.optionsSchema.safeParse({ noSuchOption: true }).success, false);
    });

    test("a Secret without a required key gives a CredentialsError naming the Secret and the key", (t) => {
      const [first] = subject.definition.credentialKeys.required;
      if (first === undefined) return t.skip("the provider needs no credentials");
      // A fixture's provider is not in this build's ProviderName: the pool keys by name only.
      const provider = subject.provider as ProviderName;
      const pool = new DriverPool({
        registry: { [provider]: subject.definition as ProviderDefinition },
        http,
        logger,
      });
      const credentials: Record<string, string> = { ...sim.credentials };
      delete credentials[first];
      assert.throws(
        () => pool.get({ provider, endpoint: sim.url, secretName: "ns/creds", credentials }),
        (e: unknown) =>
          e instanceof CredentialsError && e.message.includes(`Secret "ns/creds" has no key "${first}"`),
      );
    });

    test("create -> Running; the VM carries its owner; findByOwner finds exactly it", async () => {
      const owner = uid("create");
      const desired = subject.desired({ ownerUID: owner });
      await capture(driver.validate(desired));
      const result = await capture(driver.create(desired));
      assert.ok(result.id.length > 0);
      const ref: MachineRef = {
        id: result.id,
        providerData: { ...desired.providerData, ...result.providerData },
      };
      created.push(ref);
      const m = await waitFor(ref, "Running", settled("Running"));
      assert.equal(m?.id, result.id);
      assert.ok(m.providerStatus.length > 0, "the provider's own status is kept verbatim");
      if (m.ownerUID !== undefined) assert.equal(m.ownerUID, owner);
      assert.equal(
        sim.vms().filter((v) => v.ownerUID === owner).length,
        1,
        "exactly one VM carries the owner UID at the simulator",
      );
      if (can("findByOwner")) {
        const found = await capture(driver.findByOwner!(owner, desired));
        assert.deepEqual(
          found.map((f) => f.id),
          [result.id],
        );
        assert.deepEqual(await capture(driver.findByOwner!(uid("nobody"), desired)), []);
      }
    });

    test("stop (soft and hard) and start settle in Stopped and Running", async (t) => {
      if (!can("stop")) return t.skip("no stop method");
      const ref = await createRunning("power");
      await capture(driver.stop!(ref));
      await waitFor(ref, "Stopped", settled("Stopped"));
      assert.ok(can("start"), "a driver that stops can start");
      await capture(driver.start!(ref));
      await waitFor(ref, "Running again", settled("Running"));
      if (can("hardStop")) {
        await capture(driver.hardStop!(ref));
        await waitFor(ref, "Stopped after a hard stop", settled("Stopped"));
        await capture(driver.start!(ref));
        await waitFor(ref, "Running after the hard stop", settled("Running"));
      }
    });

    test("reboot returns to Running", async (t) => {
      if (!can("reboot")) return t.skip("no reboot capability");
      const ref = await createRunning("reboot");
      await capture(driver.reboot!(ref));
      await waitFor(ref, "Running after a reboot", settled("Running"));
    });

    test("resize to a larger plan (while stopped) is observed", async (t) => {
      if (!can("resize") || subject.resizeTo === undefined) return t.skip("no resize capability");
      const to = subject.resizeTo;
      const ref = await createRunning("resize");
      if (can("stop")) {
        await capture(driver.stop!(ref));
        await waitFor(ref, "Stopped", settled("Stopped"));
      }
      await capture(driver.validate(subject.desired({ plan: to })));
      await capture(driver.resize!(ref, to));
      await waitFor(ref, `resized to ${to}`, (m) => m !== undefined && m.plan === to && !m.transitional);
    });

    test("rebuild with another image is observed", async (t) => {
      if (!can("rebuild") || subject.rebuildTo === undefined) return t.skip("no rebuild capability");
      const to = subject.rebuildTo;
      const ref = await createRunning("rebuild");
      await capture(driver.rebuild!(ref, to, subject.desired({ image: to })));
      await waitFor(ref, `rebuilt with ${to}`, (m) => m !== undefined && m.image === to && !m.transitional);
    });

    test("setTags replaces the user tags and keeps the owner mark", async (t) => {
      if (!can("tags")) return t.skip("no tags capability");
      const owner = uid("tags");
      const ref = await createRunning("tags", { ownerUID: owner, tags: ["one"] });
      await capture(driver.setTags!(ref, ["alpha", "beta"], owner));
      const m = await waitFor(ref, "tagged", (o) => o?.tags !== undefined && o.tags.length === 2);
      assert.deepEqual([...(m?.tags ?? [])].sort(), ["alpha", "beta"]);
      if (can("findByOwner")) {
        const found = await capture(driver.findByOwner!(owner, subject.desired({ ownerUID: owner })));
        assert.deepEqual(
          found.map((f) => f.id),
          [ref.id],
          "the owner mark survives a tag update",
        );
      }
    });

    test("get of an id the provider never issued is undefined; delete of it resolves", async () => {
      const ref = { id: subject.unknownId ?? "999999999", providerData: {} };
      assert.equal(await capture(driver.get(ref)), undefined);
      await capture(driver.delete(ref));
    });

    test("an unknown plan or image is refused with a terminal InvalidRequestError", async () => {
      await assert.rejects(
        () => capture(driver.validate(subject.desired({ plan: "no-such-plan-xyz" }))),
        (e: unknown) => e instanceof InvalidRequestError && e.terminal && e.message.length > 0,
      );
      const badImage = subject.desired({ ownerUID: uid("badimage"), image: "no-such-image-xyz" });
      const refusal = (e: unknown) => e instanceof InvalidRequestError && e.terminal;
      if (subject.imageCatalogue === false) {
        await assert.rejects(() => capture(driver.create(badImage)), refusal);
        assert.equal(sim.vms().filter((v) => v.ownerUID === badImage.ownerUID).length, 0);
      } else {
        await assert.rejects(() => capture(driver.validate(badImage)), refusal);
      }
    });

    test("wrong credentials are an UnauthorizedError", async (t) => {
      if (subject.badCredentials === undefined) return t.skip("the provider API has no authentication");
      const bad = make(subject.badCredentials(sim.credentials));
      await assert.rejects(
        () => capture(bad.get({ id: created[0]?.id ?? "1", providerData: {} })),
        UnauthorizedError,
      );
    });

    test("a single 5xx on a read is retried transparently", async () => {
      const ref = created[0];
      assert.ok(ref, "an earlier test created a VM");
      sim.faults.failNext = 1;
      const m = await capture(driver.get(ref));
      assert.equal(m?.id, ref.id);
      assert.equal(sim.faults.failNext, 0, "the fault was consumed");
    });

    test("a 5xx on create never leaves two VMs for one owner", async () => {
      const owner = uid("create5xx");
      sim.faults.failNext = 1;
      let id: string | undefined;
      try {
        const r = await capture(driver.create(subject.desired({ ownerUID: owner })));
        id = r.id;
        created.push({ id, providerData: r.providerData ?? {} });
      } catch (err) {
        assert.ok(err instanceof ProviderError, "a typed provider error");
        assert.equal(err.terminal, false, "a 5xx is retryable");
      }
      sim.faults.failNext = 0;
      const vms = sim.vms().filter((v) => v.ownerUID === owner);
      assert.ok(vms.length <= 1, `at most one VM for the owner, found ${String(vms.length)}`);
      if (id !== undefined)
        assert.deepEqual(
          vms.map((v) => v.id),
          [id],
        );
      if (id === undefined && vms[0] !== undefined && can("findByOwner")) {
        // Accepted but the answer was lost: the reconciler finds it again by owner.
        const found = await capture(driver.findByOwner!(owner, subject.desired({ ownerUID: owner })));
        assert.deepEqual(
          found.map((f) => f.id),
          [vms[0].id],
        );
        created.push({ id: vms[0].id, providerData: {} });
      }
    });

    test("delete -> gone; deleting again resolves; nothing is left at the simulator", async () => {
      for (const ref of created) await capture(driver.delete(ref));
      for (const ref of created) await waitFor(ref, "gone", (m) => m === undefined);
      for (const ref of created) await capture(driver.delete(ref));
      const deadline = Date.now() + WAIT_MS;
      while (sim.vms().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(sim.vms(), [], "no VM leaked");
    });

    test("no secret appears in any error message or debug log line", () => {
      assert.ok(logLines.length > 0, "debug logging captured requests");
      const keys = subject.secretCredentialKeys ?? subject.definition.credentialKeys.required;
      const secrets = keys.map((k) => sim.credentials[k]).filter((v): v is string => v !== undefined);
      const haystack = logLines.join("\n") + "\n" + errorMessages.join("\n");
      for (const secret of secrets) assert.ok(!haystack.includes(secret), "a credential value leaked");
    });
  });
}
