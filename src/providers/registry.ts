import { definition as m2s } from "./m2s/index.ts";
import { definition as mos } from "./mos/index.ts";
import { definition as multicloud } from "./multicloud/index.ts";
import { definition as vscale } from "./vscale/index.ts";
import { definition as zomro } from "./zomro/index.ts";

/**
 * Every provider this build knows, one line each, in the order the CRD enum, the docs tables
 * and the test matrices list them. Adding a provider is one folder under src/providers whose
 * index.ts exports its `definition` (src/providers/definition.ts) and one line here; the
 * name enum, the CRD, the docs tables, the redaction lists and the test matrices follow
 * (docs/adding-a-provider.md).
 */
export const PROVIDERS = [m2s, mos, vscale, zomro, multicloud] as const;

/** provider.name -> its definition (the driver factory), derived from the list above. */
export const DRIVERS = Object.fromEntries(PROVIDERS.map((p) => [p.provider, p])) as unknown as {
  readonly [P in (typeof PROVIDERS)[number] as P["provider"]]: P;
};
