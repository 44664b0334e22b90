// The architecture checker behind tests/architecture_test.ts: reads the
// imports of every library file and reports each break of the layout rules
// of DESIGN.md. The rules are data (ARCHITECTURE_RULES): the lead adjusts
// folder ranks, SDK names and known exceptions there, not in the code.
import { join, relative, resolve, sep } from "node:path";

/** The layout rules the checker enforces. */
export interface ArchitectureRules {
  /**
   * The rank of each top-level folder (and of root files by name). A file
   * may import only from its own folder or from folders of a lower rank.
   * The root `mod.ts` (see `anyImports`) may import anything.
   */
  readonly ranks: Readonly<Record<string, number>>;
  /** Root files that may import from any folder (the package entry). */
  readonly anyImports: readonly string[];
  /** Folders whose `_` files every folder may import (shared internals). */
  readonly sharedInternals: readonly string[];
  /**
   * The native SDKs: each may be imported (other than `import type`) by
   * exactly one library file, lazily. A name ending in `/*` matches a scope.
   */
  readonly sdks: readonly string[];
  /** Paths (from the root) that are not library code. */
  readonly excluded: readonly string[];
  /**
   * Known exceptions, as `"from -> to"` repository paths, each with the
   * reason; the lead removes them when the code that needs them is gone.
   */
  readonly exceptions: Readonly<Record<string, string>>;
}

/** The rules of this repository. */
export const ARCHITECTURE_RULES: ArchitectureRules = {
  ranks: {
    "errors.ts": 0,
    "_internal": 1,
    "crypto": 2,
    "bus": 2,
    "storage": 3,
    "schema": 4,
    "changes": 5,
    "repositories": 6,
    "cache": 7,
    "vector": 7,
    "sync": 7,
    "analytics": 7,
    "importers": 7,
    "data_layer": 8,
    "cli": 9,
  },
  anyImports: ["mod.ts"],
  sharedInternals: ["_internal"],
  sdks: [
    "libsql",
    "@libsql/client",
    "lmdb",
    "chromadb",
    "@duckdb/duckdb-wasm",
    "@duckdb/node-api",
    "@energetic-ai/*",
    "@huggingface/transformers",
    "apache-arrow",
  ],
  excluded: ["tests", "bench", "testdata", "node_modules", "docs", ".ci"],
  exceptions: {},
};

/** One import found in a source file. */
export interface ImportRef {
  /** The specifier as written. */
  readonly specifier: string;
  /** `import type` / `export type`: erased, never loaded. */
  readonly typeOnly: boolean;
  /** `import("...")`. */
  readonly dynamic: boolean;
  /** For a dynamic import: whether it is inside a function body (not top level). */
  readonly inFunction: boolean;
}

/**
 * Blanks comments and reports the brace depth of each code position,
 * skipping strings, template literals and regular expression literals.
 */
