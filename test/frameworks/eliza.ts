// Shared by the framework tests: an Eliza service, and (from
// test/support/raw-http.ts) raw HTTP requests that show exactly which
// headers a response carried, over HTTP/1.1 and HTTP/2.
import { create, toBinary, type DescMessage } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createElizaServiceHandler,
} from "../gen/eliza/v1/eliza.ElizaService.ts";
import { envelopeBytes } from "../support/raw-http.ts";

export {
  envelopeBytes,
  rawRequest,
  type RawResponse,
} from "../support/raw-http.ts";

export const elizaPath = "/connectrpc.eliza.v1.ElizaService";

/** Say answers "You said: …" (and fails for "fail"); Introduce sends three sentences. */
export const eliza = createElizaServiceHandler({
  say(request, context) {
    if (request.sentence === "fail") {
      throw new ConnectError("Eliza fails", Code.PermissionDenied);
    }
    context.responseHeaders.append("set-cookie", "eliza=1");
    context.responseHeaders.set("vary", "x-eliza");
    return { sentence: `You said: ${request.sentence}` };
  },
  async *introduce(request) {
    for (let i = 1; i <= 3; i++) {
      yield { sentence: `${request.name} ${i}` };
    }
  },
});

/** A message in the envelope of gRPC, gRPC-Web and Connect streaming. */
export function envelope<Desc extends DescMessage>(
  schema: Desc,
  init: MessageInitShape<Desc>,
): Uint8Array<ArrayBuffer> {
  return envelopeBytes(toBinary(schema, create(schema, init)));
}
