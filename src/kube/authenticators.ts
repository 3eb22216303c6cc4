import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import type { OutgoingHttpHeaders } from "node:http";
import type https from "node:https";
import type { User } from "@kubernetes/client-node";
import type { Authenticator } from "@kubernetes/client-node/dist/auth.js";
import { z } from "zod";
import { KubeConfigError } from "./kubeconfig-errors.ts";

/**
 * Authenticators plugged into client-node's KubeConfig through its public Authenticator
 * interface, for the two credential kinds where the library falls short of client-go:
 *
 * - exec plugins: client-node's ExecAuth runs the plugin once per concurrent request (no
 *   single flight), passes no KUBERNETES_EXEC_INFO (so `provideClusterInfo` plugins fail and
 *   `interactive` is unknown), refreshes only at the exact expiry, cannot forget a token the
 *   server refused, has no timeout, and runs a relative command from the working directory;
 * - token files: client-node reads a user's `tokenFile` under the wrong key (`token-file`),
 *   only once, and its in-cluster FileAuth keeps a trailing newline and cannot be told that
 *   the server refused the token.
 *
 * The loader (kubeconfig-loader.ts) routes such users here by auth-provider name.
 */
export const EXEC_PROVIDER = "cloud-instance-operator/exec";
export const TOKEN_FILE_PROVIDER = "cloud-instance-operator/token-file";

/** A credential source the connection can tell that the server refused what it gave. */
export interface RefreshableAuthenticator extends Authenticator {
  invalidate(): void;
  /** Until when the credential it last gave may be reused (epoch ms), if it gave one. */
  validUntil(): number | undefined;
}

export const ExecConfigSchema = z.looseObject({
  apiVersion: z.string().optional(),
  command: z.string().min(1),
  args: z.array(z.string()).nullish(),
  env: z.array(z.object({ name: z.string(), value: z.string() })).nullish(),
  provideClusterInfo: z.boolean().optional(),
  installHint: z.string().optional(),
});
export type ExecConfig = z.infer<typeof ExecConfigSchema>;

/** What a plugin learns about the cluster (client.authentication.k8s.io Cluster). */
export interface ExecClusterInfo {
  server: string;
  "certificate-authority-data"?: string;
  "insecure-skip-tls-verify"?: boolean;
  "tls-server-name"?: string;
  "proxy-url"?: string;
}

const ExecCredentialSchema = z.looseObject({
  status: z.looseObject({
    token: z.string().optional(),
    clientCertificateData: z.string().optional(),
    clientKeyData: z.string().optional(),
    expirationTimestamp: z.string().optional(),
  }),
});
type ExecStatus = z.infer<typeof ExecCredentialSchema>["status"];

/** Refresh this long before the plugin's credential expires (client-go refreshes early too). */
const EARLY_REFRESH_MS = 30_000;
/** A credential without an expiry is asked for again after this long. */
const NO_EXPIRY_TTL_MS = 5 * 60_000;

type RequestOptions = Parameters<Authenticator["applyAuthentication"]>[1];

function setBearer(opts: RequestOptions, token: string): void {
  const o = opts as https.RequestOptions;
  if (!o.headers || Array.isArray(o.headers)) o.headers = {};
  (o.headers as OutgoingHttpHeaders)["Authorization"] = `Bearer ${token}`;
}

export class ExecAuthenticator implements RefreshableAuthenticator {
  readonly #now: () => number;
  readonly #timeoutMs: number;
  #cached: { status: ExecStatus; until: number } | undefined;
  #running: Promise<ExecStatus> | undefined;
  /** Incremented by invalidate(), so a run started before it cannot repopulate the cache. */
  #generation = 0;

  constructor(opts: { now?: () => number; timeoutMs?: number } = {}) {
    this.#now = opts.now ?? Date.now;
    this.#timeoutMs = opts.timeoutMs ?? 60_000;
  }

  isAuthProvider(user: User): boolean {
    return (user.authProvider as { name?: unknown } | undefined)?.name === EXEC_PROVIDER;
  }

  async applyAuthentication(user: User, opts: RequestOptions): Promise<void> {
    const status = await this.#credential(user);
    if (status.clientCertificateData !== undefined && status.clientKeyData !== undefined) {
      const o = opts as https.RequestOptions;
      o.cert = status.clientCertificateData;
      o.key = status.clientKeyData;
    }
    if (status.token !== undefined && status.token !== "") setBearer(opts, status.token);
  }

