// Fuzz cases: a valid request to the generated Eliza server (any protocol,
// RPC kind, codec, compression and transport), then mutations of it, each of
// which says what the server may answer to it.
//
// Outcomes: "ok" (a successful call), a Connect code name (the error of a
// Connect unary response, of a Connect end-of-stream message, or a gRPC /
// gRPC-Web status), "http404" / "http405" / "http415" (answered before any
// protocol: no such path, wrong HTTP verb, unsupported content type), and
// "reset" (an HTTP/2 stream reset before a complete response).
//
// What each input class may get, from README.md ("What the server answers to
// requests it cannot serve") and the protocol specifications:
//   - valid request, benign changes (chunking, a query string on a POST,
//     unknown headers, Accept-Encoding of any value, content types in other
//     cases or with parameters): ok only;
//   - an undecodable message, bad JSON, bad GET base64 or a bad "connect"
//     query parameter, bad Connect-Protocol-Version, a malformed
//     Connect-Timeout-Ms or grpc-timeout, envelope flags a request must not
//     have, a stream that ends inside an envelope: invalid_argument;
//   - corrupt compressed data, or bytes declared compressed that are not:
//     invalid_argument, or resource_exhausted where they inflate past the
//     limit (brotli has no magic number; a corrupt zstd header may ask for
//     a window larger than the limit allows);
//   - a message over readMaxBytes, before or after decompression (bombs
//     included): resource_exhausted;
//   - an unknown Content-Encoding / Connect-Content-Encoding / grpc-encoding
//     or GET "compression": unimplemented; so is an unknown method under the
//     service path for gRPC and gRPC-Web (Connect: 404), gRPC over HTTP/1.1
//     or the fetch handler, and a method that takes one request message
//     given none or several (as connect-go);
//   - a compressed envelope (flag 1) in a stream that declared no
//     compression: internal (what the conformance suite expects);
//   - a valid timeout may expire: deadline_exceeded;
//   - a request body that fails mid-upload (handler.fetch): canceled;
//   - an HTTP/2 body longer or shorter than its content-length: a reset
//     (Node's HTTP/2 server ends the connection), or resource_exhausted
//     when the declared length is over the limit;
//   - a client that goes away mid-request: anything, or nothing; only the
//     other oracles apply;
//   - wrong verb 405, unsupported content type or GET encoding 415, a path
//     no service serves 404.
// Never allowed for any input: unknown (the implementations never throw, so
// it could only come from the runtime failing), internal outside the class
// above, any other code, a 5xx, a malformed response, a hang.

import {
  create,
  toBinary,
  toJsonString,
  type DescMessage,
} from "@bufbuild/protobuf";
import * as zlib from "node:zlib";
import {
  ConverseRequestSchema,
  ConverseResponseSchema,
  IntroduceRequestSchema,
  IntroduceResponseSchema,
  PontificateRequestSchema,
  PontificateResponseSchema,
  SayRequestSchema,
  SayResponseSchema,
} from "../gen/eliza/v1/eliza_pb.ts";
import { Rng, caseSeed } from "./rng.ts";

/** The fuzz server's receive limit: small, so that bombs and oversized messages stay small. */
export const fuzzReadMaxBytes = 1024;

export const servicePath = "/connectrpc.eliza.v1.ElizaService/";

export type Transport = "http1" | "h2c" | "h2c-stream" | "fetch";
export type Protocol = "connect" | "grpc" | "grpc-web";
export type Kind = "unary" | "server" | "client" | "bidi";

export interface MethodDef {
  readonly name: string;
  readonly kind: Kind;
  readonly input: DescMessage;
  readonly output: DescMessage;
  readonly field: string;
}

export const methodDefs: readonly MethodDef[] = [
  {
    name: "Say",
    kind: "unary",
    input: SayRequestSchema,
    output: SayResponseSchema,
    field: "sentence",
  },
  {
    name: "Introduce",
    kind: "server",
    input: IntroduceRequestSchema,
    output: IntroduceResponseSchema,
    field: "name",
  },
  {
    name: "Pontificate",
    kind: "client",
    input: PontificateRequestSchema,
    output: PontificateResponseSchema,
    field: "sentence",
  },
  {
    name: "Converse",
    kind: "bidi",
    input: ConverseRequestSchema,
    output: ConverseResponseSchema,
    field: "sentence",
  },
];

export interface Mutation {
  readonly what: string;
  /**
   * What it changed: the messages, or their framing. A later change that
   * replaces them (no messages, random bytes) makes it moot.
   */
  readonly layer?: "message" | "frame";
  /** Error outcomes this change may cause. */
  readonly codes: readonly string[];
  /** Whether the call may still succeed with this change. */
  readonly ok: boolean;
  /**
   * The request is read as another protocol or method than it was built
   * for, so what the other mutations expect no longer holds: anything
   * client-caused, ok included, may come back.
   */
  readonly reinterpreted?: boolean;
}

