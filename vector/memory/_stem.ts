// Internal: a light stemmer for English, German and Spanish, and a guess of
// a text's language from its function words. Written for the keyword index:
// both the indexed text and the query go through the same function, so a
// stem only has to be consistent, not a dictionary word. Words are folded
// first (lower case, no diacritics: "Häuser" -> "hauser", "niños" -> "ninos").

/** The languages the stemmer knows. */
export type Lang = "en" | "de" | "es";

const WORDS: Record<Lang, ReadonlySet<string>> = {
  en: new Set(
    ("the a an and or but is are was were be been have has had do does did " +
      "i you he she it we they my your our their this that these those what which " +
      "who when where why how not of to in on at for with from about can could " +
      "would should will just so if then than there here me him her them")
      .split(" "),
  ),
  de: new Set(
    ("der die das den dem des ein eine einen einem einer und oder aber ist sind " +
      "war waren bin bist hat habe haben hatte ich du er sie es wir ihr mein meine " +
      "dein nicht kein keine auch noch schon nur wie was wer wo wann warum zu im am " +
      "um auf aus bei mit nach von vor fur uber unter als dass ob sich mich mir dich " +
      "dir uns euch immer wieder jetzt morgen heute gestern wird werden muss kann")
      .split(" "),
  ),
  es: new Set(
    ("el la los las un una unos unas y o pero es son era fue ser estar esta estan " +
      "estoy de del al en con por para sin sobre que quien donde cuando como porque " +
      "yo tu ella nosotros ellos me te se nos le les lo mi mis su sus muy mas hay " +
      "tengo tiene no ya tambien hoy manana ayer puedo quiere")
      .split(" "),
  ),
};

/**
 * The language of a text by its function words (folded words in), or
 * `undefined` when no language has at least one more of them than the others.
 */
export function guessLanguage(words: readonly string[]): Lang | undefined {
  const n: Record<Lang, number> = { en: 0, de: 0, es: 0 };
  for (const w of words) {
    for (const l of ["en", "de", "es"] as const) if (WORDS[l].has(w)) n[l]++;
  }
  const ranked = (["en", "de", "es"] as const).slice().sort((a, b) =>
    n[b] - n[a]
  );
  const [first, second] = ranked;
  return n[first!] > n[second!] ? first : undefined;
}

/** Suffix rules: [suffix, replacement], longest first; a stem keeps >= MIN letters. */
type Rules = readonly (readonly [string, string])[];

const MIN = 3;

const EN: Rules = [
  ["ational", "ate"],
  ["fulness", "ful"],
  ["iveness", "ive"],
  ["ization", "ize"],
  ["ations", "ate"],
  ["ation", "ate"],
  ["ments", ""],
  ["ment", ""],
  ["ness", ""],
  ["ings", ""],
  ["ing", ""],
  ["ies", "y"],
  ["ied", "y"],
  ["ily", "y"],
  ["edly", ""],
  ["ed", ""],
  ["ly", ""],
  ["es", ""],
  ["er", ""],
  ["s", ""],
  ["e", ""],
];

const DE: Rules = [
  ["ungen", "ung"],
  ["heiten", "heit"],
  ["keiten", "keit"],
  ["innen", "in"],
  ["ern", ""],
  ["em", ""],
  ["en", ""],
  ["er", ""],
  ["es", ""],
  ["st", ""],
  ["e", ""],
  ["n", ""],
  ["s", ""],
];

const ES: Rules = [
  ["amientos", ""],
  ["imientos", ""],
  ["amiento", ""],
  ["imiento", ""],
  ["aciones", "a"],
  ["acion", "a"],
  ["mente", ""],
  ["iendo", ""],
  ["ando", ""],
  ["adas", ""],
  ["idas", ""],
  ["ados", ""],
  ["idos", ""],
  ["ada", ""],
  ["ida", ""],
  ["ado", ""],
  ["ido", ""],
  ["aba", ""],
  ["ces", "z"],
  ["ar", ""],
  ["er", ""],
  ["ir", ""],
  ["as", ""],
  ["es", ""],
  ["os", ""],
  ["a", ""],
  ["o", ""],
  ["e", ""],
  ["s", ""],
];

const RULES: Record<Lang, Rules> = { en: EN, de: DE, es: ES };

const VOWEL = /[aeiouy]/;

/**
 * The stem of a folded word in a language: the longest matching suffix
 * rule is applied once, if what is left has at least three letters and a
 * vowel. Words with digits, and words shorter than four letters, stay
 * whole.
 */
export function stem(word: string, lang: Lang): string {
  if (word.length < 4 || /\d/.test(word)) return word;
  for (const [suffix, repl] of RULES[lang]) {
    if (!word.endsWith(suffix)) continue;
    const base = word.slice(0, word.length - suffix.length);
    if (base.length < MIN || !VOWEL.test(base)) continue;
    let out = base + repl;
    // English: running -> runn -> run, stopped -> stopp -> stop.
    if (
      lang === "en" && repl === "" && /(ing|ed|er)$/.test(suffix) &&
      /([bdfgmnprt])\1$/.test(out)
    ) {
      out = out.slice(0, -1);
    }
    return out;
  }
  return word;
}
