import { describe, expect, it } from "vitest";
import {
  corsAllowedHeaders,
  corsDecorate,
  corsExposedHeaders,
  corsIsPreflight,
  corsPolicy,
  corsPreflightHeaders,
} from "./cors.ts";

const page = "https://app.example.com";

describe("corsIsPreflight", () => {
  it("is an OPTIONS request naming the method it asks for", () => {
    expect(corsIsPreflight("OPTIONS", "POST")).toBe(true);
    // A plain OPTIONS is not a preflight: the protocol answers it.
    expect(corsIsPreflight("OPTIONS", null)).toBe(false);
    expect(corsIsPreflight("POST", "POST")).toBe(false);
  });
});

describe("corsPolicy", () => {
  it("allows listed origins only, exactly", () => {
    const policy = corsPolicy({ allowedOrigins: [page] });
    expect(policy.allows(page)).toBe(true);
    expect(policy.allows("https://app.example.com:8443")).toBe(false);
    expect(policy.allows("http://app.example.com")).toBe(false);
    expect(policy.anyOrigin).toBe(false);
  });

  it("asks a function per origin", () => {
    const asked: string[] = [];
    const policy = corsPolicy({
      allowedOrigins: (origin) => {
        asked.push(origin);
        return origin.endsWith(".example.com");
      },
    });
    expect(policy.allows(page)).toBe(true);
    expect(policy.allows("https://evil.test")).toBe(false);
    expect(asked).toEqual([page, "https://evil.test"]);
  });

  it("sends * for any origin, but echoes the origin for credentialed calls", () => {
    expect(corsPolicy({ allowedOrigins: "*" }).anyOrigin).toBe(true);
    const credentialed = corsPolicy({
      allowedOrigins: "*",
      allowCredentials: true,
    });
    expect(credentialed.anyOrigin).toBe(false);
    expect(credentialed.allows("https://any.test")).toBe(true);
  });

  it("adds the user's headers after the protocols' own", () => {
    const policy = corsPolicy({
      allowedOrigins: [page],
      allowedHeaders: ["Authorization"],
      exposedHeaders: ["Trailer-Request-Id"],
      maxAgeSeconds: 60,
    });
    expect(policy.allowHeaders).toBe(
      [...corsAllowedHeaders, "Authorization"].join(", "),
    );
    expect(policy.exposeHeaders).toBe(
      [...corsExposedHeaders, "Trailer-Request-Id"].join(", "),
    );
    expect(policy.maxAge).toBe("60");
  });
});

describe("corsPreflightHeaders", () => {
  it("allows an allowed origin the methods and headers calls use", () => {
    const header = corsPreflightHeaders(
      corsPolicy({ allowedOrigins: [page] }),
      page,
    );
    expect(header.get("access-control-allow-origin")).toBe(page);
    expect(header.get("access-control-allow-methods")).toBe("POST, GET");
    const allowed = header.get("access-control-allow-headers")!.split(", ");
    for (const name of [
      "Content-Type",
      "Connect-Protocol-Version",
      "Connect-Timeout-Ms",
      "X-Grpc-Web",
      "Grpc-Timeout",
    ]) {
      expect(allowed).toContain(name);
    }
    expect(header.get("access-control-max-age")).toBe("7200");
    expect(header.get("access-control-allow-credentials")).toBeNull();
    expect(header.get("vary")).toContain("Origin");
  });

  it("says nothing to an origin it does not allow, or a request without one", () => {
    const policy = corsPolicy({ allowedOrigins: [page] });
    for (const origin of ["https://evil.test", null]) {
      const header = corsPreflightHeaders(policy, origin);
      expect(header.get("access-control-allow-origin")).toBeNull();
      expect(header.get("access-control-allow-methods")).toBeNull();
    }
  });

  it("allows credentials when asked to", () => {
    const header = corsPreflightHeaders(
      corsPolicy({ allowedOrigins: [page], allowCredentials: true }),
      page,
    );
    expect(header.get("access-control-allow-credentials")).toBe("true");
  });
});

describe("corsDecorate", () => {
  it("allows the origin and exposes the status and encoding headers", () => {
    const header = new Headers({ "grpc-status": "5" });
    corsDecorate(corsPolicy({ allowedOrigins: [page] }), page, header);
    expect(header.get("access-control-allow-origin")).toBe(page);
    expect(header.get("access-control-expose-headers")).toBe(
      corsExposedHeaders.join(", "),
    );
    expect(corsExposedHeaders).toEqual(
      expect.arrayContaining([
        "Grpc-Status",
        "Grpc-Message",
        "Grpc-Status-Details-Bin",
        "Connect-Content-Encoding",
      ]),
    );
    expect(header.get("vary")).toBe("Origin");
    expect(header.get("grpc-status")).toBe("5");
  });

  it("keeps a Vary the response has, and adds none for *", () => {
    const header = new Headers({ vary: "Accept-Encoding" });
    corsDecorate(corsPolicy({ allowedOrigins: [page] }), page, header);
    expect(header.get("vary")).toBe("Accept-Encoding, Origin");
    const any = new Headers();
    corsDecorate(corsPolicy({ allowedOrigins: "*" }), page, any);
    expect(any.get("access-control-allow-origin")).toBe("*");
    expect(any.get("vary")).toBeNull();
  });

  it("adds no CORS headers for an origin it does not allow", () => {
    const header = new Headers();
    corsDecorate(
      corsPolicy({ allowedOrigins: [page] }),
      "https://evil.test",
      header,
    );
    expect(header.get("access-control-allow-origin")).toBeNull();
    expect(header.get("access-control-expose-headers")).toBeNull();
    // Still keyed on Origin: the same URL answers the allowed one differently.
    expect(header.get("vary")).toBe("Origin");
  });
});
