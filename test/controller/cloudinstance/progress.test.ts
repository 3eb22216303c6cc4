/**
 * The no-progress guard's fingerprint of an observation is stored in status (lastAction) and
 * compared on later passes: it must be the digest it always was (a changed digest would
 * restart every object's count on upgrade), equal for the same VM, and differ when the VM does.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fingerprint } from "../../../src/controller/cloudinstance/progress.ts";
import type { Observation } from "../../../src/controller/cloudinstance/decision.ts";
import type { ObservedMachine } from "../../../src/providers/driver.ts";
import { ownerMark, vmName } from "../../../src/providers/m2s/owner.ts";

const vm: ObservedMachine & { plan: string; image: string; tags: string[] } = {
  id: "vm-1",
  providerStatus: "running",
  phase: "Running",
  transitional: false,
  plan: "small",
  image: "ubuntu-24.04",
  tags: ["b", "a"],
  addresses: { public: [], private: [] },
};
const found = (m: Partial<typeof vm> = {}): Observation => ({ kind: "found", machine: { ...vm, ...m } });

test("the fingerprint is the sha256 digest it always was", () => {
  const seen = [vm.id, vm.phase, vm.providerStatus, vm.transitional, vm.plan, vm.image, ["a", "b"]];
  const before = createHash("sha256").update(JSON.stringify(seen)).digest("base64url").slice(0, 16);
  assert.equal(fingerprint(found()), before);
  const absent = createHash("sha256")
    .update(JSON.stringify(["absent"]))
    .digest("base64url")
    .slice(0, 16);
  assert.equal(fingerprint({ kind: "absent" }), absent);
});

test("the same VM gives the same fingerprint; any change the guard watches gives another", () => {
  assert.equal(fingerprint(found()), fingerprint(found({ tags: ["a", "b"] })), "tag order does not count");
  const base = fingerprint(found());
  for (const change of [
    { id: "vm-2" },
    { providerStatus: "stopped" },
    { phase: "Stopped" as const },
    { transitional: true },
    { plan: "large" },
    { image: "debian-12" },
    { tags: ["a"] },
  ])
    assert.notEqual(fingerprint(found(change)), base, JSON.stringify(change));
  assert.notEqual(
    fingerprint({ kind: "unobserved", id: "vm-1" }),
    fingerprint({ kind: "unobserved", id: "vm-2" }),
  );
});

test("the m2s owner mark (in the names of existing VMs) is the UID's sha256 as before", () => {
  const uid = "5f1c9a52-3d7e-4e0b-9a51-0c2f2b6e7d11";
  const mark = createHash("sha256").update(uid).digest("hex").slice(0, 8);
  assert.equal(ownerMark(uid), mark);
  assert.equal(vmName({ namespace: "team-a", name: "web", ownerUID: uid }), `team-a-web-${mark}`);
});
