import type { IncomingMessage, ServerResponse } from "node:http";
import {
  applyConnectionFault,
  countRequest,
  FaultInjector,
  listen,
  type FaultKnobs,
  type SimProfile,
  type Simulator,
  type SimVm,
} from "../common.ts";
import { signature, stringToSign, type SignatureMethod } from "../../../src/providers/mos/signer.ts";
import { DOCUMENTED_STATUSES, PROFILES } from "./profile.ts";
import { accountAction } from "./account.ts";
import { Instances, type Vm } from "./instances.ts";
import { sendError, type Format, type ListFault } from "./views.ts";

export { MOS_TEMPLATES, MOS_TYPES, type ListFault } from "./views.ts";

/**
 * MOS (Meituan Compute Service) simulator, after ../shared/providers/mos.txt and the MOS section
 * of providers/README.md. The profile differences live in profile.ts.
 *
 * Both profiles (documented, or a choice where the document is silent):
 * - every documented Action and no other; an unknown Action is HTTP 400 in the documented
 *   ErrorResponse (choice: the document names no answer for it);
 * - GET (query) and POST (form) both work (documented); AWS Signature Version 2 is checked
 *   strictly over method, host as the client addressed it, path and sorted parameters; the
 *   Timestamp must be within 15 minutes (choice); an unknown AWSAccessKeyId is 401, a bad
 *   signature, method or stale Timestamp 403 (choice: AWS's codes, the document follows SigV2);
 *   a bad signature's message echoes the Signature sent and the string to sign, AWSAccessKeyId
 *   included (choice: message texts are not documented; some AWS services echo the same);
 * - XML unless Format=json (documented); lists are `…Set` with Total, Limit, Offset and the
 *   documented filters; list items and CreateInstance's Instance carry exactly the documented
 *   fields (instanceId, instanceName, instanceType, instanceTypeId, status, cpu, memory, volume,
 *   ipAddresses): no image, no metadata — GetInstanceMetadata has the metadata;
 * - DescribeInstances with InstanceId.n / InstanceName.n lists those that exist (an unknown id is
 *   left out, choice); the `describeRefusesUnknownIds` option answers an unknown id with the
 *   not-found error instead, for clients that must not rely on either;
 * - ids are UUIDs like the document's; where the document says "ID或名称", InstanceId may be a name;
 * - CreateInstance, RenewInstance and ChangeInstanceType charge price x Duration (default 1M)
 *   from the balance, 406 "No enough balance" when short (the document's own error example);
 * - documented statuses running, ready (stopped), suspend; StartInstance only from ready,
 *   StopInstance only from running (documented); a soft stop is async, Force=true immediate;
 *   every operation takes `transitionMs` (choice); repeating the operation under way is
 *   accepted and changes nothing; another operation while one runs is refused (conflict);
 * - a new instance boots by itself; `suspend` only through mutate() (a billing block);
 *   RenewInstance on a suspended instance makes it ready (choice: the only documented way out);
 * - TerminateInstance: the instance is gone after `transitionMs`; then every action naming it is
 *   refused with the not-found status and DescribeInstances leaves it out;
 * - PutInstanceMetadata adds or replaces the named keys ("设置"); GetInstanceMetadata returns the
 *   system keys plus those; both work in any state while the instance exists;
 * - `onCreated(id)` runs once the VM exists and before CreateInstance answers; if it throws, the
 *   connection drops without an answer (a driver-level stand-in for a killed operator);
 * - InstanceName is kept as sent, any length (the document gives no limit); `vms()` reads the
 *   owner UID from the operator's mark `cio-<uid>` or `cio-<uid>--<cluster>`;
 * - `listFault` (off by default, a test knob, not the document's behaviour): DescribeInstances
 *   and DescribeInstanceTypes never end (`endless`: every page full, Total always further) or
 *   also ignore Offset (`repeating`), padded with other people's VMs / types.
 *
 * strict — only what the document shows:
 * - only running / ready / suspend are ever shown: an operation under way shows the status it
 *   started from, a new instance `ready` until it runs (the document names no other status);
 * - every refusal but authentication and balance is HTTP 400 — an unknown instance, a wrong
 *   state, a busy instance (the document says only "HTTP 4xx", code = status);
 * - authentication errors in the format asked for (the document formats answers by Format);
 * - ipAddresses comma-separated; a list without Limit has at most 20 rows; metadata starts as the
 *   document's example keys.
 *
 * default adds (each one the driver copes with but does not rely on):
 * - transitional statuses pending, starting, stopping, rebooting, rebuilding, resizing,
 *   terminating: the document's "等" says more statuses exist; these are the EC2/OpenStack words;
 * - 404 for an unknown instance, 409 for a wrong state or a busy instance: the usual HTTP mapping
 *   an EC2-compatible front end uses, so "gone" and "busy" differ from a bad request;
 * - authentication errors in XML whatever Format says: the signature is checked before any
 *   parameter (Format included) is trusted, as SigV2 front ends do;
 * - ipAddresses space-separated; a list without Limit has up to 100 rows.
 */
