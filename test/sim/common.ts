import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * Knobs shared by every provider simulator. Rates are probabilities per request (0..1);
 * `random` is injectable so a test can make faults deterministic.
 */
export interface FaultKnobs {
  /** Added before every answer, in ms. */
  latencyMs: number;
  /** Probability of a 5xx answer (the provider's own error format where it has one). */
  errorRate: number;
  /** Probability of never answering (the client times out). */
  timeoutRate: number;
  /** Probability of destroying the socket without an answer. */
  dropRate: number;
  /** Requests per second allowed per credential before 429 + Retry-After; 0 = unlimited. */
  rateLimitQps: number;
  /** Fail exactly the next N requests with a 5xx (deterministic, for tests). */
  failNext: number;
  /**
   * Fail the next request whose operation label (as in `requestCounts`) is this one, once;
   * "" = off. Only simulators that pass the label to `decide` honour it.
   */
  failOperation: string;
  /** Time an async transition (provisioning -> running, stopping -> stopped …) takes, in ms. */
  transitionMs: number;
  /**
   * Called once a create has made its VM and before the answer is sent: a kill test SIGKILLs
   * the operator here, which is the window where the provider has a VM the operator never
   * heard of. Every simulator calls it, with the new VM's id.
   */
  onCreated: (id: string) => void;
  /**
   * Sees every request as it arrives (before any fault): which process sent it (its
   * User-Agent names the operator's pod), when, and what — a leadership test counts the
   * mutations each replica sent.
   */
  onRequest: (r: SeenRequest) => void;
  random: () => number;
}

export interface SeenRequest {
  method: string;
  url: string;
  userAgent: string | undefined;
  /** Date.now() when it arrived. */
  at: number;
  /** The request body, filled in once it has been read (after onRequest). */
  body?: string;
}

export const DEFAULT_FAULTS: FaultKnobs = {
  latencyMs: 0,
  errorRate: 0,
  timeoutRate: 0,
  dropRate: 0,
  rateLimitQps: 0,
  failNext: 0,
  failOperation: "",
  transitionMs: 200,
  onCreated: () => undefined,
  onRequest: () => undefined,
  random: Math.random,
};

/**
 * Which API a simulator plays.
 * - `strict`: only what the provider's document shows (../shared/providers/<name>): the documented
 *   paths/functions, the documented fields in lists and single reads, the documented error
 *   bodies; every choice the document leaves open is written at the top of the simulator.
 *   This is the API a driver must hold against (degrade to a clear condition, never a loop, a
 *   duplicate or a stuck finalizer).
 * - `default`: the strict API plus what the real provider is known to do beyond the document,
 *   each addition written at the top of the simulator.
 */
export type SimProfile = "strict" | "default";

/** The profiles every contract, e2e and kill test runs against. */
export const SIM_PROFILES: readonly SimProfile[] = ["strict", "default"];

/** What every simulator exposes to tests, the demo, the bench and the chaos suite. */
export interface SimVm {
  id: string;
  /** The Kubernetes UID the VM carries (tag, name, hostname …), if any. */
  ownerUID: string | undefined;
  status: string;
  plan?: string | undefined;
  image?: string | undefined;
  region?: string | undefined;
}

export interface Simulator {
  readonly provider: string;
  readonly profile: SimProfile;
  /** Base URL to put in `spec.provider.endpoint`. */
  readonly url: string;
  /** Valid credentials: the data of a Secret that works against this simulator. */
  readonly credentials: Record<string, string>;
  readonly faults: FaultKnobs;
  /** VMs that exist (deleted ones excluded). */
  vms(): SimVm[];
  /** Requests answered so far, by operation label. */
  readonly requestCounts: Map<string, number>;
  close(): Promise<void>;
}

export type SimHandler = (req: IncomingMessage, body: string, res: ServerResponse) => Promise<void> | void;

export interface FaultDecision {
  kind: "none" | "error" | "timeout" | "drop" | "rateLimited";
  retryAfterSeconds?: number;
}

