// The demo: serves ElizaService with the generated server on node:http and
// node:http2 at once, then calls it with the generated client over every
// protocol (Connect, gRPC, gRPC-Web), transport, codec and compression, and
// shows errors, deadlines, GET and all four kinds of RPC; then asks the
// health and reflection services served beside it.
// Run it with `npm run demo` (which generates examples/gen first).
import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import {
  Code,
  ConnectError,
  ElizaServiceDefinition,
  createElizaServiceClient,
  createElizaServiceHandler,
  grpcProtocol,
  grpcWebProtocol,
  jsonCodec,
  nodeHandler,
  type Interceptor,
} from "./gen/eliza/v1/eliza.ElizaService.ts";
import {
  createHealthClient,
  createHealthServer,
  grpcProtocol as healthGrpcProtocol,
} from "./gen/grpc/health/v1/health.Health.ts";
import { HealthCheckResponse_ServingStatus } from "./gen/grpc/health/v1/health_pb.ts";
import {
  createReflectionHandlers,
  createServerReflectionClient,
} from "./gen/grpc/reflection/v1/reflection.ServerReflection.ts";

const logCalls: Interceptor = (next) => async (request) => {
  const response = await next(request);
  console.log(
    `  server: ${request.method.name} ${response.stream ? "is streaming" : "answered"}`,
  );
  return response;
};

const handler = createElizaServiceHandler(
  {
    async say(request, context) {
      if (request.sentence === "") {
        throw new ConnectError("say something", Code.InvalidArgument);
      }
      if (request.sentence === "take your time") {
        // Waits until the client's deadline aborts the signal.
        await new Promise((resolve) =>
          context.signal.addEventListener("abort", resolve),
        );
      }
      context.responseHeaders.set("eliza-mood", "curious");
      context.responseTrailers.set("eliza-sentences", "1");
      return {
        sentence: `You said "${request.sentence}". How does that make you feel?`,
      };
    },
    async *introduce(request) {
      yield { sentence: `Hi ${request.name}, I'm Eliza.` };
      yield { sentence: "I'm a Rogerian psychotherapist." };
      yield { sentence: "How are you feeling today?" };
    },
    async pontificate(requests) {
      let count = 0;
      let longest = "";
      for await (const { sentence } of requests) {
        count++;
        if (sentence.length > longest.length) longest = sentence;
      }
      return {
        sentence: `Of your ${count} sentences, "${longest}" says the most.`,
        count,
      };
    },
    async *converse(requests) {
      // Answers each sentence as it arrives: over HTTP/2 the client hears
      // back before it has finished talking.
      for await (const { sentence } of requests) {
        yield { sentence: `Why do you say "${sentence}"?` };
      }
    },
  },
  { interceptors: [logCalls] },
);

// Health (health=true) and reflection (reflection=true) beside Eliza.
// Reflection's bidi stream needs HTTP/2, so only the h2c server has it.
const health = createHealthServer([handler]);
const reflection = createReflectionHandlers([handler, health]);
const h1 = http.createServer(nodeHandler(handler, health));
const h2 = http2.createServer(nodeHandler(handler, health, reflection));
await Promise.all([
  new Promise<void>((resolve) => h1.listen(0, "127.0.0.1", resolve)),
  new Promise<void>((resolve) => h2.listen(0, "127.0.0.1", resolve)),
]);
const h1Url = `http://127.0.0.1:${(h1.address() as AddressInfo).port}`;
const h2Url = `http://127.0.0.1:${(h2.address() as AddressInfo).port}`;
console.log(
  `ElizaService on ${h1Url} (HTTP/1.1) and ${h2Url} (h2c), path ${handler.path}\n`,
);

const calls = [
  { label: "Connect, HTTP/1.1 fetch, binary", url: h1Url, options: {} },
  {
    label: "Connect, HTTP/1.1 fetch, JSON, gzip",
    url: h1Url,
    options: {
      codec: jsonCodec(),
      sendCompression: "gzip",
      compressMinBytes: 0,
    },
  },
  {
    label: "Connect, HTTP/1.1 fetch, GET",
    url: h1Url,
    options: { useHttpGet: true },
  },
  {
    label: "Connect, h2c, binary, zstd",
    url: h2Url,
    options: {
      transport: "http2",
      sendCompression: "zstd",
      compressMinBytes: 0,
    },
  },
  {
    label: "Connect, h2c, JSON, br",
    url: h2Url,
    options: {
      transport: "http2",
      codec: jsonCodec(),
      sendCompression: "br",
      compressMinBytes: 0,
    },
  },
  // gRPC needs HTTP/2: its client picks the http2 transport.
  {
    label: "gRPC, h2c, binary",
    url: h2Url,
    options: { protocol: grpcProtocol },
  },
  {
    label: "gRPC, h2c, JSON, gzip",
    url: h2Url,
    options: {
      protocol: grpcProtocol,
      codec: jsonCodec(),
      sendCompression: "gzip",
      compressMinBytes: 0,
    },
  },
  {
    label: "gRPC-Web, HTTP/1.1 fetch, binary",
    url: h1Url,
    options: { protocol: grpcWebProtocol },
  },
  {
    label: "gRPC-Web, h2c, JSON, br",
    url: h2Url,
    options: {
      protocol: grpcWebProtocol,
      transport: "http2",
      codec: jsonCodec(),
      sendCompression: "br",
      compressMinBytes: 0,
    },
  },
] as const;

