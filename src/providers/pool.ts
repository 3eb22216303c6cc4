import { createHash } from "node:crypto";
import type { Logger } from "pino";
import type { ProviderName } from "../api/index.ts";
import { AccountGate, SharedWorkers } from "./admission.ts";
import type { ProviderDefinition } from "./definition.ts";
import type { Driver } from "./driver.ts";
import { CredentialsError, UnsupportedError } from "./errors.ts";
import type { HttpClientFactory } from "./http/client.ts";

export type DriverRegistry = Readonly<Partial<Record<ProviderName, ProviderDefinition>>>;

export interface DriverRequest {
  provider: ProviderName;
  endpoint: string | undefined;
  /** `namespace/name` of the credentials Secret, when one is referenced. */
  secretName: string | undefined;
  credentials: Readonly<Record<string, string>>;
}

/**
 * Keeps one driver per (provider, endpoint, credentials) so catalogue caches, sessions and
 * rate limits are shared by every object using the same account, and replaces it when the
 * Secret's content changes. Checks the Secret's keys once, here, with a message naming
 * the Secret and the key.
 */
export class DriverPool {
  readonly #drivers = new Map<string, Driver<unknown>>();
  /** Which digest each Secret currently maps to, so a rotated Secret closes its old driver. */
  readonly #current = new Map<string, string>();
  /** Digests by credentials record, then by provider and endpoint (see #digest). */
  readonly #digests = new WeakMap<object, Map<string, string>>();
  readonly #registry: DriverRegistry;
  readonly #http: HttpClientFactory;
  readonly #logger: Logger;

  /** One admission gate per account (fairness between accounts), dropped with its driver. */
  readonly #gates = new WeakMap<Driver<unknown>, AccountGate>();
  readonly #maxInFlight: number;
  readonly #shared: SharedWorkers;
  readonly #onBalance: ((provider: ProviderName, account: string, balance: number) => void) | undefined;
  readonly #maxPages: number | undefined;

  constructor(opts: {
    registry: DriverRegistry;
    http: HttpClientFactory;
    logger: Logger;
    /** Where drivers report prepaid balances (the provider balance gauge). */
    onBalance?: (provider: ProviderName, account: string, balance: number) => void;
    /** --provider-max-pages: handed to every driver as DriverContext.maxPages. */
    maxPages?: number;
    /** --provider-max-inflight-per-account: reconciles of one account running at once. */
    maxInFlightPerAccount?: number;
    /**
     * The reconcile workers every account shares (--max-concurrent-reconciles): an account
     * whose reconciles are quick may borrow past its cap while a cap's worth stays free.
     */
    workers?: number;
  }) {
    this.#maxInFlight = opts.maxInFlightPerAccount ?? Infinity;
    this.#shared = new SharedWorkers(opts.workers ?? 0, this.#maxInFlight);
    this.#registry = opts.registry;
    this.#http = opts.http;
    this.#logger = opts.logger;
    this.#onBalance = opts.onBalance;
    this.#maxPages = opts.maxPages;
  }

  factory(provider: ProviderName): ProviderDefinition {
    const factory = this.#registry[provider];
    if (!factory)
      throw new UnsupportedError(`no driver for provider "${provider}" in this build`, { provider });
    return factory;
  }

  get(req: DriverRequest): Driver<unknown> {
    const factory = this.factory(req.provider);
    for (const key of factory.credentialKeys.required) {
      const value = req.credentials[key];
      if (value === undefined || value.trim() === "") {
        throw new CredentialsError(
          req.secretName === undefined
            ? `provider ${req.provider} needs spec.provider.credentialsSecretRef (a Secret with key "${key}")`
            : `Secret "${req.secretName}" has no key "${key}" (${req.provider} needs ${factory.credentialKeys.required.join(", ")})`,
          { provider: req.provider },
        );
      }
    }
    const digest = this.#digest(req);
    const cached = this.#drivers.get(digest);
    if (cached) return cached;
    const slot = `${req.provider}\u0000${req.endpoint ?? ""}\u0000${req.secretName ?? ""}`;
    const previous = this.#current.get(slot);
    // Drivers hold nothing to release (connections belong to the shared HTTP factory).
    if (previous !== undefined) this.#drivers.delete(previous);
    this.#current.set(slot, digest);
    const driver = factory.create({
      credentials: req.credentials,
      secretName: req.secretName,
      endpoint: req.endpoint,
      http: this.#http,
      logger: this.#logger.child({ provider: req.provider }),
      ...(this.#maxPages === undefined ? {} : { maxPages: this.#maxPages }),
      ...(this.#onBalance
        ? {
            reportBalance: (account: string, balance: number) =>
              this.#onBalance?.(req.provider, account, balance),
          }
        : {}),
    });
    this.#drivers.set(digest, driver);
    return driver;
  }

  /**
   * The account's admission gate: how a reconcile learns, before it spends provider calls,
   * whether the account has budget and a free share of the workers.
   */
  gate(driver: Driver<unknown>): AccountGate {
    let gate = this.#gates.get(driver);
    if (!gate) {
      gate = new AccountGate({ maxInFlight: this.#maxInFlight, shared: this.#shared });
      this.#gates.set(driver, gate);
    }
    return gate;
  }

  /**
   * The pool's key: a digest, never the credentials themselves. Remembered per credentials
   * record (the caller hands the same record until the Secret changes): hashing on every
   * reconcile showed in the operator's CPU profile.
   */
  #digest(req: DriverRequest): string {
    const at = `${req.provider}\u0000${req.endpoint ?? ""}`;
    let known = this.#digests.get(req.credentials);
    const hit = known?.get(at);
    if (hit !== undefined) return hit;
    const digest = createHash("sha256")
      .update(JSON.stringify([req.provider, req.endpoint ?? "", Object.entries(req.credentials).sort()]))
      .digest("hex");
    if (known === undefined) {
      known = new Map();
      this.#digests.set(req.credentials, known);
    }
    known.set(at, digest);
    return digest;
  }

  /**
   * Every account this process has a driver for (one per provider, endpoint and credential
   * content), named by a short digest: the orphan sweeper scans them all — an account's last
   * object may be gone, its VMs left behind.
   */
  accounts(): { driver: Driver<unknown>; account: string }[] {
    return [...this.#drivers].map(([digest, driver]) => ({ driver, account: digest.slice(0, 16) }));
  }

  close(): Promise<void> {
    this.#drivers.clear();
    this.#current.clear();
    return Promise.resolve();
  }
}
