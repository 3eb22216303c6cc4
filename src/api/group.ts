/** The API group and version every custom resource of this operator lives in. */
export const GROUP = "compute.instance-operator.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

/** Annotation and finalizer names users and the controller share (DESIGN.md "API"). */
export const FINALIZER = `${GROUP}/finalizer`;
export const ANNOTATION_EXTERNAL_ID = `${GROUP}/external-id`;
export const ANNOTATION_PAUSED = `${GROUP}/paused`;
export const ANNOTATION_RECONCILE_REQUESTED_AT = `${GROUP}/reconcile-requested-at`;
export const ANNOTATION_POLL_INTERVAL = `${GROUP}/poll-interval`;
/** Written before a create on providers that cannot look a VM up by owner (crash-safety marker). */
export const ANNOTATION_CREATE_PENDING = `${GROUP}/create-pending`;
/** Label put on CloudInstances owned by an InstanceTemplate with replicas. */
export const LABEL_TEMPLATE = `${GROUP}/template`;
