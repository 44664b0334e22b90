// Internal: AbortSignal checks of long operations (storage, schema). Not exported
// from the package.
import { AicoDataError } from "../errors.ts";

/** The `ABORTED` error of `action`, keeping the signal's reason as cause. */
export function abortError(action: string, signal: AbortSignal): AicoDataError {
  return new AicoDataError(
    "ABORTED",
    `Cannot ${action}: the operation was aborted`,
    { cause: signal.reason },
  );
}

/** Throws `ABORTED` when `signal` is aborted. */
export function throwIfAborted(
  action: string,
  signal: AbortSignal | undefined,
): void {
  if (signal?.aborted) throw abortError(action, signal);
}

/** Checks that `signal` is `undefined` or an `AbortSignal` (`INVALID_INPUT`). */
export function checkSignal(
  action: string,
  signal: unknown,
): AbortSignal | undefined {
  if (signal === undefined || signal instanceof AbortSignal) return signal;
  throw new AicoDataError(
    "INVALID_INPUT",
    `Cannot ${action}: "signal" must be an AbortSignal`,
  );
}
