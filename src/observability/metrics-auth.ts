import type { KubeClient } from "../kube/client.ts";
import { SubjectAccessReviewResource, TokenReviewResource } from "../kube/resources.ts";
import { shortDigest } from "../util/digest.ts";

export type MetricsAccess = "allowed" | "unauthenticated" | "forbidden";

export interface MetricsAuthorizer {
  /** Decides one request from its Authorization header. Throws when the API server cannot answer. */
  check(authorization: string | undefined, path: string): Promise<MetricsAccess>;
}

/**
 * controller-runtime's secure metrics filter: the bearer token is authenticated with a
 * TokenReview and the user authorised with a SubjectAccessReview for `get` on the non-resource
 * URL, so who may read metrics is RBAC (`nonResourceURLs: ["/metrics"]`), as for any other
 * endpoint of the cluster. Decisions are remembered briefly, by token digest (never the token),
 * so a scrape every few seconds costs the API server two requests a minute.
 */
export class KubeMetricsAuthorizer implements MetricsAuthorizer {
  readonly #kube: KubeClient;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #decisions = new Map<string, { access: MetricsAccess; until: number }>();
  static readonly MAX_ENTRIES = 1000;

  constructor(opts: { kube: KubeClient; ttlMs?: number; now?: () => number }) {
    this.#kube = opts.kube;
    this.#ttlMs = opts.ttlMs ?? 60_000;
    this.#now = opts.now ?? Date.now;
  }

  async check(authorization: string | undefined, path: string): Promise<MetricsAccess> {
    const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? "")?.[1];
    if (token === undefined) return "unauthenticated";
    const key = shortDigest(token, path);
    const now = this.#now();
    const cached = this.#decisions.get(key);
    if (cached && cached.until > now) return cached.access;
    const access = await this.#review(token, path);
    if (this.#decisions.size >= KubeMetricsAuthorizer.MAX_ENTRIES) {
      for (const [k, v] of this.#decisions) if (v.until <= now) this.#decisions.delete(k);
      if (this.#decisions.size >= KubeMetricsAuthorizer.MAX_ENTRIES) this.#decisions.clear();
    }
    this.#decisions.set(key, { access, until: now + this.#ttlMs });
    return access;
  }

  async #review(token: string, path: string): Promise<MetricsAccess> {
    const review = await this.#kube.create(TokenReviewResource, {
      apiVersion: TokenReviewResource.apiVersion,
      kind: TokenReviewResource.kind,
      metadata: {},
      spec: { token },
    });
    const user = review.status?.user;
    if (review.status?.authenticated !== true || user?.username === undefined) return "unauthenticated";
    const sar = await this.#kube.create(SubjectAccessReviewResource, {
      apiVersion: SubjectAccessReviewResource.apiVersion,
      kind: SubjectAccessReviewResource.kind,
      metadata: {},
      spec: {
        user: user.username,
        ...(user.uid === undefined ? {} : { uid: user.uid }),
        groups: user.groups ?? [],
        ...(user.extra === undefined ? {} : { extra: user.extra }),
        nonResourceAttributes: { path, verb: "get" },
      },
    });
    return sar.status?.allowed === true ? "allowed" : "forbidden";
  }
}
