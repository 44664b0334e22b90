// Internal: a Web Worker holding one USE-lite model. Protocol:
//   in:  { id, texts, maxTokens }      out: { id, vectors } | { id, error }
//   the first message out is { ready: true } or { ready: false, error }.
import { loadUseLite, type UseLiteRunner } from "./_use_lite_model.ts";

interface Job {
  readonly id: number;
  readonly texts: string[];
  readonly maxTokens: number;
}

const scope = self as unknown as {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<Job>) => void) | null;
};

let runner: UseLiteRunner | undefined;
const pending: Job[] = [];
let busy = false;

async function pump(): Promise<void> {
  if (busy || runner === undefined) return;
  busy = true;
  try {
    for (let job = pending.shift(); job; job = pending.shift()) {
      try {
        const vectors = await runner.embed(job.texts, job.maxTokens);
        scope.postMessage({ id: job.id, vectors }, [
          vectors.buffer as ArrayBuffer,
        ]);
      } catch (e) {
        scope.postMessage({ id: job.id, error: String(e) });
      }
    }
  } finally {
    busy = false;
  }
}

scope.onmessage = (e) => {
  pending.push(e.data);
  void pump();
};

loadUseLite().then((r) => {
  runner = r;
  scope.postMessage({ ready: true });
  void pump();
}, (e) => scope.postMessage({ ready: false, error: String(e) }));
