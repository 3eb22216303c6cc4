import { hostname } from "node:os";
import { z } from "zod";
import { LOG_LEVELS } from "./observability/logger.ts";
import { parseDuration } from "./util/duration.ts";
import { EndpointPolicy } from "./providers/endpoint-policy.ts";
import { MAX_SHARDS } from "./controller/runtime/sharding.ts";
import { SHARD_WATCH_MODES } from "./controller/runtime/shard-watch.ts";

export { OPTIONS, envName, type FlagName, type OptionSpec } from "./config-options.ts";
import { envName, OPTIONS, type OptionSpec } from "./config-options.ts";

const duration = (name: string) =>
  z.string().transform((s, ctx) => {
    try {
      return parseDuration(s);
    } catch {
      ctx.addIssue({
        code: "custom",
        message: `--${name}: invalid duration "${s}" (use forms like 30s, 5m, 1h)`,
      });
      return z.NEVER;
    }
  });

const positiveInt = z.coerce.number<string>().int().positive();

/**
 * --provider-max-inflight-per-account's default: a quarter of the workers (at least 1). One
 * account whose endpoint is slow or whose budget is spent holds at most that many workers;
 * the other accounts always have the rest.
 */
export function defaultMaxInflightPerAccount(workers: number): number {
  return Math.max(1, Math.ceil(workers / 4));
}

const BYTE_UNITS: Record<string, number> = { "": 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };
const byteSize = (name: string) =>
  z.string().transform((s, ctx) => {
    const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(s.trim());
    const n = m ? Number(m[1]) * (BYTE_UNITS[m[2] ?? ""] ?? 1) : NaN;
    if (Number.isSafeInteger(n) && n >= 1024) return n;
    ctx.addIssue({
      code: "custom",
      message: `--${name}: "${s}" is not a size of at least 1Ki (bytes, Ki, Mi, Gi)`,
    });
    return z.NEVER;
  });

function isLoopbackBind(address: string): boolean {
  const host = address.slice(0, address.lastIndexOf(":")).replace(/^\[(.*)\]$/, "$1");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
const bool = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((v) => v === "true" || v === "1" || v === "yes");
const bindAddress = z
  .string()
  .regex(/^(0|(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]*):\d{1,5})$/, 'use host:port, ":port" or "0" to disable');
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === "" ? undefined : v.trim()));

