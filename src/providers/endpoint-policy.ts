import { isIP } from "node:net";

/**
 * Where provider credentials may be sent. A tenant writes `spec.provider.endpoint`; without a
 * policy that is "send my namespace's Secret, and make the operator call, anywhere" — any
 * listener, plain http, the cloud metadata service, cluster-internal services. The cluster
 * admin lists what is allowed (`--allowed-endpoints`); by default each driver's documented
 * public endpoint only, over https.
 *
 * Pattern syntax, one per list entry:
 * - `https://api.m2s.cloud/v1` — this scheme, host and port (443 by default), paths under /v1;
 * - `https://*.example.com` — any host under example.com (not example.com itself);
 * - `http://127.0.0.1:*` — any port (tests and the demo list their loopback simulators so);
 * - `default` — every driver's documented endpoint.
 *
 * Internal addresses (loopback, link-local with the metadata service, private, CGNAT, ULA,
 * unspecified) are refused unless the admin lists that very host: an IP literal, or a host
 * name that is not a wildcard and not a driver default. The same rule applies to what a host
 * name resolves to when the connection is made (`internalAllowed`), so DNS cannot turn an
 * allowed public name into a way in.
 */
export interface EndpointPattern {
  readonly text: string;
  readonly protocol: "https:" | "http:";
  /** Lower-case host; a leading "*." matches any subdomain. */
  readonly host: string;
  /** "*" or the port as a string ("" = the scheme's default). */
  readonly port: string;
  /** Path prefix without a trailing slash ("" = any path). */
  readonly path: string;
  /** Listed by the admin for this very host: internal addresses are allowed for it. */
  readonly explicit: boolean;
}

export type EndpointVerdict = Readonly<{ ok: true } | { ok: false; message: string }>;

/**
 * Verdicts remembered per policy, by endpoint text. Most objects name the same few endpoints
 * (or none: the driver's default), and every reconcile checks one: parsing the URL and
 * matching the patterns each time was ~1% of the operator's CPU (bench, operator-bound).
 */
const VERDICTS_KEPT = 256;

export class EndpointPatternError extends Error {
  override readonly name = "EndpointPatternError";
  readonly code = "ERR_ENDPOINT_PATTERN";
}

export class EndpointPolicy {
  readonly patterns: readonly EndpointPattern[];
  /**
   * A verdict depends on the endpoint text and this policy's patterns alone (both fixed), never
   * on who asks, so one tenant's cached verdict is the verdict any tenant would get: nothing of
   * a tenant (credentials, namespace) is part of it. Frozen, as callers share them.
   */
  readonly #verdicts = new Map<string, EndpointVerdict>();

  /**
   * @param list the admin's entries (`default` expands to `defaults`); empty means `default`.
   * @param defaults each driver's documented endpoint.
   */
  constructor(list: readonly string[], defaults: readonly string[]) {
    const entries = list.length === 0 ? ["default"] : list;
    const out: EndpointPattern[] = [];
    for (const entry of entries) {
      if (entry === "default") out.push(...defaults.map((d) => parsePattern(d, false)));
      else out.push(parsePattern(entry, true));
    }
    this.patterns = out;
  }

