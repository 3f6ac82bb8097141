// runtime=shared: the services of one output import one runtime file. What
// must hold across them: one ConnectError class and one Code, interceptors
// and errors that work the same for every service, and handlers that
// combine.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as runtime from "./gen-shared/connect-standalone.runtime.ts";
import {
  Code,
  ConnectError,
  createFirstServiceClient,
  createFirstServiceHandler,
  nodeHandler,
  type Interceptor,
} from "./gen-shared/multi/v1/multi.FirstService.ts";
import {
  Code as SecondCode,
  ConnectError as SecondConnectError,
  createSecondServiceClient,
  createSecondServiceHandler,
  grpcWebProtocol,
} from "./gen-shared/multi/v1/multi.SecondService.ts";

let server: Server;
let baseUrl: string;

beforeAll(async () => {
  const first = createFirstServiceHandler({
    ping: (request) => ({ text: `first ${request.text}`, count: 1n }),
  });
  const second = createSecondServiceHandler({
    ping: (request) => {
      if (request.text === "fail") {
        // The first file's class, thrown from the second service.
        throw new ConnectError("no", Code.FailedPrecondition);
      }
      return { text: `second ${request.text}`, count: 2n };
    },
  });
  server = createServer(nodeHandler(first, second));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

describe("runtime=shared", () => {
  it("re-exports one runtime: the same classes and values from every file", () => {
    expect(SecondConnectError).toBe(ConnectError);
    expect(runtime.ConnectError).toBe(ConnectError);
    expect(SecondCode).toBe(Code);
  });

  it("serves two services from one handler and calls both through one interceptor", async () => {
    const seen: string[] = [];
    const interceptor: Interceptor = (next) => async (request) => {
      seen.push(request.method.name + " " + request.url);
      return next(request);
    };
    const first = createFirstServiceClient(baseUrl, {
      interceptors: [interceptor],
    });
    const second = createSecondServiceClient(baseUrl, {
      interceptors: [interceptor],
      protocol: grpcWebProtocol,
    });
    expect((await first.ping({ text: "a" })).text).toBe("first a");
    expect((await second.ping({ text: "b" })).text).toBe("second b");
    expect(seen).toEqual([
      `Ping ${baseUrl}/fixtures.multi.v1.FirstService/Ping`,
      `Ping ${baseUrl}/fixtures.multi.v1.SecondService/Ping`,
    ]);
  });

  it("gives errors of one class whichever service raised them", async () => {
    const second = createSecondServiceClient(baseUrl);
    const error = await second.ping({ text: "fail" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectError);
    expect(error).toBeInstanceOf(SecondConnectError);
    expect((error as ConnectError).code).toBe(Code.FailedPrecondition);
  });
});
