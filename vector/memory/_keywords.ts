// Internal: the keyword analyzer. Indexed text and queries are folded (case,
// diacritics) and stemmed by our light English/German/Spanish stemmer
// (_stem.ts) in the text's guessed language; queries drop common function
// words, long stems become prefix terms, every term is quoted (no FTS5 syntax
// reaches the engine) and the terms are OR-ed, so that bm25 ranks by how many
// and how rare the matching words are.
import { guessLanguage, type Lang, stem } from "./_stem.ts";

const STOPWORDS: ReadonlySet<string> = new Set(
  (
    // English
    "a an the and or but if then so of to in on at by for with from about as into " +
    "is are was were be been being am do does did done have has had having " +
    "i me my mine we us our you your he him his she her it its they them their " +
    "this that these those there here what which who whom whose when where why how " +
    "not no yes can could would should will shall may might must just also very " +
    "all any some more most other such only own same than too again once up down out off over under " +
    "s t don didn doesn isn wasn aren weren won wouldn couldn shouldn ll ve re d m " +
    "hi hey hello thanks thank please ok okay oh well really like get got " +
    // German
    "der die das den dem des ein eine einen einem einer eines und oder aber wenn dann " +
    "ich du er sie es wir ihr mich mir dich dir uns euch sich mein meine dein deine sein seine " +
    "ist sind war waren bin bist sein habe hast hat haben hatte hatten wird werden wurde " +
    "nicht kein keine ja nein auch noch schon nur sehr so wie was wer wo wann warum " +
    "zu im am um auf aus bei mit nach von vor fur uber unter an in als dass ob " +
    // Spanish
    "el la los las un una unos unas y o pero si entonces de del al en con por para sin sobre " +
    "yo tu el ella nosotros vosotros ellos ellas me te se nos os le les lo mi mis su sus " +
    "es son era eran fue ser estar esta estan estoy he ha han hay tengo tiene tienen " +
    "no ni tambien ya muy mas menos que quien donde cuando como porque cual"
  ).split(" "),
);

/** Folds case and diacritics like the FTS5 tokenizer does. */
export function fold(word: string): string {
  return word.normalize("NFD").replace(/\p{M}+/gu, "").toLowerCase();
}

/** The content words of a text, folded, in order, without duplicates. */
export function contentWords(text: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const m of text.matchAll(/[\p{L}\p{N}]+/gu)) {
    const w = fold(m[0]);
    if (w.length < 2 && !/\d/.test(w)) continue;
    if (STOPWORDS.has(w) || seen.has(w)) continue;
    seen.add(w);
    out.push(w);
  }
  return out;
}

/** Most terms one keyword query keeps. */
const MAX_TERMS = 32;

/**
 * Stems at least this long become prefix terms (`"zahnarzt"*` also finds
 * `zahnarzttermin`: German compounds, English and Spanish derived words).
 */
const PREFIX_FROM = 5;

/** The version of the analyzer below; an index built by another is rebuilt. */
export const ANALYZER_VERSION = "stem-1";

/** The folded words of a text, in order (as the FTS5 tokenizer splits it). */
export function words(text: string): string[] {
  return [...text.matchAll(/[\p{L}\p{N}]+/gu)].map((m) => fold(m[0]));
}

/**
 * What enters the keyword index for a text in a language: its folded words,
 * stemmed, joined by spaces (the tokens FTS5 keeps; the text itself is not
 * stored).
 */
export function indexText(text: string, lang: Lang): string {
  return words(text).map((w) => stem(w, lang)).join(" ");
}

/** The language a message is indexed in: guessed from it and its neighbour, else English. */
export function indexLanguage(text: string, neighbour: string): Lang {
  return guessLanguage(words(`${text} ${neighbour}`)) ?? "en";
}

/**
 * The FTS5 MATCH expression for `text`, or `undefined` when it has no
 * content word. Each content word is stemmed in the query's language, or in
 * all three when the query shows none (a bare name or code).
 */
export function ftsQuery(text: string): string | undefined {
  const content = contentWords(text).slice(0, MAX_TERMS);
  if (content.length === 0) return undefined;
  const lang = guessLanguage(words(text));
  const langs: readonly Lang[] = lang ? [lang] : ["en", "de", "es"];
  const terms = new Set<string>();
  for (const w of content) {
    for (const l of langs) {
      const s = stem(w, l);
      terms.add(
        s.length >= PREFIX_FROM && !/\d/.test(s) ? `"${s}"*` : `"${s}"`,
      );
    }
  }
  return [...terms].join(" OR ");
}
