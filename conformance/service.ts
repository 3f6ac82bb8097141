// ConformanceService as service.proto specifies it, on the generated server.
// Every response echoes what the server saw (request headers, timeout, the
// request messages as Any, and a Connect GET's query parameters); each
// request's response definition says what to answer. Unimplemented is left
// out, so the generated handler answers it with `unimplemented`.
import { create } from "@bufbuild/protobuf";
import type { Any } from "@bufbuild/protobuf/wkt";
import {
  BidiStreamRequestSchema,
  ClientStreamRequestSchema,
  ConformancePayload_ConnectGetInfoSchema,
  ConformancePayload_RequestInfoSchema,
  ConformancePayloadSchema,
  HeaderSchema,
  IdempotentUnaryRequestSchema,
  ServerStreamRequestSchema,
  UnaryRequestSchema,
} from "./gen/connectrpc/conformance/v1/service_pb.ts";
import type {
  ConformancePayload,
  ConformancePayload_RequestInfo,
  StreamResponseDefinition,
  UnaryResponseDefinition,
} from "./gen/connectrpc/conformance/v1/service_pb.ts";
import type {
  ConformanceServiceImplementation,
  HandlerContext,
} from "./gen/connectrpc/conformance/v1/service.ConformanceService.ts";
import {
  appendProtoHeaders,
  errorFromProto,
  headersToProto,
  packAny,
  sleep,
} from "./protocol.ts";

function requestInfo(
  context: HandlerContext,
  requests: Any[],
): ConformancePayload_RequestInfo {
  const timeoutMs = context.timeoutMs();
  return create(ConformancePayload_RequestInfoSchema, {
    requestHeaders: headersToProto(context.requestHeaders),
    // What is left of the deadline, as the reference server reports it.
    timeoutMs:
      timeoutMs === undefined
        ? undefined
        : BigInt(Math.max(0, Math.floor(timeoutMs))),
    requests,
    connectGetInfo: connectGetInfo(context),
  });
}

/** A Connect GET's query parameters. */
function connectGetInfo(context: HandlerContext) {
  if (context.requestMethod !== "GET") {
    return undefined;
  }
  const queryParams = [];
  const params = new URL(context.url).searchParams;
  for (const name of new Set(params.keys())) {
    queryParams.push(
      create(HeaderSchema, { name, value: params.getAll(name) }),
    );
  }
  return create(ConformancePayload_ConnectGetInfoSchema, { queryParams });
}

/** Unary, IdempotentUnary and ClientStream: one response, or the defined error. */
async function unaryResponse(
  definition: UnaryResponseDefinition | undefined,
  requests: Any[],
  context: HandlerContext,
): Promise<{ payload: ConformancePayload }> {
  appendProtoHeaders(context.responseHeaders, definition?.responseHeaders);
  appendProtoHeaders(context.responseTrailers, definition?.responseTrailers);
  const info = requestInfo(context, requests);
  const response = definition?.response;
  if (response?.case === "error") {
    throw errorFromProto(response.value, [
      packAny(ConformancePayload_RequestInfoSchema, info),
    ]);
  }
  await sleep(definition?.responseDelayMs ?? 0, context.signal);
  return {
    payload: create(ConformancePayloadSchema, {
      requestInfo: info,
      data:
        response?.case === "responseData" ? response.value : new Uint8Array(0),
    }),
  };
}

/** The error a stream ends with, once its responses are sent; the request info goes with it when none were. */
function streamError(
  definition: StreamResponseDefinition,
  responsesSent: number,
  info: () => ConformancePayload_RequestInfo,
) {
  return errorFromProto(
    definition.error!,
    responsesSent === 0
      ? [packAny(ConformancePayload_RequestInfoSchema, info())]
      : [],
  );
}

export function createConformanceImplementation(): Partial<ConformanceServiceImplementation> {
  return {
    unary(request, context) {
      return unaryResponse(
        request.responseDefinition,
        [packAny(UnaryRequestSchema, request)],
        context,
      );
    },

    idempotentUnary(request, context) {
      return unaryResponse(
        request.responseDefinition,
        [packAny(IdempotentUnaryRequestSchema, request)],
        context,
      );
    },

    async clientStream(requests, context) {
      let definition: UnaryResponseDefinition | undefined;
      let first = true;
      const received: Any[] = [];
      for await (const request of requests) {
        // Only the first message's definition counts.
        if (first) {
          definition = request.responseDefinition;
          first = false;
        }
        received.push(packAny(ClientStreamRequestSchema, request));
      }
      return unaryResponse(definition, received, context);
    },

    async *serverStream(request, context) {
      const definition = request.responseDefinition;
      appendProtoHeaders(context.responseHeaders, definition?.responseHeaders);
      appendProtoHeaders(
        context.responseTrailers,
        definition?.responseTrailers,
      );
      const requests = [packAny(ServerStreamRequestSchema, request)];
      let sent = 0;
      for (const data of definition?.responseData ?? []) {
        await sleep(definition!.responseDelayMs, context.signal);
        yield {
          payload: create(ConformancePayloadSchema, {
            data,
            // Only the first response echoes the request.
            requestInfo:
              sent === 0 ? requestInfo(context, requests) : undefined,
          }),
        };
        sent++;
      }
      if (definition?.error !== undefined) {
        throw streamError(definition, sent, () =>
          requestInfo(context, requests),
        );
      }
    },

    async *bidiStream(requests, context) {
      let definition: StreamResponseDefinition | undefined;
      let fullDuplex = false;
      let first = true;
      let sent = 0;
      // Full duplex: the requests since the last response; half duplex: all of them.
      let received: Any[] = [];
      for await (const request of requests) {
        received.push(packAny(BidiStreamRequestSchema, request));
        if (first) {
          definition = request.responseDefinition;
          fullDuplex = request.fullDuplex;
          first = false;
          appendProtoHeaders(
            context.responseHeaders,
            definition?.responseHeaders,
          );
          appendProtoHeaders(
            context.responseTrailers,
            definition?.responseTrailers,
          );
        }
        if (!fullDuplex) continue;
        if (
          definition === undefined ||
          sent >= definition.responseData.length
        ) {
          // Nothing left to answer with: end with the error, if any.
          break;
        }
        await sleep(definition.responseDelayMs, context.signal);
        yield {
          payload: create(ConformancePayloadSchema, {
            data: definition.responseData[sent]!,
            // The first response echoes everything, later ones their request.
            requestInfo:
              sent === 0
                ? requestInfo(context, received)
                : create(ConformancePayload_RequestInfoSchema, {
                    requests: received,
                  }),
          }),
        };
        sent++;
        received = [];
      }
      if (definition === undefined) return;
      // Half duplex: every response now; full duplex: those more than the requests.
      const info = requestInfo(context, received);
      for (; sent < definition.responseData.length; sent++) {
        await sleep(definition.responseDelayMs, context.signal);
        yield {
          payload: create(ConformancePayloadSchema, {
            data: definition.responseData[sent]!,
            requestInfo: sent === 0 ? info : undefined,
          }),
        };
      }
      if (definition.error !== undefined) {
        throw streamError(
          definition,
          definition.responseData.length,
          () => info,
        );
      }
    },
  };
}
