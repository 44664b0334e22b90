/**
 * The canned analyses: SQL over the analytics tables and the shapes of
 * their results. Times are UTC; weeks start on Monday (ISO); weekdays are
 * 1 (Monday) to 7 (Sunday); durations are in seconds.
 *
 * @module
 */
import type { PlainValue, QueryParam, QueryResult } from "./engine.ts";

/** A period of {@linkcode Analytics.activity} and {@linkcode Analytics.errorRates}. */
export type Period = "day" | "week" | "month";

/** Messages in one period. */
export interface ActivityRow {
  /** The period's start (UTC). */
  readonly period: Date;
  /** Messages written in it. */
  readonly messages: number;
  /** Distinct conversations with a message in it. */
  readonly conversations: number;
}

/** One non-empty cell of the hour × weekday heatmap. */
export interface HeatmapCell {
  /** 1 (Monday) to 7 (Sunday). */
  readonly weekday: number;
  /** 0 to 23 (UTC). */
  readonly hour: number;
  /** Messages written then. */
  readonly messages: number;
}

/** Quantiles of a set of values (discrete: each is one of the values). */
export interface Quantiles {
  /** How many values. */
  readonly count: number;
  /** The smallest, or `null` when there is none. */
  readonly min: number | null;
  /** The median. */
  readonly p50: number | null;
  /** The 90th percentile. */
  readonly p90: number | null;
  /** The 99th percentile. */
  readonly p99: number | null;
  /** The largest. */
  readonly max: number | null;
  /** The mean. */
  readonly mean: number | null;
}

/** Messages by role and model (`model` `null` when not recorded). */
export interface RoleModelRow {
  /** `system`, `user`, `assistant` or `tool`. */
  readonly role: string;
  /** The model slug, or `null`. */
  readonly model: string | null;
  /** Messages. */
  readonly messages: number;
}

/** A frequent term of message text. */
export interface TermRow {
  /** The term (lower case). */
  readonly term: string;
  /** Occurrences. */
  readonly count: number;
  /** Messages containing it. */
  readonly messages: number;
}

/** A run of consecutive days with at least one user message. */
export interface Streak {
  /** Its first day (UTC midnight). */
  readonly start: Date;
  /** Its last day. */
  readonly end: Date;
  /** Its length in days. */
  readonly days: number;
}

/** Activity streaks (days with at least one `user` message). */
export interface StreakStats {
  /** Days with a user message. */
  readonly activeDays: number;
  /** The longest streak (the earliest of equal ones), or `null`. */
  readonly longest: Streak | null;
  /** The streak that ends on the latest active day, or `null`. */
  readonly latest: Streak | null;
}

/** Gap-based sessions. */
export interface SessionStats {
  /** The gap that ends a session, in minutes. */
  readonly gapMinutes: number;
  /** Session durations (last message − first message), seconds. */
  readonly durations: Quantiles;
  /** Messages per session. */
  readonly messages: Quantiles;
}

/** Log records of one module and level in one period. */
export interface ErrorRateRow {
  /** The period's start (UTC). */
  readonly period: Date;
  /** The emitting module. */
  readonly module: string;
  /** The level. */
  readonly level: string;
  /** Records of this module and level in the period. */
  readonly count: number;
  /** Records of this module in the period (every level). */
  readonly total: number;
  /** `count / total`. */
  readonly rate: number;
}

type Run = (
  sql: string,
  params?: readonly QueryParam[],
) => Promise<QueryResult>;

const PERIODS: ReadonlySet<string> = new Set(["day", "week", "month"]);

/** Checks a period name (it is put into SQL). */
export function checkPeriod(period: unknown, what: string): Period {
  if (typeof period !== "string" || !PERIODS.has(period)) {
    throw new RangeError(
      `Cannot ${what}: period must be day, week or month, got "${
        String(period)
      }"`,
    );
  }
  return period as Period;
}

const n = (v: PlainValue | undefined): number => Number(v ?? 0);
const nn = (v: PlainValue | undefined): number | null =>
  v === null || v === undefined ? null : Number(v);

function quantileSql(expr: string): string {
  return `count(${expr}) AS count, min(${expr}) AS min, quantile_disc(${expr}, 0.5) AS p50, ` +
    `quantile_disc(${expr}, 0.9) AS p90, quantile_disc(${expr}, 0.99) AS p99, max(${expr}) AS max, avg(${expr}) AS mean`;
}

function toQuantiles(r: Record<string, PlainValue> | undefined): Quantiles {
  return {
    count: n(r?.count),
    min: nn(r?.min),
    p50: nn(r?.p50),
    p90: nn(r?.p90),
    p99: nn(r?.p99),
    max: nn(r?.max),
    mean: nn(r?.mean),
  };
}

/** Activity per period. */
export async function activity(
  run: Run,
  period: Period,
): Promise<ActivityRow[]> {
  const r = await run(
    `SELECT date_trunc('${period}', created_at) AS period, count(*) AS messages, count(DISTINCT conv_key) AS conversations FROM messages GROUP BY 1 ORDER BY 1`,
  );
  return r.rows.map((x) => ({
    period: x.period as Date,
    messages: n(x.messages),
    conversations: n(x.conversations),
  }));
}

/** Hour × weekday counts. */
export async function heatmap(run: Run): Promise<HeatmapCell[]> {
  const r = await run(
    "SELECT isodow(created_at) AS weekday, hour(created_at) AS hour, count(*) AS messages FROM messages GROUP BY 1, 2 ORDER BY 1, 2",
  );
  return r.rows.map((x) => ({
    weekday: n(x.weekday),
    hour: n(x.hour),
    messages: n(x.messages),
  }));
}

