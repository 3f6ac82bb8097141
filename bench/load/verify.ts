// One request to a server before it is measured, with the exact body and
// headers the load generator will send: a server that answered 415 or 404
// to every request would otherwise be benchmarked as a very fast server.
import * as http from "node:http";
import * as http2 from "node:http2";
import { fromBinary, fromJsonString, toBinary } from "@bufbuild/protobuf";
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

/** Throws unless the server echoes the request's message. */
export async function verifyUnary(
  label: string,
  httpVersion: 1 | 2,
  url: string,
  headers: Record<string, string>,
  body: Uint8Array,
): Promise<void> {
  const response = await post(httpVersion, url, headers, body);
  const json = headers["content-type"] === "application/json";
  const decode = (bytes: Uint8Array) =>
    json
      ? fromJsonString(PayloadSchema, Buffer.from(bytes).toString("utf8"))
      : fromBinary(PayloadSchema, bytes);
  let same = false;
  if (response.status === 200) {
    try {
      same = Buffer.from(toBinary(PayloadSchema, decode(response.body))).equals(
        toBinary(PayloadSchema, decode(body)),
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
