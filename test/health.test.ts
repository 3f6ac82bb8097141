// The health server of the file generated for grpc.health.v1.Health
// (plugin option health=true), served beside another service with one
// line, over Connect (HTTP/1.1 and the fetch handler), gRPC (h2c, through
// nodeHandler and http2StreamHandler) and gRPC-Web; and called by
// @grpc/grpc-js as grpc-health-probe and Kubernetes' gRPC probes call it.

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  connectProtocol as elizaConnectProtocol,
  createElizaServiceClient,
  createElizaServiceHandler,
  ElizaServiceDefinition,
  grpcProtocol as elizaGrpcProtocol,
  grpcWebProtocol as elizaGrpcWebProtocol,
} from "./gen-ops/eliza/v1/eliza.ElizaService.ts";
import {
  Code,
  ConnectError,
  createFetchHttpClient,
  createHealthClient,
  createHealthHandler,
  createHealthServer,
  fetchHandler,
  grpcProtocol,
  grpcWebProtocol,
  HealthStatus,
  healthMethods,
  http2StreamHandler,
  nodeHandler,
  type HealthClient,
  type HealthServer,
  type NodeClientOptions,
} from "./gen-ops/grpc/health/v1/health.Health.ts";
import {
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
  type HealthCheckResponse,
} from "./gen-ops/grpc/health/v1/health_pb.ts";
import { inProcessFetch } from "./support/http-clients.ts";
import { startServer, startStreamServer } from "./support/servers.ts";

const eliza = createElizaServiceHandler({
  say: (request) => ({ sentence: `You said ${request.sentence}` }),
});
const elizaName = ElizaServiceDefinition.typeName;

