/**
 * A sync target on a WebDAV server (Nextcloud, ownCloud, Apache mod_dav,
 * `rclone serve webdav`), through `fetch`.
 *
 * @module
 */
import { requirePermission } from "../_internal/permissions.ts";
import { AicoDataError } from "../errors.ts";
import {
  checkBytes,
  checkName,
  checkPrefix,
  closedError,
} from "./_target_common.ts";
import { SYNC_OBJECT_NAME, type SyncTarget } from "./types.ts";

/** MOVEs refused with 423 (locked by a concurrent writer) before giving up. */
const MOVE_LOCKED_ATTEMPTS = 40;

/** Options of {@linkcode openWebDavTarget}. */
export interface WebDavTargetOptions {
  /** The collection that holds the objects, `http:` or `https:` (created on first write). */
  readonly url: string;
  /**
   * User name for HTTP Basic authentication.
   *
   * @default {undefined} (no authentication)
   */
  readonly username?: string;
  /**
   * Password (or app password) for HTTP Basic authentication.
   *
   * @default {undefined}
   */
  readonly password?: string;
  /**
   * Aborts every request in flight and later.
   *
   * @default {undefined}
   */
  readonly signal?: AbortSignal;
}

/** Options after {@linkcode resolveWebDavTargetOptions}. */
export interface ResolvedWebDavTargetOptions {
  /** The collection URL, ending with `/`, without credentials. */
  readonly url: URL;
  /** The `Authorization` header value, if any. */
  readonly authorization: string | undefined;
  /** The abort signal, if any. */
  readonly signal: AbortSignal | undefined;
}

/**
 * Normalises {@linkcode WebDavTargetOptions} (pure).
 *
 * @param options The options.
 * @returns The resolved options.
 * @throws {AicoDataError} `INVALID_INPUT` for a malformed URL or one with
 * credentials in it.
 *
 * @example A trailing slash is added
 * ```ts
 * import { resolveWebDavTargetOptions } from "./webdav_target.ts";
 * import assert from "node:assert/strict";
 *
 * const o = resolveWebDavTargetOptions({ url: "http://127.0.0.1:8080/dav/aico" });
 * assert.equal(o.url.href, "http://127.0.0.1:8080/dav/aico/");
 * assert.equal(o.authorization, undefined);
 * assert.throws(() => resolveWebDavTargetOptions({ url: "ftp://x" }), { code: "INVALID_INPUT" });
 * ```
 */
export function resolveWebDavTargetOptions(
  options: WebDavTargetOptions,
): ResolvedWebDavTargetOptions {
  let url: URL;
  try {
    url = new URL(options?.url);
  } catch (cause) {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot open WebDAV target: malformed URL",
      { cause },
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new AicoDataError(
      "INVALID_INPUT",
      `Cannot open WebDAV target: unsupported protocol "${url.protocol}"`,
    );
  }
  if (url.username !== "" || url.password !== "") {
    throw new AicoDataError(
      "INVALID_INPUT",
      "Cannot open WebDAV target: pass credentials as options, not in the URL",
    );
  }
  url.search = "";
  url.hash = "";
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  let authorization: string | undefined;
  if (options.username !== undefined || options.password !== undefined) {
    const pair = `${options.username ?? ""}:${options.password ?? ""}`;
    const bytes = new TextEncoder().encode(pair);
    authorization = `Basic ${btoa(String.fromCharCode(...bytes))}`;
  }
  return Object.freeze({ url, authorization, signal: options.signal });
}

function bodyError(action: string, cause: unknown): AicoDataError {
  return new AicoDataError(
    "CONNECTION_FAILED",
    `Cannot ${action}: the response was cut off`,
    { cause },
  );
}

const HREF = /<(?:[A-Za-z][\w.-]*:)?href>([^<]*)<\/(?:[A-Za-z][\w.-]*:)?href>/g;

class WebDavTarget implements SyncTarget {
  readonly id: string;
  #o: ResolvedWebDavTargetOptions;
  #closed = false;
  #ensured = false;

  constructor(o: ResolvedWebDavTargetOptions) {
    this.#o = o;
    this.id = o.url.href;
  }

  get closed(): boolean {
    return this.#closed;
  }

  #guard(action: string): void {
    if (this.#closed) throw closedError(action);
  }

