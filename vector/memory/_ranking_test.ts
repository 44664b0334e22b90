import assert from "node:assert/strict";
import { fuseRanks, recencyFactor, selectMmr } from "./_fusion.ts";
import {
  contentWords,
  fold,
  ftsQuery,
  indexLanguage,
  indexText,
} from "./_keywords.ts";
import { guessLanguage, stem } from "./_stem.ts";
import { compileFilter } from "./_filter_sql.ts";

Deno.test("fuseRanks() adds weight / (k + rank) over the lists", () => {
  const s = fuseRanks(
    [{ ids: [1, 2], weight: 1 }, { ids: [2, 3], weight: 2 }],
    10,
  );
  assert.equal(s.get(1), 1 / 11);
  assert.equal(s.get(2), 1 / 12 + 2 / 11);
  assert.equal(s.get(3), 2 / 12);
});

Deno.test("recencyFactor() halves the recency share every half-life", () => {
  assert.equal(recencyFactor(0, 10, 0.4), 1);
  assert.equal(recencyFactor(10, 10, 0.4), 0.8);
  assert.equal(recencyFactor(-5, 10, 0.4), 1);
  assert.equal(recencyFactor(10, 10, 0), 1);
});

Deno.test("selectMmr() skips a near duplicate of what it picked", () => {
  const a = Float32Array.of(1, 0),
    a2 = Float32Array.of(0.99, 0.01),
    b = Float32Array.of(0, 1);
  assert.deepEqual(selectMmr([1, 0.95, 0.5], [a, a2, b], 2, 0.5), [0, 2]);
  assert.deepEqual(selectMmr([1, 0.95, 0.5], [a, a2, b], 2, 1), [0, 1]);
});

Deno.test("keyword queries fold accents and case, drop function words, quote every term", () => {
  assert.equal(fold("Zahnärztin"), "zahnarztin");
  assert.deepEqual(contentWords("Wann muss ich zum Zahnarzt? Zahnarzt!"), [
    "muss",
    "zum",
    "zahnarzt",
  ]);
  // English: stemmed, long stems become prefix terms.
  assert.equal(ftsQuery("the Restaurants"), '"restaurant"*');
  assert.equal(ftsQuery("INV-2291"), '"inv" OR "2291"');
  assert.equal(
    ftsQuery('" OR * NEAR('),
    '"near"',
    "operators become quoted words",
  );
  assert.equal(ftsQuery("the and of"), undefined);
  // No language shown: the stems of all three languages.
  assert.equal(ftsQuery("niño café"), '"nino" OR "nin" OR "caf"');
  // German and Spanish queries are stemmed in their language.
  assert.equal(
    ftsQuery("Wann muss ich zum Zahnarzt?"),
    '"mus" OR "zum" OR "zahnarzt"*',
  );
  assert.equal(
    ftsQuery("la perrita llora de noche"),
    '"perrit"* OR "llor" OR "noch"',
  );
});

Deno.test("compileFilter() turns filters into bound SQL over the item table", () => {
  const cases: [unknown, string, unknown[]][] = [
    [{ role: "user" }, "i.role = ?", ["user"]],
    [{ createdAt: { $gte: 5 } }, "i.created_at >= ?", [5]],
    [{ conversationId: { $in: ["a", "b"] } }, "i.conversation_id IN (?, ?)", [
      "a",
      "b",
    ]],
    [{ messageId: { $nin: [1] } }, "i.message_id NOT IN (?)", [1]],
    [
      { role: "user", createdAt: { $lt: 9 } },
      "(i.role = ? AND i.created_at < ?)",
      ["user", 9],
    ],
    [
      { $or: [{ role: "user" }, { role: { $ne: "tool" } }] },
      "(i.role = ? OR i.role <> ?)",
      ["user", "tool"],
    ],
  ];
  for (const [filter, sql, args] of cases) {
    assert.deepEqual(compileFilter(filter), { sql, args });
  }
});

Deno.test("the stemmer maps inflected forms of en/de/es words to one stem", () => {
  const same = (lang: "en" | "de" | "es", ...ws: string[]) => {
    const stems = new Set(ws.map((w) => stem(w, lang)));
    assert.equal(stems.size, 1, `${lang}: ${ws.join(", ")} -> ${[...stems]}`);
  };
  same("en", "running", "run", "runs");
  same("en", "stopped", "stopping", "stop");
  same("en", "parties", "party");
  same("en", "appointments", "appointment");
  same("de", "kinder", "kindern", "kind");
  same("de", "wohnung", "wohnungen");
  same("de", "geburtstag", "geburtstage", "geburtstagen");
  same("es", "perrita", "perrito", "perritos");
  same("es", "ninos", "nina", "nino");
  same("es", "trabajando", "trabajar", "trabajo");
  // Short words and words with digits stay whole.
  assert.equal(stem("bus", "en"), "bus");
  assert.equal(stem("lh470s", "en"), "lh470s");
  // Languages are told apart by their function words.
  assert.equal(guessLanguage(["wo", "ist", "der", "bahnhof"]), "de");
  assert.equal(guessLanguage(["donde", "esta", "la", "estacion"]), "es");
  assert.equal(guessLanguage(["where", "is", "the", "station"]), "en");
  assert.equal(guessLanguage(["okafor"]), undefined);
  assert.equal(indexLanguage("Okay", "Wo ist der Bahnhof?"), "de");
  assert.equal(indexText("Die Kinder spielen", "de"), "die kind spiel");
});