const closers: (() => Promise<void>)[] = [];
afterAll(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

/** A health server whose live subscriptions (one per Watch) are counted. */
function countedHealth(): { health: HealthServer; watches: () => number } {
  const health = createHealthServer([eliza]);
  const subscribe = health.status.subscribe.bind(health.status);
  let watches = 0;
  health.status.subscribe = (service, listener) => {
    watches++;
    const unsubscribe = subscribe(service, listener);
    return () => {
      watches--;
      unsubscribe();
    };
  };
  return { health, watches: () => watches };
}

async function codeOf(call: Promise<unknown>): Promise<Code | undefined> {
  try {
    await call;
    return undefined;
  } catch (e) {
    return ConnectError.from(e).code;
  }
}

interface Started {
  readonly baseUrl: string;
  /** Options of a Health client: the protocol is a value of its file. */
  readonly options: NodeClientOptions;
}

/** ElizaService's protocol values, for its clients, by name. */
const elizaProtocols = {
  connect: elizaConnectProtocol,
  grpc: elizaGrpcProtocol,
  "grpc-web": elizaGrpcWebProtocol,
} as const;

interface Setup {
  readonly name: string;
  start(health: HealthServer): Promise<Started>;
}

const setups: readonly Setup[] = [
  {
    name: "Connect, node:http (HTTP/1.1)",
    async start(health) {
      const server = await startServer("http", nodeHandler(eliza, health));
      closers.push(() => server.close());
      return { baseUrl: server.url, options: { transport: "fetch" } };
    },
  },
  {
    name: "Connect, fetch handler",
    async start(health) {
      return {
        baseUrl: "http://in-process.invalid",
        options: {
          httpClient: createFetchHttpClient(
            inProcessFetch(fetchHandler(eliza, health)),
          ),
        },
      };
    },
  },
  {
    name: "gRPC, node:http2 h2c",
    async start(health) {
      const server = await startServer("h2c", nodeHandler(eliza, health));
      closers.push(() => server.close());
      return {
        baseUrl: server.url,
        options: { protocol: grpcProtocol, transport: "http2" },
      };
    },
  },
  {
    name: "gRPC, node:http2 h2c with http2StreamHandler",
    async start(health) {
      const server = await startStreamServer(http2StreamHandler(eliza, health));
      closers.push(() => server.close());
      return {
        baseUrl: server.url,
        options: { protocol: grpcProtocol, transport: "http2" },
      };
    },
  },
  {
    name: "gRPC-Web, node:http (HTTP/1.1)",
    async start(health) {
      const server = await startServer("http", nodeHandler(eliza, health));
      closers.push(() => server.close());
      return {
        baseUrl: server.url,
        options: { protocol: grpcWebProtocol, transport: "fetch" },
      };
    },
  },
];

describe.each(setups)("health over $name", (setup) => {
  const { health, watches } = countedHealth();
  let client: HealthClient;
  let started: Started;

  beforeAll(async () => {
    started = await setup.start(health);
    client = createHealthClient(started.baseUrl, started.options);
  });

  it("Check answers the server's and each service's status, not_found for others", async () => {
    expect((await client.check({ service: "" })).status).toBe(
      ServingStatus.SERVING,
    );
    expect((await client.check({ service: elizaName })).status).toBe(
      ServingStatus.SERVING,
    );
    health.status.set("acme.v1.Billing", "NOT_SERVING");
    expect((await client.check({ service: "acme.v1.Billing" })).status).toBe(
      ServingStatus.NOT_SERVING,
    );
    expect(await codeOf(client.check({ service: "acme.v1.Nope" }))).toBe(
      Code.NotFound,
    );
  });

  it("List answers every service's status", async () => {
    const statuses = (await client.list({})).statuses;
    expect(
      Object.fromEntries(
        Object.entries(statuses).map(([service, response]) => [
          service,
          response.status,
        ]),
      ),
    ).toEqual({
      "": ServingStatus.SERVING,
      [elizaName]: ServingStatus.SERVING,
      "acme.v1.Billing": ServingStatus.NOT_SERVING,
    });
  });

  it("Watch sends the status, then each change made after it started, and stops when the client does", async () => {
    const seen: HealthCheckResponse["status"][] = [];
    for await (const response of client.watch({ service: elizaName })) {
      seen.push(response.status);
      if (seen.length === 1) health.status.set(elizaName, "NOT_SERVING");
      else if (seen.length === 2) health.status.set(elizaName, "SERVING");
      else break;
    }
    expect(seen).toEqual([
      ServingStatus.SERVING,
      ServingStatus.NOT_SERVING,
      ServingStatus.SERVING,
    ]);
    // The server's watch ends once the cancel reaches it.
    await vi.waitFor(() => expect(watches()).toBe(0));
  });

  it("Watch of an unknown service sends SERVICE_UNKNOWN and keeps watching", async () => {
    const seen: HealthCheckResponse["status"][] = [];
    for await (const response of client.watch({ service: "acme.v1.Later" })) {
      seen.push(response.status);
      if (seen.length === 1) health.status.set("acme.v1.Later", "SERVING");
      else break;
    }
    expect(seen).toEqual([
      ServingStatus.SERVICE_UNKNOWN,
      ServingStatus.SERVING,
    ]);
    await vi.waitFor(() => expect(watches()).toBe(0));
  });

  it("Watch ends when its call's deadline passes", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      const seen: HealthCheckResponse["status"][] = [];
      // Its outcome is taken at once, so that the rejection is never unhandled.
      const outcome = codeOf(
        (async () => {
          for await (const response of client.watch(
            { service: "" },
            { timeoutMs: 60_000 },
          )) {
            seen.push(response.status);
          }
        })(),
      );
      await vi.waitFor(() => expect(seen).toHaveLength(1));
      await vi.advanceTimersByTimeAsync(60_000);
      expect(await outcome).toBe(Code.DeadlineExceeded);
    } finally {
      vi.useRealTimers();
    }
    await vi.waitFor(() => expect(watches()).toBe(0));
  });

  it("shutdown() turns every status to NOT_SERVING, which a Watch sees, until resume()", async () => {
    const seen: HealthCheckResponse["status"][] = [];
    for await (const response of client.watch({ service: "" })) {
      seen.push(response.status);
      if (seen.length === 1) {
        health.status.shutdown();
      } else if (seen.length === 2) {
        expect((await client.check({ service: elizaName })).status).toBe(
          ServingStatus.NOT_SERVING,
        );
        health.status.set(elizaName, "SERVING"); // ignored
        expect((await client.check({ service: elizaName })).status).toBe(
          ServingStatus.NOT_SERVING,
        );
        health.status.resume();
      } else break;
    }
    expect(seen).toEqual([
      ServingStatus.SERVING,
      ServingStatus.NOT_SERVING,
      ServingStatus.SERVING,
    ]);
    expect((await client.check({ service: elizaName })).status).toBe(
      ServingStatus.SERVING,
    );
    await vi.waitFor(() => expect(watches()).toBe(0));
  });

  it("serves the other service beside it", async () => {
    // The same protocol, as the value of ElizaService's own file.
    const protocol =
      elizaProtocols[started.options.protocol?.name ?? "connect"];
    const elizaClient = createElizaServiceClient(started.baseUrl, {
      ...started.options,
      protocol,
    });
    expect((await elizaClient.say({ sentence: "hi" })).sentence).toBe(
      "You said hi",
    );
  });
});

