import type { Logger } from "pino";
import type { Phase, PowerState, ProviderName } from "../api/index.ts";
import type { HttpClientFactory } from "./http/client.ts";

/** The resolved, validated desire for one VM, as the driver needs it. */
export interface DesiredMachine<Options = Record<string, unknown>> {
  /** Kubernetes UID of the CloudInstance: the ownership mark put on the VM. */
  ownerUID: string;
  /** `namespace/name`, for a human-readable VM name where the provider has one. */
  namespace: string;
  name: string;
  region: string | undefined;
  plan: string | undefined;
  image: string | undefined;
  sshKeys: readonly string[];
  tags: readonly string[];
  powerState: PowerState;
  /** Parsed with the driver's `optionsSchema`. */
  options: Options;
  /** Bookkeeping persisted in status.providerData (from earlier reconciles, template's data merged in). */
  providerData: Readonly<Record<string, string>>;
  /**
   * A short identity of this cluster (from the kube-system namespace UID), put in the ownership
   * mark beside the owner UID where the provider leaves room, so two clusters sharing an
   * account never sweep each other's VMs. "" when unknown.
   */
  clusterID: string;
}

/** Phases a VM can be observed in ("Pending" is ours alone: nothing exists yet). */
export type ObservedPhase = Exclude<Phase, "Pending">;

/** A provider's status values mapped onto phases; a status missing from it is waited on. */
export type StateTable = Readonly<
  Record<string, { phase: ObservedPhase; transitional: boolean; message?: string }>
>;

export interface MappedState {
  phase: ObservedPhase;
  transitional: boolean;
  message?: string;
  /** The status is in no table: waited on for a while, reported, and never waited on by a deletion. */
  unknownStatus?: true;
}

/**
 * A provider status through its table. An unknown one is most likely an operation the
 * document did not name (rescuing, migrating …), so it is waited on like a transition — but
 * flagged, so the reconciler reports it after a bounded wait and a deletion does not wait.
 */
export function mapState(table: StateTable, status: string, provider: string): MappedState {
  return (
    table[status] ?? {
      phase: "Provisioning",
      transitional: true,
      unknownStatus: true,
      message: `${provider} status "${status}" is not one the operator knows`,
    }
  );
}

/** What the provider says about one VM, mapped onto the operator's vocabulary. */
export interface ObservedMachine {
  id: string;
  /** The provider's own status value, verbatim. */
  providerStatus: string;
  phase: ObservedPhase;
  /** An operation is under way (locked, starting, rebooting, resizing …): poll, do not act. */
  transitional: boolean;
  /** Why the VM is in this phase when the provider says (e.g. "blocked for non-payment"). */
  message?: string;
  /** The provider's status is in none of the driver's tables (see mapState). */
  unknownStatus?: true;
  /** UID found on the VM (tag, name, hostname …), when the provider exposes it. */
  ownerUID?: string;
  /** The cluster identity found in the mark, when there is one. */
  ownerCluster?: string;
  /**
   * A prepaid lease that the object's options ask to renew now (MOS `autoRenew`): the
   * reconciler decides and sends `renew`, a billed call, as an action with an Event — never
   * a side effect of a read.
   */
  renewalDue?: { message: string };
  name?: string;
  region?: string;
  plan?: string;
  image?: string;
  /** User tags only: the driver strips its own ownership tag. */
  tags?: string[];
  addresses: { public: string[]; private: string[] };
  usage?: { cpuPercent?: number; memoryPercent?: number; diskPercent?: number };
}

/** The ownership mark a driver read on a VM (a tag, a name, a template name …). */
export interface OwnerMark {
  ownerUID?: string | undefined;
  cluster?: string | undefined;
}

/**
 * What every driver's observation starts with, built one way: the id, the provider's status
 * verbatim, its mapped state, and the owner and cluster of the mark when the VM carries one.
 */
export function observedHead(
  id: string,
  providerStatus: string,
  state: MappedState,
  mark: OwnerMark | undefined,
): Pick<
  ObservedMachine,
  | "id"
  | "providerStatus"
  | "phase"
  | "transitional"
  | "message"
  | "unknownStatus"
  | "ownerUID"
  | "ownerCluster"
> {
  return {
    id,
    providerStatus,
    phase: state.phase,
    transitional: state.transitional,
    ...(state.message === undefined ? {} : { message: state.message }),
    ...(state.unknownStatus ? { unknownStatus: true as const } : {}),
    ...(mark?.ownerUID === undefined ? {} : { ownerUID: mark.ownerUID }),
    ...(mark?.cluster === undefined ? {} : { ownerCluster: mark.cluster }),
  };
}

