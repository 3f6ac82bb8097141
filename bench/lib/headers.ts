// The request headers of the load generators: what a Connect client sends,
// so that every server parses a realistic request. @connectrpc/connect-node
// 2.2's client (createConnectTransport, binary) sends, for unary:
//   content-type: application/proto, connect-protocol-version: 1,
//   user-agent: connect-es/2.2.0, accept-encoding: gzip,br
// and for server streaming content-type application/connect+proto,
// connect-protocol-version, user-agent and connect-accept-encoding.

const userAgent = "connect-es/2.2.0";

/**
 * Below this size nobody compresses a response: 1024 is the default
 * `compressMinBytes` of ours and of connect-es, and the floor never does.
 */
const compressMinBytes = 1024;

/**
 * A unary request's headers. `accept-encoding: gzip,br` goes only with
 * messages under 1 KiB, whose echo nobody compresses: on the 16 KiB
 * workloads ours and connect-es would gzip the response and the floor would
 * not, so those measure the uncompressed path (compression is measured by
 * the gzip stream).
 */
export function unaryHeaders(
  contentType: string,
  size: number,
): Record<string, string> {
  return {
    "content-type": contentType,
    "connect-protocol-version": "1",
    "user-agent": userAgent,
    ...(size < compressMinBytes ? { "accept-encoding": "gzip,br" } : {}),
  };
}

/**
 * A server-streaming request's headers: gzip accepted on the gzip workload
 * (then every server compresses every 1 KiB message), nothing otherwise.
 */
export function streamHeaders(gzip: boolean): Record<string, string> {
  return {
    "content-type": "application/connect+proto",
    "connect-protocol-version": "1",
    "user-agent": userAgent,
    ...(gzip ? { "connect-accept-encoding": "gzip" } : {}),
  };
}

/** As h2load's `-H` takes them. */
export function headerLines(headers: Record<string, string>): string[] {
  return Object.entries(headers).map(([name, value]) => `${name}: ${value}`);
}
