import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createElizaServiceHandler } from "./gen/eliza/v1/eliza.ElizaService.ts";
import {
  ConverseRequestSchema,
  ConverseResponseSchema,
} from "./gen/eliza/v1/eliza_pb.ts";

/**
 * The README says that over HTTP/1.1 the generated server reads and answers
 * bidi messages as they arrive (only fetch clients make it half duplex).
 * A raw node:http client that streams its request body shows it: each
 * request goes out only after the answer to the previous one came back.
 *
 * Connect and gRPC-Web both run over HTTP/1.1; gRPC cannot (it needs
 * HTTP/2 trailers), so it is not here.
 */
const protocols = [
  {
    name: "connect",
    contentType: "application/connect+proto",
    headers: { "connect-protocol-version": "1" },
    // The end-stream message: JSON, nothing to report.
    endFlag: 0x02,
    end: "{}",
  },
  {
    name: "grpc-web",
    contentType: "application/grpc-web+proto",
    headers: { "x-grpc-web": "1" },
    // The trailers envelope: the status as HTTP/1 header lines.
    endFlag: 0x80,
    end: "grpc-status: 0\r\n",
  },
] as const;

describe.each(protocols)(
  "bidi over HTTP/1.1 with a streaming client, $name",
  (protocol) => {
    let server: http.Server;
    let port: number;
    /** The protocol each call reached the implementation with. */
    const seen: string[] = [];

    beforeAll(async () => {
      const handler = createElizaServiceHandler({
        async *converse(requests, context) {
          seen.push(context.protocol);
          for await (const { sentence } of requests) {
            yield { sentence: `echo ${sentence}` };
          }
        },
      });
      server = http.createServer(handler.node);
      await new Promise<void>((resolve) =>
        server.listen(0, "127.0.0.1", resolve),
      );
      port = (server.address() as AddressInfo).port;
    });

    afterAll(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });

    function frame(sentence: string): Uint8Array {
      const data = toBinary(
        ConverseRequestSchema,
        create(ConverseRequestSchema, { sentence }),
      );
      const out = new Uint8Array(5 + data.length);
      new DataView(out.buffer).setUint32(1, data.length);
      out.set(data, 5);
      return out;
    }

    it("answers each message before the request stream ends", async () => {
      const sentences = ["one", "two", "three"];
      const answers: string[] = [];
      let contentType: string | undefined;
      let endStream: { flags: number; payload: Uint8Array } | undefined;
      let afterEnd = 0;
      await new Promise<void>((resolve, reject) => {
        const req = http.request({
          host: "127.0.0.1",
          port,
          method: "POST",
          path: "/connectrpc.eliza.v1.ElizaService/Converse",
          headers: {
            "content-type": protocol.contentType,
            ...protocol.headers,
          },
        });
        req.on("error", reject);
        req.on("response", (res) => {
          contentType = res.headers["content-type"];
          let buffered = new Uint8Array(0);
          res.on("data", (chunk: Buffer) => {
            const joined = new Uint8Array(buffered.length + chunk.length);
            joined.set(buffered);
            joined.set(chunk, buffered.length);
            buffered = joined;
            while (buffered.length >= 5) {
              const length = new DataView(
                buffered.buffer,
                buffered.byteOffset,
              ).getUint32(1);
              if (buffered.length < 5 + length) break;
              const flags = buffered[0]!;
              const payload = buffered.subarray(5, 5 + length);
              buffered = buffered.slice(5 + length);
              if (endStream !== undefined) {
                afterEnd++;
                continue;
              }
              if (flags !== 0) {
                endStream = { flags, payload };
                continue;
              }
              answers.push(
                fromBinary(ConverseResponseSchema, payload).sentence,
              );
              // The request is still open: send the next message only now.
              const next = sentences[answers.length];
              if (next === undefined) {
                req.end();
              } else {
                req.write(frame(next));
              }
            }
          });
          res.on("end", resolve);
          res.on("error", reject);
        });
        req.write(frame(sentences[0]!));
        req.flushHeaders();
      });
      expect(contentType).toBe(protocol.contentType);
      expect(answers).toEqual(["echo one", "echo two", "echo three"]);
      expect(endStream?.flags).toBe(protocol.endFlag);
      expect(new TextDecoder().decode(endStream?.payload)).toBe(protocol.end);
      expect(afterEnd).toBe(0);
      expect(seen).toEqual([protocol.name]);
    });
  },
);
