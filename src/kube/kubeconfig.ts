import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, dirname, isAbsolute, join } from "node:path";
import { parse } from "yaml";
import { z } from "zod";

/**
 * The kubeconfig subset an operator needs, loaded the way kubectl does: KUBECONFIG files merged
 * (the first to name a cluster, user or context wins), ~/.kube/config, or the in-cluster
 * service account. Credentials: bearer token, token file (re-read: projected tokens rotate),
 * client certificates, basic auth and exec credential plugins. Legacy auth-provider entries
 * (gcp, azure, oidc) are refused with a message pointing at exec plugins, as kubectl does now.
 *
 * Written here rather than taken from @kubernetes/client-node, whose KubeConfig loads that
 * package's whole generated API (about 85 MB of resident memory) for this small job.
 */
export class KubeConfigError extends Error {
  override readonly name = "KubeConfigError";
  readonly code = "ERR_KUBE_CONFIG";
}

const ExecSchema = z.looseObject({
  apiVersion: z.string().optional(),
  command: z.string(),
  args: z.array(z.string()).nullish(),
  env: z.array(z.object({ name: z.string(), value: z.string() })).nullish(),
  provideClusterInfo: z.boolean().optional(),
});
const ClusterSchema = z.looseObject({
  server: z.string(),
  "certificate-authority": z.string().optional(),
  "certificate-authority-data": z.string().optional(),
  "insecure-skip-tls-verify": z.boolean().optional(),
  "tls-server-name": z.string().optional(),
});
const UserSchema = z.looseObject({
  token: z.string().optional(),
  tokenFile: z.string().optional(),
  "client-certificate": z.string().optional(),
  "client-certificate-data": z.string().optional(),
  "client-key": z.string().optional(),
  "client-key-data": z.string().optional(),
  username: z.string().optional(),
  password: z.string().optional(),
  exec: ExecSchema.optional(),
  "auth-provider": z.looseObject({ name: z.string() }).optional(),
});
const ContextSchema = z.looseObject({
  cluster: z.string(),
  user: z.string().optional(),
  namespace: z.string().optional(),
});
const FileSchema = z.looseObject({
  clusters: z.array(z.looseObject({ name: z.string(), cluster: ClusterSchema })).nullish(),
  users: z.array(z.looseObject({ name: z.string(), user: UserSchema })).nullish(),
  contexts: z.array(z.looseObject({ name: z.string(), context: ContextSchema })).nullish(),
  "current-context": z.string().nullish(),
});

type Exec = z.infer<typeof ExecSchema>;

/** How one request authenticates; resolved per request (tokens rotate). */
export type Auth =
  | { kind: "none" }
  | { kind: "token"; token: string }
  | { kind: "tokenFile"; path: string }
  | { kind: "basic"; username: string; password: string }
  | { kind: "exec"; exec: Exec; server: string; ca: string | undefined; skipTLSVerify: boolean };

export interface KubeConfig {
  server: URL;
  /** PEM, when the cluster names a CA. */
  ca: string | undefined;
  cert: string | undefined;
  key: string | undefined;
  skipTLSVerify: boolean;
  servername: string | undefined;
  auth: Auth;
  /** Where the config came from, for messages. */
  source: string;
}

const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

function fail(message: string, cause?: unknown): never {
  throw new KubeConfigError(
    `cannot load Kubernetes config: ${message}`,
    cause === undefined ? undefined : { cause },
  );
}

function readRelative(path: string, base: string): string {
  const full = isAbsolute(path) ? path : join(base, path);
  try {
    return readFileSync(full, "utf8");
  } catch (err) {
    fail(`cannot read ${full}`, err);
  }
}
const b64 = (s: string): string => Buffer.from(s, "base64").toString("utf8");

interface Loaded {
  file: z.infer<typeof FileSchema>;
  dir: string;
}