/** Messages per conversation (conversations with at least one message). */
export async function conversationLengths(run: Run): Promise<Quantiles> {
  const r = await run(
    `SELECT ${
      quantileSql("n")
    } FROM (SELECT count(*) AS n FROM messages GROUP BY conv_key)`,
  );
  return toQuantiles(r.rows[0]);
}

/**
 * Seconds from a `user` message to the `assistant` message that directly
 * follows it (next `seq`) in the same conversation.
 */
export async function responseLatency(run: Run): Promise<Quantiles> {
  const r = await run(
    `SELECT ${quantileSql("s")} FROM (
      SELECT (epoch_ms(created_at) - epoch_ms(prev_at)) / 1000.0 AS s FROM (
        SELECT role, created_at, lag(role) OVER w AS prev_role, lag(created_at) OVER w AS prev_at
        FROM messages WINDOW w AS (PARTITION BY conv_key ORDER BY seq)
      ) WHERE role = 'assistant' AND prev_role = 'user')`,
  );
  return toQuantiles(r.rows[0]);
}

/** Message counts by role and model. */
export async function messagesByRoleAndModel(
  run: Run,
): Promise<RoleModelRow[]> {
  const r = await run(
    "SELECT role, model, count(*) AS messages FROM messages GROUP BY 1, 2 ORDER BY messages DESC, role, model NULLS LAST",
  );
  return r.rows.map((x) => ({
    role: String(x.role),
    model: x.model === null ? null : String(x.model),
    messages: n(x.messages),
  }));
}

/**
 * The most frequent terms: text lower-cased, split on every character that
 * is not a letter or digit (Unicode), terms shorter than 2 characters,
 * made of digits only or in the stop words dropped; ties by term.
 */
export async function topTerms(run: Run, limit: number): Promise<TermRow[]> {
  const r = await run(
    `SELECT term, count(*) AS count, count(DISTINCT id) AS messages FROM (
      SELECT id, unnest(regexp_split_to_array(lower(text), '[^\\p{L}\\p{N}]+')) AS term FROM message_text
    ) WHERE length(term) >= 2 AND NOT regexp_full_match(term, '[0-9]+')
      AND term NOT IN (SELECT word FROM stop_words)
    GROUP BY term ORDER BY count DESC, term LIMIT ?`,
    [limit],
  );
  return r.rows.map((x) => ({
    term: String(x.term),
    count: n(x.count),
    messages: n(x.messages),
  }));
}

/** Streaks of days with a user message. */
export async function streaks(run: Run): Promise<StreakStats> {
  const r = await run(
    `WITH d AS (SELECT DISTINCT created_at::DATE AS day FROM messages WHERE role = 'user'),
     g AS (SELECT day, day - (row_number() OVER (ORDER BY day))::INTEGER AS grp FROM d),
     s AS (SELECT min(day) AS start, max(day) AS "end", count(*) AS days FROM g GROUP BY grp)
     SELECT (SELECT count(*) FROM d) AS active,
       (SELECT {'start': start, 'end': "end", 'days': days} FROM s ORDER BY days DESC, start LIMIT 1) AS longest,
       (SELECT {'start': start, 'end': "end", 'days': days} FROM s ORDER BY "end" DESC LIMIT 1) AS latest`,
  );
  const row = r.rows[0]!;
  const streak = (v: PlainValue | undefined): Streak | null => {
    if (v === null || v === undefined) return null;
    const o = v as Record<string, PlainValue>;
    return {
      start: o.start as Date,
      end: o.end as Date,
      days: n(o.days),
    };
  };
  return {
    activeDays: n(row.active),
    longest: streak(row.longest),
    latest: streak(row.latest),
  };
}

/**
 * Sessions: messages of every conversation in time order (ties by id); a
 * gap longer than `gapMinutes` between two messages starts a new session.
 */
export async function sessions(
  run: Run,
  gapMinutes: number,
): Promise<SessionStats> {
  const r = await run(
    `WITH m AS (
       SELECT id, epoch_ms(created_at) AS t, lag(epoch_ms(created_at)) OVER (ORDER BY created_at, id) AS prev FROM messages),
     k AS (SELECT t, sum(CASE WHEN prev IS NULL OR t - prev > ? THEN 1 ELSE 0 END) OVER (ORDER BY t, id ROWS UNBOUNDED PRECEDING) AS sid FROM m),
     s AS (SELECT (max(t) - min(t)) / 1000.0 AS d, count(*) AS c FROM k GROUP BY sid)
     SELECT ${quantileSql("d").replaceAll(" AS ", " AS d_")}, ${
      quantileSql("c").replaceAll(" AS ", " AS c_")
    } FROM s`,
    [gapMinutes * 60_000],
  );
  const row = r.rows[0] ?? {};
  const pick = (p: string): Record<string, PlainValue> =>
    Object.fromEntries(
      Object.entries(row).filter(([k]) => k.startsWith(p)).map((
        [k, v],
      ) => [k.slice(p.length), v]),
    );
  return {
    gapMinutes,
    durations: toQuantiles(pick("d_")),
    messages: toQuantiles(pick("c_")),
  };
}

/** Log records per period, module and level, with the module's share. */
export async function errorRates(
  run: Run,
  period: Period,
): Promise<ErrorRateRow[]> {
  const r = await run(
    `SELECT period, module, level, c AS count, sum(c) OVER (PARTITION BY period, module) AS total,
       c / sum(c) OVER (PARTITION BY period, module) AS rate
     FROM (SELECT date_trunc('${period}', ts) AS period, module, level, count(*) AS c FROM logs GROUP BY 1, 2, 3)
     ORDER BY period, module, level`,
  );
  return r.rows.map((x) => ({
    period: x.period as Date,
    module: String(x.module),
    level: String(x.level),
    count: n(x.count),
    total: n(x.total),
    rate: n(x.rate),
  }));
}
