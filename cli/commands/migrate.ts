import { CliError, UsageError } from "../_errors.ts";
import type { Command } from "../_context.ts";

export const migrate: Command = {
  name: "migrate",
  summary: "apply pending schema migrations",
  usage: "migrate [--json]",
  help:
    "Applies every pending schema version (opening the folder does this too).",
  positionals: [0, 0],
  async run(ctx) {
    await using data = await ctx.open();
    const more = await data.migrator.migrate();
    const applied = [...data.applied, ...more];
    if (ctx.json) ctx.printJson(applied);
    else if (applied.length === 0) ctx.print("schema up to date");
    else {
      for (const a of applied) {
        ctx.print(`applied ${a.schema} v${a.version} (${a.direction})`);
      }
    }
    return 0;
  },
};

export const plan: Command = {
  name: "plan",
  summary: "show schema versions and what a migration would do",
  usage: "plan [--json]",
  help: "Lists each schema with its current and latest version.",
  positionals: [0, 0],
  async run(ctx) {
    await using data = await ctx.open();
    const p = await data.migrator.plan();
    if (ctx.json) ctx.printJson(p);
    else {
      for (const s of p) {
        ctx.print(
          `${s.schema.padEnd(12)} v${s.current}/${s.latest}${
            s.pending.length ? ` pending: ${s.pending.join(", ")}` : ""
          }`,
        );
      }
    }
    return 0;
  },
};

export const rollback: Command = {
  name: "rollback",
  summary: "migrate a schema down to a version",
  usage: "rollback SCHEMA VERSION --yes",
  help:
    `Runs the down migrations of SCHEMA to VERSION. Data in the removed tables
is lost: back up first. Needs --yes.`,
  options: { yes: { type: "boolean" } },
  positionals: [2, 2],
  async run(ctx) {
    const [schema, v] = ctx.positionals as [string, string];
    const version = Number(v);
    if (!Number.isInteger(version) || version < 0) {
      throw new UsageError("VERSION must be a whole number", "rollback");
    }
    if (ctx.values.yes !== true) {
      throw new CliError(
        "rollback removes data",
        "back up first, then pass --yes",
      );
    }
    await using data = await ctx.open();
    const steps = await data.migrator.migrateTo(schema, version);
    if (ctx.json) ctx.printJson(steps);
    else {
      for (const s of steps) {
        ctx.print(`${s.direction} ${s.schema} v${s.version}`);
      }
      if (steps.length === 0) ctx.print("nothing to do");
    }
    return 0;
  },
};
