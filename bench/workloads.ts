// The workloads of issues #6 and #16, and the implementations each one
// compares. Every workload runs its implementations on the same proto and
// the same bytes; only the code under test changes.

// Type-only: this module is loaded before bench/gen exists (by the test).
import type { UnaryMessage } from "./lib/payloads.ts";

/** The encoded size of the Order of the `order` workloads (lib/payloads.ts checks it). */
export const orderSize = 98;

export type Impl = "ours" | "ours-node" | "connect-es" | "floor";

/** Every implementation, in the order of the table's rows. */
export const impls: readonly Impl[] = [
  "ours",
  "ours-node",
  "connect-es",
  "floor",
];

/** What most workloads compare: ours (its fastest entry point), connect-es, the floor. */
export const threeImpls: readonly Impl[] = ["ours", "connect-es", "floor"];

/**
 * The h2c unary workloads also measure our `.node` entry point on HTTP/2
 * ("ours-node"): what Express, `allowHTTP1` and request-listener users get.
 */
export const h2cUnaryImpls: readonly Impl[] = impls;

/**
 * The order of a workload's implementations in a round (1-based): rotated
 * by one each round, so that none always runs first (on a cold load
 * generator) or always right after the same neighbour.
 */
export function roundOrder(
  round: number,
  list: readonly Impl[] = threeImpls,
): readonly Impl[] {
  const shift = (round - 1) % list.length;
  return [...list.slice(shift), ...list.slice(0, shift)];
}

export const implDescriptions: Record<Impl, string> = {
  ours: "the code this plugin generates (server: createBenchServiceHandler(...).http2Stream on node:http2, .node on node:http; client: transport http2)",
  "ours-node":
    "the same generated server through its .node entry point on node:http2 (http2.createServer().on('request', handler.node): Node's compatibility layer, as under Express or allowHTTP1)",
  "connect-es":
    "@connectrpc/connect-node (server: connectNodeAdapter defaults; client: createConnectTransport, or createGrpcTransport on the gRPC row, httpVersion 2)",
  floor:
    "raw node:http2 / node:http, protobuf-es toBinary/fromBinary (toJsonString/fromJsonString for JSON), the Connect or gRPC framing by hand, nothing else",
};

interface WorkloadBase {
  /** Short id, for --only and results.json. */
  readonly id: string;
  /** What the table calls it. */
  readonly title: string;
  /** What one operation is: rates are per second of it, CPU per one of it. */
  readonly unit: "req" | "msg" | "call";
  /** Whose CPU time is measured. */
  readonly cpuOf: "server" | "client";
  /** The implementations compared, in the order of their first round. */
  readonly impls: readonly Impl[];
}

export interface UnaryWorkload extends WorkloadBase {
  readonly kind: "unary";
  readonly httpVersion: 1 | 2;
  /** Payload (one `bytes` or `string` field) or the realistic Order. */
  readonly message: UnaryMessage;
  readonly codec: "binary" | "json";
  /** Size of the encoded request (and echoed response) message. */
  readonly size: number;
  /** Connections (h2load -c, wrk -c). */
  readonly connections: number;
  /** Concurrent streams per connection (h2load -m); HTTP/1.1 has one. */
  readonly streams: number;
}

export interface StreamWorkload extends WorkloadBase {
  readonly kind: "stream";
  readonly gzip: boolean;
  /** Messages per call. */
  readonly count: number;
  /** Bytes of `data` in each message. */
  readonly size: number;
  /** Calls in flight on h2load's one h2c connection (h2load -c1 -m). */
  readonly concurrency: number;
}

export interface ClientWorkload extends WorkloadBase {
  readonly kind: "client";
  /** What the clients speak to the floor server (each client's `--protocol`). */
  readonly protocol: "connect" | "grpc";
  readonly size: number;
  readonly inFlight: number;
}

export type Workload = UnaryWorkload | StreamWorkload | ClientWorkload;

const unary = (
  id: string,
  httpVersion: 1 | 2,
  codec: "binary" | "json",
  size: number,
  sizeLabel: string,
  message: UnaryMessage = "payload",
): UnaryWorkload => ({
  id,
  title: `unary ${httpVersion === 2 ? "h2c" : "HTTP/1.1"} ${codec === "binary" ? "binary" : "JSON"}, ${sizeLabel} (${httpVersion === 2 ? "h2load -c64 -m10" : "h2load --h1 -c64"})`,
  unit: "req",
  cpuOf: "server",
  impls: httpVersion === 2 ? h2cUnaryImpls : threeImpls,
  kind: "unary",
  httpVersion,
  message,
  codec,
  size,
  connections: 64,
  streams: httpVersion === 2 ? 10 : 1,
});

/** The generated client, connect-es's and the floor's against the floor server. */
const client = (
  id: string,
  protocol: ClientWorkload["protocol"],
): ClientWorkload => ({
  id,
  title: `client${protocol === "grpc" ? " gRPC" : ""}, unary 98 B, 64 in flight, one h2 session (floor server)`,
  unit: "call",
  cpuOf: "client",
  // The client benchmark has no "ours-node": .node is a server entry point.
  impls: threeImpls,
  kind: "client",
  protocol,
  size: 98,
  inFlight: 64,
});

export const workloads: readonly Workload[] = [
  unary("unary-h2c-binary-98", 2, "binary", 98, "98 B `bytes`"),
  unary(
    "unary-h2c-order-98",
    2,
    "binary",
    orderSize,
    "98 B Order (9 fields)",
    "order",
  ),
  unary("unary-h1-binary-98", 1, "binary", 98, "98 B `bytes`"),
  unary("unary-h2c-json-16k", 2, "json", 16 * 1024, "16 KiB"),
  unary("unary-h2c-binary-16k", 2, "binary", 16 * 1024, "16 KiB"),
  unary("unary-h1-binary-16k", 1, "binary", 16 * 1024, "16 KiB"),
  {
    id: "stream-h2c",
    title: "server stream h2c, 1000 x 1 KiB per call (h2load -c1 -m4)",
    unit: "msg",
    cpuOf: "server",
    impls: threeImpls,
    kind: "stream",
    gzip: false,
    count: 1000,
    size: 1024,
    concurrency: 4,
  },
  {
    id: "stream-h2c-gzip",
    title: "server stream h2c gzip, 1000 x 1 KiB per call (h2load -c1 -m4)",
    unit: "msg",
    cpuOf: "server",
    impls: threeImpls,
    kind: "stream",
    gzip: true,
    count: 1000,
    size: 1024,
    concurrency: 4,
  },
  client("client-unary-98", "connect"),
  client("client-grpc-unary-98", "grpc"),
];

/**
 * The arguments of a client of bench/clients/ (after its script) for a
 * client workload: the bench and bench/instructions.ts run them alike.
 */
export function clientArgs(
  workload: ClientWorkload,
  url: string,
  warmupSeconds: number,
  durationSeconds: number,
): string[] {
  return [
    "--url",
    url,
    "--protocol",
    workload.protocol,
    "--size",
    String(workload.size),
    "--in-flight",
    String(workload.inFlight),
    "--warmup",
    String(warmupSeconds),
    "--duration",
    String(durationSeconds),
  ];
}

/** The workloads `--smoke` runs: one of each load generator, message, kind and client protocol. */
export const smokeWorkloads: readonly string[] = [
  "unary-h2c-binary-98",
  "unary-h2c-order-98",
  "unary-h1-binary-98",
  "stream-h2c-gzip",
  "client-unary-98",
  "client-grpc-unary-98",
];
