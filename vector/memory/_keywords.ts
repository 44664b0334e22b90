// Internal: turns free text into an FTS5 query. Words are folded (case,
// diacritics), common function words of English, German and Spanish are
// dropped, long words become prefix terms (a cheap stemmer for all three
// languages: "restaurants" -> "restauran"*, "Zahnarzttermin" -> "zahnarzttermi"*),
// every term is quoted (no FTS5 syntax reaches the engine) and the terms are
// OR-ed, so that bm25 ranks by how many and how rare the matching words are.

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

/** Words shorter than this are kept whole; longer ones become prefixes. */
const STEM_FROM = 6;

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

/** The FTS5 MATCH expression for `text`, or `undefined` when it has no content word. */
export function ftsQuery(text: string): string | undefined {
  const words = contentWords(text).slice(0, MAX_TERMS);
  if (words.length === 0) return undefined;
  return words.map((w) => {
    if (w.length >= STEM_FROM && !/\d/.test(w)) {
      const stem = w.slice(0, Math.max(STEM_FROM - 1, w.length - 2));
      return `"${stem}"*`;
    }
    return `"${w}"`;
  }).join(" OR ");
}
