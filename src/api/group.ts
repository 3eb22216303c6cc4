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
/**
 * With external-id: adopt the VM even though it carries another object's ownership mark
 * (a VM moved between objects on purpose). Without it such an adoption is refused.
 */
export const ANNOTATION_FORCE_ADOPT = `${GROUP}/force-adopt`;
/** Any new value reboots the VM once (echoed in status.lastHandledRestartAt). */
export const ANNOTATION_RESTART_REQUESTED_AT = `${GROUP}/restart-requested-at`;
/** Label put on CloudInstances owned by an InstanceTemplate with replicas. */
export const LABEL_TEMPLATE = `${GROUP}/template`;
