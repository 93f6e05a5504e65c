// What commands print: tables and key/value cards for people, one JSON document (or one line per streamed
// item) with --json for scripts. Everything goes to stdout; progress and errors go to stderr.

export type Row = Record<string, unknown>;

/** JSON.stringify that writes bigints as strings and Uint8Arrays as base64. */
export function toJsonText(v: unknown, indent?: number): string {
  return JSON.stringify(
    v,
    (_k, x) => (typeof x === "bigint" ? x.toString() : x instanceof Uint8Array ? Buffer.from(x).toString("base64") : x),
    indent,
  );
}

function cell(v: unknown): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return String(v);
  return toJsonText(v);
}

const MAX_CELL = 60;
const clip = (s: string) => {
  const one = s.replace(/\s*\n\s*/g, " ");
  return one.length > MAX_CELL ? `${one.slice(0, MAX_CELL - 1)}…` : one;
};

export function renderTable(rows: Row[], columns: string[]): string {
  const cells = rows.map((r) => columns.map((c) => clip(cell(r[c]))));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i])).join("  ").trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...cells.map(line)].join("\n");
}

/** One record as `key  value` lines; objects are shown as indented JSON under their key. */
export function renderCard(row: Row): string {
  const keys = Object.keys(row).filter((k) => row[k] !== undefined);
  const width = Math.max(...keys.map((k) => k.length));
  return keys
    .map((k) => {
      const v = row[k];
      if (v !== null && typeof v === "object" && !(v instanceof Uint8Array)) return `${k}:\n${indent(toJsonText(v, 2))}`;
      return `${k.padEnd(width)}  ${cell(v)}`;
    })
    .join("\n");
}
const indent = (s: string) => s.replace(/^/gm, "  ");

export class Printer {
  constructor(readonly json: boolean) {}

  /** A list: a table, or with --json one JSON array. */
  list(rows: Row[], columns: string[]): void {
    if (this.json) out(toJsonText(rows, 2));
    else out(rows.length ? renderTable(rows, columns) : "(none)");
  }

  /** One record: a card, or with --json one JSON object. */
  record(row: Row): void {
    out(this.json ? toJsonText(row, 2) : renderCard(row));
  }

  /** One item of a stream: with --json one compact JSON line; otherwise `human` (default: a card). */
  item(row: Row, human?: string): void {
    out(this.json ? toJsonText(row) : (human ?? renderCard(row)));
  }

  /** A plain message (suppressed with --json, where `row` is printed instead when given). */
  message(text: string, row?: Row): void {
    if (!this.json) out(text);
    else if (row) out(toJsonText(row, 2));
  }
}

const out = (s: string) => process.stdout.write(`${s}\n`);