  async #request(
    action: string,
    method: string,
    url: URL,
    headers: Record<string, string> = {},
    body?: Uint8Array | string,
  ): Promise<Response> {
    requirePermission(
      { name: "net", host: url.host },
      `--allow-net=${url.host}`,
      action,
    );
    const h = new Headers(headers);
    if (this.#o.authorization !== undefined) {
      h.set("Authorization", this.#o.authorization);
    }
    try {
      return await fetch(url, {
        method,
        headers: h,
        ...(body === undefined ? {} : { body: body as BodyInit }),
        ...(this.#o.signal === undefined ? {} : { signal: this.#o.signal }),
        redirect: "error",
      });
    } catch (cause) {
      if (cause instanceof Deno.errors.NotCapable) {
        throw new AicoDataError(
          "PERMISSION_DENIED",
          `Cannot ${action}: missing Deno permission, run with --allow-net=${url.host}`,
          { cause },
        );
      }
      throw new AicoDataError(
        "CONNECTION_FAILED",
        `Cannot ${action}: the WebDAV server "${url.host}" is unreachable`,
        { cause },
      );
    }
  }

  async #fail(action: string, res: Response): Promise<never> {
    await res.body?.cancel();
    throw new AicoDataError(
      res.status === 401 || res.status === 403
        ? "WRONG_KEY"
        : "CONNECTION_FAILED",
      `Cannot ${action}: the WebDAV server answered "${res.status}"`,
    );
  }

  #at(name: string): URL {
    return new URL(encodeURIComponent(name), this.#o.url);
  }

  #ensuring: Promise<void> | undefined;

  /** Creates the collection once, however many writes start together. */
  async #ensureCollection(): Promise<void> {
    if (this.#ensured) return;
    this.#ensuring ??= this.#mkcol(this.#o.url, 0).then(
      () => {
        this.#ensured = true;
      },
      (err) => {
        this.#ensuring = undefined;
        throw err;
      },
    );
    await this.#ensuring;
  }

  /**
   * MKCOL of the collection; when its parent is missing (409, or 404 as
   * rclone answers), the parent first. A PUT into a missing collection fails,
   * so the collection must exist before the first write.
   */
  async #mkcol(url: URL, depth: number): Promise<void> {
    const res = await this.#request("create WebDAV collection", "MKCOL", url);
    await res.body?.cancel();
    // 201 created; 405 when it exists (rclone answers 201 again); 423 while
    // another client is creating it at the same moment.
    if ([200, 201, 204, 405, 423].includes(res.status)) return;
    const parent = new URL("../", url);
    if (
      (res.status === 409 || res.status === 404) && depth < 16 &&
      parent.pathname !== url.pathname && parent.pathname !== "/"
    ) {
      await this.#mkcol(parent, depth + 1);
      return await this.#mkcol(url, depth + 1);
    }
    await this.#fail("create WebDAV collection", res);
  }

  async list(prefix = ""): Promise<string[]> {
    this.#guard("list objects");
    checkPrefix(prefix);
    const res = await this.#request(
      "list objects",
      "PROPFIND",
      this.#o.url,
      { Depth: "1", "Content-Type": "application/xml; charset=utf-8" },
      '<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/></d:prop></d:propfind>',
    );
    if (res.status === 404) {
      await res.body?.cancel();
      return [];
    }
    if (res.status !== 207) await this.#fail("list objects", res);
    let xml: string;
    try {
      xml = await res.text();
    } catch (cause) {
      throw bodyError("list objects", cause);
    }
    const out = new Set<string>();
    for (const m of xml.matchAll(HREF)) {
      let href = m[1]!.replaceAll("&amp;", "&");
      try {
        href = decodeURIComponent(new URL(href, this.#o.url).pathname);
      } catch {
        continue;
      }
      if (href.endsWith("/")) continue; // the collection itself, sub-collections
      const name = href.slice(href.lastIndexOf("/") + 1);
      if (SYNC_OBJECT_NAME.test(name) && name.startsWith(prefix)) out.add(name);
    }
    return [...out].sort();
  }

  async read(name: string): Promise<Uint8Array> {
    this.#guard("read object");
    checkName(name, "read object");
    const res = await this.#request("read object", "GET", this.#at(name));
    if (res.status === 404) {
      await res.body?.cancel();
      throw new AicoDataError(
        "NOT_FOUND",
        `Cannot read object "${name}": not found`,
      );
    }
    if (res.status !== 200) await this.#fail("read object", res);
    try {
      return new Uint8Array(await res.arrayBuffer());
    } catch (cause) {
      throw bodyError("read object", cause);
    }
  }

  async writeIfAbsent(name: string, bytes: Uint8Array): Promise<boolean> {
    this.#guard("write object");
    checkName(name, "write object");
    checkBytes(bytes, "write object");
    await this.#ensureCollection();
    // PUT to a temporary name, then MOVE with "Overwrite: F": the server
    // refuses (412) to replace an existing object, and readers never see a
    // partial one. (rclone 1.60 ignores "If-None-Match: *" on PUT.)
    const tmp = this.#at(`.tmp-${crypto.randomUUID()}`);
    const put = await this.#request(
      "write object",
      "PUT",
      tmp,
      { "If-None-Match": "*", "Content-Type": "application/octet-stream" },
      bytes,
    );
    await put.body?.cancel();
    if (![200, 201, 204].includes(put.status)) {
      await this.#fail("write object", put);
    }
    let moved = false;
    try {
      // 423: a concurrent writer's MOVE holds the lock on the name (the
      // server locks source and destination); retry until it is done, then
      // the name exists (412) or is free.
      for (let attempt = 1;; attempt++) {
        const move = await this.#request(
          "write object",
          "MOVE",
          tmp,
          { Destination: this.#at(name).href, Overwrite: "F" },
        );
        await move.body?.cancel();
        if (move.status === 201 || move.status === 204) {
          moved = true;
          return true;
        }
        if (move.status === 412) return false;
        if (move.status !== 423 || attempt >= MOVE_LOCKED_ATTEMPTS) {
          return await this.#fail("write object", move);
        }
        await new Promise((r) => setTimeout(r, 10 * attempt));
      }
    } finally {
      if (!moved) {
        const del = await this.#request("write object", "DELETE", tmp).catch(
          () => undefined,
        );
        await del?.body?.cancel();
      }
    }
  }

  async delete(name: string): Promise<boolean> {
    this.#guard("delete object");
    checkName(name, "delete object");
    const res = await this.#request("delete object", "DELETE", this.#at(name));
    await res.body?.cancel();
    if (res.status === 404) return false;
    if (res.status === 200 || res.status === 204) return true;
    return await this.#fail("delete object", res);
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Opens a WebDAV collection as a sync target. No request is made until the
 * first call.
 *
 * Needs `--allow-net=<host>` of the URL.
 *
 * @remarks
 * `list` is one `PROPFIND` (Depth 1); `read` a `GET`; `delete` a `DELETE`.
 * `writeIfAbsent` creates the collection with `MKCOL` (once per target),
 * `PUT`s the bytes to a temporary `.tmp-<uuid>` name and `MOVE`s it to its
 * name with `Overwrite: F`, which RFC 4918 servers refuse with 412 when the
 * name is taken: the create is decided by the server, in one request, and
 * readers never see a partial object. An interrupted write may leave a
 * `.tmp-*` object, never listed.
 *
 * Errors of the calls: `WRONG_KEY` when the server refuses the credentials
 * (401, 403), `CONNECTION_FAILED` when it is unreachable or answers
 * otherwise, `PERMISSION_DENIED` without `--allow-net=<host>`.
 *
 * @param options URL, credentials, abort signal.
 * @returns The target.
 * @throws {AicoDataError} `INVALID_INPUT` for malformed options.
 *
 * @example Opening (needs a server)
 * ```ts ignore
 * import { openWebDavTarget } from "./webdav_target.ts";
 *
 * await using target = await openWebDavTarget({
 *   url: "https://cloud.example.org/remote.php/dav/files/me/aico",
 *   username: "me",
 *   password: "app-password",
 * });
 * console.log(await target.list());
 * ```
 */
export function openWebDavTarget(
  options: WebDavTargetOptions,
): Promise<SyncTarget> {
  try {
    return Promise.resolve(
      new WebDavTarget(resolveWebDavTargetOptions(options)),
    );
  } catch (e) {
    return Promise.reject(e);
  }
}
