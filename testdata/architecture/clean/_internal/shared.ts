// Fixture: a shared internal helper.
import { ERROR } from "../errors.ts";
export const SHARED = `${ERROR}!`;
