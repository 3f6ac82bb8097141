// The floor client: one raw node:http2 session, the request encoded and the
// response decoded with protobuf-es, the status checked, nothing else (no
// headers beyond the content type, no deadline, no error mapping).
import * as http2 from "node:http2";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { PayloadSchema } from "../gen/bench/v1/bench_pb.ts";
import { binaryPayload, unaryPath } from "../lib/payloads.ts";
import { clientArgs, drive } from "./driver.ts";

const { url, size } = clientArgs();
const session = http2.connect(url);
session.on("error", () => {});
const request = binaryPayload(size);
const headers: http2.OutgoingHttpHeaders = {
  ":method": "POST",
  ":path": unaryPath,
  "content-type": "application/proto",
};

await drive(
  () =>
    new Promise<boolean>((resolve) => {
      const stream = session.request(headers);
      let status = 0;
      const chunks: Buffer[] = [];
      stream.on("response", (h) => (status = Number(h[":status"])));
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        const response = fromBinary(PayloadSchema, body);
        resolve(status === 200 && response.data.length === request.data.length);
      });
      stream.on("error", () => resolve(false));
      stream.end(toBinary(PayloadSchema, request));
    }),
);
session.close();