/**
 * Per-credential fixed-window rate limiter plus the random faults; each simulator renders
 * "error" and "rateLimited" in its provider's own format.
 */
export class FaultInjector {
  readonly knobs: FaultKnobs;
  readonly #windows = new Map<string, { start: number; count: number }>();

  constructor(knobs: Partial<FaultKnobs> = {}) {
    this.knobs = { ...DEFAULT_FAULTS, ...knobs };
  }

  decide(credential: string, operation?: string): FaultDecision {
    const k = this.knobs;
    if (k.failOperation !== "" && operation === k.failOperation) {
      k.failOperation = "";
      return { kind: "error" };
    }
    if (k.failNext > 0) {
      k.failNext--;
      return { kind: "error" };
    }
    if (k.rateLimitQps > 0) {
      const now = Date.now();
      const w = this.#windows.get(credential);
      if (!w || now - w.start >= 1000) this.#windows.set(credential, { start: now, count: 1 });
      else if (++w.count > k.rateLimitQps) return { kind: "rateLimited", retryAfterSeconds: 1 };
    }
    const r = k.random();
    if (r < k.dropRate) return { kind: "drop" };
    if (r < k.dropRate + k.timeoutRate) return { kind: "timeout" };
    if (r < k.dropRate + k.timeoutRate + k.errorRate) return { kind: "error" };
    return { kind: "none" };
  }
}

/** Starts an HTTP server on 127.0.0.1 with a random free port; closes idle and hung sockets on close. */
export async function listen(
  handler: SimHandler,
  knobs: FaultKnobs | (() => number),
  onArrival?: () => void,
): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const latency = typeof knobs === "function" ? knobs : () => knobs.latencyMs;
  const server = createServer((req, res) => {
    onArrival?.();
    const seen: SeenRequest = {
      method: req.method ?? "",
      url: req.url ?? "",
      userAgent: req.headers["user-agent"],
      at: Date.now(),
    };
    if (typeof knobs !== "function") knobs.onRequest(seen);
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      seen.body = Buffer.concat(chunks).toString("utf8");
      const run = async (): Promise<void> => {
        const ms = latency();
        if (ms > 0) await new Promise((r) => setTimeout(r, ms));
        await handler(req, seen.body ?? "", res);
      };
      run().catch((err: unknown) => {
        if (!res.headersSent) {
          res.writeHead(500, { "content-type": "text/plain" });
          res.end(`simulator bug: ${String(err)}`);
        }
      });
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** Apply a timeout/drop decision; returns true when the request was consumed by the fault. */
export function applyConnectionFault(decision: FaultDecision, res: ServerResponse): boolean {
  if (decision.kind === "drop") {
    res.socket?.destroy();
    return true;
  }
  if (decision.kind === "timeout") {
    // Hold the request until the client gives up; closeAllConnections() ends it on close.
    return true;
  }
  return false;
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function countRequest(counts: Map<string, number>, operation: string): void {
  counts.set(operation, (counts.get(operation) ?? 0) + 1);
}

/**
 * What the e2e tests, the demo, the bench and the chaos suite need to drive one provider:
 * `test/sim/<provider>/kit.ts` exports it as `kit` (test/sim/all.ts loads it by name).
 */
export interface SimulatorKit {
  /** Starts a simulator; `profile` defaults to "default" (see SimProfile); both must work. */
  start(faults?: Partial<FaultKnobs>, profile?: SimProfile): Promise<Simulator>;
  /** A spec every simulator accepts: region, plan, image and providerOptions. */
  spec: { region?: string; plan: string; image: string; providerOptions?: Record<string, unknown> };
  /** A larger plan, when the provider can resize. */
  resizeTo?: string;
  /** Whether the provider can stop a VM (multicloud cannot). */
  canStop: boolean;
  /**
   * Provider calls, reads included, that one e2e lifecycle may take on either profile
   * (test/e2e/lifecycle-budget.test.ts): measured, with headroom; a loop costs hundreds.
   */
  lifecycleCallBudget: number;
}
