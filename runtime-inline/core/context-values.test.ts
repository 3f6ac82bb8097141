import { describe, expect, it } from "vitest";
import {
  createContextKey,
  createContextValues,
  type ContextKey,
} from "./context-values.ts";

describe("createContextKey", () => {
  it("makes a key with its default and a described symbol", () => {
    const key = createContextKey(42, { description: "answer" });
    expect(key.defaultValue).toBe(42);
    expect(key.id.description).toBe("answer");
    expect(createContextKey(0).id.description).toBeUndefined();
  });

  it("makes distinct keys, even with the same description and default", () => {
    const a = createContextKey("x", { description: "same" });
    const b = createContextKey("x", { description: "same" });
    const values = createContextValues().set(a, "a");
    expect(values.get(a)).toBe("a");
    expect(values.get(b)).toBe("x");
  });
});

describe("createContextValues", () => {
  it("answers a key's default until it is set", () => {
    const key = createContextKey({ name: "anonymous" });
    const values = createContextValues();
    expect(values.get(key)).toBe(key.defaultValue);
    values.set(key, { name: "alice" });
    expect(values.get(key)).toEqual({ name: "alice" });
  });

  it("chains set and delete, which return the same object", () => {
    const a = createContextKey(0);
    const b = createContextKey("");
    const values = createContextValues();
    expect(values.set(a, 1).set(b, "b")).toBe(values);
    expect(values.get(a)).toBe(1);
    expect(values.delete(a)).toBe(values);
    expect(values.get(a)).toBe(0);
    expect(values.get(b)).toBe("b");
  });

  it("keeps a value of undefined apart from no value", () => {
    const key: ContextKey<string | undefined> = createContextKey<
      string | undefined
    >("default");
    const values = createContextValues().set(key, undefined);
    expect(values.get(key)).toBeUndefined();
    values.delete(key);
    expect(values.get(key)).toBe("default");
  });

  it("deletes a key never set without complaint", () => {
    const key = createContextKey(1);
    expect(createContextValues().delete(key).get(key)).toBe(1);
  });

  it("makes independent sets", () => {
    const key = createContextKey(0);
    const one = createContextValues().set(key, 1);
    const two = createContextValues();
    expect(two.get(key)).toBe(0);
    expect(one.get(key)).toBe(1);
  });
});
