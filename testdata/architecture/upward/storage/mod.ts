// Fixture: storage (rank 3) importing schema (rank 4) is forbidden.
import { SCHEMA } from "../schema/mod.ts";
export const STORAGE = SCHEMA;
