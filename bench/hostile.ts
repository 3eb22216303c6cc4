// `node bench/hostile.ts`: what a hostile provider costs the operator's provider client. A
// loopback listener (test/sim/hostile.ts, in a process of its own) answers with 300 MB, two
// 250 MB answers at once, or a body trickled a byte at a time; each scenario runs in a fresh
// process that measures its resident memory around the one call. Prints a markdown table and
// writes bench/results/hostile-<date>.json. `--help` for the options.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createLogger } from "../src/observability/logger.ts";
import { DEFAULT_MAX_RESPONSE_BYTES, HttpClientFactory } from "../src/providers/http/client.ts";
import { hugeAnswer, startHostile, trickle, type HostileBehaviour } from "../test/sim/hostile.ts";

const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k = "", ...v] = a.replace(/^--/, "").split("=");
    return [k, v.length === 0 ? "true" : v.join("=")] as const;
  }),
);
const MB = 1_000_000;

if (args.get("help") === "true") {
  process.stdout.write(`node bench/hostile.ts [options]
  What a hostile provider costs the provider client: resident memory (RSS) for huge answers
  and time to fail for a trickled one, each scenario in a fresh process.
  --max-response-bytes=N   the client's cap (default ${String(DEFAULT_MAX_RESPONSE_BYTES)}, the operator's default)
  --timeout-ms=N           the client's total deadline in the trickle scenario (default 2000)
  --no-baseline            skip the uncapped 300 MB read (the cost before the cap; ~1 GB of RAM)
  --runs=N                 fresh processes per capped scenario; the median is reported (default 3)
  --max-cost-mb=N          exit 1 when a capped scenario's median costs N MB of RSS or more (default 20)
  --out=DIR                where the JSON result goes (default bench/results)
`);
  process.exit(0);
}

interface Scenario {
  id: string;
  title: string;
  /** Listener path per concurrent request. */
  paths: string[];
  capped: boolean;
  /** The client's total deadline (default --timeout-ms). */
  timeoutMs?: number;
}

interface Measured {
  outcome: string;
  seconds: number;
  rssBeforeMB: number;
  rssPeakMB: number;
  /** Peak RSS during the call minus RSS at rest before it. */
  costMB: number;
  /** Growth of Buffer memory (what the client held of the answer), peak. */
  heldMB: number;
}

/** The listener's answers by path: sizes in bytes, chunked unless `length`. */
const ROUTES: Record<string, HostileBehaviour> = {
  "/huge-300-length": hugeAnswer(300 * MB),
  "/huge-300-chunked": hugeAnswer(300 * MB, { declareLength: false }),
  "/huge-250-chunked": hugeAnswer(250 * MB, { declareLength: false }),
  "/trickle": trickle(JSON.stringify({ servers: "x".repeat(10_000) }), 100),
  "/small": (_req, _body, res) => {
    res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
  },
};

const SCENARIOS: Scenario[] = [
  { id: "huge-length", title: "300 MB, Content-Length declared", paths: ["/huge-300-length"], capped: true },
  { id: "huge-chunked", title: "300 MB, chunked", paths: ["/huge-300-chunked"], capped: true },
  {
    id: "two-huge",
    title: "2 × 250 MB at once, chunked",
    paths: ["/huge-250-chunked", "/huge-250-chunked"],
    capped: true,
  },
  { id: "trickle", title: "10 kB at one byte per 100 ms", paths: ["/trickle"], capped: true },
  {
    id: "baseline",
    title: "300 MB, chunked, no cap (before)",
    paths: ["/huge-300-chunked"],
    capped: false,
    timeoutMs: 300_000,
  },
];

if (args.has("serve")) await serve();
else if (args.has("measure")) await measure(args.get("measure") ?? "", args.get("url") ?? "");
else await main();

/** Child mode: the hostile listener, its URL on stdout. */
async function serve(): Promise<void> {
  const listener = await startHostile({
    behaviour: (req, body, res) => {
      (ROUTES[req.url ?? ""] ?? ROUTES["/small"])?.(req, body, res);
    },
  });
  process.stdout.write(`${listener.url}\n`);
}

