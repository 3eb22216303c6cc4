import { Redactor } from "../../../src/providers/http/redact.ts";
import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { captureLogs } from "../harness.ts";
import { Metrics } from "../../../src/observability/metrics.ts";
import { HttpClientFactory, type HttpClient } from "../../../src/providers/http/client.ts";
import { TransientError } from "../../../src/providers/errors.ts";

/** A scripted server: each request is answered by the next step of `script` (last one repeats). */
type Step = (req: IncomingMessage, res: ServerResponse) => void;
let server: Server;
let url: string;
let script: Step[] = [];
let seen: { method: string; url: string; headers: IncomingMessage["headers"]; body: string; at: number }[] =
  [];
let inFlight = 0;
let maxInFlight = 0;

const { logger, lines: logLines } = captureLogs();
let metrics: Metrics;
let factory: HttpClientFactory;

const ok: Step = (_req, res) => {
  res.writeHead(200, { "content-type": "application/json" });
  res.end('{"ok":true}');
};
const status =
  (code: number, headers: Record<string, string> = {}): Step =>
  (_req, res) => {
    res.writeHead(code, headers);
    res.end(`status ${String(code)}`);
  };
const reset: Step = (req) => {
  req.socket.destroy();
};
const slow =
  (ms: number, then: Step): Step =>
  (req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    setTimeout(() => {
      inFlight--;
      then(req, res);
    }, ms);
  };

function client(over: Partial<Parameters<HttpClientFactory["client"]>[0]> = {}): HttpClient {
  return factory.client({
    provider: "test",
    baseUrl: `${url}/v1`,
    credentialKey: "cred-1",
    secrets: ["s3cr3t-token", "p@ss word"],
    ...over,
  });
}

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      seen.push({
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
        at: Date.now(),
      });
      const step = script.length > 1 ? script.shift() : script[0];
      (step ?? ok)(req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});
afterEach(async () => {
  await factory.close();
});

function fresh(opts: Partial<ConstructorParameters<typeof HttpClientFactory>[0]> = {}): void {
  script = [];
  seen = [];
  inFlight = 0;
  maxInFlight = 0;
  metrics = new Metrics();
  factory = new HttpClientFactory({
    logger,
    metrics,
    retry: { retries: 3, baseDelayMs: 5, maxDelayMs: 50 },
    random: () => 0.5,
    ...opts,
  });
}

describe("requests", () => {
  test("joins the path onto the base path, appends query, sends JSON and form bodies", async () => {
    fresh();
    const c = client({ defaultHeaders: { "x-default": "1" } });
    await c.request({
      method: "GET",
      path: "/servers",
      query: { page: 2, skip: undefined },
      operation: "list",
    });
    await c.request({ method: "POST", path: "servers", json: { a: 1 }, operation: "create" });
    await c.request({
      method: "POST",
      path: "/",
      form: [
        ["func", "auth"],
        ["b", "x y"],
      ],
      operation: "auth",
    });
    assert.equal(seen[0]?.url, "/v1/servers?page=2");
    assert.equal(seen[0]?.headers["x-default"], "1");
    assert.equal(seen[1]?.headers["content-type"], "application/json");
    assert.equal(seen[1]?.body, '{"a":1}');
    assert.equal(seen[2]?.headers["content-type"], "application/x-www-form-urlencoded");
    assert.equal(seen[2]?.body, "func=auth&b=x+y");
  });

  test("returns every HTTP answer, errors included, for the driver to interpret", async () => {
    fresh();
    script = [status(404)];
    const res = await client().request({ method: "GET", path: "/x", operation: "get" });
    assert.equal(res.status, 404);
    assert.equal(res.text, "status 404");
    assert.equal(res.json(), undefined);
    assert.equal(seen.length, 1, "a 404 is not retried");
  });
});

