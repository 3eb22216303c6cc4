import { ZOMRO_IMAGES, ZOMRO_LOCATIONS, ZOMRO_PRICELISTS, type ProfileRules, type Service } from "./views.ts";

/** The order form's fields as the profile has them (a preview echoes them). */
export function orderForm(fields: Record<string, string>, rules: ProfileRules): Record<string, string> {
  return {
    pricelist: fields.pricelist ?? "",
    ostempl: fields.ostempl ?? "",
    datacenter: fields.datacenter ?? "",
    ...Object.fromEntries(rules.orderFields.map((k) => [k, fields[k] ?? (k === "order_period" ? "1" : "")])),
  };
}

type Refusal = [type: string, msg: string, object: string];

/** An order's form checked as BILLmanager checks a submitted form: the first bad field is refused. */
export function checkOrder(
  form: Record<string, string>,
  fields: Record<string, string>,
): { plan: (typeof ZOMRO_PRICELISTS)[number]; datacenter: string } | { refusal: Refusal } {
  const plan = ZOMRO_PRICELISTS.find((p) => p.id === form.pricelist);
  if (!plan)
    return {
      refusal: ["value", `Неверное значение поля / Invalid value of field "pricelist"`, "pricelist"],
    };
  if (!ZOMRO_IMAGES.includes(form.ostempl as never))
    return { refusal: ["value", `Invalid value of field "ostempl"`, "ostempl"] };
  const datacenter = form.datacenter || ZOMRO_LOCATIONS[0].key;
  if (!ZOMRO_LOCATIONS.some((l) => l.key === datacenter))
    return { refusal: ["value", `Invalid value of field "datacenter"`, "datacenter"] };
  const name = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9-]+)*$/i;
  for (const field of ["domain", "hostname"])
    if (form[field] && !name.test(form[field]))
      return { refusal: ["value", `Invalid value of field "${field}"`, field] };
  if (fields.licence_agreement !== "on")
    return { refusal: ["value", "You must accept the licence agreement", "licence_agreement"] };
  return { plan, datacenter };
}

/** An unmarked, active service nobody ordered: what the endless-list knob pads pages with. */
export function ghostService(n: number): Service {
  const id = String(900_000_000 + n);
  return {
    id,
    domain: `vps${id}.zomro.example`,
    hostname: "",
    status: 2,
    pricelist: ZOMRO_PRICELISTS[0].id,
    ostempl: ZOMRO_IMAGES[0],
    datacenter: ZOMRO_LOCATIONS[0].key,
    ip: "",
    period: "1",
    createdate: "2026-01-01",
  };
}
