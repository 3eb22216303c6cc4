import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  afterLookupByIdFailed,
  planObservation,
  type ObservationFacts,
} from "../../../src/controller/cloudinstance/observe-plan.ts";

const facts = (over: Partial<ObservationFacts> = {}): ObservationFacts => ({
  deleting: false,
  externalId: undefined,
  statusId: undefined,
  statusPhase: undefined,
  recentId: undefined,
  firstContact: false,
  canFindByOwner: true,
  createPending: undefined,
  ...over,
});

describe("planObservation: what a pass reads before deciding", () => {
  const rows: [string, Partial<ObservationFacts>, unknown][] = [
    [
      "a brand-new object reads nothing: no VM can exist before its finalizer",
      { firstContact: true },
      { read: "nothing", observation: { kind: "absent" } },
    ],
    [
      "a known id is read, with an owner lookup if it is gone",
      { statusId: "vm-1" },
      { read: "byId", id: "vm-1", fromRecentCreate: false, ownerLookupIfGone: true },
    ],
    [
      "a VM this process just created is read by its id though the cache lags",
      { recentId: "vm-2" },
      { read: "byId", id: "vm-2", fromRecentCreate: true, ownerLookupIfGone: true },
    ],
    [
      "the cache caught up: the status id is read",
      { recentId: "vm-2", statusId: "vm-2" },
      { read: "byId", id: "vm-2", fromRecentCreate: false, ownerLookupIfGone: true },
    ],
    [
      "an adopted VM is read by its external id and never looked for by owner",
      { externalId: "ext", statusId: "vm-1" },
      { read: "byId", id: "ext", fromRecentCreate: false, ownerLookupIfGone: false },
    ],
    [
      "no id on a provider that can: look up by owner (a crash before the id was written)",
      {},
      { read: "byOwner" },
    ],
    [
      "no id, no lookup, a create was sent: unverifiable",
      { canFindByOwner: false, createPending: "2026-01-01T00:00:00Z" },
      { read: "nothing", observation: { kind: "unverifiable", since: "2026-01-01T00:00:00Z" } },
    ],
    [
      "no id, no lookup, no create sent: absent",
      { canFindByOwner: false },
      { read: "nothing", observation: { kind: "absent" } },
    ],
    [
      "deletion's first pass sends delete without a read",
      { deleting: true, statusId: "vm-1", statusPhase: "Running" },
      { read: "nothing", observation: { kind: "unobserved", id: "vm-1" } },
    ],
    [
      "deletion after the first pass reads, and takes the provider's word if gone",
      { deleting: true, statusId: "vm-1", statusPhase: "Deleting" },
      { read: "byId", id: "vm-1", fromRecentCreate: false, ownerLookupIfGone: false },
    ],
    [
      "an adopted VM is read before it is deleted (it may be another object's)",
      { deleting: true, externalId: "ext", statusPhase: "Running" },
      { read: "byId", id: "ext", fromRecentCreate: false, ownerLookupIfGone: false },
    ],
  ];
  for (const [name, over, expected] of rows)
    test(name, () => {
      assert.deepEqual(planObservation(facts(over)), expected);
    });

  test("after a read by id found nothing and no owner lookup is due, the same fallbacks apply", () => {
    assert.deepEqual(afterLookupByIdFailed(facts({ canFindByOwner: false })), {
      read: "nothing",
      observation: { kind: "absent" },
    });
  });
});
