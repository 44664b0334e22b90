// Internal: the tables of the embedded vector store (schema "vector").

import {
  registerSchema,
  type SchemaDefinition,
} from "../schema/schema_version.ts";

/**
 * Version 1.
 *
 * - `vector_collections`: one row per collection (`state` `ready`) and at
 *   most one shadow per name (`state` `shadow`, a `reembed()` in progress),
 *   with the embedder id, dimensions and metric, and the centre of the
 *   sign-bit codes (float32 × dimensions; `NULL` until the collection has a
 *   few thousand records, then fixed).
 * - `vector_segments`: records packed by the batch (libSQL writes large
 *   values several times faster per byte than many small rows): `n` records,
 *   their ids (JSON array), exact norms (float64), the vectors (`quant`: `n`
 *   float32 scales, then `n` × dimensions int16, little-endian; for cosine
 *   the unit vector, otherwise the vector itself; each component within
 *   2^-16 of the largest one), metadata (JSON array) and sign-bit codes under
 *   the collection's centre (`NULL` when written before the centre was
 *   fixed). A replaced or deleted record is removed by rewriting its
 *   segment: no copy of it stays in a row.
 * - `vector_documents`: documents by collection name and id.
 * - `vector_stale`: ids written while a shadow exists (their shadow copy is
 *   out of date), so that a resumed `reembed()` redoes them.
 */
const V1: readonly string[] = [
  `CREATE TABLE vector_collections (
  cid INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('ready', 'shadow')),
  embedder_id TEXT NOT NULL,
  dimensions INTEGER NOT NULL,
  metric TEXT NOT NULL CHECK (metric IN ('cosine', 'dot', 'l2')),
  created_at INTEGER NOT NULL,
  centre BLOB,
  UNIQUE (name, state)
)`,
  `CREATE TABLE vector_segments (
  sid INTEGER PRIMARY KEY,
  cid INTEGER NOT NULL,
  n INTEGER NOT NULL,
  ids TEXT NOT NULL,
  norms BLOB NOT NULL,
  quant BLOB NOT NULL,
  metadata TEXT NOT NULL,
  codes BLOB
)`,
  "CREATE INDEX vector_segments_cid ON vector_segments (cid, sid)",
  `CREATE TABLE vector_documents (
  name TEXT NOT NULL,
  id TEXT NOT NULL,
  document TEXT NOT NULL,
  PRIMARY KEY (name, id)
)`,
  `CREATE TABLE vector_stale (
  cid INTEGER NOT NULL,
  id TEXT NOT NULL,
  PRIMARY KEY (cid, id)
) WITHOUT ROWID`,
];

/**
 * Version 2, so that opening a collection reads little:
 *
 * - the vectors of a segment move to `vector_quant` (`sid`, `quant`, same
 *   layout): open reads the compact columns of `vector_segments` (ids,
 *   norms, metadata, codes: about a tenth of the bytes) without walking the
 *   overflow pages of every vector, and the vectors load afterwards;
 * - `ids` and `metadata` become BLOBs of UTF-8 JSON (read as bytes, not
 *   through the storage's text guard, which costs several times more per
 *   byte).
 */
const V2: readonly string[] = [
  `CREATE TABLE vector_quant (
  sid INTEGER PRIMARY KEY,
  quant BLOB NOT NULL
)`,
  "INSERT INTO vector_quant (sid, quant) SELECT sid, quant FROM vector_segments",
  `CREATE TABLE vector_segments_v2 (
  sid INTEGER PRIMARY KEY,
  cid INTEGER NOT NULL,
  n INTEGER NOT NULL,
  ids BLOB NOT NULL,
  norms BLOB NOT NULL,
  metadata BLOB NOT NULL,
  codes BLOB
)`,
  "INSERT INTO vector_segments_v2 (sid, cid, n, ids, norms, metadata, codes) SELECT sid, cid, n, CAST(ids AS BLOB), norms, CAST(metadata AS BLOB), codes FROM vector_segments",
  "DROP TABLE vector_segments",
  "ALTER TABLE vector_segments_v2 RENAME TO vector_segments",
  "CREATE INDEX vector_segments_cid ON vector_segments (cid, sid)",
];

/** The schema of the embedded vector store. */
export const VECTOR_SCHEMA: SchemaDefinition = registerSchema(
  "vector",
  "core",
  { priority: 200 },
  [{
    version: 1,
    name: "vector_collections_segments",
    up: V1,
    down: [
      "DROP TABLE vector_stale",
      "DROP TABLE vector_documents",
      "DROP TABLE vector_segments",
      "DROP TABLE vector_collections",
    ],
  }, {
    version: 2,
    name: "vector_quant_apart",
    up: V2,
    down: [
      `CREATE TABLE vector_segments_v1 (
  sid INTEGER PRIMARY KEY,
  cid INTEGER NOT NULL,
  n INTEGER NOT NULL,
  ids TEXT NOT NULL,
  norms BLOB NOT NULL,
  quant BLOB NOT NULL,
  metadata TEXT NOT NULL,
  codes BLOB
)`,
      "INSERT INTO vector_segments_v1 (sid, cid, n, ids, norms, quant, metadata, codes) SELECT s.sid, s.cid, s.n, CAST(s.ids AS TEXT), s.norms, q.quant, CAST(s.metadata AS TEXT), s.codes FROM vector_segments s JOIN vector_quant q ON q.sid = s.sid",
      "DROP TABLE vector_quant",
      "DROP TABLE vector_segments",
      "ALTER TABLE vector_segments_v1 RENAME TO vector_segments",
      "CREATE INDEX vector_segments_cid ON vector_segments (cid, sid)",
    ],
  }],
);
