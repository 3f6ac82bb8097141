// One request to a server before it is measured, with the exact body and
// headers the load generator will send: a server that answered 415 or 404
// to every request, or ended every stream early, would otherwise be
// benchmarked as a very fast server. For streams, the size of the verified
// response is what every call under load must then receive (run.ts checks
// h2load's byte count against it).
import * as http from "node:http";
import * as http2 from "node:http2";
import { gunzipSync } from "node:zlib";
import {
  type DescMessage,
  fromBinary,
  fromJsonString,
  toBinary,
} from "@bufbuild/protobuf";
import { PayloadSchema } from "../gen/bench/v1/bench_pb.ts";

function post(
  httpVersion: 1 | 2,
  url: string,
  headers: Record<string, string>,
  body: Uint8Array,
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    if (httpVersion === 1) {
      const request = http.request(
        target,
        { method: "POST", headers, agent: false },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (c: Buffer) => chunks.push(c));
          response.on("end", () =>
            resolve({
              status: response.statusCode ?? 0,
              body: Buffer.concat(chunks),
            }),
          );
        },
      );
      request.on("error", reject);
      request.end(body);
      return;
    }
    const session = http2.connect(target.origin);
    session.on("error", reject);
    const stream = session.request({
      ":method": "POST",
      ":path": target.pathname,
      ...headers,
    });
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on("response", (h) => (status = Number(h[":status"])));
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => {
      session.close();
      resolve({ status, body: Buffer.concat(chunks) });
    });
    stream.on("error", reject);
    stream.end(body);
  });
}

/** Throws unless the server echoes the request's message (of `schema`). */
export async function verifyUnary(
  label: string,
  httpVersion: 1 | 2,
  url: string,
  headers: Record<string, string>,
  body: Uint8Array,
  schema: DescMessage,
): Promise<void> {
  const response = await post(httpVersion, url, headers, body);
  const json = headers["content-type"] === "application/json";
  const decode = (bytes: Uint8Array) =>
    json
      ? fromJsonString(schema, Buffer.from(bytes).toString("utf8"))
      : fromBinary(schema, bytes);
  let same = false;
  if (response.status === 200) {
    try {
      same = Buffer.from(toBinary(schema, decode(response.body))).equals(
        toBinary(schema, decode(body)),
      );
    } catch {
      same = false;
    }
  }
  if (!same) {
    throw new Error(
      `${label}: expected an echo of the request, got HTTP ${response.status}: ${response.body.subarray(0, 200).toString()}`,
    );
  }
}

/**
 * Makes one ServerStream call with h2load's body and headers and throws
 * unless it is complete: HTTP 200, `count` messages each a Payload of
 * `size` data bytes, every one gzipped when `gzip` (none otherwise), and an
 * end-of-stream message without an error. Returns the response body's size
 * in bytes, which every call of the same server under load must match.
 */
export async function verifyStream(
  label: string,
  url: string,
  headers: Record<string, string>,
  body: Uint8Array,
  expected: { count: number; size: number; gzip: boolean },
): Promise<number> {
  const response = await post(2, url, headers, body);
  const problem = streamProblem(response, expected);
  if (problem !== undefined) {
    throw new Error(
      `${label}: expected ${expected.count} messages${expected.gzip ? ", all gzipped" : ""}, ${problem}`,
    );
  }
  return response.body.length;
}

/** What is wrong with a ServerStream response, if anything. */
function streamProblem(
  response: { status: number; body: Buffer },
  expected: { count: number; size: number; gzip: boolean },
): string | undefined {
  if (response.status !== 200) {
    return `got HTTP ${response.status}: ${response.body.subarray(0, 200).toString()}`;
  }
  const { body } = response;
  let messages = 0;
  let offset = 0;
  while (offset + 5 <= body.length) {
    const flags = body[offset]!;
    const length = body.readUInt32BE(offset + 1);
    const data = body.subarray(offset + 5, offset + 5 + length);
    offset += 5 + length;
    if (flags & 0b10) {
      const end = data.toString();
      if (offset !== body.length) return "got data after the end of stream";
      if (end.includes('"error"')) return `got an error: ${end}`;
      return messages === expected.count
        ? undefined
        : `got ${messages} before the end of stream`;
    }
    if (Boolean(flags & 0b01) !== expected.gzip) {
      return `message ${messages} is ${flags & 0b01 ? "" : "not "}compressed`;
    }
    const payload = fromBinary(
      PayloadSchema,
      flags & 0b01 ? gunzipSync(data) : data,
    );
    if (payload.data.length !== expected.size) {
      return `message ${messages} has ${payload.data.length} data bytes, not ${expected.size}`;
    }
    messages++;
  }
  return `got ${messages} messages and no end of stream`;
}