export const ConfigSchema = z
  .object({
    kubeconfig: optionalString,
    context: optionalString,
    namespaces: z
      .string()
      .default("")
      .transform((v) =>
        v
          .split(",")
          .map((s) => s.trim())
          .filter((s) => s !== ""),
      )
      .pipe(z.array(z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "not a valid namespace name"))),
    "label-selector": optionalString,
    "watch-label-selector": optionalString,
    "max-concurrent-reconciles": z.string().default("10").pipe(positiveInt),
    "queue-qps": z.string().default("10").pipe(z.coerce.number<string>().positive()),
    "queue-burst": z.string().default("100").pipe(positiveInt),
    "resync-period": duration("resync-period").default(5 * 60_000),
    "poll-initial": duration("poll-initial").default(1_000),
    "poll-max": duration("poll-max").default(30_000),
    "no-progress-limit": z.string().default("3").pipe(positiveInt),
    "max-replicas": z.string().default("100").pipe(positiveInt.max(1000)),
    "orphan-scan-period": z
      .string()
      .default("30m")
      .transform((v, ctx) => {
        if (v === "0") return 0;
        try {
          return parseDuration(v);
        } catch {
          ctx.addIssue({ code: "custom", message: `invalid duration "${v}"` });
          return z.NEVER;
        }
      }),
    "orphan-policy": z.enum(["Report", "Delete"]).default("Report"),
    "orphan-grace": duration("orphan-grace").default(24 * 3_600_000),
    "cluster-id": z
      .string()
      .regex(/^[a-z0-9]{2,16}$/, "2 to 16 lowercase letters or digits")
      .optional(),
    "allowed-endpoints": z
      .string()
      .default("")
      .transform((v, ctx) => {
        const list = v
          .split(",")
          .map((x) => x.trim())
          .filter((x) => x !== "");
        try {
          new EndpointPolicy(list, []);
        } catch (err) {
          ctx.addIssue({ code: "custom", message: err instanceof Error ? err.message : String(err) });
          return z.NEVER;
        }
        return list;
      }),
    "provider-qps": z.string().default("20").pipe(z.coerce.number<string>().positive()),
    "provider-burst": z.string().default("40").pipe(positiveInt),
    "provider-max-concurrent": z.string().default("16").pipe(positiveInt),
    "provider-max-inflight-per-account": z.string().pipe(positiveInt).optional(),
    "provider-timeout": duration("provider-timeout").default(30_000),
    "provider-max-response-bytes": byteSize("provider-max-response-bytes").default(8 * 1024 ** 2),
    "provider-max-pages": z.string().default("100").pipe(positiveInt),
    "kube-api-qps": z.string().default("200").pipe(z.coerce.number<string>().nonnegative()),
    "kube-api-burst": z.string().default("400").pipe(positiveInt),
    "provider-limits": z
      .string()
      .default("")
      .transform((v, ctx) => {
        const out: Record<string, { qps: number; burst: number; maxConcurrent: number }> = {};
        for (const part of v
          .split(",")
          .map((x) => x.trim())
          .filter((x) => x !== "")) {
          const m = /^(?<name>[a-z0-9-]+)=(?<qps>\d+(?:\.\d+)?)\/(?<burst>\d+)\/(?<conc>\d+)$/.exec(part);
          const g = m?.groups;
          if (g?.name === undefined) {
            ctx.addIssue({ code: "custom", message: `"${part}" is not name=qps/burst/concurrent` });
            return z.NEVER;
          }
          out[g.name] = { qps: Number(g.qps), burst: Number(g.burst), maxConcurrent: Number(g.conc) };
        }
        return out;
      }),
    "leader-elect": bool.default(false),
    shards: z.string().default("1").pipe(positiveInt.max(MAX_SHARDS)),
    "shard-watch": z.enum(SHARD_WATCH_MODES).default("all"),
    "leader-election-namespace": z.string().min(1).default("default"),
    "leader-election-id": z.string().min(1).default("cloud-instance-operator-leader"),
    "leader-election-lease-duration": duration("leader-election-lease-duration").default(15_000),
    "leader-election-renew-deadline": duration("leader-election-renew-deadline").default(10_000),
    "leader-election-retry-period": duration("leader-election-retry-period").default(2_000),
    "metrics-bind-address": bindAddress.default(":8080"),
    "metrics-secure": bool.default(true),
    "metrics-cert-dir": optionalString,
    "health-probe-bind-address": bindAddress.default(":8081"),
    "log-level": z.enum(LOG_LEVELS).default("info"),
    "pod-name": z.string().min(1).optional(),
    "shutdown-grace-period": duration("shutdown-grace-period").default(30_000),
  })
  .transform((c) => ({
    kubeconfig: c.kubeconfig,
    context: c.context,
    namespaces: c.namespaces,
    labelSelector: c["label-selector"] ?? c["watch-label-selector"],
    bothSelectors: c["label-selector"] !== undefined && c["watch-label-selector"] !== undefined,
    maxConcurrentReconciles: c["max-concurrent-reconciles"],
    queueQps: c["queue-qps"],
    queueBurst: c["queue-burst"],
    resyncPeriodMs: c["resync-period"],
    pollInitialMs: c["poll-initial"],
    pollMaxMs: c["poll-max"],
    noProgressLimit: c["no-progress-limit"],
    maxReplicas: c["max-replicas"],
    orphans: {
      scanPeriodMs: c["orphan-scan-period"],
      policy: c["orphan-policy"],
      graceMs: c["orphan-grace"],
    },
    clusterID: c["cluster-id"],
    providerLimits: {
      default: {
        qps: c["provider-qps"],
        burst: c["provider-burst"],
        maxConcurrent: c["provider-max-concurrent"],
      },
      perProvider: c["provider-limits"],
    },
    providerTimeoutMs: c["provider-timeout"],
    providerMaxResponseBytes: c["provider-max-response-bytes"],
    providerMaxPages: c["provider-max-pages"],
    providerMaxInflightPerAccount:
      c["provider-max-inflight-per-account"] ?? defaultMaxInflightPerAccount(c["max-concurrent-reconciles"]),
    kubeApiRateLimit:
      c["kube-api-qps"] > 0 ? { qps: c["kube-api-qps"], burst: c["kube-api-burst"] } : undefined,
    allowedEndpoints: c["allowed-endpoints"],
    leaderElect: c["leader-elect"],
    shards: c.shards,
    shardWatch: c["shard-watch"],
    leaderElectionNamespace: c["leader-election-namespace"],
    leaderElectionId: c["leader-election-id"],
    leaseDurationMs: c["leader-election-lease-duration"],
    renewDeadlineMs: c["leader-election-renew-deadline"],
    retryPeriodMs: c["leader-election-retry-period"],
    metricsBindAddress: c["metrics-bind-address"],
    healthProbeBindAddress: c["health-probe-bind-address"],
    metricsSecure: c["metrics-secure"],
    metricsCertDir: c["metrics-cert-dir"],
    logLevel: c["log-level"],
    podName: c["pod-name"] ?? hostname(),
    shutdownGracePeriodMs: c["shutdown-grace-period"],
  }))
  .refine((c) => c.metricsSecure || c.metricsBindAddress === "0" || isLoopbackBind(c.metricsBindAddress), {
    message:
      "--metrics-secure=false serves metrics to anyone: only on a loopback --metrics-bind-address (127.0.0.1:port)",
  })
  .refine(
    (c) =>
      !c.metricsSecure || c.metricsBindAddress === "0" || c.metricsBindAddress !== c.healthProbeBindAddress,
    {
      message:
        "secure metrics (HTTPS) and the plain-HTTP probes need two addresses: set --health-probe-bind-address apart from --metrics-bind-address",
    },
  )
  .refine((c) => c.pollInitialMs <= c.pollMaxMs, {
    message: "--poll-initial must not be longer than --poll-max",
  })
  .refine((c) => c.renewDeadlineMs < c.leaseDurationMs, {
    message: "--leader-election-renew-deadline must be shorter than --leader-election-lease-duration",
  })
  .refine((c) => c.retryPeriodMs < c.renewDeadlineMs, {
    message: "--leader-election-retry-period must be shorter than --leader-election-renew-deadline",
  })
  .refine((c) => c.shards === 1 || c.leaderElect, {
    message: "--shards above 1 needs --leader-elect (each shard is a Lease)",
  })
  .refine((c) => c.shardWatch === "all" || c.shards > 1, {
    message: "--shard-watch=labels needs --shards above 1 (it watches the shards a replica holds)",
  })
  .refine((c) => !c.bothSelectors, {
    message: "--label-selector and --watch-label-selector mean the same: set only one",
  })
  .transform(({ bothSelectors: _, ...c }) => c);

