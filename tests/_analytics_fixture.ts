// Test data and independent reference computations (plain TypeScript over
// rows read through the repositories) for the analytics tests. Not part of
// the package.
import type { Storage } from "../storage/mod.ts";
import {
  createConversationRepository,
  createLogRepository,
  createUserService,
  type LogInput,
  type MessageRole,
  type NewMessage,
} from "../repositories/mod.ts";

/** A tiny deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = [
  "weather",
  "garden",
  "music",
  "coffee",
  "travel",
  "Berlin",
  "Madrid",
  "Wetter",
  "Garten",
  "Musik",
  "Kaffee",
  "Reise",
  "tiempo",
  "jardín",
  "música",
  "café",
  "viaje",
  "straße",
  "niño",
  "über",
  "año",
  "code",
  "project",
  "deadline",
  "2024",
  "x",
];
const STOPS = [
  "the",
  "and",
  "is",
  "der",
  "die",
  "und",
  "ist",
  "el",
  "la",
  "y",
  "es",
  "I",
  "you",
  "ich",
  "yo",
  "de",
];

export const T0 = Date.UTC(2024, 0, 29, 6, 0, 0); // a Monday

/** Builds users, conversations, messages and logs; returns ids. */
export async function seed(
  storage: Storage,
  options: { seed?: number; conversations?: number; model?: boolean } = {},
): Promise<{ conversationIds: string[] }> {
  const r = rng(options.seed ?? 7);
  const users = createUserService(storage);
  const u1 = await users.createUser({
    id: "alice",
    profile: { name: "secret-name" },
  });
  await users.createUser({ id: "bob" });
  const repo = createConversationRepository(storage);
  const ids: string[] = [];
  let t = T0;
  const nConv = options.conversations ?? 12;
  for (let c = 0; c < nConv; c++) {
    const conv = await repo.createConversation({
      id: `conv-${c}`,
      ...(c % 3 === 2 ? {} : { userId: c % 2 ? "bob" : u1.id }),
      title: `Private title ${c}`,
    });
    ids.push(conv.id);
    const msgs: NewMessage[] = [];
    const n = 1 + Math.floor(r() * 60);
    t += Math.floor(r() * 3 * 86_400_000);
    for (let i = 0; i < n; i++) {
      const role: MessageRole = i === 0 && r() < 0.2
        ? "system"
        : r() < 0.05
        ? "tool"
        : i % 2 === 0
        ? "user"
        : "assistant";
      const words: string[] = [];
      const k = 1 + Math.floor(r() * 12);
      for (let w = 0; w < k; w++) {
        words.push(
          r() < 0.4
            ? STOPS[Math.floor(r() * STOPS.length)]!
            : WORDS[Math.floor(r() * WORDS.length)]!,
        );
      }
      msgs.push({
        role,
        content: words.join(r() < 0.5 ? " " : ", ") + (r() < 0.3 ? "!" : "."),
        createdAt: t,
      });
      // Gaps: mostly seconds, sometimes an hour or more (new session).
      const g = r();
      t += g < 0.85
        ? Math.floor(r() * 300_000)
        : g < 0.95
        ? Math.floor(r() * 7_200_000)
        : Math.floor(r() * 86_400_000);
    }
    await repo.appendMessages(conv.id, msgs);
  }
  if (options.model) await addModels(storage);
  const logs = createLogRepository(storage);
  const levels = ["debug", "info", "info", "warn", "error", "fatal"] as const;
  const modules = ["core.bus", "vector.index", "cli", "storage"];
  const entries: LogInput[] = [];
  for (let i = 0; i < 400; i++) {
    entries.push({
      level: levels[Math.floor(r() * levels.length)]!,
      module: modules[Math.floor(r() * modules.length)]!,
      message: `event ${i}`,
      ts: T0 + Math.floor(r() * 20 * 86_400_000),
    });
  }
  await logs.insertLogs(entries);
  return { conversationIds: ids };
}

/** Adds the v2 `model` column when absent (test stand-in for core v2) and sets it for assistant messages. */
export async function addModels(storage: Storage): Promise<void> {
  const info = await storage.execute("PRAGMA table_info(messages)");
  if (!info.rows.some((x) => x.name === "model")) {
    await storage.execute("ALTER TABLE messages ADD COLUMN model TEXT");
  }
  await storage.execute(
    "UPDATE messages SET model = CASE WHEN id % 3 = 0 THEN 'gpt-x' ELSE 'llama-3' END WHERE role = 'assistant'",
  );
}

export interface RefMessage {
  id: number;
  conversationId: string;
  seq: number;
  role: string;
  content: string;
  createdAt: number;
  model: string | null;
}
export interface RefLog {
  ts: number;
  level: string;
  module: string;
}

