// Fixture: the root entry may import any folder.
export { SCHEMA } from "./schema/mod.ts";
export { URL_LIKE } from "./storage/mod.ts";