describe("retries", () => {
  test("a GET is retried on 502/503/504 and the final answer returned", async () => {
    fresh();
    script = [status(502), status(503), status(504), ok];
    const res = await client().request({ method: "GET", path: "/x", operation: "get" });
    assert.equal(res.status, 200);
    assert.equal(seen.length, 4);
  });

  test("retries stop after the policy's count and return the last answer", async () => {
    fresh();
    script = [status(503)];
    const res = await client().request({ method: "GET", path: "/x", operation: "get" });
    assert.equal(res.status, 503);
    assert.equal(seen.length, 4, "1 attempt + 3 retries");
  });

  test("a POST (a create) is never retried on 5xx", async () => {
    fresh();
    script = [status(503), ok];
    const res = await client().request({ method: "POST", path: "/servers", json: {}, operation: "create" });
    assert.equal(res.status, 503);
    assert.equal(seen.length, 1);
  });

  test("a POST the driver marks idempotent (a read through POST) is retried", async () => {
    fresh();
    script = [status(503), ok];
    const res = await client().request({
      method: "POST",
      path: "/",
      form: { func: "vds" },
      operation: "list",
      idempotent: true,
    });
    assert.equal(res.status, 200);
    assert.equal(seen.length, 2);
  });

  test("a 429 is retried even for a POST: the server refused before acting", async () => {
    fresh();
    script = [status(429), ok];
    const res = await client().request({ method: "POST", path: "/servers", json: {}, operation: "create" });
    assert.equal(res.status, 200);
    assert.equal(seen.length, 2);
  });

  test("Retry-After is honoured: the retry waits at least that long", async () => {
    fresh({ retry: { retries: 2, baseDelayMs: 1, maxDelayMs: 5_000 } });
    script = [status(429, { "retry-after": "1" }), ok];
    const res = await client().request({ method: "GET", path: "/x", operation: "get" });
    assert.equal(res.status, 200);
    const [first, second] = seen;
    assert.ok(first && second);
    // A lower bound only: a sleep never ends early, however loaded the machine.
    assert.ok(second.at - first.at >= 950, `waited ${String(second.at - first.at)} ms`);
  });

  test("a Retry-After longer than the cap is handed back to the driver instead of blocking", async () => {
    fresh({ retry: { retries: 3, baseDelayMs: 1, maxDelayMs: 50 } });
    script = [status(429, { "retry-after": "120" }), ok];
    const res = await client().request({ method: "GET", path: "/x", operation: "get" });
    assert.equal(res.status, 429);
    assert.equal(res.headers["retry-after"], "120");
    assert.equal(seen.length, 1);
  });

  test("a connection reset is retried for a GET, and is a TransientError for a create", async () => {
    fresh();
    script = [reset, ok];
    assert.equal((await client().request({ method: "GET", path: "/x", operation: "get" })).status, 200);
    assert.equal(seen.length, 2);
    script = [reset, ok];
    seen = [];
    await assert.rejects(
      () => client().request({ method: "POST", path: "/servers", json: {}, operation: "create" }),
      (e: unknown) => e instanceof TransientError && e.operation === "create",
    );
    assert.equal(seen.length, 1, "an ambiguous create is not repeated");
  });

  test("no answer within the request timeout is a TransientError counted as a timeout", async () => {
    fresh({ requestTimeoutMs: 100, retry: { retries: 0 } });
    script = [slow(2_000, ok)];
    await assert.rejects(
      () => client().request({ method: "GET", path: "/x", operation: "get" }),
      TransientError,
    );
    const text = await metrics.registry.metrics();
    assert.match(
      text,
      /cloud_instance_provider_requests_total\{provider="test",operation="get",code="timeout"\} 1/,
    );
  });

  test("a refused connection (nothing was sent) is retried even for a create", async () => {
    fresh({ retry: { retries: 2, baseDelayMs: 1, maxDelayMs: 5 } });
    const dead = factory.client({
      provider: "test",
      baseUrl: "http://127.0.0.1:1",
      credentialKey: "k",
      secrets: [],
    });
    await assert.rejects(
      () => dead.request({ method: "POST", path: "/servers", json: {}, operation: "create" }),
      TransientError,
    );
    const text = await metrics.registry.metrics();
    assert.match(text, /operation="create",code="error"\} 3/);
  });
});

describe("runtime credentials", () => {
  test("an auth source's headers go on every attempt; a 401 drops them and the request repeats once", async () => {
    fresh();
    let session = 1;
    let invalidated = 0;
    const c = client({
      auth: {
        headers: () => Promise.resolve({ "x-session": `s${String(session)}` }),
        invalidate: () => {
          invalidated++;
          session++;
        },
      },
    });
    script = [status(401), ok];
    const res = await c.request({ method: "POST", path: "/servers", json: {}, operation: "create" });
    assert.equal(res.status, 200, "even a create: a 401 was refused before anything happened");
    assert.deepEqual(
      seen.map((r) => r.headers["x-session"]),
      ["s1", "s2"],
    );
    assert.equal(invalidated, 1);
    script = [status(401)];
    seen = [];
    assert.equal((await c.request({ method: "GET", path: "/x", operation: "get" })).status, 401);
    assert.equal(seen.length, 2, "one repeat, not a loop");
  });

  test("headers at hand (headersNow) go out without asking headers(); once a 401 drops them, headers() is asked", async () => {
    fresh();
    let session = 1;
    let cached = true;
    let asked = 0;
    const c = client({
      auth: {
        headersNow: () => (cached ? { "x-session": `s${String(session)}` } : undefined),
        headers: () => {
          asked++;
          cached = true;
          return Promise.resolve({ "x-session": `s${String(session)}` });
        },
        invalidate: () => {
          cached = false;
          session++;
        },
      },
    });
    script = [ok];
    await c.request({ method: "GET", path: "/x", operation: "get" });
    assert.deepEqual(
      seen.map((r) => r.headers["x-session"]),
      ["s1"],
    );
    assert.equal(asked, 0, "a cached credential needs no wait");
    script = [status(401), ok];
    seen = [];
    assert.equal((await c.request({ method: "GET", path: "/x", operation: "get" })).status, 200);
    assert.deepEqual(
      seen.map((r) => r.headers["x-session"]),
      ["s1", "s2"],
    );
    assert.equal(asked, 1, "the repeat asked for fresh credentials");
  });
});

