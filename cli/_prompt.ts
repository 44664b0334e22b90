// The passphrase prompt: on the terminal (/dev/tty, else a terminal stdin
// with the question on stderr), raw mode, no echo, Backspace removes one
// character (not one byte), Ctrl-C is Interrupted (exit 130).
import { Interrupted } from "./_errors.ts";

interface Terminal {
  read(buf: Uint8Array): Promise<number | null>;
  write(bytes: Uint8Array): Promise<number>;
  setRaw(on: boolean): void;
  close(): void;
}

function openTerminal(): Terminal | undefined {
  try {
    const tty = Deno.openSync("/dev/tty", { read: true, write: true });
    if (tty.isTerminal()) {
      return {
        read: (b) => tty.read(b),
        write: (b) => tty.write(b),
        setRaw: (on) => tty.setRaw(on),
        close: () => tty.close(),
      };
    }
    tty.close();
  } catch {
    // No controlling terminal, or no permission for /dev/tty: try stdin.
  }
  if (Deno.stdin.isTerminal()) {
    return {
      read: (b) => Deno.stdin.read(b),
      write: (b) => Deno.stderr.write(b),
      setRaw: (on) => Deno.stdin.setRaw(on),
      close: () => {},
    };
  }
  return undefined;
}

/** Whether a terminal is there to ask on. */
export function hasTerminal(): boolean {
  const t = openTerminal();
  t?.close();
  return t !== undefined;
}

/**
 * Reads a line typed on the terminal without echo.
 *
 * @returns The text, or undefined when there is no terminal.
 * @throws {Interrupted} on Ctrl-C.
 */
export async function promptSecret(
  question: string,
): Promise<string | undefined> {
  const t = openTerminal();
  if (t === undefined) return undefined;
  const enc = new TextEncoder();
  const chars: string[] = [];
  const decoder = new TextDecoder();
  const buf = new Uint8Array(64);
  let interrupted = false;
  try {
    await t.write(enc.encode(question));
    t.setRaw(true);
    try {
      outer: while (true) {
        const n = await t.read(buf);
        if (n === null) break;
        for (let i = 0; i < n; i++) {
          const b = buf[i]!;
          if (b === 0x0d || b === 0x0a) break outer;
          if (b === 0x03) {
            interrupted = true;
            break outer;
          }
          if (b === 0x04) {
            if (chars.length === 0) {
              interrupted = true;
              break outer;
            }
            continue;
          }
          if (b === 0x7f || b === 0x08) {
            // One character: a whole UTF-8 sequence (a code point).
            chars.pop();
            continue;
          }
          if (b === 0x15) {
            chars.length = 0; // Ctrl-U
            continue;
          }
          const s = decoder.decode(buf.subarray(i, i + 1), { stream: true });
          if (s.length > 0) chars.push(...s);
        }
      }
    } finally {
      t.setRaw(false);
      await t.write(enc.encode("\n"));
    }
  } finally {
    t.close();
  }
  if (interrupted) throw new Interrupted();
  return chars.join("");
}

/**
 * Asks a yes/no question on the terminal.
 *
 * @returns Whether the answer was yes; false without a terminal.
 * @throws {Interrupted} on Ctrl-C.
 */
export async function confirm(question: string): Promise<boolean> {
  const t = openTerminal();
  if (t === undefined) return false;
  const enc = new TextEncoder();
  const buf = new Uint8Array(256);
  try {
    await t.write(enc.encode(`${question} [y/N] `));
    const n = await t.read(buf);
    if (n === null) return false;
    const answer = new TextDecoder().decode(buf.subarray(0, n)).trim();
    if (answer.includes("\x03")) throw new Interrupted();
    return /^y(es)?$/i.test(answer);
  } finally {
    t.close();
  }
}