  /** Whether `endpoint` may receive credentials; checked before any Secret is read. */
  check(endpoint: string): EndpointVerdict {
    let verdict = this.#verdicts.get(endpoint);
    if (verdict === undefined) {
      verdict = Object.freeze(this.#judge(endpoint));
      // Oldest first out: a tenant cycling through endpoints only costs re-parsing.
      if (this.#verdicts.size >= VERDICTS_KEPT)
        this.#verdicts.delete(this.#verdicts.keys().next().value ?? "");
      this.#verdicts.set(endpoint, verdict);
    }
    return verdict;
  }

  #judge(endpoint: string): EndpointVerdict {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      return { ok: false, message: `endpoint "${cut(endpoint)}" is not a URL` };
    }
    if (url.username !== "" || url.password !== "")
      return { ok: false, message: "endpoint URLs must not carry a user name or password" };
    const match = this.patterns.find((p) => matches(p, url));
    const shown = `${url.protocol}//${url.host}${url.pathname}`;
    if (!match) {
      return {
        ok: false,
        message:
          `endpoint ${cut(shown)} is not allowed by the operator's --allowed-endpoints ` +
          `(${this.patterns.map((p) => p.text).join(", ")}); ask the cluster admin to list it`,
      };
    }
    const host = bareHost(url.hostname);
    if (isIP(host) !== 0 && isInternalAddress(host) && !match.explicit) {
      return {
        ok: false,
        message: `endpoint ${cut(shown)} is an internal address; only an --allowed-endpoints entry naming it explicitly allows it`,
      };
    }
    return { ok: true };
  }

  /**
   * Whether a connection to `hostname` may go to an internal address it resolves to: only
   * when an admin entry names that host itself.
   */
  internalAllowed(hostname: string): boolean {
    const host = bareHost(hostname).toLowerCase();
    return this.patterns.some((p) => p.explicit && p.host === host);
  }
}

function parsePattern(text: string, explicit: boolean): EndpointPattern {
  const m =
    /^(?<protocol>https?):\/\/(?<host>\[[0-9a-fA-F:.]+\]|[^/:?#]+)(?::(?<port>\*|\d{1,5}))?(?<path>\/[^?#]*)?$/.exec(
      text.trim(),
    );
  const g = m?.groups;
  if (g?.protocol === undefined || g.host === undefined)
    throw new EndpointPatternError(
      `"${text}" is not an endpoint pattern (scheme://host[:port|:*][/path], host may start with "*.")`,
    );
  const host = g.host.toLowerCase();
  if (host.includes("*") && !/^\*\.[^*]+$/.test(host))
    throw new EndpointPatternError(`"${text}": a wildcard may only be a whole first label ("*.example.com")`);
  const protocol = g.protocol === "https" ? "https:" : "http:";
  const port = g.port === undefined || g.port === defaultPort(protocol) ? "" : g.port;
  return {
    text,
    protocol,
    host: bareHost(host),
    port,
    path: (g.path ?? "").replace(/\/+$/, ""),
    explicit: explicit && !host.startsWith("*."),
  };
}

function matches(p: EndpointPattern, url: URL): boolean {
  if (url.protocol !== p.protocol) return false;
  const host = bareHost(url.hostname).toLowerCase();
  const hostOk = p.host.startsWith("*.") ? host.endsWith(p.host.slice(1)) : host === p.host;
  if (!hostOk) return false;
  if (p.port !== "*" && url.port !== p.port) return false;
  const path = url.pathname.replace(/\/+$/, "");
  return p.path === "" || path === p.path || path.startsWith(`${p.path}/`);
}

function defaultPort(protocol: string): string {
  return protocol === "https:" ? "443" : "80";
}

function bareHost(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

function cut(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

/** Loopback, link-local (cloud metadata), private, shared (CGNAT), unique-local and unspecified addresses. */
export function isInternalAddress(address: string): boolean {
  const v4 = isIP(address) === 4 ? address : mappedV4(address);
  if (v4 !== undefined) {
    const [a = 0, b = 0] = v4.split(".").map(Number);
    return (
      a === 0 ||
      a === 10 ||
      a === 127 ||
      (a === 100 && b >= 64 && b <= 127) ||
      (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168)
    );
  }
  const v6 = address.toLowerCase();
  return (
    v6 === "::" ||
    v6 === "::1" ||
    v6.startsWith("fe8") ||
    v6.startsWith("fe9") ||
    v6.startsWith("fea") ||
    v6.startsWith("feb") ||
    v6.startsWith("fc") ||
    v6.startsWith("fd")
  );
}

function mappedV4(address: string): string | undefined {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m?.[1];
}
