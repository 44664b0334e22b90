// Internal: checks that catch a damaged database page the engine cannot see.
// libSQL's page encryption (AES-256-CBC, no MAC) decrypts a changed page to
// garbage without an error; a damaged index page can make a query skip rows.
// Messages are append-only per conversation with `seq` 1..last_seq, so a page
// of a listing must be a gap-free run of seq values, and the run must reach
// both ends of the conversation. A message erased later (`erase`, retention)
// leaves a recorded gap (`message_gaps`): the run skips exactly those seqs,
// so an erased message is never mistaken for damage and damage never hides
// behind an erasure (an unrecorded gap is still `CORRUPT_STORE`).
import { AicoDataError } from "../errors.ts";

const NO_GAPS: ReadonlySet<number> = new Set();

function damaged(conversationId: string, detail: string): AicoDataError {
  return new AicoDataError(
    "CORRUPT_STORE",
    `Cannot list messages of conversation "${conversationId}": ${detail}, the database is damaged (run verify, restore a backup)`,
  );
}

/**
 * Checks one page of `listMessages` (all rows read, including the one past
 * the limit) against the conversation's `last_seq`.
 *
 * @param seqs The seq values in the order read.
 * @param order The listing order.
 * @param cursorSeq The seq of the cursor, if any.
 * @param lastSeq The conversation's last seq (`undefined` when its row is
 *   missing: then there must be no message).
 * @param complete Whether this page ends the listing.
 * @param gaps The erased seqs of the conversation in the page's range
 *   (recorded in `message_gaps`); none by default.
 */
export function checkMessageRun(
  conversationId: string,
  seqs: readonly number[],
  order: "asc" | "desc",
  cursorSeq: number | undefined,
  lastSeq: number | undefined,
  complete: boolean,
  gaps: ReadonlySet<number> = NO_GAPS,
): void {
  if (lastSeq === undefined) {
    if (seqs.length > 0) {
      throw damaged(conversationId, "messages without their conversation");
    }
    return;
  }
  if (
    cursorSeq !== undefined &&
    (!Number.isInteger(cursorSeq) || cursorSeq < 0 || cursorSeq > lastSeq + 1)
  ) {
    return; // Not a cursor this repository made: nothing to compare with.
  }
  const step = order === "asc" ? 1 : -1;
  let expected = cursorSeq === undefined
    ? (order === "asc" ? 1 : lastSeq)
    : cursorSeq + step;
  if (expected < 1 || expected > lastSeq) {
    // Past either end: nothing may be listed.
    if (seqs.length > 0) throw damaged(conversationId, "a seq out of range");
    return;
  }
  const skip = () => {
    while (gaps.has(expected) && expected >= 1 && expected <= lastSeq) {
      expected += step;
    }
  };
  skip();
  for (const seq of seqs) {
    if (seq !== expected) {
      throw damaged(
        conversationId,
        `seq "${expected}" is missing or out of order`,
      );
    }
    expected += step;
    skip();
  }
  if (complete && expected !== (order === "asc" ? lastSeq + 1 : 0)) {
    throw damaged(
      conversationId,
      `the listing ends before seq "${expected}"`,
    );
  }
}
