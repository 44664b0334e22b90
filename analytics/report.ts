/**
 * The analytics report: one self-contained HTML file (inline SVG charts and
 * CSS, no script, a Content-Security-Policy that forbids every external
 * resource) and a short terminal summary.
 *
 * @module
 */
import { AicoDataError } from "../errors.ts";
import type {
  ActivityRow,
  ErrorRateRow,
  HeatmapCell,
  Quantiles,
  RoleModelRow,
  SessionStats,
  StreakStats,
  TermRow,
} from "./analyses.ts";
import { type ExportKey, sealExport } from "./export.ts";

/** What a report shows (the results of the canned analyses). */
export interface ReportData {
  /** The title. */
  readonly title: string;
  /** When it was built. */
  readonly generatedAt: Date;
  /** Rows per table. */
  readonly counts: Readonly<Record<string, number>>;
  /** Activity per day. */
  readonly daily: readonly ActivityRow[];
  /** Activity per month. */
  readonly monthly: readonly ActivityRow[];
  /** The heatmap. */
  readonly heatmap: readonly HeatmapCell[];
  /** Conversation lengths. */
  readonly lengths: Quantiles;
  /** Response latency (seconds). */
  readonly latency: Quantiles;
  /** Messages by role and model. */
  readonly roles: readonly RoleModelRow[];
  /** Streaks. */
  readonly streaks: StreakStats;
  /** Sessions. */
  readonly sessions: SessionStats;
  /** Log counts per day, module and level. */
  readonly errors: readonly ErrorRateRow[];
  /** Top terms (empty when text was not asked for). */
  readonly terms: readonly TermRow[];
}

/** A built report. */
export interface Report {
  /** The HTML document. */
  readonly html: string;
  /** A few plain lines for a terminal. */
  readonly summary: string;
}

const esc = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const day = (d: Date): string => d.toISOString().slice(0, 10);
const fmt = (v: number | null, digits = 1): string =>
  v === null ? "–" : Number.isInteger(v) ? String(v) : v.toFixed(digits);

function barChart(
  id: string,
  label: string,
  bars: readonly { label: string; value: number }[],
): string {
  const w = 720, h = 200, pad = 30;
  const max = Math.max(1, ...bars.map((b) => b.value));
  const bw = bars.length ? (w - pad) / bars.length : 0;
  const rects = bars.map((b, i) => {
    const bh = Math.max(1, (b.value / max) * (h - pad));
    return `<rect class="bar" x="${(pad + i * bw).toFixed(2)}" y="${
      (h - pad - bh + 10).toFixed(2)
    }" width="${Math.max(1, bw - 1).toFixed(2)}" height="${
      bh.toFixed(2)
    }"><title>${esc(b.label)}: ${b.value}</title></rect>`;
  }).join("");
  const labels = bars.length <= 12
    ? bars.map((b, i) =>
      `<text x="${(pad + i * bw + bw / 2).toFixed(2)}" y="${
        h - 4
      }" class="tick" text-anchor="middle">${esc(b.label)}</text>`
    ).join("")
    : "";
  const first = labels ? "" : bars[0]?.label ?? "";
  const last = labels ? "" : bars[bars.length - 1]?.label ?? "";
  return `<figure><figcaption>${
    esc(label)
  }</figcaption><svg id="${id}" class="chart" role="img" aria-label="${
    esc(label)
  }" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}">` +
    `<line x1="${pad}" y1="${h - pad + 10}" x2="${w}" y2="${
      h - pad + 10
    }" class="axis"/>` +
    `<text x="0" y="20" class="tick">${max}</text>` +
    `<text x="${pad}" y="${h - 4}" class="tick">${esc(first)}</text>` +
    `<text x="${w}" y="${h - 4}" class="tick" text-anchor="end">${
      esc(last)
    }</text>${labels}${rects}</svg></figure>`;
}

/** Daily bars with the empty days in between as zero (at most ~10 years). */
function fillDays(
  rows: readonly ActivityRow[],
): { label: string; value: number }[] {
  const first = rows[0], last = rows[rows.length - 1];
  if (!first || !last) return [];
  const span = (last.period.getTime() - first.period.getTime()) / 86_400_000;
  if (span > 3660) {
    return rows.map((r) => ({ label: day(r.period), value: r.messages }));
  }
  const by = new Map(rows.map((r) => [r.period.getTime(), r.messages]));
  const out: { label: string; value: number }[] = [];
  for (
    let t = first.period.getTime();
    t <= last.period.getTime();
    t += 86_400_000
  ) {
    out.push({ label: day(new Date(t)), value: by.get(t) ?? 0 });
  }
  return out;
}

