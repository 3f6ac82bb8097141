import { describe, expect, it } from "vitest";
import { serverProtocolFor, type ServerProtocol } from "./protocol.ts";

function protocol(
  name: ServerProtocol["name"],
  accepts: (contentType: string | null) => boolean,
): ServerProtocol {
  return {
    name,
    accepts,
    contentTypes: name,
    unimplemented: () => Promise.reject(new Error("not called")),
  };
}

describe("serverProtocolFor", () => {
  const grpc = protocol("grpc", (t) => t === "application/grpc");
  const connect = protocol("connect", (t) => t !== "application/grpc");

  it("picks the first protocol that accepts the content type", () => {
    expect(serverProtocolFor([grpc, connect], "application/grpc")).toBe(grpc);
    expect(serverProtocolFor([grpc, connect], "application/json")).toBe(
      connect,
    );
    const greedy = protocol("grpc-web", () => true);
    expect(serverProtocolFor([greedy, grpc], "application/grpc")).toBe(greedy);
  });

  it("passes a missing content type as null", () => {
    const seen: (string | null)[] = [];
    serverProtocolFor(
      [protocol("connect", (t) => (seen.push(t), false))],
      null,
    );
    expect(seen).toEqual([null]);
  });

  it("finds none when none accepts", () => {
    expect(serverProtocolFor([grpc], "application/json")).toBeUndefined();
    expect(serverProtocolFor([], "application/json")).toBeUndefined();
  });
});