/** Child mode: one scenario in a fresh process; its measurement as JSON on stdout. */
async function measure(id: string, url: string): Promise<void> {
  const scenario = SCENARIOS.find((s) => s.id === id);
  if (!scenario) throw new Error(`unknown scenario ${id}`);
  const factory = new HttpClientFactory({
    logger: createLogger({ level: "silent" }),
    requestTimeoutMs: scenario.timeoutMs ?? Number(args.get("timeout-ms") ?? 2_000),
    maxResponseBytes: scenario.capped
      ? Number(args.get("max-response-bytes") ?? DEFAULT_MAX_RESPONSE_BYTES)
      : Infinity,
  });
  const client = factory.client({ provider: "hostile", baseUrl: url, credentialKey: "k", secrets: [] });
  // Warm up (modules, the connection pool, JIT) so the baseline is the client at rest.
  for (let i = 0; i < 20; i++) await client.request({ method: "GET", path: "/small", operation: "get" });
  // At rest after a full collection: the heap pages a collection gives back come back by
  // themselves within moments, so the baseline is the highest RSS over a quiet half second.
  (globalThis as { gc?: () => void }).gc?.();
  let before = 0;
  const rest = setInterval(() => {
    before = Math.max(before, process.memoryUsage.rss());
  }, 2);
  await new Promise((r) => setTimeout(r, 500));
  clearInterval(rest);
  const maxBefore = process.resourceUsage().maxRSS;
  const buffersBefore = process.memoryUsage().arrayBuffers;
  let peak = before;
  let buffers = buffersBefore;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    peak = Math.max(peak, m.rss);
    buffers = Math.max(buffers, m.arrayBuffers);
  }, 2);
  const started = performance.now();
  const outcomes = await Promise.all(
    scenario.paths.map((path) =>
      client.request({ method: "GET", path, operation: "list" }).then(
        (res) => `read ${(res.text.length / MB).toFixed(0)} MB`,
        (err: unknown) => (err instanceof Error ? err.message.replace(/^hostile list: /, "") : String(err)),
      ),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  // The kernel's high-water mark catches a peak between two samples; it counts only if it
  // moved during the call (start-up may have set it higher than the client at rest).
  const maxAfter = process.resourceUsage().maxRSS;
  peak = Math.max(peak, process.memoryUsage.rss(), maxAfter > maxBefore ? maxAfter * 1024 : 0);
  await factory.close();
  const out: Measured = {
    outcome: [...new Set(outcomes)].join("; "),
    seconds: round(seconds),
    rssBeforeMB: round(before / MB),
    rssPeakMB: round(peak / MB),
    costMB: round((peak - before) / MB),
    heldMB: round((buffers - buffersBefore) / MB),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

type Result = Scenario & Measured & { maxCostMB: number };

/** One run of a scenario in a fresh process (with --expose-gc for a clean baseline). */
async function measureIn(scenario: Scenario, url: string): Promise<Measured> {
  const child = spawn(
    process.execPath,
    [
      "--expose-gc",
      import.meta.filename,
      `--measure=${scenario.id}`,
      `--url=${url}`,
      ...[...args].filter(([k]) => k !== "out").map(([k, v]) => `--${k}=${v}`),
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const exited = new Promise((r) => child.once("exit", r));
  const measured = JSON.parse(await firstLine(child)) as Measured;
  await exited;
  return measured;
}

async function main(): Promise<void> {
  const server = spawn(process.execPath, [import.meta.filename, "--serve"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    const url = await firstLine(server);
    const results: Result[] = [];
    const skipBaseline = args.get("no-baseline") === "true";
    const runs = Number(args.get("runs") ?? 3);
    for (const scenario of SCENARIOS.filter((s) => s.capped || !skipBaseline)) {
      const measured: Measured[] = [];
      for (let i = 0; i < (scenario.capped ? runs : 1); i++) measured.push(await measureIn(scenario, url));
      const median = measured.sort((a, b) => a.costMB - b.costMB)[Math.floor(measured.length / 2)];
      if (median) results.push({ ...scenario, ...median, maxCostMB: measured.at(-1)?.costMB ?? 0 });
    }
    report(results);
  } finally {
    server.kill();
  }
}

function report(results: Result[]): void {
  const rows = results.map(
    (r) =>
      `| ${r.title} | ${r.outcome} | ${r.seconds.toFixed(2)} | ${r.rssBeforeMB.toFixed(1)} | ${r.costMB.toFixed(1)} (max ${r.maxCostMB.toFixed(1)}) | ${r.heldMB.toFixed(1)} |`,
  );
  process.stdout.write(
    [
      "| scenario | outcome | seconds | RSS at rest (MB) | RSS cost, median (MB) | Buffers held (MB) |",
      "|---|---|---|---|---|---|",
      ...rows,
      "",
    ].join("\n"),
  );
  const dir = args.get("out") ?? join(import.meta.dirname, "results");
  mkdirSync(dir, { recursive: true });
  const date = new Date().toISOString();
  const file = join(dir, `hostile-${date.slice(0, 10)}.json`);
  const capBytes = Number(args.get("max-response-bytes") ?? DEFAULT_MAX_RESPONSE_BYTES);
  writeFileSync(file, `${JSON.stringify({ date, node: process.version, capBytes, results }, null, 1)}\n`);
  process.stdout.write(`written to ${file}\n`);
  const limit = Number(args.get("max-cost-mb") ?? 20);
  const over = results.filter((r) => r.capped && r.costMB >= limit);
  if (over.length > 0) {
    process.stderr.write(`over ${String(limit)} MB: ${over.map((r) => r.id).join(", ")}\n`);
    process.exitCode = 1;
  }
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    child.stdout?.on("data", (b: Buffer) => {
      text += b.toString();
      const at = text.indexOf("\n");
      if (at >= 0) resolve(text.slice(0, at));
    });
    child.once("exit", (code) => {
      reject(new Error(`child exited (${String(code)}) before answering`));
    });
  });
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
