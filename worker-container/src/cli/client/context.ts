// What every client command gets: the connection, id/name lookups and the printer.
import type { Catalog } from "./catalog.js";
import type { Connection } from "./connection.js";
import type { Printer } from "./output.js";

export interface Ctx {
  conn: Connection;
  catalog: Catalog;
  print: Printer;
}

/** Runs one subcommand; returns the exit code (default 0). */
export type Command = (argv: string[], ctx: Ctx) => Promise<number | void>;

export interface Group {
  summary: string;
  commands: Record<string, { summary: string; usage: string; run: Command }>;
}