/** A reference to an existing VM plus the bookkeeping a driver stored for it. */
export interface MachineRef {
  id: string;
  providerData: Readonly<Record<string, string>>;
  /**
   * The object's parsed providerOptions, when the caller has them (the reconciler always
   * does): drivers with per-VM behaviour outside create (MOS auto-renewal) read them here.
   */
  options?: unknown;
}

export interface CreateResult {
  id: string;
  /** The VM as the create answer describes it, when it does (saves a get). */
  observed?: ObservedMachine;
  /** Bookkeeping to persist in status.providerData (merged over the old). */
  providerData?: Record<string, string>;
}

/**
 * What every driver call carries: the reconcile's signal, aborted when the reconcile is
 * cancelled (leadership lost, shutdown). A driver passes it to every request it sends
 * (`HttpRequest.signal`), so a cancelled reconcile sends nothing more.
 */
export interface CallContext {
  signal: AbortSignal;
}

/** A VM the operator's ownership mark names, as the orphan sweeper lists them. */
export interface OwnedMachine {
  id: string;
  ownerUID: string;
  /** The cluster identity in the mark; undefined for VMs marked before marks carried one. */
  cluster: string | undefined;
}

/** What a plan costs, as the provider's documented catalogue says. */
export interface Price {
  /** Decimal string, as the provider gives it (no float rounding). */
  amount: string;
  currency: string;
  period: "hour" | "month";
}

/**
 * A remote twin of an InstanceTemplate (multicloud machine templates): a desired machine
 * without the power state and cluster identity, which belong to instances.
 */
export type DesiredTemplate<Options = Record<string, unknown>> = Omit<
  DesiredMachine<Options>,
  "powerState" | "clusterID"
>;

/**
 * One provider's API behind one interface. Methods that change a VM return once the provider
 * has *accepted* the request; the reconciler observes completion with `get` and requeues.
 * Every failure is a ProviderError subclass.
 *
 * What a provider cannot do, its driver does not have: every action is an optional method, and
 * the driver's capabilities are the methods it has (capabilitiesOf), never a list kept beside
 * them. The reconciler's decision asks for an action only when the capability is there.
 */
export interface Driver<Options = Record<string, unknown>> {
  readonly provider: ProviderName;
  /**
   * Checks region/plan/image/options against the provider's catalogues (cached by the driver)
   * and throws InvalidRequestError naming the valid choices. Called before create and resize.
   */
  validate(desired: DesiredMachine<Options>, ctx?: CallContext): Promise<void>;
  create(desired: DesiredMachine<Options>, ctx?: CallContext): Promise<CreateResult>;
  /** undefined when the provider says the VM does not exist (or is deleted). */
  get(ref: MachineRef, ctx?: CallContext): Promise<ObservedMachine | undefined>;
  /** Resolves when the provider accepted the deletion; NotFound counts as deleted (resolve). */
  delete(ref: MachineRef, ctx?: CallContext): Promise<void>;
  /** VMs carrying this owner UID (crash-safe create: a lost create answer is found again). */
  findByOwner?(
    ownerUID: string,
    desired: DesiredMachine<Options>,
    ctx?: CallContext,
  ): Promise<ObservedMachine[]>;
  start?(ref: MachineRef, ctx?: CallContext): Promise<void>;
  /** A graceful shutdown. */
  stop?(ref: MachineRef, ctx?: CallContext): Promise<void>;
  /** Power off at once (sent when a graceful stop takes too long). */
  hardStop?(ref: MachineRef, ctx?: CallContext): Promise<void>;
  reboot?(ref: MachineRef, ctx?: CallContext): Promise<void>;
  /** Provider-specific ways of resizing (m2s without a reboot) are read from `ref.options`. */
  resize?(ref: MachineRef, plan: string, ctx?: CallContext): Promise<void>;
  rebuild?(
    ref: MachineRef,
    image: string,
    desired: DesiredMachine<Options>,
    ctx?: CallContext,
  ): Promise<void>;
  setTags?(ref: MachineRef, tags: readonly string[], ownerUID: string, ctx?: CallContext): Promise<void>;
  /** Renews a prepaid lease (billed) when the observation says `renewalDue`. */
  renew?(ref: MachineRef, ctx?: CallContext): Promise<void>;
  /** Remote templates: create or update, returns providerData to keep. */
  syncTemplate?(desired: DesiredTemplate<Options>, ctx?: CallContext): Promise<Record<string, string>>;
  deleteTemplate?(providerData: Readonly<Record<string, string>>, ctx?: CallContext): Promise<void>;
  /** Whether the remote template recorded in providerData still exists (drift check at resync). */
  templateExists?(providerData: Readonly<Record<string, string>>, ctx?: CallContext): Promise<boolean>;
  /**
   * Every VM of the account carrying the operator's ownership mark (the orphan sweeper); only
   * drivers whose provider can list VMs with their marks have it.
   */
  listOwned?(ctx?: CallContext): Promise<OwnedMachine[]>;
  /** The plan's price where the provider's documented catalogue gives one; undefined otherwise. */
  price?(desired: DesiredMachine<Options>, ctx?: CallContext): Promise<Price | undefined>;
  /**
   * Capabilities whose methods this driver has but whose API this account lacks right now
   * (Vscale's tags endpoint exists on some accounts only): learnt at runtime, so it cannot be
   * the absence of a method. Read at every decision.
   */
  unavailable?(): ReadonlySet<Capability>;
}