export interface FuzzCase {
  readonly seed: number;
  readonly index: number;
  readonly transport: Transport;
  /** The protocol the valid request was built for. */
  readonly protocol: Protocol;
  readonly method: MethodDef;
  /** The method whose path the request went to (another method's, after a mutation). */
  readonly target: MethodDef;
  /** The protocol family the response must have, from the request as sent. */
  readonly family: "connect-unary" | "connect-stream" | "grpc" | "grpc-web";
  readonly httpMethod: string;
  /** Path and query. */
  readonly url: string;
  readonly headers: readonly (readonly [string, string])[];
  /** The body, as separate writes; empty for none. */
  readonly chunks: readonly Uint8Array[];
  /**
   * After the first chunk: HTTP/2 resets the stream, HTTP/1.1 destroys the
   * socket, and through handler.fetch the request body stream fails (what a
   * fetch runtime does when the client goes away mid-upload).
   */
  readonly abort: boolean;
  /** A pause before each write of the body (0: none). */
  readonly delayMs: number;
  readonly mutations: readonly Mutation[];
}

/** What the server may answer: every mutation's errors, and ok only if no mutation rules it out. */
export function allowedOutcomes(c: FuzzCase): Set<string> {
  const allowed = new Set<string>();
  let ok = true;
  for (const m of c.mutations) {
    for (const code of m.codes) allowed.add(code);
    ok &&= m.ok;
  }
  if (c.mutations.some((m) => m.reinterpreted === true)) ok = true;
  if (ok) allowed.add("ok");
  return allowed;
}

// ---------------------------------------------------------------------------

const knownCompressions = ["gzip", "br", "zstd", "deflate"] as const;
type KnownCompression = (typeof knownCompressions)[number];

export function compress(name: KnownCompression, data: Uint8Array): Uint8Array {
  switch (name) {
    case "gzip":
      return zlib.gzipSync(data);
    case "br":
      return zlib.brotliCompressSync(data);
    case "zstd":
      return zlib.zstdCompressSync(data);
    case "deflate":
      return zlib.deflateSync(data);
  }
}

/** Errors of every client-caused class but the deadline: what anything garbled may get. */
const anyGarbled = [
  "invalid_argument",
  "resource_exhausted",
  "unimplemented",
  "internal",
];

const textAlphabet =
  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,!?'\"\\/{}[]:;-_+=%&<>é日本😀\u0000\t\n";
const tokenAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789-";
/** Header value characters Node and fetch send: tab, visible ASCII, Latin-1. */
function headerValue(rng: Rng, maxLength = 24): string {
  let s = "";
  const n = rng.int(maxLength + 1);
  for (let i = 0; i < n; i++) {
    const r = rng.int(100);
    s +=
      r < 80
        ? String.fromCharCode(rng.range(0x21, 0x7e))
        : r < 90
          ? " "
          : r < 93
            ? "\t"
            : String.fromCharCode(rng.range(0x80, 0xff));
  }
  // HTTP/1.1 and fetch strip surrounding white-space, HTTP/2 refuses it.
  return s.replace(/^[ \t]+|[ \t]+$/g, "");
}

// Code points, not UTF-16 units: a lone surrogate is not a valid protobuf string.
const textCodePoints = Array.from(textAlphabet);

function randomText(rng: Rng, max = 40): string {
  let s = "";
  for (let n = rng.int(max + 1); n > 0; n--) s += rng.pick(textCodePoints);
  return s;
}

function encodeMessage(
  desc: DescMessage,
  field: string,
  value: string,
  binary: boolean,
): Uint8Array {
  const message = create(desc, { [field]: value });
  return binary
    ? toBinary(desc, message)
    : new TextEncoder().encode(toJsonString(desc, message));
}

function garble(rng: Rng, data: Uint8Array, binary: boolean): Uint8Array {
  switch (rng.int(binary ? 5 : 6)) {
    case 0:
      return data.subarray(0, rng.int(data.length + 1));
    case 1: {
      const out = data.slice();
      for (let i = rng.range(1, 4); i > 0 && out.length > 0; i--) {
        out[rng.int(out.length)]! ^= 1 << rng.int(8);
      }
      return out;
    }
    case 2:
      return rng.bytes(rng.int(64));
    case 3: {
      const at = rng.int(data.length + 1);
      const out = new Uint8Array(data.length + 3);
      out.set(data.subarray(0, at));
      out.set(rng.bytes(3), at);
      out.set(data.subarray(at), at + 3);
      return out;
    }
    case 4:
      return new Uint8Array([...data, ...data]);
    default:
      return new TextEncoder().encode(
        rng.pick([
          '{"sentence": ',
          "[1,2]",
          "null",
          '{"sentence": 5}',
          '{"noSuchField": 1}',
          '{"sentence":"\\ud800"}',
          "{}}",
          '"x"',
          '{"sentence":"a","sentence":"b"}',
        ]),
      );
  }
}

