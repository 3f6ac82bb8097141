// The script of the test page, bundled for the browser by esbuild
// (bundle.ts). Its imports name the Node file in test/gen for the type
// checker; the bundler swaps in the same service generated with
// `platform=web`, which has the same client API.

import {
  codeToString,
  ConnectError,
  connectProtocol,
  createElizaServiceClient,
  grpcWebProtocol,
  jsonCodec,
  type CallOptions,
} from "../gen/eliza/v1/eliza.ElizaService.ts";
import { SayResponseSchema } from "../gen/eliza/v1/eliza_pb.ts";
import type { CallError, CallResult, CallSpec, PageGlobals } from "./api.ts";

async function elizaCall(spec: CallSpec): Promise<CallResult> {
  const client = createElizaServiceClient(spec.baseUrl, {
    protocol: spec.transport === "grpc-web" ? grpcWebProtocol : connectProtocol,
    ...(spec.transport === "connect-json" ? { codec: jsonCodec() } : {}),
    useHttpGet: spec.transport === "connect-get",
  });
  const controller = new AbortController();
  const options: CallOptions = {
    signal: controller.signal,
    // Not CORS-safelisted: cross-origin, the preflight must allow it. Not on
    // a GET, which stays cacheable and, cross-origin, without a preflight.
    ...(spec.transport === "connect-get"
      ? {}
      : { headers: { "x-caller": "page" } }),
    ...(spec.timeoutMs === undefined ? {} : { timeoutMs: spec.timeoutMs }),
  };
  const first = spec.sentences[0] ?? "";
  const requests = spec.sentences.map((sentence) => ({ sentence }));
  const messages: string[] = [];
  const received = (sentence: string) => {
    messages.push(sentence);
    if (messages.length === spec.abortAfter) controller.abort();
  };
  let header: Headers | undefined;
  let count: number | undefined;
  try {
    switch (spec.method) {
      case "say": {
        const response = await client.say.raw({ sentence: first }, options);
        header = response.header;
        received(response.message.sentence);
        break;
      }
      case "pontificate": {
        const response = await client.pontificate.raw(requests, options);
        header = response.header;
        count = response.message.count;
        received(response.message.sentence);
        break;
      }
      case "introduce":
      case "converse": {
        const response =
          spec.method === "introduce"
            ? await client.introduce.raw({ name: first }, options)
            : await client.converse.raw(requests, options);
        header = response.header;
        for await (const message of response.messages) {
          received(message.sentence);
        }
        break;
      }
    }
  } catch (error) {
    return { messages, error: describeError(error) };
  }
  return {
    messages,
    ...(count === undefined ? {} : { count }),
    elizaHeader: header?.get("x-eliza") ?? null,
  };
}

function describeError(error: unknown): CallError {
  if (!(error instanceof ConnectError)) {
    return {
      code: "not a ConnectError",
      message: String(error),
      detailTypes: [],
      detailSentences: [],
    };
  }
  return {
    code: codeToString(error.code),
    message: error.rawMessage,
    detailTypes: error.details.map((detail) => detail.type),
    detailSentences: error
      .findDetails(SayResponseSchema)
      .map((detail) => detail.sentence),
    ...(error.cause === undefined ? {} : { cause: String(error.cause) }),
  };
}

const page: PageGlobals = { elizaCall };
Object.assign(globalThis, page);
