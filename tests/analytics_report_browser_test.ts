// End to end: the analytics report opened in headless Chromium renders its
// charts with no network request. Saves a screenshot to
// .test-artifacts/analytics_report.png.
import assert from "node:assert/strict";
import { openTestStore } from "../repositories/_doc_helpers.ts";
import {
  openAnalytics,
  openSealedExport,
  writeReport,
} from "../analytics/mod.ts";
import { seed } from "./_analytics_fixture.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();
if (!hasChromium) {
  // deno-lint-ignore no-console
  console.log(
    `ignored: ${CHROMIUM} missing (Debian package "chromium", installed by .ci/run)`,
  );
}

Deno.test({
  name:
    "the HTML report renders its charts in headless Chromium without any network request",
  ignore: !hasChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using store = await openTestStore();
    await seed(store.storage, { model: true });
    await using a = await openAnalytics(store.storage, { key: store.key });
    const report = await a.report({ title: "Test report", terms: 10 });
    assert.match(report.summary, /messages in \d+ conversations/);

    const dir = await Deno.makeTempDir({ prefix: "aico_report_" });
    const profile = await Deno.makeTempDir({ prefix: "aico_chromium_" });
    const { default: puppeteer } = await import("puppeteer-core");
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      userDataDir: profile,
      args: [
        "--no-sandbox",
        "--headless=new",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    });
    try {
      // sealed on disk by default; plaintext only when asked
      await writeReport(`${dir}/report.sealed`, report, { key: store.key });
      const sealed = await Deno.readFile(`${dir}/report.sealed`);
      assert.ok(!new TextDecoder().decode(sealed).includes("<svg"));
      assert.equal(
        new TextDecoder().decode(
          (await openSealedExport(store.key, sealed)).data,
        ),
        report.html,
      );
      const path = `${dir}/report.html`;
      await writeReport(path, report, { plaintext: true });

      const page = await browser.newPage();
      await page.setRequestInterception(true);
      const requests: string[] = [];
      page.on("request", (req) => {
        requests.push(req.url());
        if (req.url() === `file://${path}`) req.continue();
        else req.abort();
      });
      await page.setViewport({ width: 900, height: 1400 });
      await page.goto(`file://${path}`, { waitUntil: "load" });
      const charts = await page.$$eval("svg.chart", (els) =>
        els.map((el) => {
          const r = el.getBoundingClientRect();
          const marks = [...el.querySelectorAll("rect")].map((m) =>
            m.getBoundingClientRect()
          );
          return {
            id: el.id,
            width: r.width,
            height: r.height,
            marks: marks.length,
            drawn: marks.filter((m) => m.width > 0 && m.height > 0).length,
          };
        }));
      assert.deepEqual(charts.map((c) => c.id).sort(), [
        "chart-activity",
        "chart-errors",
        "chart-heatmap",
        "chart-monthly",
        "chart-roles",
      ]);
      for (const c of charts) {
        assert.ok(c.width > 100 && c.height > 50, `${c.id} has no size`);
        assert.ok(
          c.marks > 0 && c.drawn === c.marks,
          `${c.id} marks not drawn`,
        );
      }
      const heat = charts.find((c) => c.id === "chart-heatmap")!;
      assert.equal(heat.marks, 7 * 24);
      assert.deepEqual(requests, [`file://${path}`]);
      await Deno.mkdir(".test-artifacts", { recursive: true });
      await page.screenshot({
        path: ".test-artifacts/analytics_report.png",
        fullPage: true,
      });
    } finally {
      await browser.close();
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(profile, { recursive: true });
    }
  },
});
