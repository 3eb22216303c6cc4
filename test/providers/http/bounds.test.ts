// The provider client's bounds against a hostile loopback provider: how much of an answer is
// read, how long a request may take in all, and that a cancelled request never waits in the
// per-credential queue. The memory cost of a huge answer is measured by bench/hostile.ts.
import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { createLogger } from "../../../src/observability/logger.ts";
import { Metrics } from "../../../src/observability/metrics.ts";
import {
  DEFAULT_MAX_RESPONSE_BYTES,
  HttpClientFactory,
  type HttpClient,
  type HttpClientOptions,
} from "../../../src/providers/http/client.ts";
import { ProviderLimitError, TransientError } from "../../../src/providers/errors.ts";
import { ConfigError, parseConfig, type OperatorConfig } from "../../../src/config.ts";
import type { DriverContext } from "../../../src/providers/driver.ts";
import { definition as m2s } from "../../../src/providers/m2s/index.ts";
import { DriverPool } from "../../../src/providers/pool.ts";
import { hugeAnswer, startHostile, trickle, type HostileBehaviour } from "../../sim/hostile.ts";

let hostile: Awaited<ReturnType<typeof startHostile>>;
let behaviour: HostileBehaviour = (_req, _body, res) => {
  res.end("{}");
};
let factories: HttpClientFactory[] = [];
let metrics: Metrics;

before(async () => {
  hostile = await startHostile({
    behaviour: (req, body, res) => {
      behaviour(req, body, res);
    },
  });
});
after(async () => {
  await hostile.close();
});
afterEach(async () => {
  await Promise.all(factories.map((f) => f.close()));
  factories = [];
});

function client(
  factoryOpts: Partial<ConstructorParameters<typeof HttpClientFactory>[0]> = {},
  clientOpts: Partial<HttpClientOptions> = {},
): HttpClient {
  hostile.requests.length = 0;
  metrics = new Metrics();
  const factory = new HttpClientFactory({
    logger: createLogger({ level: "silent" }),
    metrics,
    retry: { retries: 3, baseDelayMs: 5, maxDelayMs: 50 },
    random: () => 0.5,
    ...factoryOpts,
  });
  factories.push(factory);
  return factory.client({
    provider: "test",
    baseUrl: hostile.url,
    credentialKey: "k",
    secrets: [],
    ...clientOpts,
  });
}

const isLimit =
  (reason: string, message: RegExp) =>
  (e: unknown): boolean => {
    assert.ok(e instanceof ProviderLimitError, `a ProviderLimitError, got ${String(e)}`);
    assert.equal(e.reason, reason);
    assert.match(e.message, message);
    assert.ok(e instanceof TransientError, "as ambiguous as a timeout: a create may have happened");
    assert.equal(e.terminal, false);
    return true;
  };

/** What the listener managed to send before the client hung up. */
function sentBytes(): { promise: Promise<number>; sent: (n: number) => void } {
  let sent: (n: number) => void = () => undefined;
  const promise = new Promise<number>((r) => (sent = r));
  return { promise, sent };
}

describe("answer size", () => {
  test("a 300 MB answer fails at the 8 MiB default cap, quickly, and the connection is dropped", async () => {
    for (const declareLength of [true, false]) {
      const c = client();
      const s = sentBytes();
      behaviour = hugeAnswer(300_000_000, { declareLength, sent: s.sent });
      const started = performance.now();
      await assert.rejects(
        () => c.request({ method: "GET", path: "/servers", operation: "list" }),
        isLimit("ResponseTooLarge", /test list: answer larger than 8 MiB \(--provider-max-response-bytes\)/),
      );
      const ms = performance.now() - started;
      // A hang guard, not a speed target: reading 300 MB would take far longer than this.
      assert.ok(ms < 15_000, `failed after ${ms.toFixed(0)} ms`);
      const sent = await s.promise;
      assert.ok(
        sent < 64 * 1024 * 1024,
        `the listener could send only ${String(sent)} bytes (declared: ${String(declareLength)})`,
      );
      assert.equal(hostile.requests.length, 1, "never repeated: the same request brings the same answer");
    }
    assert.equal(DEFAULT_MAX_RESPONSE_BYTES, 8 * 1024 * 1024);
  });

  test("an answer of exactly the cap is read; one byte more is refused, declared or not", async () => {
    const c = client({ maxResponseBytes: 4096 });
    behaviour = hugeAnswer(4096);
    const res = await c.request({ method: "GET", path: "/x", operation: "get" });
    assert.equal(res.text.length, 4096);
    for (const declareLength of [true, false]) {
      behaviour = hugeAnswer(4097, { declareLength });
      await assert.rejects(
        () => c.request({ method: "GET", path: "/x", operation: "get" }),
        isLimit("ResponseTooLarge", /larger than 4 KiB/),
      );
    }
    const text = await metrics.registry.metrics();
    assert.match(
      text,
      /cloud_instance_provider_requests_total\{provider="test",operation="get",code="error"\} 2/,
    );
  });

  test("a HEAD answer's Content-Length (the size of a body never sent) is no reason to refuse it", async () => {
    const c = client({ maxResponseBytes: 1024 });
    behaviour = (_req, _body, res) => {
      res.writeHead(200, { "content-length": "300000000" }).end();
    };
    assert.equal((await c.request({ method: "HEAD", path: "/x", operation: "exists" })).status, 200);
  });

  test("a client's own cap wins over the factory's", async () => {
    const c = client({ maxResponseBytes: 1024 }, { maxResponseBytes: 64 * 1024 });
    behaviour = hugeAnswer(10_000);
    assert.equal((await c.request({ method: "GET", path: "/x", operation: "get" })).status, 200);
  });
});

