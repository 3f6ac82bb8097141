/**
 * The Connect wire names of the error codes, by code number (1 to 16), as
 * the protocol specification spells them: written out here, not taken from
 * the runtime, so that tests check the runtime against the specification.
 */
export const specCodeNames: readonly string[] = [
  "canceled",
  "unknown",
  "invalid_argument",
  "deadline_exceeded",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "internal",
  "unavailable",
  "data_loss",
  "unauthenticated",
];