/** Resolves the current context of merged kubeconfig documents into a connection config. */
function resolve(docs: Loaded[], context: string | undefined, source: string): KubeConfig {
  const find = (
    key: "clusters" | "users" | "contexts",
    name: string,
  ): { entry: { name: string } & Record<string, unknown>; dir: string } | undefined => {
    for (const d of docs) {
      const list: readonly { name: string }[] = d.file[key] ?? [];
      const hit = list.find((e) => e.name === name);
      if (hit) return { entry: hit, dir: d.dir };
    }
    return undefined;
  };
  const current = context ?? docs.map((d) => d.file["current-context"]).find((c) => c) ?? undefined;
  if (!current) fail(`${source} has no current-context`);
  const ctx = find("contexts", current);
  if (!ctx) fail(`context "${current}" not found in ${source}`);
  const { cluster: clusterName, user: userName } = ctx.entry.context as z.infer<typeof ContextSchema>;
  const cl = find("clusters", clusterName);
  if (!cl) fail(`cluster "${clusterName}" of context "${current}" not found`);
  const cluster = cl.entry.cluster as z.infer<typeof ClusterSchema>;
  let server: URL;
  try {
    server = new URL(cluster.server);
  } catch (err) {
    fail(`cluster "${clusterName}" has no valid server URL`, err);
  }
  const ca = cluster["certificate-authority-data"]
    ? b64(cluster["certificate-authority-data"])
    : cluster["certificate-authority"]
      ? readRelative(cluster["certificate-authority"], cl.dir)
      : undefined;
  const skipTLSVerify = cluster["insecure-skip-tls-verify"] === true;
  const u = userName === undefined ? undefined : find("users", userName);
  const user = (u?.entry.user ?? {}) as z.infer<typeof UserSchema>;
  const dir = u?.dir ?? cl.dir;
  if (user["auth-provider"])
    fail(
      `user "${userName ?? ""}" uses the legacy auth-provider "${user["auth-provider"].name}", which this operator does not support; use an exec credential plugin (kubectl's own advice)`,
    );
  const cert = user["client-certificate-data"]
    ? b64(user["client-certificate-data"])
    : user["client-certificate"]
      ? readRelative(user["client-certificate"], dir)
      : undefined;
  const key = user["client-key-data"]
    ? b64(user["client-key-data"])
    : user["client-key"]
      ? readRelative(user["client-key"], dir)
      : undefined;
  let auth: Auth = { kind: "none" };
  if (user.token) auth = { kind: "token", token: user.token };
  else if (user.tokenFile)
    auth = {
      kind: "tokenFile",
      path: isAbsolute(user.tokenFile) ? user.tokenFile : join(dir, user.tokenFile),
    };
  else if (user.exec) auth = { kind: "exec", exec: user.exec, server: cluster.server, ca, skipTLSVerify };
  else if (user.username !== undefined && user.password !== undefined)
    auth = { kind: "basic", username: user.username, password: user.password };
  return { server, ca, cert, key, skipTLSVerify, servername: cluster["tls-server-name"], auth, source };
}

function parseDoc(text: string, where: string): z.infer<typeof FileSchema> {
  let raw: unknown;
  try {
    raw = parse(text) as unknown;
  } catch (err) {
    fail(`${where} is not valid YAML`, err);
  }
  const parsed = FileSchema.safeParse(raw ?? {});
  if (!parsed.success)
    fail(
      `${where}: ${parsed.error.issues[0]?.path.join(".") ?? ""} ${parsed.error.issues[0]?.message ?? ""}`,
    );
  return parsed.data;
}

/** A kubeconfig from YAML text (tests and the demo hand their embedded server's config). */
export function kubeConfigFromString(yaml: string, context?: string): KubeConfig {
  return resolve(
    [{ file: parseDoc(yaml, "kubeconfig text"), dir: process.cwd() }],
    context,
    "kubeconfig text",
  );
}

/** The in-cluster service account, when running in a pod. */
export function inClusterConfig(env: NodeJS.ProcessEnv = process.env, dir = SA_DIR): KubeConfig | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port || !existsSync(join(dir, "token"))) return undefined;
  const h = host.includes(":") ? `[${host}]` : host;
  return {
    server: new URL(`https://${h}:${port}`),
    ca: existsSync(join(dir, "ca.crt")) ? readFileSync(join(dir, "ca.crt"), "utf8") : undefined,
    cert: undefined,
    key: undefined,
    skipTLSVerify: false,
    servername: undefined,
    auth: { kind: "tokenFile", path: join(dir, "token") },
    source: "in-cluster service account",
  };
}

/**
 * Loads the config like kubectl: the given paths (KUBECONFIG-style, merged), else
 * ~/.kube/config, else the in-cluster service account.
 */
