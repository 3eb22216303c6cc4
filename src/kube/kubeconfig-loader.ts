import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, dirname, isAbsolute, join } from "node:path";
import type { Cluster, Context, KubeConfig, User } from "@kubernetes/client-node";
import { parse } from "yaml";
import { z } from "zod";
import type { HeaderMap } from "../util/transport/transport.ts";
import {
  EXEC_PROVIDER,
  ExecAuthenticator,
  ExecConfigSchema,
  TOKEN_FILE_PROVIDER,
  TokenFileAuthenticator,
  type ExecClusterInfo,
  type RefreshableAuthenticator,
} from "./authenticators.ts";
import { clientNode } from "./client-node.ts";
import { configError } from "./kubeconfig-errors.ts";

/**
 * Where the configuration comes from. Loading is deferred to `connect()` (asynchronous: the
 * library is imported on first use, see client-node.ts).
 */
export type KubeConfigSource =
  | { kind: "text"; yaml: string; context: string | undefined }
  | {
      kind: "discover";
      kubeconfig: string | undefined;
      context: string | undefined;
      env: NodeJS.ProcessEnv;
      /** Prefix of the service account directory (tests); "" in a pod. */
      serviceAccountRoot: string;
    };

/** A kubeconfig given as YAML (tests and the demo hand their embedded server's config). */
export function kubeConfigFromString(yaml: string, context?: string): KubeConfigSource {
  return { kind: "text", yaml, context };
}

/**
 * controller-runtime's order (pkg/client/config): the --kubeconfig flag, else the KUBECONFIG
 * list (merged like kubectl; missing files skipped, as client-go does), else the in-cluster
 * service account, else ~/.kube/config. In-cluster comes before the home file so that a pod
 * whose image happens to carry a ~/.kube/config still uses its own service account.
 */
export function loadKubeConfig(opts: {
  kubeconfig?: string | undefined;
  context?: string | undefined;
  env?: NodeJS.ProcessEnv;
  serviceAccountRoot?: string;
}): KubeConfigSource {
  return {
    kind: "discover",
    kubeconfig: opts.kubeconfig,
    context: opts.context,
    env: opts.env ?? process.env,
    serviceAccountRoot: opts.serviceAccountRoot ?? "",
  };
}

/** The resolved configuration: client-node's KubeConfig plus what it does not carry itself. */
export interface LoadedKubeConfig {
  /** client-node's KubeConfig with the current context set and our authenticators added. */
  kc: KubeConfig;
  server: URL;
  /** The context's namespace (in a pod: the service account's namespace). */
  namespace: string | undefined;
  proxyUrl: string | undefined;
  /** as-groups, as-uid and as-user-extra, which client-node drops (it sends `as` alone). */
  impersonation: HeaderMap;
  /** Told when the server refused a credential, so the next request asks afresh. */
  refreshable: RefreshableAuthenticator[];
  /** Where the config came from, for messages. */
  source: string;
}

const SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount";

export async function resolveKubeConfig(source: KubeConfigSource): Promise<LoadedKubeConfig> {
  const { KubeConfig } = await clientNode();
  if (source.kind === "text") {
    const doc = parseDoc(new KubeConfig(), source.yaml, process.cwd(), "kubeconfig text");
    return finish(merge([doc], source.context, "kubeconfig text"), new KubeConfig());
  }
  const { env } = source;
  const explicit = source.kubeconfig ?? "";
  // The operator's --kubeconfig also takes KUBECONFIG's value (src/config.ts), which may be a list.
  if (explicit !== "" && !explicit.includes(delimiter)) {
    // An explicitly named file must exist (client-go's ExplicitPath).
    const doc = readDoc(new KubeConfig(), explicit);
    return finish(merge([doc], source.context, explicit), new KubeConfig());
  }
  const list = (explicit || (env.KUBECONFIG ?? "")).split(delimiter).filter((p) => p !== "");
  if (list.length > 0) {
    const present = list.filter((p) => existsSync(p));
    if (present.length === 0) configError(`none of the KUBECONFIG files exist (${list.join(delimiter)})`);
    const docs = present.map((p) => readDoc(new KubeConfig(), p));
    return finish(merge(docs, source.context, present.join(delimiter)), new KubeConfig());
  }
  const sa = `${source.serviceAccountRoot}${SERVICE_ACCOUNT}`;
  if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT && existsSync(join(sa, "token"))) {
    const kc = new KubeConfig();
    // client-node reads the host and port from process.env.
    withEnv(env, () => {
      kc.loadFromCluster(source.serviceAccountRoot);
    });
    return finish(fromKubeConfig(kc, "in-cluster service account"), new KubeConfig());
  }
  const home = join(env.HOME ?? homedir(), ".kube", "config");
  if (existsSync(home))
    return finish(merge([readDoc(new KubeConfig(), home)], source.context, home), new KubeConfig());
  return configError("no kubeconfig (--kubeconfig, KUBECONFIG, ~/.kube/config) and not running in a cluster");
}

