// Internal: runs synchronous work behind a Promise-returning API, so that a
// throw becomes a rejection (callers never see a synchronous throw).

/** Runs `work`; its result resolves and its throw rejects the promise. */
export function settle<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (err) {
    return Promise.reject(err);
  }
}