describe("total deadline", () => {
  test("an answer trickled a byte at a time fails at the total deadline, not the idle one, and is not repeated", async () => {
    const c = client({ requestTimeoutMs: 600 });
    behaviour = trickle(JSON.stringify({ servers: "x".repeat(2_000) }), 20);
    const started = performance.now();
    await assert.rejects(
      () => c.request({ method: "GET", path: "/servers", operation: "list" }),
      isLimit("RequestTooSlow", /test list: no complete answer within 0\.6 s \(--provider-timeout/),
    );
    const ms = performance.now() - started;
    assert.ok(ms >= 590, `not before the deadline (${ms.toFixed(0)} ms)`);
    assert.ok(ms < 5_000, `at the deadline, not after the whole trickle (${ms.toFixed(0)} ms)`);
    assert.equal(hostile.requests.length, 1, "a spent deadline starts no retry");
    const text = await metrics.registry.metrics();
    assert.match(text, /operation="list",code="timeout"\} 1/);
  });

  test("retries stop at the call's deadline: no attempt and no backoff outlives it", async () => {
    const c = client({ requestTimeoutMs: 500, retry: { retries: 50, baseDelayMs: 100, maxDelayMs: 100 } });
    behaviour = (_req, _body, res) => {
      res.writeHead(503).end("busy");
    };
    const started = performance.now();
    const outcome = await c.request({ method: "GET", path: "/x", operation: "get" }).then(
      (res) => res.status,
      (err: unknown) => err,
    );
    const ms = performance.now() - started;
    assert.ok(ms < 2_000, `the call ended near its 500 ms deadline (${ms.toFixed(0)} ms)`);
    assert.ok(hostile.requests.length < 10, `${String(hostile.requests.length)} attempts, not 51`);
    // Either the last 503 (no retry could start in time) or the deadline itself.
    assert.ok(outcome === 503 || outcome instanceof ProviderLimitError, String(outcome));
  });

  test("a Retry-After that ends past the deadline hands the 429 back at once", async () => {
    const c = client({ requestTimeoutMs: 1_000, retry: { retries: 3, baseDelayMs: 1, maxDelayMs: 10_000 } });
    behaviour = (_req, _body, res) => {
      res.writeHead(429, { "retry-after": "2" }).end("slow down");
    };
    const started = performance.now();
    const res = await c.request({ method: "GET", path: "/x", operation: "get" });
    assert.equal(res.status, 429);
    assert.equal(res.headers["retry-after"], "2", "the driver reads it into RateLimitedError");
    assert.equal(hostile.requests.length, 1);
    assert.ok(performance.now() - started < 1_000, "no wait that could not end in time");
  });
});

