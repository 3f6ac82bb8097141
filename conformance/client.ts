// The conformance client program (connectconformance --mode client). Reads
// size-delimited ClientCompatRequests from stdin until it ends, makes each
// call with the generated ConformanceService client, and writes one
// size-delimited ClientCompatResponse per request (in the order the calls
// finish). On EOF it waits for the calls in flight, then exits.
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  ClientCompatRequestSchema,
  ClientCompatResponseSchema,
} from "./gen/connectrpc/conformance/v1/client_compat_pb.ts";
import { frameDelimited, readDelimited } from "./protocol.ts";
import { runClientCompatRequest } from "./invoke.ts";

// The runner stops the client with SIGTERM when it gives up on it.
process.on("SIGTERM", () => process.exit(143));

/** Calls run concurrently, up to this many at once, so that timing-sensitive cases keep their timing. */
const maxConcurrentCalls = 16;

function write(bytes: Uint8Array): Promise<void> {
  // One write per message: writes queue whole, so messages never interleave.
  return new Promise((resolve, reject) =>
    process.stdout.write(frameDelimited(bytes), (error) =>
      error ? reject(error) : resolve(),
    ),
  );
}

const inFlight = new Set<Promise<void>>();
for await (const bytes of readDelimited(process.stdin)) {
  while (inFlight.size >= maxConcurrentCalls) {
    await Promise.race(inFlight);
  }
  const request = fromBinary(ClientCompatRequestSchema, bytes);
  const call = runClientCompatRequest(request).then((response) =>
    write(toBinary(ClientCompatResponseSchema, response)),
  );
  inFlight.add(call);
  const settled = () => void inFlight.delete(call);
  call.then(settled, settled);
}
await Promise.all(inFlight);
// HTTP/2 sessions and keep-alive sockets would otherwise hold the process open.
process.exit(0);