function scan(
  source: string,
): { code: string; bare: string; depth: Int32Array } {
  const n = source.length;
  const out = source.split("");
  // Like `out`, with the contents of strings, templates and regexes blanked
  // too: a position that is not blank there is code.
  const bare = source.split("");
  const depth = new Int32Array(n + 1);
  let d = 0;
  // Stack of open template literals: the brace depth at their `${`.
  const templates: number[] = [];
  let lastSignificant = "";
  const regexMayStart = () =>
    lastSignificant === "" || "(,=:[!&|?{};+-*%<>~^".includes(lastSignificant);
  let i = 0;
  const blank = (from: number, to: number) => {
    for (let k = from; k < to; k++) {
      if (out[k] !== "\n") out[k] = " ";
      if (bare[k] !== "\n") bare[k] = " ";
    }
  };
  const blankBare = (from: number, to: number) => {
    for (let k = from; k < to; k++) if (bare[k] !== "\n") bare[k] = " ";
  };
  const readString = (quote: string) => {
    let j = i + 1;
    while (j < n && source[j] !== quote && source[j] !== "\n") {
      if (source[j] === "\\") j++;
      j++;
    }
    i = j + 1;
  };
  const readTemplate = () => {
    // From just after "`" or "}" of a `${...}`, up to the closing "`" or "${".
    let j = i;
    while (j < n) {
      if (source[j] === "\\") {
        j += 2;
        continue;
      }
      if (source[j] === "`") {
        i = j + 1;
        return;
      }
      if (source[j] === "$" && source[j + 1] === "{") {
        templates.push(d);
        d++;
        i = j + 2;
        return;
      }
      j++;
    }
    i = n;
  };
  while (i < n) {
    depth[i] = d;
    const c = source[i]!;
    const next = source[i + 1];
    if (c === "/" && next === "/") {
      const eol = source.indexOf("\n", i);
      const end = eol < 0 ? n : eol;
      blank(i, end);
      i = end;
      continue;
    }
    if (c === "/" && next === "*") {
      const close = source.indexOf("*/", i + 2);
      const end = close < 0 ? n : close + 2;
      blank(i, end);
      i = end;
      continue;
    }
    if (c === "'" || c === '"') {
      const start = i;
      readString(c);
      for (let k = start; k < i; k++) depth[k] = d;
      blankBare(start + 1, i - 1);
      lastSignificant = "a";
      continue;
    }
    if (c === "`") {
      const start = i;
      i++;
      readTemplate();
      blankBare(start, i);
      lastSignificant = "a";
      continue;
    }
    if (c === "/" && regexMayStart()) {
      let j = i + 1;
      let inClass = false;
      while (j < n && source[j] !== "\n") {
        const r = source[j]!;
        if (r === "\\") {
          j += 2;
          continue;
        }
        if (r === "[") inClass = true;
        else if (r === "]") inClass = false;
        else if (r === "/" && !inClass) break;
        j++;
      }
      blankBare(i, j + 1);
      i = j + 1;
      lastSignificant = "a";
      continue;
    }
    if (c === "{") d++;
    else if (c === "}") {
      if (templates.length > 0 && templates[templates.length - 1] === d - 1) {
        templates.pop();
        d--;
        const start = i;
        i++;
        readTemplate();
        blankBare(start, i);
        lastSignificant = "a";
        continue;
      }
      d--;
    }
    if (!/\s/.test(c)) {
      lastSignificant = /[A-Za-z0-9_$)\]]/.test(c) ? "a" : c;
      // `return /re/` and the like: a keyword before a regex.
      if (/[A-Za-z]/.test(c)) {
        let j = i;
        while (j < n && /[A-Za-z0-9_$]/.test(source[j]!)) j++;
        const word = source.slice(i, j);
        lastSignificant = ["return", "typeof", "case", "in", "of"].includes(
            word,
          )
          ? "("
          : "a";
        for (let k = i; k < j; k++) depth[k] = d;
        i = j;
        continue;
      }
    }
    i++;
  }
  depth[n] = d;
  return { code: out.join(""), bare: bare.join(""), depth };
}

const STATIC_RE =
  /(?:^|[;\n}])\s*(import|export)\s+(type\s+)?(?:[\w$*{}\s,]*?\s*from\s*)?["']([^"'\n]+)["']/g;
const DYNAMIC_RE = /\bimport\s*\(\s*["']([^"'\n]+)["']\s*\)/g;

/**
 * The imports of one TypeScript source: static (`import`, `export ... from`,
 * with `type` marked), and dynamic `import("...")` with a literal specifier.
 * Comments (including JSDoc examples) are ignored.
 */
export function readImports(source: string): ImportRef[] {
  const { code, bare, depth } = scan(source);
  const refs: ImportRef[] = [];
  for (const m of code.matchAll(STATIC_RE)) {
    const at = m.index! + m[0].indexOf(m[1]!);
    if (depth[at] !== 0 || bare[at] !== code[at]) continue;
    refs.push({
      specifier: m[3]!,
      typeOnly: m[2] !== undefined,
      dynamic: false,
      inFunction: false,
    });
  }
  for (const m of code.matchAll(DYNAMIC_RE)) {
    if (bare[m.index!] !== code[m.index!]) continue;
    refs.push({
      specifier: m[1]!,
      typeOnly: false,
      dynamic: true,
      inFunction: depth[m.index!]! > 0,
    });
  }
  return refs;
}

/** The SDK an import specifier names, if it is one of `sdks`. */
function sdkOf(specifier: string, sdks: readonly string[]): string | undefined {
  const bare = specifier.replace(/^npm:/, "");
  for (const sdk of sdks) {
    if (sdk.endsWith("/*")) {
      if (bare.startsWith(sdk.slice(0, -1))) return sdk;
    } else if (
      bare === sdk || bare.startsWith(`${sdk}/`) || bare.startsWith(`${sdk}@`)
    ) {
      return sdk;
    }
  }
  return undefined;
}

async function libraryFiles(
  root: string,
  rules: ArchitectureRules,
): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      const rel = relative(root, path).split(sep).join("/");
      if (entry.name.startsWith(".")) continue;
      if (rules.excluded.includes(rel)) continue;
      if (entry.isDirectory) await walk(path);
      else if (
        entry.isFile && entry.name.endsWith(".ts") &&
        !entry.name.endsWith("_test.ts") && !entry.name.endsWith(".d.ts")
      ) out.push(rel);
    }
  };
  await walk(root);
  return out.sort();
}