/** Reads every message (through the repository, content opened) and log. */
export async function readTruth(
  storage: Storage,
): Promise<{ messages: RefMessage[]; logs: RefLog[] }> {
  const repo = createConversationRepository(storage);
  const messages: RefMessage[] = [];
  const info = await storage.execute("PRAGMA table_info(messages)");
  const models = new Map<number, string | null>();
  if (info.rows.some((x) => x.name === "model")) {
    for (
      const row of (await storage.execute("SELECT id, model FROM messages"))
        .rows
    ) {
      models.set(Number(row.id), row.model === null ? null : String(row.model));
    }
  }
  let cursor: string | undefined;
  do {
    const page = await repo.listConversations({
      limit: 1000,
      ...(cursor ? { cursor } : {}),
    });
    for (const c of page.items) {
      let mc: string | undefined;
      do {
        const mp = await repo.listMessages(c.id, {
          limit: 1000,
          ...(mc ? { cursor: mc } : {}),
        });
        for (const m of mp.items) {
          messages.push({ ...m, model: models.get(m.id) ?? null });
        }
        mc = mp.nextCursor;
      } while (mc);
    }
    cursor = page.nextCursor;
  } while (cursor);
  const logs: RefLog[] = [];
  const lr = createLogRepository(storage);
  let lc: string | undefined;
  do {
    const p = await lr.queryLogs({
      limit: 10_000,
      ...(lc ? { cursor: lc } : {}),
    });
    for (const l of p.records) {
      logs.push({ ts: l.ts, level: l.level, module: l.module });
    }
    lc = p.nextCursor;
  } while (lc);
  return { messages, logs };
}

// ---- reference computations -------------------------------------------

const DAY = 86_400_000;

export function truncUtc(ms: number, period: "day" | "week" | "month"): number {
  const d = new Date(ms);
  if (period === "month") {
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  }
  const day = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  if (period === "day") return day;
  return day - ((d.getUTCDay() + 6) % 7) * DAY;
}

export function refActivity(
  ms: RefMessage[],
  period: "day" | "week" | "month",
) {
  const m = new Map<number, { messages: number; convs: Set<string> }>();
  for (const x of ms) {
    const k = truncUtc(x.createdAt, period);
    const e = m.get(k) ?? { messages: 0, convs: new Set() };
    e.messages++;
    e.convs.add(x.conversationId);
    m.set(k, e);
  }
  return [...m].sort((a, b) => a[0] - b[0]).map(([k, e]) => ({
    period: new Date(k),
    messages: e.messages,
    conversations: e.convs.size,
  }));
}