describe("the caller's signal", () => {
  /** Holds each answer until the test releases it. */
  function held(): { behaviour: HostileBehaviour; release(): void } {
    const waiting: ServerResponse[] = [];
    return {
      behaviour: (_req, _body, res) => {
        waiting.push(res);
      },
      release: () => {
        for (const res of waiting.splice(0)) res.end("{}");
      },
    };
  }

  test("a request aborted while queued behind the credential's limit leaves the queue at once, unsent", async () => {
    const c = client({ limits: { test: { maxConcurrent: 1, qps: 1000, burst: 1000 } } });
    const hold = held();
    behaviour = hold.behaviour;
    const first = c.request({ method: "GET", path: "/first", operation: "get" });
    while (hostile.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    const ac = new AbortController();
    let firstDone = false;
    void first.then(() => (firstDone = true));
    const queued = c.request({ method: "GET", path: "/queued", operation: "get", signal: ac.signal });
    setTimeout(() => {
      ac.abort(new Error("reconcile cancelled"));
    }, 50);
    await assert.rejects(
      queued,
      (e: unknown) => e instanceof TransientError && /reconcile cancelled/.test(e.message),
    );
    assert.equal(firstDone, false, "it did not wait for the slot it queued for");
    hold.release();
    await first;
    behaviour = (_req, _body, res) => {
      res.end("{}");
    };
    // The aborted waiter took neither the slot nor a token: the next request goes straight on.
    assert.equal((await c.request({ method: "GET", path: "/next", operation: "get" })).status, 200);
    assert.deepEqual(
      hostile.requests.map((r) => r.url),
      ["/first", "/next"],
    );
  });

  test("an already aborted signal sends nothing", async () => {
    const c = client();
    await assert.rejects(
      () => c.request({ method: "GET", path: "/x", operation: "get", signal: AbortSignal.abort() }),
      TransientError,
    );
    assert.equal(hostile.requests.length, 0);
  });

  test("the total deadline counts time queued behind the credential's limit", async () => {
    const c = client({
      requestTimeoutMs: 300,
      limits: { test: { maxConcurrent: 1, qps: 1000, burst: 1000 } },
    });
    const hold = held();
    behaviour = hold.behaviour;
    const first = c.request({ method: "GET", path: "/first", operation: "get" }).catch((e: unknown) => e);
    const second = c.request({ method: "GET", path: "/second", operation: "get" });
    await assert.rejects(second, isLimit("RequestTooSlow", /within 0\.3 s/));
    assert.ok((await first) instanceof ProviderLimitError);
    hold.release();
    assert.deepEqual(
      hostile.requests.map((r) => r.url),
      ["/first"],
    );
  });
});

describe("flags", () => {
  const parse = (argv: string[]): OperatorConfig => {
    const out = parseConfig(argv, {});
    assert.equal(out.kind, "config");
    return out.config;
  };

  test("--provider-max-response-bytes, --provider-max-pages, --provider-timeout: defaults, units, refusals", () => {
    const d = parse([]);
    assert.equal(d.providerMaxResponseBytes, DEFAULT_MAX_RESPONSE_BYTES);
    assert.equal(d.providerMaxPages, 100);
    assert.equal(d.providerTimeoutMs, 30_000);
    assert.equal(parse(["--provider-max-response-bytes=512Ki"]).providerMaxResponseBytes, 512 * 1024);
    assert.equal(parse(["--provider-max-response-bytes", "2097152"]).providerMaxResponseBytes, 2_097_152);
    assert.equal(parse(["--provider-max-response-bytes=1Gi"]).providerMaxResponseBytes, 1024 ** 3);
    for (const bad of ["8MB", "100", "0", "-1Mi", "1.5Mi", ""])
      assert.throws(
        () => parse([`--provider-max-response-bytes=${bad}`]),
        (e: unknown) => e instanceof ConfigError && /--provider-max-response-bytes/.test(e.message),
        bad,
      );
    assert.throws(() => parse(["--provider-max-pages=0"]), /--provider-max-pages/);
  });

  test("the DriverPool hands --provider-max-pages to every driver it makes", () => {
    const contexts: DriverContext[] = [];
    const logger = createLogger({ level: "silent" });
    const http = new HttpClientFactory({ logger });
    factories.push(http);
    const registry = {
      m2s: {
        ...m2s,
        create: (ctx: DriverContext) => {
          contexts.push(ctx);
          return m2s.create(ctx);
        },
      },
    };
    const req = {
      provider: "m2s",
      endpoint: hostile.url,
      secretName: "ns/s",
      credentials: { apiKey: "k-1" },
    } as const;
    new DriverPool({ registry, http, logger, maxPages: 7 }).get(req);
    new DriverPool({ registry, http, logger }).get(req);
    assert.deepEqual(
      contexts.map((c) => c.maxPages),
      [7, undefined],
      "unset: the driver's DEFAULT_MAX_PAGES applies",
    );
  });
});
