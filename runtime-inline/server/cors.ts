/**
 * Lets pages on other origins call the service from a browser: the handler
 * answers CORS preflights (OPTIONS) for every path it serves, and adds the
 * CORS response headers to every response, errors included.
 * @public
 */
export interface CorsOptions {
  /**
   * The origins that may call: exact origins (`"https://app.example.com"`,
   * scheme and port included, as browsers send them), `"*"` for any, or a
   * function that decides per origin.
   */
  readonly allowedOrigins:
    readonly string[] | "*" | ((origin: string) => boolean);
  /**
   * Let calls send cookies and HTTP authentication (fetch's `credentials:
   * "include"`). The allowed origin is then echoed, never `*`, as browsers
   * require. Default false.
   */
  readonly allowCredentials?: boolean;
  /** How long a browser may reuse a preflight's answer. Default 7200 (Chromium's cap). */
  readonly maxAgeSeconds?: number;
  /**
   * Request headers of your own that calls send (`authorization`, say),
   * besides the protocols' own, `corsAllowedHeaders`.
   */
  readonly allowedHeaders?: readonly string[];
  /**
   * Response headers of your own that clients read, besides the protocols'
   * own, `corsExposedHeaders`. A Connect unary call's trailers arrive as
   * `trailer-<name>` headers: list them in that form.
   */
  readonly exposedHeaders?: readonly string[];
}

/**
 * The HTTP methods calls use: POST, and GET for Connect GET. For CORS
 * middleware of your own.
 * @public
 */
export const corsAllowedMethods: readonly string[] = ["POST", "GET"];

/**
 * The request headers that Connect, gRPC-Web and gRPC clients send, for
 * CORS middleware of your own (`Access-Control-Allow-Headers`).
 * @public
 */
export const corsAllowedHeaders: readonly string[] = [
  "Content-Type",
  "Content-Encoding",
  "Connect-Protocol-Version",
  "Connect-Timeout-Ms",
  "Connect-Content-Encoding",
  "Connect-Accept-Encoding",
  "Grpc-Timeout",
  "Grpc-Encoding",
  "Grpc-Accept-Encoding",
  "X-Grpc-Web",
  "X-User-Agent",
];

/**
 * The response headers clients read, for CORS middleware of your own
 * (`Access-Control-Expose-Headers`): without them a browser hides a
 * gRPC-Web status sent as headers, and a compressed stream's encoding.
 * @public
 */
export const corsExposedHeaders: readonly string[] = [
  "Grpc-Status",
  "Grpc-Message",
  "Grpc-Status-Details-Bin",
  "Grpc-Encoding",
  "Grpc-Accept-Encoding",
  "Connect-Content-Encoding",
  "Connect-Accept-Encoding",
];

/** CorsOptions resolved once per service, header values joined. */
export interface CorsPolicy {
  readonly allows: (origin: string) => boolean;
  /** The `*` wildcard is sent as is; otherwise the request's origin is echoed. */
  readonly anyOrigin: boolean;
  readonly credentials: boolean;
  readonly maxAge: string;
  readonly allowHeaders: string;
  readonly exposeHeaders: string;
}

export function corsPolicy(options: CorsOptions): CorsPolicy {
  const origins = options.allowedOrigins;
  const credentials = options.allowCredentials ?? false;
  let allows: (origin: string) => boolean;
  if (origins === "*") {
    allows = () => true;
  } else if (typeof origins === "function") {
    allows = origins;
  } else {
    const set = new Set(origins);
    allows = (origin) => set.has(origin);
  }
  return {
    allows,
    // Browsers refuse `*` on credentialed calls: echo the origin then.
    anyOrigin: origins === "*" && !credentials,
    credentials,
    maxAge: String(options.maxAgeSeconds ?? 7200),
    allowHeaders: [
      ...corsAllowedHeaders,
      ...(options.allowedHeaders ?? []),
    ].join(", "),
    exposeHeaders: [
      ...corsExposedHeaders,
      ...(options.exposedHeaders ?? []),
    ].join(", "),
  };
}

/**
 * Whether a request is a CORS preflight, which the handler answers itself:
 * an OPTIONS request that names the method it asks for.
 */
export function corsIsPreflight(
  method: string,
  requestMethod: string | null,
): boolean {
  return method === "OPTIONS" && requestMethod !== null;
}

/**
 * The headers of the answer to a preflight (204): the CORS ones when the
 * origin is allowed, none when not, which the browser reports as a CORS
 * failure of the call.
 */
export function corsPreflightHeaders(
  policy: CorsPolicy,
  origin: string | null,
): Headers {
  const header = new Headers({
    vary: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
  });
  if (origin !== null && policy.allows(origin)) {
    corsAllowOrigin(policy, origin, header);
    header.set("access-control-allow-methods", corsAllowedMethods.join(", "));
    header.set("access-control-allow-headers", policy.allowHeaders);
    header.set("access-control-max-age", policy.maxAge);
  }
  return header;
}

/**
 * Adds the CORS headers to the headers of a call's response: every
 * response, so that a browser shows the page an error's code and message,
 * not a network failure.
 */
export function corsDecorate(
  policy: CorsPolicy,
  origin: string | null,
  header: Headers,
): void {
  // The answer depends on the Origin header, so caches must key on it.
  if (!policy.anyOrigin) header.append("vary", "Origin");
  if (origin === null || !policy.allows(origin)) return;
  corsAllowOrigin(policy, origin, header);
  header.set("access-control-expose-headers", policy.exposeHeaders);
}

function corsAllowOrigin(
  policy: CorsPolicy,
  origin: string,
  header: Headers,
): void {
  header.set("access-control-allow-origin", policy.anyOrigin ? "*" : origin);
  if (policy.credentials) {
    header.set("access-control-allow-credentials", "true");
  }
}
