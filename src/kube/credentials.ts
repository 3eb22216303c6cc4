import type https from "node:https";
import type { AuthSource, HeaderMap } from "../util/transport/transport.ts";
import type { LoadedKubeConfig } from "./kubeconfig-loader.ts";

/** What a connection to the API server presents: TLS material for the pool, headers per request. */
export interface TlsMaterial {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  rejectUnauthorized?: boolean;
  servername?: string;
}
export interface AuthMaterial {
  headers: HeaderMap;
  tls: TlsMaterial;
}

/**
 * The part of client-node's KubeConfig that yields auth headers and TLS material without
 * building a transport. Its public applyToHTTPSOptions does the same and then creates an
 * https.Agent, refusing plain-http servers (which kubectl allows, e.g. `kubectl proxy`);
 * applyOptions is the step before that. test/kube/kubeconfig.test.ts covers every credential
 * kind through it.
 */
interface KubeConfigInternals {
  applyOptions(opts: https.RequestOptions): Promise<void>;
}

/** Headers are re-derived this often at most: token files and plugins have caches of their own. */
const MATERIAL_TTL_MS = 10_000;

/**
 * The connection's credentials, taken from client-node's KubeConfig: one derivation at a time
 * however many requests wait (a cold start races informers, leases and events), cached
 * briefly, forgotten when the server answers 401.
 */
export class KubeCredentials implements AuthSource {
  readonly #loaded: LoadedKubeConfig;
  readonly #now: () => number;
  #onTls: (tls: TlsMaterial) => void = () => undefined;
  #cached: { material: AuthMaterial; until: number } | undefined;
  #pending: Promise<AuthMaterial> | undefined;
  #generation = 0;

  constructor(loaded: LoadedKubeConfig, opts: { now?: () => number } = {}) {
    this.#loaded = loaded;
    this.#now = opts.now ?? Date.now;
  }

  /** Called with the TLS material of every derivation (the pools rebuild when it changed). */
  onTls(listener: (tls: TlsMaterial) => void): void {
    this.#onTls = listener;
  }

  material(): Promise<AuthMaterial> {
    if (this.#cached && this.#now() < this.#cached.until) return Promise.resolve(this.#cached.material);
    if (this.#pending) return this.#pending;
    const generation = this.#generation;
    this.#pending = derive(this.#loaded)
      .then((material) => {
        if (generation === this.#generation) this.#cached = { material, until: this.#until() };
        this.#onTls(material.tls);
        return material;
      })
      .finally(() => {
        this.#pending = undefined;
      });
    return this.#pending;
  }

  /** Never past what a plugin or token file said its credential is good for. */
  #until(): number {
    let until = this.#now() + MATERIAL_TTL_MS;
    for (const a of this.#loaded.refreshable) until = Math.min(until, a.validUntil() ?? until);
    return until;
  }

  async headers(): Promise<HeaderMap> {
    return (await this.material()).headers;
  }

  /** The cached material's headers while they are fresh; undefined when a derivation is due. */
  headersNow(): HeaderMap | undefined {
    const cached = this.#cached;
    return cached && this.#now() < cached.until ? cached.material.headers : undefined;
  }

  invalidate(): void {
    this.#cached = undefined;
    this.#generation++;
    for (const a of this.#loaded.refreshable) a.invalidate();
  }
}

async function derive(loaded: LoadedKubeConfig): Promise<AuthMaterial> {
  const opts: https.RequestOptions = {};
  const kc = loaded.kc as unknown as Partial<KubeConfigInternals>;
  if (typeof kc.applyOptions !== "function")
    throw new Error("this version of @kubernetes/client-node has no KubeConfig.applyOptions");
  await kc.applyOptions(opts);
  const headers: HeaderMap = {};
  for (const [name, value] of Object.entries(opts.headers ?? {})) {
    if (value === undefined) continue;
    // A token file's trailing newline would make an invalid header.
    headers[name.toLowerCase()] = Array.isArray(value) ? value : String(value).trim();
  }
  const user = loaded.kc.getCurrentUser();
  if (headers["authorization"] === undefined && user?.username)
    headers["authorization"] =
      `Basic ${Buffer.from(`${user.username}:${user.password ?? ""}`).toString("base64")}`;
  Object.assign(headers, loaded.impersonation);
  const tls: TlsMaterial = {};
  if (opts.ca !== undefined) tls.ca = opts.ca as string | Buffer;
  if (opts.cert !== undefined) tls.cert = opts.cert as string | Buffer;
  if (opts.key !== undefined) tls.key = opts.key as string | Buffer;
  if (opts.rejectUnauthorized !== undefined) tls.rejectUnauthorized = opts.rejectUnauthorized;
  if (opts.servername !== undefined) tls.servername = opts.servername;
  return { headers, tls };
}
