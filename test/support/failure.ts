import { expect } from "vitest";
import { ConnectError } from "../../runtime-inline/core/errors.ts";

/** The ConnectError a call fails with; the test fails if it resolves or throws anything else. */
export async function failure(
  promise: Promise<unknown>,
): Promise<ConnectError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConnectError);
  return error as ConnectError;
}