export function loadKubeConfig(opts: {
  kubeconfig?: string | undefined;
  context?: string | undefined;
  env?: NodeJS.ProcessEnv;
}): KubeConfig {
  const env = opts.env ?? process.env;
  let paths = (opts.kubeconfig ?? env.KUBECONFIG ?? "").split(delimiter).filter((p) => p !== "");
  if (paths.length === 0) {
    const home = join(env.HOME ?? homedir(), ".kube", "config");
    if (existsSync(home)) paths = [home];
    else {
      const pod = inClusterConfig(env);
      if (pod) return pod;
      fail("no kubeconfig (--kubeconfig, KUBECONFIG, ~/.kube/config) and not running in a cluster");
    }
  }
  const docs = paths.map((p) => {
    let text: string;
    try {
      text = readFileSync(p, "utf8");
    } catch (err) {
      fail(`cannot read ${p}`, err);
    }
    return { file: parseDoc(text, p), dir: dirname(p) };
  });
  return resolve(docs, opts.context, paths.join(delimiter));
}

const ExecCredentialSchema = z.looseObject({
  status: z.looseObject({
    token: z.string().optional(),
    expirationTimestamp: z.string().optional(),
  }),
});

/** Produces the Authorization header; caches exec tokens until they expire and token files for a while. */
export class Credentials {
  readonly #auth: Auth;
  #cached: { value: string; until: number } | undefined;

  constructor(auth: Auth) {
    this.#auth = auth;
  }

  async authorization(now = Date.now()): Promise<string | undefined> {
    const a = this.#auth;
    switch (a.kind) {
      case "none":
        return undefined;
      case "token":
        return `Bearer ${a.token}`;
      case "basic":
        return `Basic ${Buffer.from(`${a.username}:${a.password}`).toString("base64")}`;
      case "tokenFile": {
        if (this.#cached && now < this.#cached.until) return this.#cached.value;
        const token = readFileSync(a.path, "utf8").trim();
        // Projected service account tokens rotate well before they expire; a minute is plenty.
        this.#cached = { value: `Bearer ${token}`, until: now + 60_000 };
        return this.#cached.value;
      }
      case "exec": {
        if (this.#cached && now < this.#cached.until) return this.#cached.value;
        const cred = await runExec(a);
        const expires = cred.status.expirationTimestamp ? Date.parse(cred.status.expirationTimestamp) : NaN;
        if (!cred.status.token) throw new KubeConfigError(`exec plugin ${a.exec.command} returned no token`);
        this.#cached = {
          value: `Bearer ${cred.status.token}`,
          // Refresh a little early; without an expiry, ask again in five minutes.
          until: Number.isNaN(expires) ? now + 300_000 : expires - 30_000,
        };
        return this.#cached.value;
      }
    }
  }

  /** Forget a cached credential (after a 401). */
  invalidate(): void {
    this.#cached = undefined;
  }
}

function runExec(a: Extract<Auth, { kind: "exec" }>): Promise<z.infer<typeof ExecCredentialSchema>> {
  const apiVersion = a.exec.apiVersion ?? "client.authentication.k8s.io/v1";
  const info = {
    apiVersion,
    kind: "ExecCredential",
    spec: {
      interactive: false,
      ...(a.exec.provideClusterInfo
        ? {
            cluster: {
              server: a.server,
              ...(a.ca ? { "certificate-authority-data": Buffer.from(a.ca).toString("base64") } : {}),
              "insecure-skip-tls-verify": a.skipTLSVerify,
            },
          }
        : {}),
    },
  };
  const env: NodeJS.ProcessEnv = { ...process.env, KUBERNETES_EXEC_INFO: JSON.stringify(info) };
  for (const e of a.exec.env ?? []) env[e.name] = e.value;
  return new Promise((resolvePromise, reject) => {
    execFile(
      a.exec.command,
      a.exec.args ?? [],
      { env, timeout: 60_000, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        if (err) {
          reject(
            new KubeConfigError(`exec plugin ${a.exec.command} failed: ${stderr.trim() || err.message}`, {
              cause: err,
            }),
          );
          return;
        }
        let parsed: unknown;
        try {
          parsed = JSON.parse(stdout) as unknown;
        } catch (e) {
          reject(
            new KubeConfigError(`exec plugin ${a.exec.command} printed no ExecCredential JSON`, { cause: e }),
          );
          return;
        }
        const cred = ExecCredentialSchema.safeParse(parsed);
        if (cred.success) resolvePromise(cred.data);
        else reject(new KubeConfigError(`exec plugin ${a.exec.command} printed an invalid ExecCredential`));
      },
    );
  });
}
