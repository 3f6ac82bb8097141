/**
 * Connect and gRPC status codes. The numbers are the gRPC codes, which is also
 * what `@connectrpc/connect` uses, so codes compare equal across libraries.
 * A const object rather than an enum: generated files must be erasable syntax.
 * @public
 */
export const Code = {
  Canceled: 1,
  Unknown: 2,
  InvalidArgument: 3,
  DeadlineExceeded: 4,
  NotFound: 5,
  AlreadyExists: 6,
  PermissionDenied: 7,
  ResourceExhausted: 8,
  FailedPrecondition: 9,
  Aborted: 10,
  OutOfRange: 11,
  Unimplemented: 12,
  Internal: 13,
  Unavailable: 14,
  DataLoss: 15,
  Unauthenticated: 16,
} as const;

/** @public */
export type Code = (typeof Code)[keyof typeof Code];

// Indexed by code number: "ok", then each key of Code in snake case
// ("InvalidArgument" is "invalid_argument"). Derived rather than spelled out
// so that browser bundles carry the names once.
const codeNames = [
  "ok",
  ...Object.keys(Code).map((key) =>
    key.replace(/\B[A-Z]/g, "_$&").toLowerCase(),
  ),
];

/**
 * The wire name of a code, as in the Connect error body: `invalid_argument`.
 * @public
 */
export function codeToString(code: Code): string {
  return codeNames[code] ?? "unknown";
}

/** The code for a wire name, or undefined when the name is not a code. */
export function codeFromString(name: string): Code | undefined {
  const index = codeNames.indexOf(name);
  return index > 0 ? (index as Code) : undefined;
}

/**
 * The code of an HTTP error response that carries no error of its own (a
 * proxy's, say), as gRPC's HTTP-to-status mapping has it; Connect uses the
 * same table.
 */
export function codeFromHttpStatus(status: number): Code {
  switch (status) {
    case 400:
      return Code.Internal;
    case 401:
      return Code.Unauthenticated;
    case 403:
      return Code.PermissionDenied;
    case 404:
      return Code.Unimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return Code.Unavailable;
    default:
      return Code.Unknown;
  }
}
