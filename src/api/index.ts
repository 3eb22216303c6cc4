export * from "./group.ts";
export * from "./provider-names.ts";
export * from "./meta.ts";
export * from "./instance-spec.ts";
export * from "./cloud-instance.ts";
export * from "./instance-template.ts";
export * from "./crd-definitions.ts";