function withEnv(env: NodeJS.ProcessEnv, fn: () => void): void {
  if (env === process.env) return fn();
  const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
  process.env.KUBERNETES_SERVICE_HOST = env.KUBERNETES_SERVICE_HOST;
  process.env.KUBERNETES_SERVICE_PORT = env.KUBERNETES_SERVICE_PORT;
  try {
    fn();
  } finally {
    restore("KUBERNETES_SERVICE_HOST", saved.host);
    restore("KUBERNETES_SERVICE_PORT", saved.port);
  }
}
function restore(name: string, value: string | undefined): void {
  if (value === undefined) Reflect.deleteProperty(process.env, name);
  else process.env[name] = value;
}

/** The fields of a kubeconfig user that client-node's parser drops. */
const UserExtrasSchema = z.looseObject({
  tokenFile: z.string().optional(),
  "as-groups": z.array(z.string()).nullish(),
  "as-uid": z.string().optional(),
  "as-user-extra": z.record(z.string(), z.array(z.string())).nullish(),
});
type UserExtras = z.infer<typeof UserExtrasSchema>;
const DocExtrasSchema = z.looseObject({
  users: z.array(z.looseObject({ name: z.string(), user: UserExtrasSchema.nullish() })).nullish(),
});

interface Doc {
  kc: KubeConfig;
  /** The folder relative paths (files, exec commands) resolve against. */
  dir: string;
  extras: Map<string, UserExtras>;
}

function readDoc(kc: KubeConfig, path: string): Doc {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    return configError(`cannot read ${path}`, err);
  }
  return parseDoc(kc, text, dirname(path), path);
}

function parseDoc(kc: KubeConfig, text: string, dir: string, where: string): Doc {
  let raw: unknown;
  try {
    raw = parse(text) as unknown;
    kc.loadFromString(text);
  } catch (err) {
    return configError(
      `${where} is not a valid kubeconfig: ${err instanceof Error ? err.message : String(err)}`,
      err,
    );
  }
  kc.makePathsAbsolute(dir);
  const extras = DocExtrasSchema.safeParse(raw ?? {});
  if (!extras.success) {
    const issue = extras.error.issues[0];
    configError(`${where}: ${issue?.path.join(".") ?? ""} ${issue?.message ?? ""}`);
  }
  return {
    kc,
    dir,
    extras: new Map((extras.data.users ?? []).map((u) => [u.name, u.user ?? {}])),
  };
}

/** The selected context's entries, merged from several documents. */
interface Selection {
  context: Context;
  cluster: Cluster;
  user: User | undefined;
  extras: UserExtras;
  dir: string;
  source: string;
}

/**
 * kubectl's merge rules, which client-node's mergeConfig does not follow (it lets later files
 * override current-context and throws on a name two files define): the first file to name a
 * cluster, user or context wins, and current-context comes from the first file that sets one.
 */
function merge(docs: Doc[], context: string | undefined, source: string): Selection {
  const first = <T extends { name: string }>(pick: (kc: KubeConfig) => T[], name: string) => {
    for (const d of docs) {
      const hit = pick(d.kc).find((e) => e.name === name);
      if (hit) return { entry: hit, doc: d };
    }
    return undefined;
  };
  const current = context ?? docs.map((d) => d.kc.getCurrentContext()).find((c) => c);
  if (!current) return configError(`${source} has no current-context`);
  const ctx = first((kc) => kc.getContexts(), current);
  if (!ctx) return configError(`context "${current}" is not defined in ${source}`);
  const cl = first((kc) => kc.getClusters(), ctx.entry.cluster);
  if (!cl)
    return configError(`cluster "${ctx.entry.cluster}" of context "${current}" is not defined in ${source}`);
  const userName = ctx.entry.user;
  const u = userName ? first((kc) => kc.getUsers(), userName) : undefined;
  // client-go's ConfirmUsable; client-node would silently send no credentials at all.
  if (userName && !u)
    return configError(`user "${userName}" of context "${current}" is not defined in ${source}`);
  return {
    context: ctx.entry,
    cluster: cl.entry,
    user: u?.entry,
    extras: (userName ? u?.doc.extras.get(userName) : undefined) ?? {},
    dir: u?.doc.dir ?? cl.doc.dir,
    source,
  };
}