export function refHeatmap(ms: RefMessage[]) {
  const m = new Map<string, number>();
  for (const x of ms) {
    const d = new Date(x.createdAt);
    const k = `${(d.getUTCDay() + 6) % 7 + 1}:${d.getUTCHours()}`;
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return [...m].map(([k, v]) => {
    const [w, h] = k.split(":").map(Number);
    return { weekday: w!, hour: h!, messages: v };
  }).sort((a, b) => a.weekday - b.weekday || a.hour - b.hour);
}

/** Nearest-rank quantiles (the element at rank ceil(n·q)), mean. */
export function refQuantiles(values: number[]) {
  const s = [...values].sort((a, b) => a - b);
  const n = s.length;
  const q = (p: number) =>
    n === 0 ? null : s[Math.max(0, Math.ceil(n * p) - 1)]!;
  return {
    count: n,
    min: n ? s[0]! : null,
    p50: q(0.5),
    p90: q(0.9),
    p99: q(0.99),
    max: n ? s[n - 1]! : null,
    mean: n ? s.reduce((a, b) => a + b, 0) / n : null,
  };
}

export function byConversation(ms: RefMessage[]): Map<string, RefMessage[]> {
  const m = new Map<string, RefMessage[]>();
  for (const x of ms) {
    const a = m.get(x.conversationId) ?? [];
    a.push(x);
    m.set(x.conversationId, a);
  }
  for (const a of m.values()) a.sort((x, y) => x.seq - y.seq);
  return m;
}

export function refLengths(ms: RefMessage[]) {
  return refQuantiles([...byConversation(ms).values()].map((a) => a.length));
}

export function refLatency(ms: RefMessage[]) {
  const out: number[] = [];
  for (const a of byConversation(ms).values()) {
    for (let i = 1; i < a.length; i++) {
      if (a[i]!.role === "assistant" && a[i - 1]!.role === "user") {
        out.push((a[i]!.createdAt - a[i - 1]!.createdAt) / 1000);
      }
    }
  }
  return refQuantiles(out);
}

export function refRoles(ms: RefMessage[]) {
  const m = new Map<
    string,
    { role: string; model: string | null; messages: number }
  >();
  for (const x of ms) {
    const k = `${x.role}\u0000${x.model ?? "\u0001"}`;
    const e = m.get(k) ?? { role: x.role, model: x.model, messages: 0 };
    e.messages++;
    m.set(k, e);
  }
  return [...m.values()].sort((a, b) =>
    b.messages - a.messages ||
    (a.role < b.role ? -1 : a.role > b.role ? 1 : 0) ||
    (a.model === b.model
      ? 0
      : a.model === null
      ? 1
      : b.model === null
      ? -1
      : a.model < b.model
      ? -1
      : 1)
  );
}

export function refTopTerms(
  ms: RefMessage[],
  stop: ReadonlySet<string>,
  limit: number,
) {
  const m = new Map<string, { count: number; ids: Set<number> }>();
  for (const x of ms) {
    for (const term of x.content.toLowerCase().split(/[^\p{L}\p{N}]+/u)) {
      if ([...term].length < 2 || /^[0-9]+$/.test(term) || stop.has(term)) {
        continue;
      }
      const e = m.get(term) ?? { count: 0, ids: new Set() };
      e.count++;
      e.ids.add(x.id);
      m.set(term, e);
    }
  }
  const cmp = (a: string, b: string) => {
    const ea = new TextEncoder().encode(a), eb = new TextEncoder().encode(b);
    for (let i = 0; i < Math.min(ea.length, eb.length); i++) {
      if (ea[i] !== eb[i]) return ea[i]! - eb[i]!;
    }
    return ea.length - eb.length;
  };
  return [...m].map(([term, e]) => ({
    term,
    count: e.count,
    messages: e.ids.size,
  }))
    .sort((a, b) => b.count - a.count || cmp(a.term, b.term)).slice(0, limit);
}

export function refStreaks(ms: RefMessage[]) {
  const days = [
    ...new Set(
      ms.filter((x) => x.role === "user").map((x) =>
        truncUtc(x.createdAt, "day")
      ),
    ),
  ].sort((a, b) => a - b);
  const runs: { start: number; end: number; days: number }[] = [];
  for (const d of days) {
    const last = runs[runs.length - 1];
    if (last && d - last.end === DAY) {
      last.end = d;
      last.days++;
    } else runs.push({ start: d, end: d, days: 1 });
  }
  let longest = runs[0];
  for (const r of runs) if (r.days > longest!.days) longest = r;
  const latest = runs[runs.length - 1];
  const s = (r: typeof longest) =>
    r ? { start: new Date(r.start), end: new Date(r.end), days: r.days } : null;
  return { activeDays: days.length, longest: s(longest), latest: s(latest) };
}

export function refSessions(ms: RefMessage[], gapMinutes: number) {
  const s = [...ms].sort((a, b) => a.createdAt - b.createdAt || a.id - b.id);
  const sessions: { first: number; last: number; n: number }[] = [];
  for (const x of s) {
    const cur = sessions[sessions.length - 1];
    if (cur && x.createdAt - cur.last <= gapMinutes * 60_000) {
      cur.last = x.createdAt;
      cur.n++;
    } else sessions.push({ first: x.createdAt, last: x.createdAt, n: 1 });
  }
  return {
    gapMinutes,
    durations: refQuantiles(sessions.map((x) => (x.last - x.first) / 1000)),
    messages: refQuantiles(sessions.map((x) => x.n)),
  };
}

export function refErrorRates(
  logs: RefLog[],
  period: "day" | "week" | "month",
) {
  const m = new Map<
    string,
    { period: number; module: string; level: string; count: number }
  >();
  const totals = new Map<string, number>();
  for (const l of logs) {
    const p = truncUtc(l.ts, period);
    const k = `${p}|${l.module}|${l.level}`;
    const e = m.get(k) ??
      { period: p, module: l.module, level: l.level, count: 0 };
    e.count++;
    m.set(k, e);
    totals.set(`${p}|${l.module}`, (totals.get(`${p}|${l.module}`) ?? 0) + 1);
  }
  return [...m.values()].map((e) => {
    const total = totals.get(`${e.period}|${e.module}`)!;
    return {
      period: new Date(e.period),
      module: e.module,
      level: e.level,
      count: e.count,
      total,
      rate: e.count / total,
    };
  }).sort((a, b) =>
    a.period.getTime() - b.period.getTime() ||
    (a.module < b.module ? -1 : a.module > b.module ? 1 : 0) ||
    (a.level < b.level ? -1 : a.level > b.level ? 1 : 0)
  );
}
