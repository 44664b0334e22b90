// Internal: sealed columns. The AAD a sealed cell is bound to (table, column,
// row key, schema version) and the SealedColumn the storage hands out. Not
// exported from the package (sealedColumnAad is re-exported by storage.ts).
import { AicoDataError } from "../errors.ts";
import type { Sealer } from "../crypto/mod.ts";
import type { RowKey, SealedColumn } from "./storage.ts";

const SEALED_AAD_VERSION = 1;
const encoder = new TextEncoder();

/**
 * Builds the associated data a sealed cell is bound to.
 *
 * @remarks
 * Layout: `format(1)=0x01 ‖ schemaVersion(u32 BE) ‖ keyType(1) ‖
 * len(u32 BE) ‖ table ‖ len ‖ column ‖ len ‖ rowKey`, strings in UTF-8;
 * `keyType` is `s` for a string row key and `i` for an integer (written in
 * decimal, so `5` and `5n` are the same key). The sealed value itself is the
 * crypto module's `version(1) ‖ nonce(12) ‖ ciphertext ‖ tag(16)`.
 *
 * @param table The table name.
 * @param column The column name.
 * @param rowKey The row's stable key: a string, safe integer or bigint.
 * @param schemaVersion The schema version (0 to 2^32-1).
 * @returns The AAD bytes.
 * @throws {AicoDataError} `INVALID_INPUT` for a row key of another type.
 *
 * @example Fields are length-prefixed
 * ```ts
 * import { sealedColumnAad } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * assert.notDeepEqual(sealedColumnAad("ab", "c", 1, 1), sealedColumnAad("a", "bc", 1, 1));
 * assert.deepEqual(sealedColumnAad("t", "c", 5, 1), sealedColumnAad("t", "c", 5n, 1));
 * ```
 */
export function sealedColumnAad(
  table: string,
  column: string,
  rowKey: RowKey,
  schemaVersion: number,
): Uint8Array {
  return new AadBuilder(table, column, schemaVersion).build([rowKey])[0]!;
}

const KEY_STRING = 0x73; // "s"
const KEY_INTEGER = 0x69; // "i"

/**
 * Builds the AADs of one table, column and schema version: the fixed part
 * (format, version, table, column) is encoded once, each value adds only its
 * row key. See {@linkcode sealedColumnAad} for the layout.
 */
class AadBuilder {
  /** `format ‖ schemaVersion ‖ keyType(placeholder) ‖ len ‖ table ‖ len ‖ column`. */
  #prefix: Uint8Array;

  constructor(table: string, column: string, schemaVersion: number) {
    const t = encoder.encode(table);
    const c = encoder.encode(column);
    const prefix = new Uint8Array(1 + 4 + 1 + 4 + t.length + 4 + c.length);
    const view = new DataView(prefix.buffer);
    prefix[0] = SEALED_AAD_VERSION;
    view.setUint32(1, schemaVersion);
    view.setUint32(6, t.length);
    prefix.set(t, 10);
    view.setUint32(10 + t.length, c.length);
    prefix.set(c, 14 + t.length);
    this.#prefix = prefix;
  }

  /**
   * The AAD of each row key, as views into one buffer. Throws
   * `INVALID_INPUT` (before anything is built) for a key of another type or
   * a string key that is not well-formed UTF-16.
   */
  build(rowKeys: readonly RowKey[]): Uint8Array[] {
    const n = rowKeys.length;
    const prefix = this.#prefix;
    const types = new Uint8Array(n);
    const texts = new Array<string | Uint8Array>(n);
    let size = n * (prefix.length + 4);
    for (let i = 0; i < n; i++) {
      const rowKey = rowKeys[i];
      if (typeof rowKey === "number" && Number.isSafeInteger(rowKey)) {
        // String() of a safe integer is its decimal form (as BigInt's).
        const text = String(rowKey);
        types[i] = KEY_INTEGER;
        texts[i] = text;
        size += text.length;
      } else if (typeof rowKey === "string") {
        if (!rowKey.isWellFormed()) {
          throw new AicoDataError(
            "INVALID_INPUT",
            "Cannot seal: the row key is not well-formed UTF-16",
          );
        }
        const bytes = encoder.encode(rowKey);
        types[i] = KEY_STRING;
        texts[i] = bytes;
        size += bytes.length;
      } else if (typeof rowKey === "bigint") {
        const text = rowKey.toString();
        types[i] = KEY_INTEGER;
        texts[i] = text;
        size += text.length;
      } else {
        throw new AicoDataError(
          "INVALID_INPUT",
          "Cannot seal: the row key must be a string, a safe integer or a bigint",
        );
      }
    }
    const buffer = new Uint8Array(size);
    const out = new Array<Uint8Array>(n);
    let o = 0;
    for (let i = 0; i < n; i++) {
      const start = o;
      buffer.set(prefix, o);
      buffer[o + 5] = types[i]!;
      o += prefix.length;
      const key = texts[i]!;
      const len = key.length;
      buffer[o] = len >>> 24;
      buffer[o + 1] = (len >>> 16) & 0xff;
      buffer[o + 2] = (len >>> 8) & 0xff;
      buffer[o + 3] = len & 0xff;
      o += 4;
      if (typeof key === "string") {
        // Decimal digits and "-": ASCII, one byte each.
        for (let j = 0; j < len; j++) buffer[o + j] = key.charCodeAt(j);
      } else {
        buffer.set(key, o);
      }
      o += len;
      out[i] = buffer.subarray(start, o);
    }
    return out;
  }
}

