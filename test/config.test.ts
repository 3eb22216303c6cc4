import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, OPTIONS, envName, parseConfig, type OperatorConfig } from "../src/config.ts";

function config(argv: string[], env: NodeJS.ProcessEnv = {}): OperatorConfig {
  const out = parseConfig(argv, env);
  assert.equal(out.kind, "config");
  return out.config;
}

test("defaults match controller-runtime's", () => {
  const c = config([], { HOSTNAME: "ignored" });
  assert.equal(c.maxConcurrentReconciles, 10);
  assert.equal(c.queueQps, 10);
  assert.equal(c.queueBurst, 100);
  assert.equal(c.resyncPeriodMs, 300_000);
  assert.equal(c.leaderElect, false);
  assert.equal(c.leaderElectionNamespace, "default");
  assert.equal(c.leaderElectionId, "cloud-instance-operator-leader");
  assert.equal(c.leaseDurationMs, 15_000);
  assert.equal(c.renewDeadlineMs, 10_000);
  assert.equal(c.retryPeriodMs, 2_000);
  assert.equal(c.metricsBindAddress, ":8080");
  assert.equal(c.healthProbeBindAddress, ":8081");
  assert.equal(c.logLevel, "info");
  assert.deepEqual(c.namespaces, []);
  assert.equal(c.kubeconfig, undefined);
  assert.equal(c.shutdownGracePeriodMs, 30_000);
  assert.ok(c.podName.length > 0, "defaults to the hostname");
});

test("flags in both --flag=value and --flag value forms; booleans without value", () => {
  const c = config([
    "--namespaces=team-a, team-b",
    "--max-concurrent-reconciles",
    "3",
    "--resync-period=1h30m",
    "--leader-elect",
    "--label-selector",
    "env=prod",
    "--metrics-bind-address=127.0.0.1:0",
    "--log-level=debug",
  ]);
  assert.deepEqual(c.namespaces, ["team-a", "team-b"]);
  assert.equal(c.maxConcurrentReconciles, 3);
  assert.equal(c.resyncPeriodMs, 5_400_000);
  assert.equal(c.leaderElect, true);
  assert.equal(c.labelSelector, "env=prod");
  assert.equal(c.metricsBindAddress, "127.0.0.1:0");
  assert.equal(c.logLevel, "debug");
  assert.equal(config(["--leader-elect=false"]).leaderElect, false);
});

test("env: OPERATOR_<FLAG> and the conventional names; flags win, OPERATOR_ wins over conventional", () => {
  const env = {
    OPERATOR_QUEUE_QPS: "25",
    WATCH_NAMESPACES: "x,y",
    POD_NAME: "op-0",
    POD_NAMESPACE: "ops",
    KUBECONFIG: "/k/conventional",
    OPERATOR_KUBECONFIG: "/k/operator",
    OPERATOR_LEADER_ELECT: "true",
  };
  const c = config(["--queue-qps=5"], env);
  assert.equal(c.queueQps, 5);
  assert.deepEqual(c.namespaces, ["x", "y"]);
  assert.equal(c.podName, "op-0");
  assert.equal(c.leaderElectionNamespace, "ops");
  assert.equal(c.kubeconfig, "/k/operator");
  assert.equal(c.leaderElect, true);
  assert.equal(config([], { OPERATOR_QUEUE_QPS: "25" }).queueQps, 25);
});

test("every option has an OPERATOR_ env var", () => {
  for (const o of OPTIONS) {
    const name = envName(o.flag);
    assert.match(name, /^OPERATOR_[A-Z_]+$/);
  }
  assert.equal(envName("max-concurrent-reconciles"), "OPERATOR_MAX_CONCURRENT_RECONCILES");
});

test("--help lists every flag with its default and env var", () => {
  const out = parseConfig(["--namespaces=a", "--help"], {});
  assert.equal(out.kind, "help");
  for (const o of OPTIONS) {
    assert.ok(out.text.includes(`--${o.flag}`), o.flag);
    assert.ok(out.text.includes(envName(o.flag)), envName(o.flag));
  }
  assert.match(out.text, /--max-concurrent-reconciles <value>\n.*\(default: 10\)/);
  assert.match(out.text, /WATCH_NAMESPACES/);
});

test("invalid values are ConfigErrors naming the flag", () => {
  const bad: [string[], RegExp][] = [
    [["--max-concurrent-reconciles=0"], /--max-concurrent-reconciles/],
    [["--queue-qps=fast"], /--queue-qps/],
    [["--resync-period=5 minutes"], /--resync-period: invalid duration/],
    [["--log-level=loud"], /--log-level/],
    [["--metrics-bind-address=8080"], /--metrics-bind-address/],
    [["--namespaces=Bad_NS"], /--namespaces/],
    [["--leader-elect=maybe"], /--leader-elect/],
    [["--nope"], /unknown flag --nope/],
    [["--context"], /needs a value/],
    [["positional"], /unexpected argument/],
    [["--leader-election-renew-deadline=20s"], /renew-deadline must be shorter/],
  ];
  for (const [argv, re] of bad) {
    assert.throws(
      () => parseConfig(argv, {}),
      (err: unknown) => err instanceof ConfigError && re.test(err.message),
      argv.join(" "),
    );
  }
});

