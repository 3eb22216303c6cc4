/**
 * The pure parts of hash sharding: which shard an object belongs to, the Lease names, and
 * how many shards a replica should hold given what it sees of the others. No I/O here: the
 * ShardSet (shard-set.ts) feeds these functions what it read from the API server.
 */
import { createHash } from "node:crypto";

/** The most shards an operator may be split into (one Lease each, renewed every retry period). */
export const MAX_SHARDS = 256;

/**
 * The shard of an object: FNV-1a (32 bit) of its UID, mod `shards`. The UID never changes for
 * the object's lifetime, unlike its name or labels, so the shard does not either; FNV-1a
 * spreads UUIDs evenly and is the same in every replica and every version of Node.
 */
export function shardOf(uid: string, shards: number): number {
  if (shards <= 1) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < uid.length; i++) {
    h ^= uid.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % shards;
}

/** The Lease of shard `i`: `<leader-election-id>-shard-<i>`. */
export function shardLeaseName(id: string, i: number): string {
  return `${id}-shard-${String(i)}`;
}

/** The shard a Lease name stands for, or undefined when it is not one of ours. */
export function shardOfLeaseName(id: string, name: string, shards: number): number | undefined {
  const prefix = `${id}-shard-`;
  if (!name.startsWith(prefix)) return undefined;
  const rest = name.slice(prefix.length);
  if (!/^(0|[1-9]\d*)$/.test(rest)) return undefined;
  const i = Number(rest);
  return i < shards ? i : undefined;
}

const MEMBER_INFIX = "-member-";

/**
 * The membership Lease of a replica: `<leader-election-id>-member-<identity>`, made a valid
 * object name (lower case, [a-z0-9.-], at most 253 characters; a digest keeps long or unusual
 * identities distinct). The Lease's holderIdentity carries the identity itself.
 */
export function memberLeaseName(id: string, identity: string): string {
  const clean = identity
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, "-")
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, "");
  const base = `${id}${MEMBER_INFIX}`;
  if (clean === identity && base.length + clean.length <= 253) return base + clean;
  const digest = createHash("sha256").update(identity).digest("hex").slice(0, 10);
  return `${base}${clean.slice(0, 253 - base.length - 11)}-${digest}`.replace(/-+$/, "");
}

export function isMemberLeaseName(id: string, name: string): boolean {
  return name.startsWith(`${id}${MEMBER_INFIX}`);
}

/** With `members` replicas, each should hold between `lo` and `hi` of `shards` shards. */
export function fairShare(shards: number, members: number): { lo: number; hi: number } {
  const n = Math.max(1, members);
  return { lo: Math.floor(shards / n), hi: Math.ceil(shards / n) };
}

/** What a replica sees: the live replicas and the live holder of each shard. */
export interface ShardView {
  shards: number;
  /** This replica's identity. */
  self: string;
  /** Identities of the replicas seen alive (membership Leases), this one included or not. */
  members: readonly string[];
  /** Per shard: the identity holding an unexpired Lease, "" when the shard is free. */
  holders: readonly string[];
}

export interface ShardPlan {
  /** Members counted (live members, live holders and this replica). */
  members: number;
  lo: number;
  hi: number;
  /** How many shards this replica holds. */
  mine: number;
  /** How many free shards to try to acquire now. */
  acquire: number;
  /** How many of its shards to hand back now. */
  release: number;
}

/**
 * The fair-share rule, decided by each replica for itself alone (no coordinator):
 * - Every replica aims at `lo = floor(S/n)` shards and may hold up to `hi = ceil(S/n)`.
 * - Below `lo`, acquire free shards up to `lo`. Between `lo` and `hi`, take one more free
 *   shard only when no other replica is below `lo` (leave the free ones to the needy).
 * - Above `hi` (replicas joined), hand back the surplus. At `hi` > `lo` while another replica
 *   is below `lo` and no shard is free, hand back one — but only the most loaded replica
 *   (ties broken by identity), so that two replicas do not both give one up for one newcomer.
 * Holders not seen as members (their membership Lease expired first) still count as members.
 */
export function planShards(view: ShardView): ShardPlan {
  const members = new Set<string>(view.members);
  members.add(view.self);
  for (const h of view.holders) if (h !== "") members.add(h);
  const counts = new Map<string, number>();
  for (const m of members) counts.set(m, 0);
  for (const h of view.holders) if (h !== "") counts.set(h, (counts.get(h) ?? 0) + 1);
  const { lo, hi } = fairShare(view.shards, members.size);
  const mine = counts.get(view.self) ?? 0;
  const free = view.holders.filter((h) => h === "").length;
  const needy = [...counts].filter(([m, c]) => m !== view.self && c < lo).length;
  const plan = { members: members.size, lo, hi, mine, acquire: 0, release: 0 };
  if (mine > hi) return { ...plan, release: mine - hi };
  if (mine < lo) return { ...plan, acquire: Math.min(lo - mine, free) };
  if (mine < hi && needy === 0 && free > 0) return { ...plan, acquire: 1 };
  if (mine > lo && needy > 0 && free === 0) {
    // Only the most loaded replica (first by identity among equals) gives one back.
    const top = [...counts].sort(([a, ca], [b, cb]) => cb - ca || (a < b ? -1 : a > b ? 1 : 0))[0];
    if (top?.[0] === view.self) return { ...plan, release: 1 };
  }
  return plan;
}
