import type { SimProfile } from "../common.ts";

/** The only statuses the document names ("running/ready/suspend等"). */
export const DOCUMENTED_STATUSES: ReadonlySet<string> = new Set(["running", "ready", "suspend"]);

/**
 * What differs between the two profiles; index.ts's header says why for each line. The
 * simulator keeps one state machine (with transitional statuses) and a profile decides what
 * a client sees of it and how refusals are answered.
 */
export interface MosProfile {
  readonly name: SimProfile;
  /** Show transitional statuses (pending, starting, stopping …) instead of the last documented one. */
  readonly transitionalStatuses: boolean;
  /** HTTP status (and `code`) for an InstanceId that names no instance. */
  readonly notFound: number;
  /** HTTP status for an action the instance's state does not allow, or while another runs. */
  readonly conflict: number;
  /** Authentication errors in XML whatever Format says (else in the format asked for). */
  readonly authErrorsInXml: boolean;
  /** How `ipAddresses` ("IP地址列表", a string) separates addresses. */
  readonly ipSeparator: string;
  /** Rows a list returns when the request has no `Limit`. */
  readonly defaultLimit: number;
  /** Metadata an instance has before anyone writes any (the system's own keys). */
  readonly systemMetadata: Readonly<Record<string, string>>;
}

export const PROFILES: Readonly<Record<SimProfile, MosProfile>> = {
  strict: {
    name: "strict",
    transitionalStatuses: false,
    notFound: 400,
    conflict: 400,
    authErrorsInXml: false,
    ipSeparator: ",",
    defaultLimit: 20,
    systemMetadata: { os_version: "2011.08", os_name: "Linux", os_distribution: "Cirros" },
  },
  default: {
    name: "default",
    transitionalStatuses: true,
    notFound: 404,
    conflict: 409,
    authErrorsInXml: true,
    ipSeparator: " ",
    defaultLimit: 100,
    systemMetadata: { os_name: "Linux" },
  },
};