function heatmapChart(cells: readonly HeatmapCell[]): string {
  const cw = 26, ch = 22, left = 40, top = 20;
  const max = Math.max(1, ...cells.map((c) => c.messages));
  const by = new Map(cells.map((c) => [`${c.weekday}:${c.hour}`, c.messages]));
  const days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
  let out = "";
  for (let d = 1; d <= 7; d++) {
    out += `<text x="0" y="${top + (d - 1) * ch + 15}" class="tick">${
      days[d - 1]
    }</text>`;
    for (let hr = 0; hr < 24; hr++) {
      const v = by.get(`${d}:${hr}`) ?? 0;
      const a = v === 0 ? 0.04 : 0.15 + 0.85 * (v / max);
      out += `<rect class="cell" x="${left + hr * cw}" y="${
        top + (d - 1) * ch
      }" width="${cw - 2}" height="${ch - 2}" fill-opacity="${
        a.toFixed(3)
      }"><title>${days[d - 1]} ${hr}:00 UTC: ${v}</title></rect>`;
    }
  }
  for (let hr = 0; hr < 24; hr += 3) {
    out += `<text x="${left + hr * cw}" y="14" class="tick">${hr}h</text>`;
  }
  const w = left + 24 * cw, h = top + 7 * ch;
  return `<figure><figcaption>Messages by weekday and hour (UTC)</figcaption><svg id="chart-heatmap" class="chart" role="img" aria-label="heatmap" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}">${out}</svg></figure>`;
}

function quantileTable(caption: string, q: Quantiles, unit: string): string {
  const cells = ["count", "min", "p50", "p90", "p99", "max", "mean"] as const;
  return `<table><caption>${esc(caption)}</caption><tr>${
    cells.map((c) => `<th>${c}</th>`).join("")
  }</tr><tr>${
    cells.map((c) =>
      `<td>${fmt(q[c])}${c === "count" || q[c] === null ? "" : unit}</td>`
    ).join("")
  }</tr></table>`;
}

/**
 * Builds the report's HTML and summary from analysis results.
 *
 * @param data The results.
 * @returns `html` and `summary`.
 *
 * @example An empty report
 * ```ts
 * import { buildReport } from "./report.ts";
 * import assert from "node:assert/strict";
 *
 * const q = { count: 0, min: null, p50: null, p90: null, p99: null, max: null, mean: null };
 * const r = buildReport({
 *   title: "Empty", generatedAt: new Date(0), counts: { messages: 0 },
 *   daily: [], monthly: [], heatmap: [], lengths: q, latency: q, roles: [],
 *   streaks: { activeDays: 0, longest: null, latest: null },
 *   sessions: { gapMinutes: 30, durations: q, messages: q }, errors: [], terms: [],
 * });
 * assert.ok(r.html.startsWith("<!DOCTYPE html>"));
 * assert.match(r.summary, /0 messages/);
 * ```
 */
