// The transport core's answer path and its retry handler against a real loopback listener:
// `send` collects the whole answer into one Buffer, and every bound the layers set still
// holds through it — the size cap, the caller's abort and the deadline in the middle of a
// body, a reset connection — and a repeat waits without holding the limiter's slot.
import { after, afterEach, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { Agent } from "undici";
import { systemClock, type Clock } from "../../../src/util/clock.ts";
import {
  bodyText,
  buildTransport,
  DeadlineExceededError,
  errorCode,
  RequestLimiter,
  ResponseTooLargeError,
  send,
  type RetryRules,
  type TransportLayers,
  type TransportOptions,
} from "../../../src/util/transport/transport.ts";
import { startHostile, type HostileBehaviour } from "../../sim/hostile.ts";

let hostile: Awaited<ReturnType<typeof startHostile>>;
let behaviour: HostileBehaviour = (_req, _body, res) => {
  res.end("{}");
};
const agents: Agent[] = [];
/** Answers the tests hold open; ended after each test so the listener can close. */
const held: ServerResponse[] = [];

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
  for (const res of held.splice(0)) res.destroy();
  await Promise.all(agents.splice(0).map((a) => a.destroy()));
  hostile.requests.length = 0;
});

const RULES: RetryRules = {
  retries: 3,
  baseDelayMs: 1,
  maxDelayMs: 5,
  retryStatus: (status) => status >= 500,
  maxRetryAfterMs: 60_000,
};

function transport(layers: Partial<TransportLayers> = {}): {
  call: (opts: Partial<TransportOptions>) => ReturnType<typeof send>;
} {
  const agent = new Agent({ connections: 4 });
  agents.push(agent);
  const t = buildTransport(agent, { clock: systemClock, random: () => 0.5, ...layers });
  return {
    call: (opts) => send(t, { origin: hostile.url, path: "/x", method: "GET", ...opts }),
  };
}

/** Sends headers and `prefix` of a body that never ends: only the client can end the wait. */
function halfAnswer(prefix: string): HostileBehaviour {
  return (_req, _body, res) => {
    res.writeHead(200, { "content-type": "application/json", "content-length": "1000" });
    res.write(prefix);
    held.push(res);
  };
}

/** The system clock, telling when a timer of at least `ms` (a backoff, here) was set. */
function backoffClock(ms: number): { clock: Clock; waiting: Promise<void> } {
  let waited: () => void = () => undefined;
  const waiting = new Promise<void>((r) => (waited = r));
  const clock: Clock = {
    ...systemClock,
    setTimeout: (fn, delay) => {
      if (delay >= ms) waited();
      return systemClock.setTimeout(fn, delay);
    },
  };
  return { clock, waiting };
}

async function untilRequests(n: number): Promise<void> {
  while (hostile.requests.length < n) await new Promise((r) => setTimeout(r, 5));
}

describe("send", () => {
  test("collects a body written in several chunks into one Buffer, with status and headers", async () => {
    behaviour = (_req, _body, res) => {
      res.writeHead(201, { "content-type": "application/json", "x-seen": "yes" });
      res.write('{"a":');
      setImmediate(() => res.end('"é"}'));
    };
    const answer = await transport().call({});
    assert.equal(answer.statusCode, 201);
    assert.equal(answer.headers["x-seen"], "yes");
    assert.deepEqual(JSON.parse(bodyText(answer.body)), { a: "é" });
  });

  test("bodyText drops a UTF-8 byte order mark, as undici's body.text() did", () => {
    assert.equal(bodyText(Buffer.from("\uFEFF{}")), "{}");
    assert.equal(bodyText(Buffer.from("")), "");
  });

  test("an answer over the cap is still refused, declared or not, through send", async () => {
    const t = transport({ maxResponseBytes: 16 });
    behaviour = (_req, _body, res) => {
      res.end("x".repeat(17));
    };
    await assert.rejects(t.call({}), ResponseTooLargeError);
    behaviour = (_req, _body, res) => {
      res.writeHead(200);
      res.write("x".repeat(10));
      setImmediate(() => res.end("x".repeat(10)));
    };
    await assert.rejects(t.call({}), ResponseTooLargeError);
    behaviour = (_req, _body, res) => {
      res.end("x".repeat(16));
    };
    assert.equal((await t.call({})).body.length, 16);
  });

  test("the caller's abort in the middle of a body rejects with its reason", async () => {
    behaviour = halfAnswer('{"half":');
    const ac = new AbortController();
    const pending = transport({ retry: RULES }).call({ signal: ac.signal });
    await untilRequests(1);
    ac.abort(new Error("reconcile cancelled"));
    await assert.rejects(pending, /reconcile cancelled/);
    assert.equal(hostile.requests.length, 1);
  });

  test("one signal under many requests: those answered are left alone, every open one fails with its reason, a later one is never sent", async () => {
    behaviour = (req, body, res) => {
      if (req.url === "/held") halfAnswer('{"half":')(req, body, res);
      else res.end("{}");
    };
    // Per attempt (the kube client's layers) and per call (the provider client's).
    for (const layers of [{ deadlineMs: 60_000 }, { callDeadlineMs: 60_000, retry: RULES }]) {
      hostile.requests.length = 0;
      const t = transport(layers);
      const ac = new AbortController();
      for (let i = 0; i < 3; i++) assert.equal((await t.call({ signal: ac.signal })).statusCode, 200);
      const open = [0, 1, 2].map(() => t.call({ path: "/held", signal: ac.signal }));
      await untilRequests(6);
      ac.abort(new Error("leadership lost"));
      for (const p of open) await assert.rejects(p, /leadership lost/);
      await assert.rejects(t.call({ signal: ac.signal }), /leadership lost/);
      assert.equal(hostile.requests.length, 6, "nothing sent on an aborted signal");
    }
  });

  test("a deadline in the middle of a body fails the attempt with DeadlineExceededError", async () => {
    behaviour = halfAnswer('{"half":');
    // No retry layer: the body can only end by the deadline (the listener never finishes it).
    await assert.rejects(transport({ deadlineMs: 200 }).call({}), DeadlineExceededError);
  });

  test("a connection reset after the headers fails the call and is not repeated, even for a GET", async () => {
    behaviour = (_req, _body, res) => {
      res.writeHead(200, { "content-length": "1000" });
      res.write("partial", () => {
        res.destroy();
      });
    };
    await assert.rejects(transport({ retry: RULES }).call({}), (e: unknown) => {
      assert.match(errorCode(e) ?? "", /^UND_ERR_|^E[A-Z]+$/);
      return true;
    });
    assert.equal(hostile.requests.length, 1, "the answer had begun: nothing is repeated");
  });
});