export function checkName(what: string, name: unknown): string {
  if (typeof name !== "string" || name === "" || !name.isWellFormed()) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot use sealed column: the ${what} name is invalid`,
    );
  }
  return name;
}

export function checkSchemaVersion(value: unknown): number {
  if (value === undefined) return 1;
  if (
    typeof value !== "number" || !Number.isInteger(value) || value < 0 ||
    value > 0xffffffff
  ) {
    throw new AicoDataError(
      "INVALID_INPUT",
      'Cannot use sealed column: "schemaVersion" must be an integer from 0 to 2^32-1',
    );
  }
  return value;
}

function checkSealValue(value: unknown): void {
  if (typeof value === "string") {
    if (!value.isWellFormed()) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot seal: the string is not well-formed UTF-16",
      );
    }
  } else if (!(value instanceof Uint8Array)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot seal: the value must be a string or bytes",
    );
  }
}

function checkSealed(sealed: unknown): void {
  if (!(sealed instanceof Uint8Array)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot open sealed value: expected bytes",
    );
  }
}

function checkItems(items: unknown, action: string): void {
  if (!Array.isArray(items)) {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot ${action}: expected an array of items`,
    );
  }
}

export class SealedColumnImpl implements SealedColumn {
  readonly table: string;
  readonly column: string;
  #aad: AadBuilder;
  #sealer: () => Promise<Sealer>;

  constructor(
    table: string,
    column: string,
    version: number,
    sealer: () => Promise<Sealer>,
  ) {
    this.table = table;
    this.column = column;
    this.#aad = new AadBuilder(table, column, version);
    this.#sealer = sealer;
  }

  async seal(rowKey: RowKey, value: string | Uint8Array): Promise<Uint8Array> {
    checkSealValue(value);
    const aad = this.#aad.build([rowKey])[0]!;
    return await (await this.#sealer()).seal(value, aad);
  }

  async open(rowKey: RowKey, sealed: Uint8Array): Promise<Uint8Array> {
    checkSealed(sealed);
    const aad = this.#aad.build([rowKey])[0]!;
    return await (await this.#sealer()).open(sealed, aad);
  }

  async openText(rowKey: RowKey, sealed: Uint8Array): Promise<string> {
    checkSealed(sealed);
    const aad = this.#aad.build([rowKey])[0]!;
    return await (await this.#sealer()).openText(sealed, aad);
  }

  async sealBatch(
    items: readonly {
      readonly rowKey: RowKey;
      readonly value: string | Uint8Array;
    }[],
  ): Promise<Uint8Array[]> {
    checkItems(items, "seal batch");
    const n = items.length;
    const keys = new Array<RowKey>(n);
    for (let i = 0; i < n; i++) {
      const it = items[i]!;
      checkSealValue(it?.value);
      keys[i] = it.rowKey;
    }
    const aads = this.#aad.build(keys);
    const sealer = await this.#sealer();
    const input = new Array<
      { plaintext: string | Uint8Array; aad: Uint8Array }
    >(
      n,
    );
    for (let i = 0; i < n; i++) {
      input[i] = { plaintext: items[i]!.value, aad: aads[i]! };
    }
    return await sealer.sealBatch(input);
  }

  async openBatch(
    items: readonly {
      readonly rowKey: RowKey;
      readonly sealed: Uint8Array;
    }[],
  ): Promise<Uint8Array[]> {
    checkItems(items, "open batch");
    const n = items.length;
    const keys = new Array<RowKey>(n);
    for (let i = 0; i < n; i++) {
      const it = items[i]!;
      checkSealed(it?.sealed);
      keys[i] = it.rowKey;
    }
    const aads = this.#aad.build(keys);
    const sealer = await this.#sealer();
    const input = new Array<{ sealed: Uint8Array; aad: Uint8Array }>(n);
    for (let i = 0; i < n; i++) {
      input[i] = { sealed: items[i]!.sealed, aad: aads[i]! };
    }
    return await sealer.openBatch(input);
  }
}
