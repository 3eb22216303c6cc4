import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOptions } from "node:dns";
import type { LookupFunction } from "node:net";
import { isInternalAddress } from "../endpoint-policy.ts";

/**
 * A host name resolved, at connection time, to an internal address its allow-list entry does
 * not name. The endpoint was allowed by name; DNS (a rebinding, a hostile zone) must not turn it
 * into a way to the metadata service or a cluster-internal listener.
 */
export class ResolvedAddressNotAllowedError extends Error {
  override readonly name = "ResolvedAddressNotAllowedError";
  readonly code = "ERR_RESOLVED_ADDRESS_NOT_ALLOWED";
  readonly hostname: string;
  readonly address: string;
  constructor(hostname: string, address: string) {
    super(
      `${hostname} resolves to the internal address ${address}; only an --allowed-endpoints entry naming ${hostname} itself allows that`,
    );
    this.hostname = hostname;
    this.address = address;
  }
}

/** Whether a host name may lead to an internal address (EndpointPolicy.internalAllowed). */
export interface ResolvedAddressPolicy {
  internalAllowed(hostname: string): boolean;
}

type Resolve = (
  hostname: string,
  options: LookupAllOptions,
  callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

/**
 * The `lookup` an undici connector hands to net/tls.connect: resolves as Node would, then
 * refuses the connection when any address is internal and the policy does not allow it for
 * this host. Every address is checked, not only the first: with happy eyeballs Node may try
 * any of them.
 */
export function guardedLookup(policy: ResolvedAddressPolicy, resolve: Resolve = dnsLookup): LookupFunction {
  return (hostname: string, options: LookupOptions, callback) => {
    resolve(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) {
        callback(err, "", 0);
        return;
      }
      const internal = addresses.find((a) => isInternalAddress(a.address));
      if (internal !== undefined && !policy.internalAllowed(hostname)) {
        callback(new ResolvedAddressNotAllowedError(hostname, internal.address), "", 0);
        return;
      }
      if (options.all === true) {
        (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
        return;
      }
      const first = addresses[0];
      if (first === undefined) {
        const none: NodeJS.ErrnoException = new Error(`no address for ${hostname}`);
        none.code = "ENOTFOUND";
        callback(none, "", 0);
        return;
      }
      callback(null, first.address, first.family);
    });
  };
}
