import { z } from "zod";
import type { DesiredMachine } from "../driver.ts";
import { InvalidRequestError } from "../errors.ts";
import { SharedLoad } from "./shared.ts";
import { ImageSchema, LocationSchema, RplanSchema, type Image, type Rplan, type VscaleApi } from "./api.ts";

/**
 * The rplans the document names, "in ascending order": the catalogue where `GET /rplans`
 * (not in the document) is absent, so unknown plans and downgrades are still refused up front.
 */
export const DOCUMENTED_RPLANS = ["small", "medium", "large", "huge", "monster"] as const;

export interface Catalogue {
  /** rplan ids, smallest first. */
  rplans: string[];
  /** The rplans come from the document, not from the API. */
  documented: boolean;
  /** undefined: the API has no `/images`, so the provider itself judges the image at create. */
  images: Image[] | undefined;
  /** undefined: the API has no `/locations`, so the provider judges the location at create. */
  locations: string[] | undefined;
}

/** Smallest first: memory, then disk, then cpus (Vscale only upgrades). */
function compareRplans(a: Rplan, b: Rplan): number {
  return a.memory - b.memory || a.disk - b.disk || a.cpus - b.cpus;
}

const refuse = (message: string, reason: string): never => {
  throw new InvalidRequestError(`vscale: ${message}`, { provider: "vscale", reason });
};

/** Catalogues, cached for the account; each endpoint the API lacks degrades on its own. */
export class VscaleCatalogue {
  readonly #api: VscaleApi;
  readonly #cache = new SharedLoad<Catalogue>();

  constructor(api: VscaleApi) {
    this.#api = api;
  }

  get(ttlSeconds: number, signal?: AbortSignal): Promise<Catalogue> {
    return this.#cache.get(ttlSeconds * 1000, (s) => this.#load(s), signal, "catalogue");
  }

  async #load(signal: AbortSignal | undefined): Promise<Catalogue> {
    const [rplans, images, locations] = await Promise.all([
      this.#api.optional("/rplans", z.array(RplanSchema), "rplans", signal),
      this.#api.optional("/images", z.array(ImageSchema), "images", signal),
      this.#api.optional("/locations", z.array(LocationSchema), "locations", signal),
    ]);
    return {
      rplans: rplans ? [...rplans].sort(compareRplans).map((r) => r.id) : [...DOCUMENTED_RPLANS],
      documented: rplans === undefined,
      images: images?.filter((i) => i.active !== false),
      locations: locations?.filter((l) => l.active !== false).map((l) => l.id),
    };
  }

  async validate(
    desired: DesiredMachine<{ catalogueTtlSeconds: number }>,
    signal?: AbortSignal,
  ): Promise<void> {
    const { plan, image, region } = desired;
    if (plan === undefined || image === undefined || region === undefined)
      refuse("needs spec.region (location), spec.plan (rplan) and spec.image", "InvalidSpec");
    const c = await this.get(desired.options.catalogueTtlSeconds, signal);
    if (!c.rplans.includes(plan as string)) {
      const from = c.documented ? " (the rplans of Vscale's API document: this API has no GET /rplans)" : "";
      refuse(`no rplan "${String(plan)}"; choose one of ${c.rplans.join(", ")}${from}`, "UnknownPlan");
    }
    const img = c.images?.find((i) => i.id === image);
    if (c.images && !img)
      refuse(
        `no image "${String(image)}"; choose one of ${c.images.map((i) => i.id).join(", ")}`,
        "UnknownImage",
      );
    if (c.locations && !c.locations.includes(region as string))
      refuse(`no location "${String(region)}"; choose one of ${c.locations.join(", ")}`, "UnknownRegion");
    if (img?.rplans && !img.rplans.includes(plan as string))
      refuse(
        `image "${String(image)}" is not offered with rplan "${String(plan)}"; it runs on ${img.rplans.join(", ")}`,
        "InvalidSpec",
      );
    if (img?.locations && !img.locations.includes(region as string))
      refuse(`image "${String(image)}" is not offered in ${String(region)}`, "InvalidSpec");
  }

  /** Refuses a move to a smaller rplan before any call: Vscale cannot shrink a scalet. */
  async refuseDowngrade(
    ctid: string,
    from: string | undefined,
    to: string,
    ttlSeconds: number,
    signal?: AbortSignal,
  ): Promise<void> {
    const { rplans } = await this.get(ttlSeconds, signal);
    const a = rplans.indexOf(from ?? "");
    const b = rplans.indexOf(to);
    if (a >= 0 && b >= 0 && b < a)
      refuse(
        `cannot downgrade scalet ${ctid} from ${String(from)} to ${to}: only upgrades are possible; recreate the instance to shrink it`,
        "DowngradeRefused",
      );
  }
}