for (const { label, url, options } of calls) {
  const client = createElizaServiceClient(url, options);
  const { message, header, trailer } = await client.say.raw({
    sentence: "I feel fine",
  });
  console.log(`${label}:\n  ${message.sentence}`);
  console.log(
    `  header eliza-mood=${header.get("eliza-mood")}, trailer eliza-sentences=${trailer.get("eliza-sentences")}`,
  );
}

const clients = {
  Connect: createElizaServiceClient(h2Url, { transport: "http2" }),
  gRPC: createElizaServiceClient(h2Url, { protocol: grpcProtocol }),
  "gRPC-Web": createElizaServiceClient(h1Url, { protocol: grpcWebProtocol }),
};

console.log("");
for (const [protocol, client] of Object.entries(clients)) {
  try {
    await client.say({ sentence: "" });
  } catch (e) {
    const error = ConnectError.from(e);
    console.log(
      `${protocol}, an error: code ${error.code} (${error.rawMessage})`,
    );
  }
  try {
    await client.say({ sentence: "take your time" }, { timeoutMs: 200 });
  } catch (e) {
    const error = ConnectError.from(e);
    console.log(
      `${protocol}, a deadline: ${error.code === Code.DeadlineExceeded ? "deadline_exceeded" : error.message}`,
    );
  }
}

for (const [protocol, client] of Object.entries(clients)) {
  console.log(`\nServer streaming (Introduce), ${protocol}:`);
  for await (const { sentence } of client.introduce({ name: "demo" })) {
    console.log(`  ${sentence}`);
  }
}

for (const [protocol, client] of Object.entries(clients)) {
  console.log(`Client streaming (Pontificate), ${protocol}:`);
  const summary = await client.pontificate([
    { sentence: "I slept well." },
    { sentence: "Work has been a lot lately, more than I expected." },
    { sentence: "Fine." },
  ]);
  console.log(`  ${summary.sentence}`);
}

// Full duplex needs HTTP/2 end to end: the gRPC-Web client here is on
// HTTP/1.1, so it gets its own HTTP/2 client for this.
const duplexClients = {
  ...clients,
  "gRPC-Web": createElizaServiceClient(h2Url, {
    protocol: grpcWebProtocol,
    transport: "http2",
  }),
};
for (const [protocol, client] of Object.entries(duplexClients)) {
  console.log(`Bidi streaming (Converse), ${protocol}, h2c, full duplex:`);
  // Each sentence is sent only after Eliza answered the previous one.
  const sentences = ["I feel tired", "My cat ignores me", "Goodbye"];
  let answered: () => void = () => {};
  async function* talk() {
    for (const sentence of sentences) {
      console.log(`  > ${sentence}`);
      yield { sentence };
      await new Promise<void>((resolve) => (answered = resolve));
    }
  }
  for await (const { sentence } of client.converse(talk())) {
    console.log(`  < ${sentence}`);
    answered();
  }
}

console.log("\nHealth (grpc.health.v1), gRPC over h2c:");
const healthClient = createHealthClient(h2Url, {
  protocol: healthGrpcProtocol,
});
const statusName = (status: number) =>
  Object.entries(HealthCheckResponse_ServingStatus).find(
    ([, value]) => value === status,
  )?.[0];
const service = ElizaServiceDefinition.typeName;
console.log(
  `  ${service}: ${statusName((await healthClient.check({ service })).status)}`,
);
health.status.set(service, "NOT_SERVING");
console.log(
  `  after health.status.set: ${statusName((await healthClient.check({ service })).status)}`,
);
try {
  await healthClient.check({ service: "no.such.Service" });
} catch (e) {
  console.log(
    `  an unknown service: ${ConnectError.from(e).code === Code.NotFound ? "not_found" : e}`,
  );
}

console.log("Reflection (grpc.reflection.v1), Connect over h2c:");
const reflectionClient = createServerReflectionClient(h2Url, {
  transport: "http2",
});
for await (const { messageResponse } of reflectionClient.serverReflectionInfo([
  { messageRequest: { case: "listServices", value: "" } },
])) {
  if (messageResponse.case === "listServicesResponse") {
    for (const { name } of messageResponse.value.service) {
      console.log(`  ${name}`);
    }
  }
}
console.log(
  `  (try: npx buf curl --http2-prior-knowledge --list-methods ${h2Url})`,
);

h1.close();
h2.close();
