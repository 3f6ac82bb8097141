// A minimal HTTP/2 client that writes frames by hand (h2c, prior knowledge),
// for what node:http2's client cannot do: its `close(code)` always sends
// END_STREAM before RST_STREAM, so it cannot reset an upload that has not
// ended. Headers go out as HPACK literals without indexing or Huffman coding.

import * as net from "node:net";

const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export const h2FrameData = 0x0;
export const h2FrameHeaders = 0x1;
export const h2FrameRstStream = 0x3;
export const h2FrameSettings = 0x4;
export const h2FlagEndStream = 0x1;
export const h2FlagEndHeaders = 0x4;
export const h2FlagAck = 0x1;

export function h2Frame(
  type: number,
  flags: number,
  streamId: number,
  payload: Uint8Array,
): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.byteLength, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

function hpackString(value: string): Buffer {
  const bytes = Buffer.from(value, "latin1");
  if (bytes.byteLength >= 127)
    throw new Error("header too long for this helper");
  return Buffer.concat([Buffer.from([bytes.byteLength]), bytes]);
}

/** A header block of literals without indexing, new names (RFC 7541 6.2.2). */
export function h2HeaderBlock(headers: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(headers)) {
    parts.push(Buffer.from([0x00]), hpackString(name), hpackString(value));
  }
  return Buffer.concat(parts);
}

/** A frame the server sent, as the raw connection read it. */
export interface H2Frame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

export interface RawH2Connection {
  /** Sends the request headers of a new stream, without END_STREAM. */
  open(streamId: number, headers: Record<string, string>): void;
  data(streamId: number, payload: Uint8Array, endStream?: boolean): void;
  reset(streamId: number, errorCode: number): void;
  /** Resolves when the server has sent a frame of this type on this stream. */
  frame(streamId: number, type: number): Promise<void>;
  /**
   * The frames the server sends on a stream (those already received
   * included), up to the first for which `last` is true, or all of them if
   * the connection closes first.
   */
  frames(
    streamId: number,
    last: (frame: H2Frame) => boolean,
  ): Promise<H2Frame[]>;
  close(): void;
}

export async function connectRawH2(port: number): Promise<RawH2Connection> {
  const socket = net.connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.on("error", () => {});
  socket.write(
    Buffer.concat([preface, h2Frame(h2FrameSettings, 0, 0, new Uint8Array(0))]),
  );
  const seen = new Set<string>();
  const waiters = new Map<string, () => void>();
  const received: H2Frame[] = [];
  const onFrame = new Set<() => void>();
  socket.on("close", () => {
    for (const notify of onFrame) notify();
  });
  let pending = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.byteLength >= 9) {
      const length = pending.readUIntBE(0, 3);
      if (pending.byteLength < 9 + length) break;
      const type = pending[3]!;
      const flags = pending[4]!;
      const streamId = pending.readUInt32BE(5) & 0x7fffffff;
      received.push({
        type,
        flags,
        streamId,
        payload: pending.subarray(9, 9 + length),
      });
      pending = pending.subarray(9 + length);
      if (type === h2FrameSettings && (flags & h2FlagAck) === 0) {
        socket.write(h2Frame(h2FrameSettings, h2FlagAck, 0, new Uint8Array(0)));
      }
      const key = `${streamId}:${type}`;
      seen.add(key);
      waiters.get(key)?.();
      for (const notify of onFrame) notify();
    }
  });
  return {
    open(streamId, headers) {
      socket.write(
        h2Frame(
          h2FrameHeaders,
          h2FlagEndHeaders,
          streamId,
          h2HeaderBlock(headers),
        ),
      );
    },
    data(streamId, payload, endStream = false) {
      socket.write(
        h2Frame(
          h2FrameData,
          endStream ? h2FlagEndStream : 0,
          streamId,
          payload,
        ),
      );
    },
    reset(streamId, errorCode) {
      const payload = Buffer.alloc(4);
      payload.writeUInt32BE(errorCode, 0);
      socket.write(h2Frame(h2FrameRstStream, 0, streamId, payload));
    },
    frame(streamId, type) {
      const key = `${streamId}:${type}`;
      if (seen.has(key)) return Promise.resolve();
      return new Promise((resolve) => waiters.set(key, resolve));
    },
    frames(streamId, last) {
      return new Promise((resolve) => {
        const check = () => {
          const ours = received.filter((f) => f.streamId === streamId);
          const end = ours.findIndex(last);
          if (end >= 0 || socket.destroyed) {
            onFrame.delete(check);
            resolve(end >= 0 ? ours.slice(0, end + 1) : ours);
          }
        };
        onFrame.add(check);
        check();
      });
    },
    close() {
      socket.destroy();
    },
  };
}
