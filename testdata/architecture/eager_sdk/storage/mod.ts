// Fixture: imports the adapter statically, so the SDK loads with the folder.
export { DRIVER } from "./_local.ts";