/** The top-level folder of a repository path, or the file name at the root. */
function unitOf(rel: string): string {
  const slash = rel.indexOf("/");
  return slash < 0 ? rel : rel.slice(0, slash);
}

/**
 * Checks the tree at `root` against `rules`.
 *
 * @returns One message per violation (empty when the tree is clean).
 */
export async function checkArchitecture(
  root: string,
  rules: ArchitectureRules = ARCHITECTURE_RULES,
): Promise<string[]> {
  root = resolve(root);
  const files = await libraryFiles(root, rules);
  const problems: string[] = [];
  const sdkUsers = new Map<string, { file: string; ref: ImportRef }[]>();
  /** For each library file, how the other library files import it. */
  const importedBy = new Map<string, { from: string; dynamic: boolean }[]>();
  const refsOf = new Map<string, ImportRef[]>();
  for (const file of files) {
    const refs = readImports(await Deno.readTextFile(join(root, file)));
    refsOf.set(file, refs);
    for (const ref of refs) {
      if (ref.specifier.startsWith(".")) {
        const target = relative(
          root,
          resolve(root, file, "..", ref.specifier),
        ).split(sep).join("/");
        if (!ref.typeOnly) {
          const list = importedBy.get(target) ?? [];
          list.push({ from: file, dynamic: ref.dynamic });
          importedBy.set(target, list);
        }
        checkEdge(file, target, rules, problems);
        continue;
      }
      const sdk = sdkOf(ref.specifier, rules.sdks);
      if (sdk !== undefined && !ref.typeOnly) {
        const list = sdkUsers.get(sdk) ?? [];
        list.push({ file, ref });
        sdkUsers.set(sdk, list);
      }
    }
  }
  for (const [sdk, users] of sdkUsers) {
    const names = [...new Set(users.map((u) => u.file))];
    if (names.length > 1) {
      problems.push(
        `SDK "${sdk}" is imported by ${names.length} files (${
          names.join(", ")
        }): only one adapter file may import it`,
      );
    }
    for (const { file, ref } of users) {
      if (ref.dynamic && ref.inFunction) continue;
      if (ref.dynamic) {
        problems.push(
          `${file}: SDK "${sdk}" is imported at the top level: import it inside the function that opens it`,
        );
        continue;
      }
      // A static import is lazy only when the adapter file itself is loaded
      // lazily: every library file that imports it uses import(), or is
      // itself loaded lazily (a private helper of a lazily loaded adapter).
      const importers = importedBy.get(file) ?? [];
      const eager = importers.filter((i) =>
        !i.dynamic && !loadedLazily(i.from, importedBy, new Set([file]))
      ).map((i) => i.from);
      if (eager.length > 0 || importers.length === 0) {
        problems.push(
          `${file}: SDK "${sdk}" is imported eagerly (${
            eager.length > 0
              ? `the file is imported statically by ${eager.join(", ")}`
              : "a static import in a file nothing loads lazily"
          }): use import() inside the function that opens it`,
        );
      }
    }
  }
  return problems;
}

/** Whether every path by which library code loads `file` passes an import(). */
function loadedLazily(
  file: string,
  importedBy: ReadonlyMap<
    string,
    readonly { from: string; dynamic: boolean }[]
  >,
  seen: Set<string>,
): boolean {
  if (seen.has(file)) return true;
  seen.add(file);
  const importers = importedBy.get(file) ?? [];
  if (importers.length === 0) return false;
  return importers.every((i) =>
    i.dynamic || loadedLazily(i.from, importedBy, seen)
  );
}

function checkEdge(
  from: string,
  to: string,
  rules: ArchitectureRules,
  problems: string[],
): void {
  const a = unitOf(from);
  const b = unitOf(to);
  if (a === b) return;
  const exception = rules.exceptions[`${from} -> ${to}`];
  if (exception !== undefined) return;
  const base = to.split("/").pop()!;
  if (base.startsWith("_") && !rules.sharedInternals.includes(b)) {
    problems.push(
      `${from} imports ${to}: a private "_" file of another folder (move what it needs to _internal/ or export it)`,
    );
    return;
  }
  if (rules.anyImports.includes(from)) return;
  const ra = rules.ranks[a];
  const rb = rules.ranks[b];
  if (ra === undefined) {
    problems.push(
      `${from}: folder "${a}" has no rank in ARCHITECTURE_RULES.ranks`,
    );
    return;
  }
  if (rb === undefined) {
    problems.push(
      `${from} imports ${to}: "${b}" has no rank in ARCHITECTURE_RULES.ranks`,
    );
    return;
  }
  if (rb >= ra) {
    problems.push(
      `${from} imports ${to}: "${a}" (rank ${ra}) may import only from folders of a lower rank, "${b}" has rank ${rb}`,
    );
  }
}