function envelope(flags: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + data.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, data.length);
  out.set(data, 5);
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function contentTypeFor(
  protocol: Protocol,
  streaming: boolean,
  binary: boolean,
  rng: Rng,
): string {
  switch (protocol) {
    case "connect":
      return streaming
        ? binary
          ? "application/connect+proto"
          : "application/connect+json"
        : binary
          ? "application/proto"
          : "application/json";
    case "grpc":
      return binary
        ? rng.pick(["application/grpc", "application/grpc+proto"])
        : "application/grpc+json";
    case "grpc-web":
      return binary
        ? rng.pick(["application/grpc-web", "application/grpc-web+proto"])
        : "application/grpc-web+json";
  }
}

/** The response family a content type selects, as README.md describes the routing. */
export function familyOf(
  contentType: string | undefined,
  streaming: boolean,
): FuzzCase["family"] {
  const ct = contentType ?? "";
  if (/^application\/grpc-web(?![-\w])/i.test(ct)) return "grpc-web";
  if (/^application\/grpc(?![-\w])/i.test(ct)) return "grpc";
  return streaming ? "connect-stream" : "connect-unary";
}

const unknownEncodings = [
  "snappy",
  "lz4",
  "x-gzip",
  "gzip2",
  "compress",
  "*",
  "gzip, br",
  "identity;q=1",
];

function unknownEncoding(rng: Rng): string {
  if (rng.chance(0.5)) return rng.pick(unknownEncodings);
  for (;;) {
    const name = rng.string(rng.range(1, 8), tokenAlphabet);
    if (
      !(knownCompressions as readonly string[]).includes(name) &&
      name !== "identity"
    )
      return name;
  }
}