test("provider limits: a default for every credential and per-provider overrides", () => {
  const outcome = parseConfig(
    [
      "--provider-qps=5",
      "--provider-limits=vscale=2/4/1, m2s=50.5/100/32",
      "--poll-initial=2s",
      "--poll-max=10s",
    ],
    {},
  );
  assert.equal(outcome.kind, "config");
  if (outcome.kind !== "config") return;
  assert.deepEqual(outcome.config.providerLimits, {
    default: { qps: 5, burst: 40, maxConcurrent: 16 },
    perProvider: {
      vscale: { qps: 2, burst: 4, maxConcurrent: 1 },
      m2s: { qps: 50.5, burst: 100, maxConcurrent: 32 },
    },
  });
  assert.equal(outcome.config.pollInitialMs, 2000);
  assert.equal(outcome.config.pollMaxMs, 10_000);
  assert.throws(() => parseConfig(["--provider-limits=vscale=fast"], {}), /not name=qps\/burst\/concurrent/);
  assert.throws(() => parseConfig(["--poll-initial=1m", "--poll-max=10s"], {}), /poll-initial/);
});

test("--provider-max-inflight-per-account: a quarter of the workers unless set, a positive integer", () => {
  const share = (args: string[]): number | undefined => {
    const outcome = parseConfig(
      ["--metrics-bind-address=127.0.0.1:0", "--metrics-secure=false", ...args],
      {},
    );
    return outcome.kind === "config" ? outcome.config.providerMaxInflightPerAccount : undefined;
  };
  assert.equal(share([]), 3, "10 workers");
  assert.equal(share(["--max-concurrent-reconciles=1"]), 1);
  assert.equal(share(["--max-concurrent-reconciles=40"]), 10);
  assert.equal(share(["--provider-max-inflight-per-account=7"]), 7);
  assert.throws(
    () => parseConfig(["--provider-max-inflight-per-account=0"], {}),
    /provider-max-inflight-per-account/,
  );
  assert.throws(
    () => parseConfig(["--provider-max-inflight-per-account=x"], {}),
    /provider-max-inflight-per-account/,
  );
});

test("metrics are HTTPS by default; plain HTTP only on loopback, and never on the probes' address", () => {
  const ok = parseConfig([], {});
  assert.ok(ok.kind === "config" && ok.config.metricsSecure);
  assert.throws(() => parseConfig(["--metrics-secure=false"], {}), /loopback/);
  const loop = parseConfig(["--metrics-secure=false", "--metrics-bind-address=127.0.0.1:8080"], {});
  assert.ok(loop.kind === "config" && !loop.config.metricsSecure);
  assert.throws(
    () => parseConfig(["--metrics-bind-address=:9000", "--health-probe-bind-address=:9000"], {}),
    /two addresses/,
  );
});

test("--allowed-endpoints is validated when read", () => {
  const ok = parseConfig(["--allowed-endpoints=default, https://*.corp.example/api"], {});
  assert.ok(ok.kind === "config");
  assert.deepEqual(ok.config.allowedEndpoints, ["default", "https://*.corp.example/api"]);
  assert.throws(
    () => parseConfig(["--allowed-endpoints=ftp://x"], {}),
    /allowed-endpoints.*not an endpoint pattern/s,
  );
});

test("--shards: 1 by default, needs --leader-elect above 1, bounded", () => {
  assert.equal(config([]).shards, 1);
  assert.equal(config(["--leader-elect", "--shards=8"]).shards, 8);
  assert.equal(config(["--leader-elect"], { OPERATOR_SHARDS: "4" }).shards, 4);
  assert.throws(() => parseConfig(["--shards=3"], {}), /--shards above 1 needs --leader-elect/);
  for (const bad of ["0", "-1", "2.5", "x", "257"])
    assert.throws(() => parseConfig(["--leader-elect", `--shards=${bad}`], {}), /--shards/, bad);
});

test("--shard-watch: all by default; labels only with --shards above 1; nothing else", () => {
  assert.equal(config([]).shardWatch, "all");
  assert.equal(config(["--leader-elect", "--shards=4", "--shard-watch=labels"]).shardWatch, "labels");
  assert.equal(
    config(["--leader-elect", "--shards=4"], { OPERATOR_SHARD_WATCH: "labels" }).shardWatch,
    "labels",
  );
  assert.throws(
    () => parseConfig(["--leader-elect", "--shard-watch=labels"], {}),
    /--shard-watch=labels needs --shards above 1/,
  );
  assert.throws(() => parseConfig(["--leader-elect", "--shards=4", "--shard-watch=some"], {}), /shard-watch/);
});

test("--watch-label-selector is the static split (same as --label-selector); not both", () => {
  assert.equal(config(["--watch-label-selector=shard=blue"]).labelSelector, "shard=blue");
  assert.equal(config(["--label-selector=env=prod"]).labelSelector, "env=prod");
  assert.throws(
    () => parseConfig(["--label-selector=a=b", "--watch-label-selector=c=d"], {}),
    /set only one/,
  );
});
