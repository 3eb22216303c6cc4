import type { ProviderName } from "../api/index.ts";
import type { DriverFactory } from "./driver.ts";
import { factory as m2s } from "./m2s/index.ts";
import { factory as mos } from "./mos/index.ts";
import { factory as multicloud } from "./multicloud/index.ts";
import { factory as vscale } from "./vscale/index.ts";
import { factory as zomro } from "./zomro/index.ts";

/**
 * provider.name -> driver factory. Adding a provider is one folder under src/providers and
 * one line here (plus its name in src/api/provider-names.ts for the CRD enum).
 */
export const DRIVERS: Record<ProviderName, DriverFactory<unknown>> = {
  m2s: m2s,
  mos: mos,
  multicloud: multicloud,
  vscale: vscale,
  zomro: zomro,
};