/** Builds case `index` of the run with `seed`. */
export function buildCase(seed: number, index: number): FuzzCase {
  const rng = new Rng(caseSeed(seed, index));
  const mutations: Mutation[] = [];
  const mutate = (
    what: string,
    codes: readonly string[],
    ok: boolean,
    layer?: "message" | "frame",
  ) =>
    mutations.push({
      what,
      codes,
      ok,
      ...(layer === undefined ? {} : { layer }),
    });
  /** Drops the mutations of the messages (and of their framing) that a later change replaced. */
  const replaced = (...layers: ("message" | "frame")[]) => {
    for (let i = mutations.length - 1; i >= 0; i--) {
      const layer = mutations[i]!.layer;
      if (layer !== undefined && layers.includes(layer)) mutations.splice(i, 1);
    }
  };

  const transport = rng.pick<Transport>([
    "http1",
    "h2c",
    "h2c-stream",
    "fetch",
  ]);
  const method = rng.pick(methodDefs);
  const streaming = method.kind !== "unary";
  const singleRequest = method.kind === "unary" || method.kind === "server";
  const get = method.kind === "unary" && rng.chance(0.25);
  const protocol: Protocol = get
    ? "connect"
    : rng.pick<Protocol>(["connect", "grpc", "grpc-web"]);
  const binary = rng.chance(0.7);
  const compression: KnownCompression | null = rng.chance(0.45)
    ? null
    : rng.pick(knownCompressions);
  const headers: [string, string][] = [];
  let httpMethod = get ? "GET" : "POST";
  let path = servicePath + method.name;
  let targetMethod = method;
  let query = "";
  let body: Uint8Array | undefined;
  const envelopes = protocol !== "connect" || streaming;

  // One message for each request the method reads, then what goes wrong with one of them.
  const count = singleRequest ? 1 : rng.int(4);
  const messages: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    messages.push(
      encodeMessage(method.input, method.field, randomText(rng), binary),
    );
  }
  /** Per message: compressed with the declared compression (envelope flag 1). */
  const compressedFlags = messages.map(() => false);
  const target = rng.int(Math.max(1, count));
  let messageLayer =
    count === 0
      ? "none"
      : rng.pick([
          "none",
          "none",
          "none",
          "none",
          "garble",
          "garble",
          "oversize",
          "bomb",
          "corrupt",
        ]);
  if (
    (messageLayer === "bomb" || messageLayer === "corrupt") &&
    compression === null
  ) {
    messageLayer = "none";
  }
  if (messageLayer === "garble") {
    messages[target] = garble(rng, messages[target]!, binary);
    mutate("garbled message", ["invalid_argument"], true, "message");
  } else if (messageLayer === "oversize") {
    messages[target] = encodeMessage(
      method.input,
      method.field,
      "s".repeat(fuzzReadMaxBytes + rng.range(1, 1500)),
      binary,
    );
    mutate(
      "message over readMaxBytes",
      ["resource_exhausted"],
      false,
      "message",
    );
  }
  // Compression of the messages: valid, then maybe a bomb or corrupt data.
  if (compression !== null) {
    for (let i = 0; i < count; i++) {
      const whole = !envelopes;
      if (whole || rng.chance(0.7)) {
        if (messageLayer === "bomb" && i === target) {
          messages[i] = compress(
            compression,
            new Uint8Array(fuzzReadMaxBytes * rng.range(2, 64)),
          );
          mutate(
            `${compression} bomb`,
            ["resource_exhausted"],
            false,
            "message",
          );
        } else {
          messages[i] = compress(compression, messages[i]!);
          if (messageLayer === "corrupt" && i === target) {
            const m = messages[i]!.slice();
            for (let k = rng.range(1, 3); k > 0; k--) {
              const at = rng.int(m.length);
              m[at] = rng.chance(0.5)
                ? m[at]! ^ (1 << rng.int(8))
                : rng.int(256);
            }
            messages[i] = rng.chance(0.3)
              ? m.subarray(0, rng.int(m.length))
              : m;
            mutate(
              `corrupt ${compression} data`,
              // Corrupt data may also inflate past the limit, or (zstd) ask for a
              // window larger than the limit allows.
              ["invalid_argument", "resource_exhausted"],
              true,
              "message",
            );
          }
        }
        compressedFlags[i] = true;
      } else if (messageLayer === "bomb" && i === target) {
        messageLayer = "none";
      }
    }
  }

  if (get) {
    // Connect GET: the message, and how it is sent, in the query.
    const message = messages[0]!;
    const useBase64 = binary || compression !== null || rng.chance(0.2);
    const params: [string, string][] = [];
    if (rng.chance(0.5)) params.push(["connect", "v1"]);
    params.push(["encoding", binary ? "proto" : "json"]);
    if (useBase64) params.push(["base64", "1"]);
    if (compression !== null) params.push(["compression", compression]);
    let text = useBase64
      ? Buffer.from(message).toString(rng.chance(0.5) ? "base64url" : "base64")
      : new TextDecoder().decode(message);
    if (useBase64 && rng.chance(0.2)) text = text.replace(/=+$/, "");
    const textIndex = params.length;
    params.push(["message", text]);
    const set = (name: string, value: string | undefined) => {
      const at = params.findIndex(([k]) => k === name);
      if (value === undefined) {
        if (at >= 0) params.splice(at, 1);
      } else if (at >= 0) params[at]![1] = value;
      else params.push([name, value]);
    };
    switch (rng.int(14)) {
      case 0:
        set(
          "encoding",
          rng.chance(0.3)
            ? undefined
            : rng.pick([
                "xml",
                "PROTO",
                "Json",
                "",
                "proto ",
                headerValue(rng),
              ]),
        );
        mutate("bad GET encoding", ["http415"], false);
        break;
      case 1: {
        let v = rng.pick(["v2", "V1", "", "1", "v1 ", headerValue(rng)]);
        if (v === "v1") v = "v0";
        set("connect", v);
        mutate("bad GET connect parameter", ["invalid_argument"], false);
        break;
      }
      case 2:
        if (useBase64) {
          const at = rng.int(text.length + 1);
          params[textIndex]![1] =
            text.slice(0, at) +
            rng.pick(["!", "*", "$", ".", "~", "@", " ", "%", "=a", "\u00e9"]) +
            text.slice(at);
          mutate("bad GET base64", ["invalid_argument"], false);
        }
        break;
      case 3:
        if (useBase64) {
          set("base64", rng.pick([undefined, "0", "true", ""]));
          mutate(
            "GET base64 flag removed",
            ["invalid_argument", "resource_exhausted"],
            true,
          );
        }
        break;
      case 4:
        set("compression", unknownEncoding(rng));
        mutate("unknown GET compression", ["unimplemented"], false);
        break;
      case 5:
        if (compression === null) {
          set("compression", rng.pick(knownCompressions));
          set("base64", "1");
          if (!useBase64)
            params[textIndex]![1] = Buffer.from(message).toString("base64url");
          mutate(
            "GET compression declared, message not compressed",
            ["invalid_argument", "resource_exhausted"],
            true,
          );
        }
        break;
      case 6:
        for (let i = rng.range(1, 3); i > 0; i--) {
          params.push([
            rng.string(rng.range(1, 6), tokenAlphabet),
            headerValue(rng, 10),
          ]);
        }
        mutate("unknown GET parameters", [], true);
        break;
      case 7:
        params.push(params.splice(rng.int(params.length), 1)[0]!);
        mutate("GET parameters reordered", [], true);
        break;
      case 8:
        if (!useBase64) {
          params[textIndex]![1] = new TextDecoder().decode(
            rng.bytes(rng.int(20)),
          );
          mutate(
            "GET JSON message of random bytes",
            ["invalid_argument"],
            true,
          );
        }
        break;
      case 9:
        set("message", undefined);
        replaced("message");
        mutate("GET message missing", ["invalid_argument"], true);
        break;
      default:
        break;
    }
    const raw = rng.chance(0.05);
    query =
      "?" +
      params
        .map(([k, v]) =>
          // Raw: only what an HTTP request target cannot hold at all is escaped.
          raw
            ? `${k}=${v.replace(/[^\x21-\x7e]/gu, (ch) => encodeURIComponent(ch))}`
            : `${encodeURIComponent(k)}=${encodeURIComponent(v)}`,
        )
        .join("&");
    if (raw && params.some(([, v]) => encodeURIComponent(v) !== v)) {
      // "+", "&", "#" and "%" mean something else unescaped.
      mutate("unescaped GET query", [...anyGarbled, "http415"], true);
    }
  } else {
    // POST: headers and body of the protocol.
    headers.push([
      "content-type",
      contentTypeFor(protocol, streaming, binary, rng),
    ]);
    if (protocol === "connect" && rng.chance(0.7))
      headers.push(["connect-protocol-version", "1"]);
    if (protocol === "grpc") headers.push(["te", "trailers"]);
    const encodingHeader =
      protocol !== "connect"
        ? "grpc-encoding"
        : streaming
          ? "connect-content-encoding"
          : "content-encoding";
    if (compression !== null) headers.push([encodingHeader, compression]);
    else if (rng.chance(0.1)) headers.push([encodingHeader, "identity"]);

    // Compression declared wrongly for the body.
    let strippedEncoding = false;
    switch (rng.int(10)) {
      case 0: {
        const at = headers.findIndex(([k]) => k === encodingHeader);
        if (at >= 0) headers.splice(at, 1);
        headers.push([encodingHeader, unknownEncoding(rng)]);
        mutate(`unknown ${encodingHeader}`, ["unimplemented"], false);
        break;
      }
      case 1:
        if (compression === null) {
          const name = rng.pick(knownCompressions);
          const at = headers.findIndex(([k]) => k === encodingHeader);
          if (at >= 0) headers.splice(at, 1);
          headers.push([
            encodingHeader,
            rng.chance(0.2) ? name.toUpperCase() : name,
          ]);
          mutate(
            `${encodingHeader} ${name} on an uncompressed body`,
            envelopes ? [] : ["invalid_argument", "resource_exhausted"],
            true,
          );
        }
        break;
      case 2:
        if (compression !== null) {
          const at = headers.findIndex(([k]) => k === encodingHeader);
          headers.splice(at, 1);
          // With envelopes, what it causes depends on their final flags (below).
          if (envelopes) strippedEncoding = true;
          else
            mutate(
              `compressed body without ${encodingHeader}`,
              ["invalid_argument"],
              true,
              "message",
            );
        }
        break;
      default:
        break;
    }

    const declared = headers
      .find(([k]) => k === encodingHeader)?.[1]
      .toLowerCase();
    const declaredKnown =
      declared !== undefined &&
      (knownCompressions as readonly string[]).includes(declared);
    if (!envelopes) {
      body = messages[0]!;
    } else {
      const frames = messages.map((m, i) =>
        envelope(compressedFlags[i] ? 1 : 0, m),
      );
      switch (rng.int(16)) {
        case 0:
          if (frames.length > 0) {
            const last = frames.length - 1;
            const f = frames[last]!;
            frames[last] = f.subarray(0, rng.range(1, f.length - 1));
            mutate(
              "body ends inside an envelope",
              ["invalid_argument"],
              false,
              "frame",
            );
          } else {
            frames.push(new Uint8Array([0, 0, 0]).subarray(0, rng.range(1, 3)));
            mutate(
              "body ends inside an envelope header",
              ["invalid_argument"],
              false,
              "frame",
            );
          }
          break;
        case 1:
          if (frames.length > 0) {
            const i = rng.int(frames.length);
            const flags = rng.pick([0, 1, 2, 3, 0x80, 0x81, rng.int(256)]);
            const was = frames[i]![0]!;
            frames[i] = frames[i]!.slice();
            frames[i]![0] = flags;
            // Brotli has no magic number: some bytes are valid brotli.
            const mayDecode = frames[i]!.length === 5 || declared === "br";
            if (flags === was) break;
            if ((flags & ~1) !== 0)
              mutate(
                `envelope flags ${flags}`,
                ["invalid_argument"],
                false,
                "frame",
              );
            else if (flags === 1 && !declaredKnown)
              mutate(
                "compressed flag without compression",
                ["internal"],
                false,
                "frame",
              );
            else if (flags === 1)
              mutate(
                "compressed flag on uncompressed data",
                ["invalid_argument", "resource_exhausted"],
                mayDecode,
                "frame",
              );
            else
              mutate(
                "compressed data without the flag",
                ["invalid_argument"],
                true,
                "frame",
              );
          }
          break;
        case 2:
          if (frames.length > 0) {
            const i = rng.int(frames.length);
            frames[i] = frames[i]!.slice();
            const length = rng.pick([
              0,
              1,
              0xffffffff,
              fuzzReadMaxBytes,
              fuzzReadMaxBytes + 1,
              rng.next(),
              rng.int(64),
            ]);
            new DataView(frames[i]!.buffer, frames[i]!.byteOffset).setUint32(
              1,
              length,
            );
            mutate(`envelope length ${length}`, anyGarbled, true, "frame");
          }
          break;
        case 3: {
          const extra = rng.range(1, 2);
          for (let k = 0; k < extra; k++) {
            frames.push(
              envelope(
                0,
                encodeMessage(
                  method.input,
                  method.field,
                  randomText(rng),
                  binary,
                ),
              ),
            );
          }
          mutate(
            `${extra} more request messages`,
            singleRequest ? ["unimplemented"] : [],
            !singleRequest,
          );
          break;
        }
        case 4:
          frames.length = 0;
          replaced("message", "frame");
          mutate(
            "no request message",
            singleRequest ? ["unimplemented"] : [],
            !singleRequest,
          );
          break;
        case 5:
          frames.push(rng.bytes(rng.range(1, 40)));
          mutate("random bytes after the envelopes", anyGarbled, true);
          break;
        case 7: {
          const n = rng.range(20, 300);
          for (let k = 0; k < n; k++) {
            frames.push(
              envelope(
                0,
                rng.chance(0.5)
                  ? // An empty message: no bytes in binary, {} in JSON.
                    binary
                    ? new Uint8Array(0)
                    : new TextEncoder().encode("{}")
                  : encodeMessage(method.input, method.field, "m", binary),
              ),
            );
          }
          mutate(
            `${n} more request messages`,
            singleRequest ? ["unimplemented"] : [],
            !singleRequest,
          );
          break;
        }
        case 6:
          frames.splice(
            rng.int(frames.length + 1),
            0,
            envelope(
              rng.pick([2, 0x80]),
              new TextEncoder().encode(
                rng.pick(["{}", "grpc-status: 0\r\n", ""]),
              ),
            ),
          );
          mutate(
            "end-of-stream or trailers envelope in a request",
            ["invalid_argument"],
            false,
            "frame",
          );
          break;
        default:
          break;
      }
      if (strippedEncoding) {
        const flagged = frames.some((f) => f[0] === 1);
        mutate(
          `compressed messages without ${encodingHeader}`,
          flagged ? ["internal"] : [],
          !flagged,
          "frame",
        );
      }
      body = concat(frames);
    }

    // The content type.
    const ctAt = headers.findIndex(([k]) => k === "content-type");
    switch (rng.int(12)) {
      case 0: {
        const ct = headers[ctAt]![1];
        let changed = ct.replace(/[a-z]/g, (ch) =>
          rng.chance(0.5) ? ch.toUpperCase() : ch,
        );
        if (rng.chance(0.5))
          changed += rng.pick(["; charset=utf-8", ";q=1", " ; x=y"]);
        headers[ctAt]![1] = changed;
        mutate("content type in other cases or with parameters", [], true);
        break;
      }
      case 1:
        if (rng.chance(0.2)) headers.splice(ctAt, 1);
        else
          headers[ctAt]![1] = rng.pick([
            "text/plain",
            "application/grpc-web-text",
            "application/grpc-web-text+proto",
            "application/connect+xml",
            "application/protobuf",
            "application/jsonx",
            "application/grpc+xml",
            "application/grpc-web+thrift",
            "application/grpcx",
            "",
            "x" + headerValue(rng),
          ]);
        mutate("unsupported content type", ["http415"], false);
        break;
      case 2: {
        const other = contentTypeFor(
          rng.pick<Protocol>(["connect", "grpc", "grpc-web"]),
          rng.chance(0.5),
          rng.chance(0.5),
          rng,
        );
        if (other !== headers[ctAt]![1]) {
          headers[ctAt]![1] = other;
          mutations.push({
            what: `content type ${other}`,
            codes: [...anyGarbled, "http415", "deadline_exceeded"],
            ok: true,
            reinterpreted: true,
          });
        }
        break;
      }
      default:
        break;
    }
    if (rng.chance(0.08)) {
      const v = rng.pick(["2", "0", "", "1.0", "v1", headerValue(rng, 4)]);
      const at = headers.findIndex(([k]) => k === "connect-protocol-version");
      if (at >= 0) headers.splice(at, 1);
      headers.push(["connect-protocol-version", v]);
      const checked =
        familyOf(
          headers.find(([k]) => k === "content-type")?.[1],
          streaming,
        ) === "connect-unary";
      if (v !== "1")
        mutate(
          `connect-protocol-version "${v}"`,
          checked ? ["invalid_argument"] : [],
          !checked,
        );
    }
    // The HTTP verb and the path.
    switch (rng.int(14)) {
      case 0:
        httpMethod = rng.pick(["PUT", "PATCH", "DELETE", "post", "OPTIONS"]);
        // Node's HTTP/1.1 client and fetch upper-case "post"; HTTP/2 sends it as it is.
        mutate(
          `${httpMethod} instead of POST`,
          ["http405"],
          httpMethod === "post" && !transport.startsWith("h2c"),
        );
        break;
      case 2:
        httpMethod = "HEAD";
        body = undefined;
        mutate("HEAD", ["http405"], false);
        break;
      case 1:
        httpMethod = "GET";
        body = undefined;
        mutate("GET without a query", ["http405", "http415"], false);
        break;
      default:
        break;
    }
  }

  // Paths, on any request.
  const family = (): FuzzCase["family"] =>
    familyOf(
      headers.find(([k]) => k === "content-type")?.[1],
      targetMethod.kind !== "unary",
    );
  switch (rng.int(14)) {
    case 0:
      if (!get) {
        query = "?" + rng.string(rng.range(0, 12), tokenAlphabet + "=&");
        mutate("query string on a POST", [], true);
      }
      break;
    case 1:
      path =
        servicePath +
        rng.pick([
          "Nope",
          "",
          `${method.name}/extra`,
          method.name.toLowerCase(),
          `${method.name}/`,
          `S%61y`,
          `${method.name}x`,
          // Characters a path may carry only escaped (fetch escapes them, HTTP/2 sends them as they are).
          `${method.name}"<{|}>^\``,
          "%C3%A9",
        ]);
      mutate(
        "unknown method",
        family().startsWith("connect") ? ["http404"] : ["unimplemented"],
        false,
      );
      break;
    case 2:
      path = rng.pick([
        "/",
        "/connectrpc.eliza.v1.ElizaService",
        "/no.such.Service/Say",
        "/connectrpc.eliza.v1.ElizaServic/Say",
        `//connectrpc.eliza.v1.ElizaService/${method.name}`,
        "/connectrpc.eliza.v1.ElizaService%2FSay",
      ]);
      mutate("no such service", ["http404"], false);
      break;
    case 3: {
      const other = rng.pick(methodDefs);
      if (other !== method) {
        path = servicePath + other.name;
        targetMethod = other;
        mutations.push({
          what: `sent to ${other.name}`,
          codes: [...anyGarbled, "http405", "http415"],
          ok: true,
          reinterpreted: true,
        });
      }
      break;
    }
    default:
      break;
  }

  // Timeouts.
  if (rng.chance(0.12)) {
    const v = rng.pick([
      String(rng.int(2)),
      String(rng.int(100000)),
      "9999999999",
      "12345678901",
      "-1",
      "1.5",
      "1e3",
      "0x10",
      "+5",
      "",
      headerValue(rng, 12),
    ]);
    headers.push(["connect-timeout-ms", v]);
    const applies = family().startsWith("connect");
    if (!applies) mutate("connect-timeout-ms on gRPC", [], true);
    else if (/^[0-9]{1,10}$/.test(v))
      mutate(`connect-timeout-ms ${v}`, ["deadline_exceeded"], true);
    else mutate(`connect-timeout-ms "${v}"`, ["invalid_argument"], false);
  }
  if (rng.chance(0.12)) {
    const v = rng.pick([
      `${rng.int(3)}${rng.pick(["H", "M", "S", "m", "u", "n"])}`,
      `${rng.int(100000)}${rng.pick(["H", "M", "S", "m", "u", "n"])}`,
      "99999999H",
      "123456789S",
      "1",
      "1h",
      "1x",
      "-1S",
      "1.5S",
      "",
      headerValue(rng, 10),
    ]);
    headers.push(["grpc-timeout", v]);
    const applies = !family().startsWith("connect");
    if (!applies) mutate("grpc-timeout on Connect", [], true);
    else if (/^[0-9]{1,8}[HMSmun]$/.test(v))
      mutate(`grpc-timeout ${v}`, ["deadline_exceeded"], true);
    else mutate(`grpc-timeout "${v}"`, ["invalid_argument"], false);
  }
  // Headers that change nothing.
  if (rng.chance(0.3)) {
    const name = rng.pick([
      "accept-encoding",
      "connect-accept-encoding",
      "grpc-accept-encoding",
    ]);
    const v = rng.chance(0.5)
      ? Array.from({ length: rng.range(1, 4) }, () =>
          rng.pick([
            ...knownCompressions,
            "identity",
            "*",
            "snappy",
            "gzip;q=0",
            "br;q=0.5",
            "zstd ; q=1",
            "",
          ]),
        ).join(rng.pick([",", ", "]))
      : headerValue(rng);
    headers.push([name, v]);
    mutate(`${name} "${v}"`, [], true);
  }
  if (transport === "http1" && rng.chance(0.05)) {
    headers.push(["host", headerValue(rng, 30)]);
    mutate("random Host", [], true);
  }
  if (rng.chance(0.3)) {
    for (let i = rng.range(1, 5); i > 0; i--) {
      headers.push([
        `x-${rng.string(rng.range(1, 10), tokenAlphabet)}`,
        headerValue(rng, 60),
      ]);
    }
    mutate("unknown headers", [], true);
  }

  // A Connect GET with a body, which the server ignores (fetch cannot send one).
  if (get && body === undefined && transport !== "fetch" && rng.chance(0.05)) {
    body = rng.bytes(rng.int(3000));
    mutate("GET with a body", [], true);
  }
  // The body as a whole, and how it is sent.
  if (body !== undefined && rng.chance(0.05)) {
    body = rng.bytes(rng.int(rng.chance(0.2) ? 3000 : 200));
    replaced("message", "frame");
    mutate("random bytes as the body", [...anyGarbled], true);
  }
  const chunks: Uint8Array[] = [];
  if (body !== undefined) {
    if (rng.chance(0.3) && body.length > 1) {
      let at = 0;
      while (at < body.length) {
        const n = rng.range(1, Math.max(1, Math.ceil(body.length / 3)));
        chunks.push(body.subarray(at, at + n));
        at += n;
      }
    } else {
      chunks.push(body);
    }
  }
  // Node's HTTP/1.1 client chunks the bodies of POST, PUT and PATCH only;
  // others it frames only with a length.
  const chunked = ["POST", "PUT", "PATCH", "post"].includes(httpMethod);
  if (transport === "http1" && body !== undefined && !chunked) {
    headers.push(["content-length", String(body.length)]);
  }
  // A slow client: the body arrives a little at a time.
  let delayMs = 0;
  if (chunks.length > 1 && rng.chance(0.05)) {
    delayMs = rng.range(1, 20);
    mutate(`body written ${delayMs} ms apart`, [], true);
  }
  let abort = false;
  if (
    transport !== "fetch" &&
    body !== undefined &&
    chunks.length > 0 &&
    rng.chance(0.03)
  ) {
    abort = true;
    // What the server answers, if it does before the client goes, is not
    // looked at: only that it neither crashes nor stops serving.
    mutations.push({
      what: "client goes away mid-request",
      codes: [
        ...anyGarbled,
        "aborted",
        "reset",
        "http404",
        "http405",
        "http415",
        "deadline_exceeded",
      ],
      ok: true,
      reinterpreted: true,
    });
  } else if (
    transport === "fetch" &&
    body !== undefined &&
    chunks.length > 0 &&
    rng.chance(0.03)
  ) {
    abort = true;
    mutate("request body fails after its first chunk", ["canceled"], false);
  } else if (transport === "h2c" || transport === "h2c-stream") {
    if (body !== undefined && rng.chance(0.03)) {
      const real = body.length;
      let declared = rng.pick([
        0,
        real + 1,
        Math.max(0, real - 1),
        rng.int(5000),
      ]);
      if (declared === real) declared = real + 1;
      headers.push(["content-length", String(declared)]);
      mutate(
        `content-length ${declared} for ${real} bytes`,
        ["reset", "resource_exhausted"],
        false,
      );
    }
  } else if (
    transport === "http1" &&
    body !== undefined &&
    chunked &&
    rng.chance(0.5)
  ) {
    headers.push(["content-length", String(body.length)]);
  }
  if (
    family() === "grpc" &&
    transport !== "h2c" &&
    transport !== "h2c-stream"
  ) {
    mutate("gRPC without HTTP/2 trailers", ["unimplemented"], false);
  }
  return {
    seed,
    index,
    transport,
    protocol,
    method,
    family: family(),
    httpMethod,
    url: path + query,
    target: targetMethod,
    headers,
    chunks,
    abort,
    delayMs,
    mutations,
  };
}

/** A case as text: enough to read what was sent, and to send it again by hand. */
export function describeCase(c: FuzzCase): string {
  const body = concat(c.chunks);
  return [
    `case ${c.index} of seed ${c.seed}: ${c.transport}, ${c.protocol}, ${c.method.name} (${c.method.kind}), response family ${c.family}`,
    `  mutations: ${c.mutations.map((m) => m.what).join("; ") || "none"}`,
    `  allowed: ${[...allowedOutcomes(c)].join(", ")}`,
    `  ${c.httpMethod} ${c.url}`,
    ...c.headers.map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`),
    `  body (${body.length} bytes in ${c.chunks.length} writes${c.delayMs > 0 ? `, ${c.delayMs} ms apart` : ""}${c.abort ? ", then the client goes away" : ""}): ${Buffer.from(body).toString("hex")}`,
  ].join("\n");
}
