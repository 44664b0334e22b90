// Fixture: schema importing storage's private file is forbidden.
import { ENGINE } from "../storage/_engine.ts";
export const SCHEMA = ENGINE;