describe("limits and metrics", () => {
  test("the per-credential concurrency cap holds across clients of the same credential", async () => {
    fresh({ limits: { test: { maxConcurrent: 2, qps: 1000, burst: 1000 } } });
    script = [slow(30, ok)];
    const a = client();
    const b = client();
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        (i % 2 ? a : b).request({ method: "GET", path: "/x", operation: "get" }),
      ),
    );
    assert.equal(seen.length, 8);
    assert.equal(maxInFlight, 2);
  });

  test("another credential has its own limiter", async () => {
    fresh({ limits: { test: { maxConcurrent: 1, qps: 1000, burst: 1000 } } });
    script = [slow(30, ok)];
    await Promise.all([
      client({ credentialKey: "one" }).request({ method: "GET", path: "/x", operation: "get" }),
      client({ credentialKey: "two" }).request({ method: "GET", path: "/x", operation: "get" }),
    ]);
    assert.equal(maxInFlight, 2);
  });

  test("requests are counted by provider, operation and code, and timed", async () => {
    fresh();
    script = [status(503), ok];
    await client().request({ method: "GET", path: "/x", operation: "get" });
    const text = await metrics.registry.metrics();
    assert.match(
      text,
      /cloud_instance_provider_requests_total\{provider="test",operation="get",code="503"\} 1/,
    );
    assert.match(
      text,
      /cloud_instance_provider_requests_total\{provider="test",operation="get",code="200"\} 1/,
    );
    assert.match(
      text,
      /cloud_instance_provider_request_duration_seconds_count\{provider="test",operation="get"\} 2/,
    );
  });
});

describe("redaction", () => {
  test("secrets in the URL never reach the debug log; header values are never logged", async () => {
    fresh();
    logLines.length = 0;
    const c = client({ secretFields: ["Signature"] });
    await c.request({
      method: "GET",
      path: "/x",
      query: { Signature: "sig-abc-123", apikey: "s3cr3t-token", name: "web" },
      headers: { authorization: "Bearer s3cr3t-token", "x-token": "s3cr3t-token" },
      operation: "get",
    });
    const logged = logLines.join("");
    assert.ok(logged.includes("provider request"));
    assert.ok(!logged.includes("s3cr3t-token"));
    assert.ok(!logged.includes("sig-abc-123"), "a signature field is redacted by name");
    assert.ok(logged.includes("name=web"), "ordinary fields stay readable");
  });

  test("the redactor removes a secret as plain, URL-, form- and base64-encoded text", () => {
    fresh();
    const r = client().redactor;
    const secret = "p@ss word";
    for (const form of [
      secret,
      encodeURIComponent(secret),
      encodeURIComponent(secret).replace(/%20/g, "+"),
      Buffer.from(secret).toString("base64"),
    ]) {
      assert.equal(r.text(`before ${form} after`), "before [REDACTED] after");
    }
    assert.equal(r.text("?password=hunter2&user=bob"), "?password=[REDACTED]&user=bob");
    assert.equal(
      new Redactor([], ["authinfo"]).text("?func=x&authinfo=bob:pw"),
      "?func=x&authinfo=[REDACTED]",
    );
  });

  test("an error message from a failed request carries no secret", async () => {
    fresh({ retry: { retries: 0 } });
    const dead = factory.client({
      provider: "test",
      baseUrl: "http://127.0.0.1:1",
      credentialKey: "k",
      secrets: ["s3cr3t-token"],
    });
    await assert.rejects(
      () => dead.request({ method: "GET", path: "/x", query: { token: "s3cr3t-token" }, operation: "get" }),
      (e: unknown) => e instanceof TransientError && !e.message.includes("s3cr3t-token"),
    );
  });
});
