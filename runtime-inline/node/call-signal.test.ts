import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { Code } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";
import { NodeCallSignal } from "./call-signal.ts";

/** A response that closes as Node's do: `closed` set, then 'close'. */
class FakeResponse extends EventEmitter {
  closed = false;
  destroyed = false;
  close(): void {
    this.closed = true;
    this.emit("close");
  }
}

const shutdown = new ConnectError(
  "the server is shutting down",
  Code.Unavailable,
);

describe("NodeCallSignal", () => {
  it("watches the response only once its signal is asked for", () => {
    const response = new FakeResponse();
    const call = new NodeCallSignal(response);
    expect(response.listenerCount("close")).toBe(0);
    const signal = call.signal;
    expect(signal).toBe(call.signal);
    expect(response.listenerCount("close")).toBe(1);
    expect(signal.aborted).toBe(false);
  });

  it("aborts a signal made before the client goes away, with Canceled", () => {
    const response = new FakeResponse();
    const call = new NodeCallSignal(response);
    const signal = call.signal;
    response.close();
    expect(signal.aborted).toBe(true);
    expect((signal.reason as ConnectError).code).toBe(Code.Canceled);
    expect(call.clientGone()).toBe(true);
  });

  it("makes an aborted signal after the client went away", () => {
    const response = new FakeResponse();
    const call = new NodeCallSignal(response);
    expect(call.clientGone()).toBe(false);
    response.close();
    expect(call.clientGone()).toBe(true);
    expect(call.signal.aborted).toBe(true);
    expect((call.signal.reason as ConnectError).code).toBe(Code.Canceled);
    expect(response.listenerCount("close")).toBe(0);
  });

  it("does not abort when the response closes once complete", () => {
    const response = new FakeResponse();
    const call = new NodeCallSignal(response);
    const signal = call.signal;
    call.complete = true;
    response.close();
    expect(signal.aborted).toBe(false);
    expect(call.clientGone()).toBe(false);
    expect(new NodeCallSignal(response).signal.aborted).toBe(true);
  });

  it("keeps a shutdown's abort for a signal made later, and still answers the call", () => {
    const response = new FakeResponse();
    const call = new NodeCallSignal(response);
    call.abort(shutdown);
    expect(call.clientGone()).toBe(false);
    expect(call.signal.reason).toBe(shutdown);
    expect(call.clientGone()).toBe(false);
  });

  it("aborts a signal already made on shutdown, and still answers the call", () => {
    const call = new NodeCallSignal(new FakeResponse());
    const signal = call.signal;
    call.abort(shutdown);
    expect(signal.reason).toBe(shutdown);
    expect(call.clientGone()).toBe(false);
  });

  it("keeps the first reason: a client gone before the shutdown stays gone", () => {
    const response = new FakeResponse();
    const call = new NodeCallSignal(response);
    response.close();
    call.abort(shutdown);
    expect(call.clientGone()).toBe(true);
    expect((call.signal.reason as ConnectError).code).toBe(Code.Canceled);
  });
});
