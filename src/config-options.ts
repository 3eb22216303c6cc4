import { LOG_LEVELS } from "./observability/logger.ts";

/**
 * Every operator option, as a flag and as environment variables. Precedence: flag, then
 * OPERATOR_<FLAG>, then the conventional variable (KUBECONFIG, WATCH_NAMESPACES, POD_NAME …),
 * then the default. Values are strings until zod parses them, so flags and env share one path.
 */
export interface OptionSpec {
  flag: string;
  description: string;
  /** Default as shown by --help (a computed default is described, not shown). */
  defaultText?: string;
  /** Conventional env var(s) read after OPERATOR_<FLAG>. */
  env?: readonly string[];
  boolean?: boolean;
}

export const OPTIONS = [
  {
    flag: "kubeconfig",
    description:
      "Path to a kubeconfig file (it must exist), or a list like KUBECONFIG's (merged as kubectl does, missing files skipped); " +
      "unset, and no KUBECONFIG: the in-cluster service account, then ~/.kube/config.",
    env: ["KUBECONFIG"],
  },
  { flag: "context", description: "kubeconfig context to use (its current context when unset)." },
  {
    flag: "namespaces",
    description: "Comma-separated namespaces to watch; empty watches all namespaces.",
    env: ["WATCH_NAMESPACES"],
    defaultText: "",
  },
  {
    flag: "label-selector",
    description: "Only manage CloudInstances/InstanceTemplates matching this label selector.",
  },
  {
    flag: "watch-label-selector",
    description:
      "The cluster admin's static split (Cluster API's watch filter): only watch and manage CloudInstances/InstanceTemplates matching this selector, e.g. one Deployment per value of a label. Same effect as --label-selector; set one of the two.",
  },
  { flag: "max-concurrent-reconciles", description: "Reconcile workers per controller.", defaultText: "10" },
  {
    flag: "queue-qps",
    description: "Overall retry rate of the work queue (token bucket qps).",
    defaultText: "10",
  },
  { flag: "queue-burst", description: "Burst of the work queue's token bucket.", defaultText: "100" },
  {
    flag: "resync-period",
    description:
      "How often every object is reconciled even without changes (drift detection), e.g. 30s, 5m, 1h.",
    defaultText: "5m",
  },
  {
    flag: "poll-initial",
    description: "First poll of a VM in transition (provisioning, stopping …); doubles up to --poll-max.",
    defaultText: "1s",
  },
  { flag: "poll-max", description: "Longest poll interval of a VM in transition.", defaultText: "30s" },
  {
    flag: "cluster-id",
    description:
      "This cluster's identity in VM ownership marks (2-16 of [a-z0-9]); unset: derived from the kube-system namespace's UID.",
  },
  {
    flag: "orphan-scan-period",
    description:
      "How often (jittered) each account's VMs carrying this cluster's mark are listed to find orphans (VMs whose object is gone); 0 turns the sweeper off.",
    defaultText: "30m",
  },
  {
    flag: "orphan-policy",
    description:
      "Report orphaned VMs (metric, Event, log), or Delete them once still orphaned after --orphan-grace.",
    defaultText: "Report",
  },
  {
    flag: "orphan-grace",
    description: "How long a VM must stay orphaned before Delete removes it.",
    defaultText: "24h",
  },
  {
    flag: "max-replicas",
    description:
      "Most CloudInstances one InstanceTemplate may own (its CRD allows at most 1000); more is reported as TooManyReplicas.",
    defaultText: "100",
  },
  {
    flag: "no-progress-limit",
    description:
      "Sends of the same mutating call while the VM does not change before the operator stops with Synced=False reason=NoProgress.",
    defaultText: "3",
  },
  {
    flag: "allowed-endpoints",
    description:
      "Comma-separated endpoint patterns provider credentials may be sent to (scheme://host[:port|:*][/path], host may start with *.; " +
      "`default` = every driver's documented endpoint). Internal addresses need an entry naming that host.",
    defaultText: "default",
  },
  {
    flag: "provider-qps",
    description: "Requests per second per provider credential (token bucket).",
    defaultText: "20",
  },
  { flag: "provider-burst", description: "Burst of the per-credential token bucket.", defaultText: "40" },
  {
    flag: "provider-max-concurrent",
    description: "Requests in flight at once per provider credential.",
    defaultText: "16",
  },
  {
    flag: "provider-max-inflight-per-account",
    description:
      "Reconciles of one provider account (credentials + endpoint) running at once: an account whose endpoint is slow " +
      "or whose rate limit is spent holds no more workers than this, its other objects are requeued and the workers serve other accounts.",
    defaultText: "max(1, ceil(max-concurrent-reconciles / 4))",
  },
  {
    flag: "provider-timeout",
    description:
      "How long one provider request may take in all (rate-limit waits, retries, headers and the whole body) before it fails with RequestTooSlow.",
    defaultText: "30s",
  },
  {
    flag: "provider-max-response-bytes",
    description:
      "Largest provider answer read (bytes, or with Ki/Mi/Gi); a larger one is abandoned with ResponseTooLarge.",
    defaultText: "8Mi",
  },
  {
    flag: "provider-max-pages",
    description: "Most pages one paginated provider list may take; it stops there with TooManyPages.",
    defaultText: "100",
  },
  {
    flag: "kube-api-qps",
    description:
      "Kubernetes API requests per second from the operator (client-side token bucket; watches and Lease renewals excepted); 0 turns the limit off.",
    defaultText: "200",
  },
  { flag: "kube-api-burst", description: "Burst of the Kubernetes API token bucket.", defaultText: "400" },
  {
    flag: "provider-limits",
    description:
      'Per-provider overrides as name=qps/burst/concurrent, comma-separated, e.g. "vscale=5/10/4,m2s=50/100/32".',
    defaultText: "",
  },
  {
    flag: "leader-elect",
    description: "Enable leader election (run several replicas, one active).",
    boolean: true,
    defaultText: "false",
  },
  {
    flag: "leader-election-namespace",
    description: "Namespace of the leader election Lease.",
    env: ["POD_NAMESPACE"],
    defaultText: "$POD_NAMESPACE or default",
  },
  {
    flag: "leader-election-id",
    description: "Name of the leader election Lease.",
    defaultText: "cloud-instance-operator-leader",
  },
  {
    flag: "shards",
    description:
      "Split the objects into this many shards (hash of the UID mod S), one Lease each (<leader-election-id>-shard-<i>); every replica holds about S/replicas of them and reconciles only their objects. 1: a single leader. Needs --leader-elect when above 1.",
    defaultText: "1",
  },
  {
    flag: "shard-watch",
    description:
      "With --shards above 1, what each replica lists and watches: all = every CloudInstance (the cache is complete, other shards' keys are dropped at the queue); labels = only the CloudInstances of the shards it holds, selected by the label <group>/shard-of-<S> that replicas write once per object.",
    defaultText: "all",
  },
  {
    flag: "leader-election-lease-duration",
    description: "How long a lease is valid without renewal.",
    defaultText: "15s",
  },
  {
    flag: "leader-election-renew-deadline",
    description: "The leader steps down when it could not renew for this long.",
    defaultText: "10s",
  },
  {
    flag: "leader-election-retry-period",
    description: "Interval between lease acquire/renew attempts.",
    defaultText: "2s",
  },
  {
    flag: "metrics-bind-address",
    description: 'Address of the /metrics endpoint; "0" disables it.',
    defaultText: ":8080",
  },
  {
    flag: "metrics-secure",
    description:
      "Serve /metrics over HTTPS to callers allowed by RBAC (TokenReview + SubjectAccessReview, get on /metrics); " +
      "false serves plain HTTP to anyone and is allowed on a loopback address only.",
    boolean: true,
    defaultText: "true",
  },
  {
    flag: "metrics-cert-dir",
    description:
      "Folder with tls.crt and tls.key for the metrics endpoint; unset: a self-signed certificate made at start.",
  },
  {
    flag: "health-probe-bind-address",
    description: 'Address of the /healthz and /readyz endpoints; "0" disables them.',
    defaultText: ":8081",
  },
  { flag: "log-level", description: `Log level: ${LOG_LEVELS.join(", ")}.`, defaultText: "info" },
  {
    flag: "pod-name",
    description: "Identity for leader election and events.",
    env: ["POD_NAME"],
    defaultText: "hostname",
  },
  {
    flag: "shutdown-grace-period",
    description: "How long in-flight reconciles may run after SIGTERM before they are cancelled.",
    defaultText: "30s",
  },
] as const satisfies readonly OptionSpec[];

export type FlagName = (typeof OPTIONS)[number]["flag"];

export function envName(flag: string): string {
  return `OPERATOR_${flag.toUpperCase().replaceAll("-", "_")}`;
}
