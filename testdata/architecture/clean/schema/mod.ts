// Fixture: a folder of a higher rank importing a lower one.
import { open } from "../storage/mod.ts";
import { SHARED } from "../_internal/shared.ts";

export const SCHEMA = [open, SHARED];
