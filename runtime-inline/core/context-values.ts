/**
 * A key of a value carried by a call's {@link ContextValues}: what a value
 * holds, and what `get` answers when it holds none. Made with
 * {@link createContextKey}; keys are told apart by `id`, never by name.
 * @public
 */
export interface ContextKey<T> {
  readonly id: symbol;
  readonly defaultValue: T;
}

/**
 * Typed values that travel with one call: from the handler's `contextValues`
 * option and the server's interceptors to the implementation
 * (`context.values`), and from `CallOptions.contextValues` to the client's
 * interceptors (`request.contextValues`). Keys come from
 * {@link createContextKey}, a fresh set from {@link createContextValues}.
 * The same shape as `@connectrpc/connect`'s.
 * @public
 */
export interface ContextValues {
  /** The key's value, or its default when none was set. */
  get<T>(key: ContextKey<T>): T;
  /** Sets the key's value; returns this object, so that sets chain. */
  set<T>(key: ContextKey<T>, value: T): this;
  /** Removes the key's value, so that `get` answers its default again. */
  delete(key: ContextKey<unknown>): this;
}

/**
 * A key for {@link ContextValues}, with the value `get` answers when none was
 * set. `description` names the key's symbol, for debugging.
 * @public
 */
export function createContextKey<T>(
  defaultValue: T,
  options?: { description?: string },
): ContextKey<T> {
  return { id: Symbol(options?.description), defaultValue };
}

/**
 * An empty set of values for a call, e.g. what a handler's `contextValues`
 * option returns before setting some; their keys come from
 * {@link createContextKey} (a link that also brings it into every file that
 * has values, since the runtime itself never makes a key).
 * @public
 */
export function createContextValues(): ContextValues {
  return new ContextValuesMap();
}

// A Map rather than symbol-keyed properties: `delete` on an object makes V8
// move it to a slow dictionary mode, and a Map keeps a value of `undefined`
// apart from no value. Built on first `set`, as most calls set none.
class ContextValuesMap implements ContextValues {
  #map: Map<symbol, unknown> | undefined;

  get<T>(key: ContextKey<T>): T {
    const map = this.#map;
    return map !== undefined && map.has(key.id)
      ? (map.get(key.id) as T)
      : key.defaultValue;
  }

  set<T>(key: ContextKey<T>, value: T): this {
    (this.#map ??= new Map()).set(key.id, value);
    return this;
  }

  delete(key: ContextKey<unknown>): this {
    this.#map?.delete(key.id);
    return this;
  }
}