describe("retry handler", () => {
  test("a refused answer's body is dropped; the repeat's answer is the one returned", async () => {
    let n = 0;
    behaviour = (_req, _body, res) => {
      n++;
      res.writeHead(n === 1 ? 503 : 200);
      res.end(n === 1 ? "refused" : "served");
    };
    const answer = await transport({ retry: RULES }).call({});
    assert.equal(answer.statusCode, 200);
    assert.equal(bodyText(answer.body), "served");
    assert.equal(hostile.requests.length, 2);
  });

  test("a reset before any answer repeats a GET, never a POST; a 409 is nobody's retry", async () => {
    behaviour = (req, _body, res) => {
      if (req.method === "PUT") res.writeHead(409).end("{}");
      else req.socket.destroy();
    };
    const t = transport({ retry: RULES });
    await assert.rejects(t.call({ method: "GET" }));
    assert.equal(hostile.requests.length, RULES.retries + 1);
    hostile.requests.length = 0;
    await assert.rejects(t.call({ method: "POST", body: "{}" }));
    assert.equal(hostile.requests.length, 1);
    hostile.requests.length = 0;
    assert.equal((await t.call({ method: "PUT", body: "{}" })).statusCode, 409);
    assert.equal(hostile.requests.length, 1);
  });

  test("the caller's abort ends a backoff wait at once, with no call deadline above", async () => {
    behaviour = (_req, _body, res) => {
      res.writeHead(503).end("{}");
    };
    // A minute's backoff: only the abort can end this call within the test's timeout.
    const { clock, waiting } = backoffClock(10_000);
    const t = transport({ clock, retry: { ...RULES, baseDelayMs: 60_000, maxDelayMs: 60_000 } });
    const ac = new AbortController();
    const pending = t.call({ signal: ac.signal });
    await waiting;
    ac.abort(new Error("reconcile cancelled"));
    await assert.rejects(pending, /reconcile cancelled/);
    assert.equal(hostile.requests.length, 1);
  });

  test("a request waiting to repeat does not hold the limiter's slot", async () => {
    behaviour = (req, _body, res) => {
      if (req.url === "/refused") res.writeHead(503).end("{}");
      else res.end("{}");
    };
    const limiter = new RequestLimiter({ qps: 1000, burst: 1000, maxConcurrent: 1, clock: systemClock });
    const { clock, waiting: backingOff } = backoffClock(10_000);
    const t = transport({ clock, retry: { ...RULES, baseDelayMs: 60_000, maxDelayMs: 60_000 }, limiter });
    const ac = new AbortController();
    const waiting = t.call({ path: "/refused", signal: ac.signal });
    await backingOff;
    // Only one slot: this one is served while the first waits out its backoff.
    assert.equal((await t.call({ path: "/other" })).statusCode, 200);
    ac.abort(new Error("done"));
    await assert.rejects(waiting, /done/);
  });
});
