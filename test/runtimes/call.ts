// Runs callEveryKind with the generated client on this runtime against the
// server at argv[2], over the protocol argv[3] and transport argv[4]
// ("fetch" or "http2"), and prints the results as one line of JSON.
import {
  connectProtocol,
  createElizaServiceClient,
  grpcProtocol,
  grpcWebProtocol,
} from "../gen/eliza/v1/eliza.ElizaService.ts";
import { callEveryKind } from "./eliza.ts";

const [baseUrl, protocol, transport] = process.argv.slice(2);
if (
  baseUrl === undefined ||
  (protocol !== "connect" && protocol !== "grpc" && protocol !== "grpc-web") ||
  (transport !== "fetch" && transport !== "http2")
) {
  throw new Error(
    "usage: call.ts <base-url> <connect|grpc|grpc-web> <fetch|http2>",
  );
}
// The protocol's value, of the file whose client speaks it.
const protocols = {
  connect: connectProtocol,
  grpc: grpcProtocol,
  "grpc-web": grpcWebProtocol,
} as const;
const client = createElizaServiceClient(baseUrl, {
  protocol: protocols[protocol],
  transport,
});
console.log(JSON.stringify(await callEveryKind(client)));
process.exit(0);