function fromKubeConfig(kc: KubeConfig, source: string): Selection {
  const context = kc.getContextObject(kc.getCurrentContext());
  const cluster = kc.getCurrentCluster();
  if (!context || !cluster) return configError(`${source} has no usable context`);
  return { context, cluster, user: kc.getCurrentUser() ?? undefined, extras: {}, dir: process.cwd(), source };
}

/** One KubeConfig holding only the selected context, its credential routed where needed. */
function finish(sel: Selection, kc: KubeConfig): LoadedKubeConfig {
  const { cluster, context, source } = sel;
  let server: URL;
  try {
    server = new URL(cluster.server);
  } catch (err) {
    return configError(`cluster "${cluster.name}" has no valid server URL`, err);
  }
  if (cluster.skipTLSVerify && (cluster.caData || cluster.caFile))
    configError(
      `cluster "${cluster.name}": a certificate authority together with insecure-skip-tls-verify is not allowed (client-go refuses it too)`,
    );
  const refreshable: RefreshableAuthenticator[] = [];
  const user = sel.user ? route(sel.user, sel, refreshable) : undefined;
  kc.loadFromOptions({
    clusters: [cluster],
    users: user ? [user] : [],
    contexts: [context],
    currentContext: context.name,
  });
  for (const a of refreshable) kc.addAuthenticator(a);
  return {
    kc,
    server,
    namespace: context.namespace?.trim() || undefined,
    proxyUrl: cluster.proxyUrl || undefined,
    impersonation: impersonation(sel.extras),
    refreshable,
    source,
  };
}

/** Sends exec plugins and token files to our authenticators (see authenticators.ts for why). */
function route(user: User, sel: Selection, refreshable: RefreshableAuthenticator[]): User {
  const provider = user.authProvider as
    { name?: string; config?: Record<string, unknown> } | null | undefined;
  const tokenFile =
    sel.extras.tokenFile ??
    (typeof provider?.config?.["tokenFile"] === "string" ? provider.config["tokenFile"] : undefined);
  if (user.exec) {
    const parsed = ExecConfigSchema.safeParse(user.exec);
    if (!parsed.success)
      return configError(
        `user "${user.name}" has an invalid exec section: ${parsed.error.issues[0]?.message ?? ""}`,
      );
    const plugin = parsed.data;
    // client-go resolves a command with a path separator against the kubeconfig's folder.
    const command =
      plugin.command.includes("/") && !isAbsolute(plugin.command)
        ? join(sel.dir, plugin.command)
        : plugin.command;
    refreshable.push(new ExecAuthenticator());
    return {
      ...user,
      exec: undefined,
      authProvider: {
        name: EXEC_PROVIDER,
        config: { plugin: { ...plugin, command }, cluster: clusterInfo(sel.cluster) },
      },
    };
  }
  if (tokenFile !== undefined) {
    refreshable.push(new TokenFileAuthenticator());
    // client-go: the token read from the file wins over an inline token.
    const { token: _inline, ...rest } = user;
    return {
      ...rest,
      authProvider: {
        name: TOKEN_FILE_PROVIDER,
        config: { path: isAbsolute(tokenFile) ? tokenFile : join(sel.dir, tokenFile) },
      },
    };
  }
  return user;
}

function clusterInfo(cluster: Cluster): ExecClusterInfo {
  const ca = cluster.caData ?? (cluster.caFile ? readFileSync(cluster.caFile).toString("base64") : undefined);
  return {
    server: cluster.server,
    ...(ca ? { "certificate-authority-data": ca } : {}),
    ...(cluster.skipTLSVerify ? { "insecure-skip-tls-verify": true } : {}),
    ...(cluster.tlsServerName ? { "tls-server-name": cluster.tlsServerName } : {}),
    ...(cluster.proxyUrl ? { "proxy-url": cluster.proxyUrl } : {}),
  };
}

function impersonation(extras: UserExtras): HeaderMap {
  const headers: HeaderMap = {};
  const groups = extras["as-groups"] ?? [];
  if (groups.length > 0) headers["impersonate-group"] = groups;
  if (extras["as-uid"]) headers["impersonate-uid"] = extras["as-uid"];
  for (const [key, values] of Object.entries(extras["as-user-extra"] ?? {}))
    headers[`impersonate-extra-${encodeURIComponent(key)}`] = values;
  return headers;
}