export function buildReport(data: ReportData): Report {
  const errorsByDay = new Map<string, number>();
  const byModule = new Map<string, { errors: number; total: number }>();
  for (const r of data.errors) {
    const k = day(r.period);
    const isErr = r.level === "error" || r.level === "fatal";
    errorsByDay.set(k, (errorsByDay.get(k) ?? 0) + (isErr ? r.count : 0));
    const m = byModule.get(r.module) ?? { errors: 0, total: 0 };
    m.errors += isErr ? r.count : 0;
    m.total += r.count;
    byModule.set(r.module, m);
  }
  const modules = [...byModule].sort((a, b) => b[1].errors - a[1].errors);
  const roleBars = data.roles.map((r) => ({
    label: `${r.role}${r.model ? ` · ${r.model}` : ""}`,
    value: r.messages,
  }));
  const s = data.streaks;
  const html = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(data.title)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:820px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
figure{margin:12px 0}figcaption{font-weight:600;margin-bottom:4px}
.bar{fill:#3b6fb6}.cell{fill:#c0392b}.axis{stroke:#999}.tick{font-size:11px;fill:#555}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
caption{text-align:left;font-weight:600;padding:4px 0}
.kpi{display:inline-block;margin-right:24px}.kpi b{font-size:20px;display:block}
</style></head><body>
<h1>${esc(data.title)}</h1>
<p>Generated ${esc(data.generatedAt.toISOString())} · all times UTC</p>
<section id="overview">${
    Object.entries(data.counts).map(([k, v]) =>
      `<span class="kpi"><b>${v}</b>${esc(k)}</span>`
    ).join("")
  }</section>
<h2>Activity</h2>
${
    barChart(
      "chart-activity",
      "Messages per day",
      fillDays(data.daily),
    )
  }
${
    barChart(
      "chart-monthly",
      "Messages per month",
      data.monthly.map((r) => ({
        label: day(r.period).slice(0, 7),
        value: r.messages,
      })),
    )
  }
${heatmapChart(data.heatmap)}
<p>Active days: ${s.activeDays}; longest streak: ${
    s.longest
      ? `${s.longest.days} days (${day(s.longest.start)} – ${
        day(s.longest.end)
      })`
      : "–"
  }; latest streak: ${s.latest ? `${s.latest.days} days` : "–"}.</p>
<h2>Conversations</h2>
${quantileTable("Messages per conversation", data.lengths, "")}
${quantileTable("Response latency (user → assistant)", data.latency, " s")}
${
    quantileTable(
      `Session duration (gap ${data.sessions.gapMinutes} min)`,
      data.sessions.durations,
      " s",
    )
  }
${barChart("chart-roles", "Messages by role and model", roleBars)}
<h2>Errors</h2>
${
    barChart(
      "chart-errors",
      "Error and fatal log records per day",
      [...errorsByDay].map(([label, value]) => ({ label, value })),
    )
  }
<table><caption>Error rate by module</caption><tr><th>module</th><th>errors</th><th>records</th><th>rate</th></tr>${
    modules.map(([m, v]) =>
      `<tr><td>${esc(m)}</td><td>${v.errors}</td><td>${v.total}</td><td>${
        (100 * v.errors / Math.max(1, v.total)).toFixed(1)
      }%</td></tr>`
    ).join("")
  }</table>
${
    data.terms.length
      ? `<h2>Top terms</h2><table><tr><th>term</th><th>count</th><th>messages</th></tr>${
        data.terms.map((t) =>
          `<tr><td>${
            esc(t.term)
          }</td><td>${t.count}</td><td>${t.messages}</td></tr>`
        ).join("")
      }</table>`
      : ""
  }
</body></html>
`;
  const busiest = [...data.daily].sort((a, b) => b.messages - a.messages)[0];
  const worst = modules[0];
  const summary = [
    `${data.title}`,
    `${data.counts.messages ?? 0} messages in ${
      data.counts.conversations ?? 0
    } conversations, ${data.daily.length} active days${
      busiest ? ` (busiest ${day(busiest.period)}: ${busiest.messages})` : ""
    }`,
    `Messages per conversation: median ${fmt(data.lengths.p50)}, p90 ${
      fmt(data.lengths.p90)
    }; response latency median ${fmt(data.latency.p50)} s`,
    `Longest streak ${
      s.longest?.days ?? 0
    } days; ${data.sessions.durations.count} sessions, median ${
      fmt(data.sessions.durations.p50)
    } s`,
    worst && worst[1].errors > 0
      ? `Most errors: ${worst[0]} (${worst[1].errors} of ${
        worst[1].total
      } records)`
      : "No error log records",
  ].join("\n") + "\n";
  return { html, summary };
}

/** Options of {@linkcode writeReport}. */
export interface WriteReportOptions {
  /** The data key (needed unless `plaintext`). @default {undefined} */
  readonly key?: ExportKey;
  /** Write plain HTML instead of a sealed export file. @default {false} */
  readonly plaintext?: boolean;
}

/**
 * Writes a report's HTML to a file: sealed (export file format, `html`)
 * unless `plaintext`. Needs `--allow-write` for the path.
 *
 * @param path The file (created or replaced, mode 0600).
 * @param report The report.
 * @param options Key or plaintext.
 * @returns When written.
 * @throws {AicoDataError} `INVALID_INPUT` without a key for a sealed report.
 *
 * @example Writing a sealed report
 * ```ts
 * import { buildReport, writeReport } from "./report.ts";
 * import { openSealedExport } from "./export.ts";
 * import { generateDataKey, importDataKey } from "../crypto/mod.ts";
 * import assert from "node:assert/strict";
 *
 * const key = await importDataKey(generateDataKey());
 * const report = { html: "<!DOCTYPE html><p>hi</p>", summary: "hi\n" };
 * const dir = await Deno.makeTempDir();
 * try {
 *   await writeReport(`${dir}/r.html.sealed`, report, { key });
 *   const opened = await openSealedExport(key, await Deno.readFile(`${dir}/r.html.sealed`));
 *   assert.equal(new TextDecoder().decode(opened.data), report.html);
 * } finally {
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
export async function writeReport(
  path: string,
  report: Report,
  options: WriteReportOptions = {},
): Promise<void> {
  const html = new TextEncoder().encode(report.html);
  let bytes: Uint8Array = html;
  if (options.plaintext !== true) {
    if (options.key === undefined) {
      throw new AicoDataError(
        "INVALID_INPUT",
        "Cannot write report: a sealed report needs the data key (or ask for plaintext)",
      );
    }
    bytes = await sealExport(options.key, "html", html);
  }
  await Deno.writeFile(path, bytes, { mode: 0o600 });
}