export type OperatorConfig = z.output<typeof ConfigSchema>;

/** Bad flags or values: main prints the message and exits 2. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly code = "ERR_CONFIG";
}

export type ParseOutcome = { kind: "config"; config: OperatorConfig } | { kind: "help"; text: string };

const SPECS: readonly OptionSpec[] = OPTIONS;
const BY_FLAG = new Map(SPECS.map((o) => [o.flag, o]));

/** Parses argv (without node and script) and env into a validated config, or the help text. */
export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ParseOutcome {
  const fromFlags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--help" || arg === "-h") return { kind: "help", text: helpText() };
    if (!arg.startsWith("--")) throw new ConfigError(`unexpected argument "${arg}" (see --help)`);
    const eq = arg.indexOf("=");
    const flag = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = BY_FLAG.get(flag);
    if (!spec) throw new ConfigError(`unknown flag --${flag} (see --help)`);
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else if (spec.boolean) value = "true";
    else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith("--")) throw new ConfigError(`flag --${flag} needs a value`);
      value = next;
      i++;
    }
    fromFlags.set(flag, value);
  }
  const raw: Record<string, string> = {};
  for (const spec of SPECS) {
    const candidates = [
      fromFlags.get(spec.flag),
      env[envName(spec.flag)],
      ...(spec.env ?? []).map((e) => env[e]),
    ];
    const value = candidates.find((v) => v !== undefined);
    if (value !== undefined) raw[spec.flag] = value;
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const flag = i.path[0];
      return typeof flag === "string" && !i.message.startsWith("--") ? `--${flag}: ${i.message}` : i.message;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join("\n  ")}`);
  }
  return { kind: "config", config: parsed.data };
}

export function helpText(): string {
  const rows = SPECS.map((o) => {
    const envs = [envName(o.flag), ...(o.env ?? [])].join(", ");
    const def =
      o.defaultText === undefined ? "" : ` (default: ${o.defaultText === "" ? '""' : o.defaultText})`;
    const arg = o.boolean ? "" : " <value>";
    return `  --${o.flag}${arg}\n      ${o.description}${def}\n      env: ${envs}`;
  });
  return [
    "cloud-instance-operator: manages cloud VMs as Kubernetes CloudInstance resources.",
    "",
    "Usage: cloud-instance-operator [flags]",
    "",
    "Flags (each also read from the environment; flags win over env):",
    ...rows,
    "  --help",
    "      Show this help.",
    "",
  ].join("\n");
}
