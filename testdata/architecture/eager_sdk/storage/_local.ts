// Fixture: a static SDK import in a file loaded statically is eager.
import Database from "libsql";
export const DRIVER = Database;