export interface MosSimulator extends Simulator {
  balance: number;
  mutate(
    id: string,
    change: Partial<Pick<Vm, "status" | "instanceType" | "expireAt" | "instanceName">>,
  ): void;
  keyPairs(): { keyName: string; publicKey: string }[];
  /** Metadata the instance holds (what PutInstanceMetadata wrote, plus the system keys). */
  metadata(id: string): Record<string, string> | undefined;
  /** Refuse the next `times` requests for `action` with a 503 (a provider-side outage of one call). */
  breakAction(action: string, times: number): void;
  /** Requests refused for a bad signature or a stale timestamp. */
  readonly rejectedSignatures: number;
  /** Lists that never end (see the header); "none" unless a test sets it. */
  listFault: ListFault;
}

export interface MosSimulatorOptions {
  faults?: Partial<FaultKnobs>;
  profile?: SimProfile;
  accessKeyId?: string;
  secretAccessKey?: string;
  balance?: number;
  /** Clock of the service, to test stale timestamps. */
  now?: () => number;
  /** DescribeInstances answers an unknown InstanceId.n with the not-found error (see the header). */
  describeRefusesUnknownIds?: boolean;
}

export async function startMosSimulator(opts: MosSimulatorOptions = {}): Promise<MosSimulator> {
  const accessKeyId = opts.accessKeyId ?? "4ba303cc17454cc7904e044db2a3c912";
  const secret = opts.secretAccessKey ?? "mos-sim-secret/K7MDENG+bPxRfiCY";
  const now = opts.now ?? Date.now;
  const profile = PROFILES[opts.profile ?? "default"];
  const injector = new FaultInjector(opts.faults);
  const vms = new Map<string, Vm>();
  const keys = new Map<string, string>();
  const counts = new Map<string, number>();
  const broken = new Map<string, number>();
  const state = { balance: opts.balance ?? 100_000, rejected: 0, listFault: "none" as ListFault };
  const listFault = (): ListFault => state.listFault;
  const instances = new Instances({
    profile,
    vms,
    keys,
    knobs: injector.knobs,
    now,
    describeRefusesUnknownIds: opts.describeRefusesUnknownIds ?? false,
    listFault,
    charge: (price, months) => {
      const cost = Math.round(price * months * 100) / 100;
      if (state.balance < cost) return false;
      state.balance = Math.round((state.balance - cost) * 100) / 100;
      return true;
    },
  });

  /** Authentication, before anything else; answers the refusal and returns false when it fails. */
  const authenticate = (method: string, url: URL, p: URLSearchParams, asked: Format, res: ServerResponse) => {
    const format = profile.authErrorsInXml ? "xml" : asked;
    const refuse = (status: number, message: string): false => {
      state.rejected++;
      sendError(res, format, status, message);
      return false;
    };
    if (p.get("AWSAccessKeyId") !== accessKeyId) return refuse(401, "Invalid AWSAccessKeyId");
    const sigMethod = p.get("SignatureMethod") as SignatureMethod | null;
    if (p.get("SignatureVersion") !== "2" || (sigMethod !== "HmacSHA256" && sigMethod !== "HmacSHA1"))
      return refuse(403, "Unsupported SignatureVersion or SignatureMethod");
    const text = stringToSign(method, url, [...p.entries()]);
    const sent = p.get("Signature") ?? "";
    if (sent !== signature(secret, sigMethod, text))
      return refuse(403, `Signature does not match: Signature=${sent}, string to sign: ${text}`);
    const stamp = Date.parse(p.get("Timestamp") ?? "");
    if (Number.isNaN(stamp) || Math.abs(now() - stamp) > 15 * 60_000)
      return refuse(403, "Request has expired: Timestamp is more than 15 minutes off");
    return true;
  };

  async function handle(req: IncomingMessage, body: string, res: ServerResponse): Promise<void> {
    await Promise.resolve();
    const method = req.method ?? "GET";
    const url = new URL(req.url ?? "/", `http://${req.headers.host ?? "127.0.0.1"}`);
    const p = method === "POST" ? new URLSearchParams(body) : url.searchParams;
    const action = p.get("Action") ?? "";
    countRequest(counts, action);
    const format: Format = p.get("Format") === "json" ? "json" : "xml";
    const decision = injector.decide(p.get("AWSAccessKeyId") ?? "", action);
    if (applyConnectionFault(decision, res)) return;
    if (decision.kind === "rateLimited") {
      res.setHeader("Retry-After", String(decision.retryAfterSeconds ?? 1));
      sendError(res, format, 429, "Request rate exceeded");
      return;
    }
    const outage = broken.get(action) ?? 0;
    if (decision.kind === "error" || outage > 0) {
      if (outage > 0) broken.set(action, outage - 1);
      sendError(res, format, 503, "Service temporarily unavailable");
      return;
    }
    if (!authenticate(method, url, p, format, res)) return;
    if (accountAction(action, p, format, res, { profile, keys, state, now, listFault })) return;
    if (instances.handle(action, p, format, res)) return;
    sendError(res, format, 400, `Unknown Action ${action}`);
  }

  const server = await listen(handle, injector.knobs);
  return {
    provider: "mos",
    profile: profile.name,
    url: `${server.url}/`,
    credentials: { accessKeyId, secretAccessKey: secret },
    faults: injector.knobs,
    requestCounts: counts,
    get balance() {
      return state.balance;
    },
    set balance(v: number) {
      state.balance = v;
    },
    get rejectedSignatures() {
      return state.rejected;
    },
    get listFault() {
      return state.listFault;
    },
    set listFault(v: ListFault) {
      state.listFault = v;
    },
    vms(): SimVm[] {
      return [...vms.values()].map((v) => ({
        id: v.instanceId,
        ownerUID: v.instanceName.startsWith("cio-") ? v.instanceName.slice(4).split("--")[0] : undefined,
        status: v.status,
        plan: v.instanceType,
        image: v.imageId,
      }));
    },
    mutate(id, change) {
      const v = vms.get(id);
      if (!v) return;
      Object.assign(v, change);
      if (change.status !== undefined && DOCUMENTED_STATUSES.has(change.status)) v.steady = change.status;
    },
    metadata: (id) => {
      const v = vms.get(id);
      return v === undefined ? undefined : { ...profile.systemMetadata, ...v.metadata };
    },
    breakAction(action, times) {
      broken.set(action, times);
    },
    keyPairs: () => [...keys.entries()].map(([keyName, publicKey]) => ({ keyName, publicKey })),
    async close() {
      for (const v of vms.values()) clearTimeout(v.timer);
      await server.close();
    },
  };
}
