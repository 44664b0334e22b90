// Progress on stderr, only when stderr is a terminal (quiet in scripts).
const enc = new TextEncoder();

/** A one-line progress display. */
export interface Progress {
  update(text: string): void;
  done(): void;
}

/** Creates a progress line labelled `label`. */
export function createProgress(label: string): Progress {
  let tty = false;
  try {
    tty = Deno.stderr.isTerminal();
  } catch {
    tty = false;
  }
  let last = 0;
  let shown = false;
  return {
    update(text) {
      if (!tty) return;
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      shown = true;
      Deno.stderr.writeSync(enc.encode(`\r\x1b[2K${label}: ${text}`));
    },
    done() {
      if (tty && shown) Deno.stderr.writeSync(enc.encode("\r\x1b[2K"));
    },
  };
}