  invalidate(): void {
    this.#cached = undefined;
    this.#generation++;
  }

  validUntil(): number | undefined {
    return this.#cached?.until;
  }

  /** One plugin run at a time: concurrent requests wait for the same run (client-go holds a mutex). */
  #credential(user: User): Promise<ExecStatus> {
    const cached = this.#cached;
    if (cached && this.#now() < cached.until) return Promise.resolve(cached.status);
    if (this.#running) return this.#running;
    const generation = this.#generation;
    const config = (user.authProvider as { config: { plugin: ExecConfig; cluster: ExecClusterInfo } }).config;
    this.#running = runPlugin(config.plugin, config.cluster, this.#timeoutMs)
      .then((status) => {
        if (generation === this.#generation) this.#cached = { status, until: this.#until(status) };
        return status;
      })
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }

  #until(status: ExecStatus): number {
    const expires = status.expirationTimestamp ? Date.parse(status.expirationTimestamp) : NaN;
    if (Number.isNaN(expires)) return this.#now() + NO_EXPIRY_TTL_MS;
    // A short-lived credential is still used once rather than re-run on every request.
    return Math.max(expires - EARLY_REFRESH_MS, this.#now() + 1_000);
  }
}

function runPlugin(plugin: ExecConfig, cluster: ExecClusterInfo, timeoutMs: number): Promise<ExecStatus> {
  const apiVersion = plugin.apiVersion ?? "client.authentication.k8s.io/v1";
  const info = {
    apiVersion,
    kind: "ExecCredential",
    spec: { interactive: false, ...(plugin.provideClusterInfo === true ? { cluster } : {}) },
  };
  const env: NodeJS.ProcessEnv = { ...process.env, KUBERNETES_EXEC_INFO: JSON.stringify(info) };
  for (const e of plugin.env ?? []) env[e.name] = e.value;
  const name = plugin.command;
  const hint = plugin.installHint ? ` (${plugin.installHint.trim()})` : "";
  return new Promise((resolve, reject) => {
    execFile(
      name,
      plugin.args ?? [],
      { env, timeout: timeoutMs, maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        if (err) {
          const why = stderr.trim() || err.message;
          reject(new KubeConfigError(`exec plugin ${name} failed: ${why}${hint}`, { cause: err }));
          return;
        }
        let parsed: unknown;
        try {
          parsed = JSON.parse(stdout) as unknown;
        } catch (e) {
          reject(new KubeConfigError(`exec plugin ${name} printed no ExecCredential JSON`, { cause: e }));
          return;
        }
        const cred = ExecCredentialSchema.safeParse(parsed);
        if (!cred.success) {
          reject(new KubeConfigError(`exec plugin ${name} printed an invalid ExecCredential`));
          return;
        }
        const { status } = cred.data;
        const hasCert = status.clientCertificateData !== undefined && status.clientKeyData !== undefined;
        if (!status.token && !hasCert) {
          reject(
            new KubeConfigError(`exec plugin ${name} returned neither a token nor a client certificate`),
          );
          return;
        }
        resolve(status);
      },
    );
  });
}

/** Projected service account tokens rotate well before they expire; a minute is plenty (client-go). */
const TOKEN_FILE_TTL_MS = 60_000;

export class TokenFileAuthenticator implements RefreshableAuthenticator {
  readonly #now: () => number;
  #cached: { token: string; until: number } | undefined;

  constructor(opts: { now?: () => number } = {}) {
    this.#now = opts.now ?? Date.now;
  }

  isAuthProvider(user: User): boolean {
    return (user.authProvider as { name?: unknown } | undefined)?.name === TOKEN_FILE_PROVIDER;
  }

  applyAuthentication(user: User, opts: RequestOptions): Promise<void> {
    const now = this.#now();
    if (!this.#cached || now >= this.#cached.until) {
      const path = (user.authProvider as { config: { path: string } }).config.path;
      let token: string;
      try {
        token = readFileSync(path, "utf8").trim();
      } catch (err) {
        return Promise.reject(new KubeConfigError(`cannot read the token file ${path}`, { cause: err }));
      }
      this.#cached = { token, until: now + TOKEN_FILE_TTL_MS };
    }
    setBearer(opts, this.#cached.token);
    return Promise.resolve();
  }

  invalidate(): void {
    this.#cached = undefined;
  }

  validUntil(): number | undefined {
    return this.#cached?.until;
  }
}