/**
 * Which methods give each capability the reconciler asks about: a driver has the capability
 * when it has every one of them. The one place capabilities are spelled; `Capability` is its keys.
 */
const METHODS_OF = {
  start: ["start"],
  stop: ["stop"],
  hardStop: ["hardStop"],
  reboot: ["reboot"],
  resize: ["resize"],
  rebuild: ["rebuild"],
  tags: ["setTags"],
  renew: ["renew"],
  /** Finds the VM carrying an owner UID, so a create needs no create-pending mark. */
  findByOwner: ["findByOwner"],
  /** Mirrors InstanceTemplates as remote templates (multicloud). */
  remoteTemplates: ["syncTemplate", "deleteTemplate", "templateExists"],
} as const satisfies Record<string, readonly (keyof Driver)[]>;

/** Actions a driver may or may not have; the reconciler checks before it asks. */
export type Capability = keyof typeof METHODS_OF;

export const CAPABILITIES = Object.keys(METHODS_OF) as readonly Capability[];

/**
 * The capabilities whose methods `target` has: a driver, or a driver class's prototype when no
 * driver is at hand (the docs tables). Nothing is called.
 */
export function methodCapabilities(target: object): Set<Capability> {
  const methods = target as Partial<Record<keyof Driver, unknown>>;
  return new Set(
    CAPABILITIES.filter((c) => METHODS_OF[c].every((m: keyof Driver) => typeof methods[m] === "function")),
  );
}

/**
 * The method capabilities of each driver object. A driver's methods are fixed once it is made
 * (the pool shares one per account and replaces it, never patches it), and every reconcile
 * asks: probing ~20 methods into a new Set each time was ~0.7% of the operator's CPU.
 */
const methodsOf = new WeakMap<object, ReadonlySet<Capability>>();

/** What this driver can do now: the methods it has, less what its account lacks (`unavailable`). */
export function capabilitiesOf(driver: Driver<unknown>): ReadonlySet<Capability> {
  let methods = methodsOf.get(driver);
  if (methods === undefined) {
    methods = methodCapabilities(driver);
    methodsOf.set(driver, methods);
  }
  // What an account lacks can change at any time (a plan that gains an API): asked each time.
  const lacking = driver.unavailable?.();
  if (lacking === undefined || lacking.size === 0) return methods;
  const caps = new Set(methods);
  for (const c of lacking) caps.delete(c);
  return caps;
}

/** Everything a driver factory gets; validated once at the edge. */
export interface DriverContext {
  /** Decoded data of the credentials Secret (empty when none is referenced). */
  credentials: Readonly<Record<string, string>>;
  /** `namespace/name` of that Secret, for error messages that name it. */
  secretName: string | undefined;
  endpoint: string | undefined;
  http: HttpClientFactory;
  logger: Logger;
  /** Reports the account balance of providers that bill a prepaid balance (a metric). */
  reportBalance?: (account: string, balance: number) => void;
  /**
   * Most pages one paginated list may take (--provider-max-pages): a list that never ends
   * stops here with ProviderLimitError reason TooManyPages.
   */
  maxPages?: number;
}

/** The page cap a driver applies when its context sets none. */
export const DEFAULT_MAX_PAGES = 100;