describe("health with one HealthStatus for two handlers", () => {
  it("answers from the status given to healthMethods", async () => {
    const status = new HealthStatus({ [elizaName]: "NOT_SERVING" });
    const handler = createHealthHandler(healthMethods(status));
    const client = createHealthClient("http://in-process.invalid", {
      httpClient: createFetchHttpClient(inProcessFetch(handler.fetch)),
    });
    expect((await client.check({ service: elizaName })).status).toBe(
      ServingStatus.NOT_SERVING,
    );
    status.set(elizaName, "SERVING");
    expect((await client.check({ service: elizaName })).status).toBe(
      ServingStatus.SERVING,
    );
  });
});

describe("health called by @grpc/grpc-js, as grpc-health-probe does", () => {
  const health = createHealthServer([eliza]);
  let client: grpc.Client;

  beforeAll(async () => {
    const server = await startServer("h2c", nodeHandler(eliza, health));
    closers.push(() => server.close());
    client = new grpc.Client(
      server.url.replace("http://", ""),
      grpc.credentials.createInsecure(),
    );
    closers.push(async () => client.close());
  });

  const serialize = (service: string) =>
    Buffer.from(
      toBinary(
        HealthCheckRequestSchema,
        create(HealthCheckRequestSchema, { service }),
      ),
    );
  const deserialize = (bytes: Buffer) =>
    fromBinary(HealthCheckResponseSchema, bytes);

  function check(
    service: string,
  ): Promise<{ status?: number; code: grpc.status }> {
    return new Promise((resolve) => {
      client.makeUnaryRequest(
        "/grpc.health.v1.Health/Check",
        (s: string) => serialize(s),
        deserialize,
        service,
        (error, response) =>
          resolve(
            error === null
              ? { status: response!.status, code: grpc.status.OK }
              : { code: error.code },
          ),
      );
    });
  }

  it("Check answers SERVING for the server and its services, NOT_FOUND for others", async () => {
    expect(await check("")).toEqual({
      status: ServingStatus.SERVING,
      code: grpc.status.OK,
    });
    expect(await check(elizaName)).toEqual({
      status: ServingStatus.SERVING,
      code: grpc.status.OK,
    });
    expect(await check("acme.v1.Nope")).toEqual({
      code: grpc.status.NOT_FOUND,
    });
    health.status.shutdown();
    expect((await check("")).status).toBe(ServingStatus.NOT_SERVING);
    health.status.resume();
  });

  it("Watch streams changes until the client cancels", async () => {
    const call = client.makeServerStreamRequest(
      "/grpc.health.v1.Health/Watch",
      (s: string) => serialize(s),
      deserialize,
      elizaName,
    );
    // grpc-js reports the cancel as an error too.
    call.on("error", () => {});
    const ended = new Promise<grpc.StatusObject>((resolve) =>
      call.on("status", resolve),
    );
    const seen: number[] = [];
    await new Promise<void>((resolve) => {
      call.on("data", (response: HealthCheckResponse) => {
        seen.push(response.status);
        if (seen.length === 1) health.status.set(elizaName, "NOT_SERVING");
        else {
          call.cancel();
          resolve();
        }
      });
    });
    const status = await ended;
    expect(seen).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
    expect(status.code).toBe(grpc.status.CANCELLED);
  });
});
