// Loading a definition: YAML or JSON text, from the text itself, a file path / file: URL, or an http(s) URL.
// http(s) URLs that resolve to loopback, private or link-local addresses are refused unless allowed: a
// workflow source is user input and must not become a way to read internal services.
import { lookup } from "node:dns/promises";
import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { DefinitionError } from "./errors.js";

export interface LoadOptions {
  /** Allow http(s) sources on private networks (config WORKFLOW_ALLOW_PRIVATE_URLS). */
  allowPrivateUrls?: boolean;
  maxBytes?: number;
}

const MAX_BYTES = 4 * 1024 * 1024;

/** Parses YAML or JSON text (JSON is YAML, but JSON.parse is faster and gives better errors for JSON). */
export function parseDefinition(text: string): unknown {
  const t = text.trim();
  if (t.startsWith("{")) {
    try {
      return JSON.parse(t);
    } catch {
      // fall through: YAML flow mappings also start with "{"
    }
  }
  try {
    return parseYaml(text, { maxAliasCount: 100 });
  } catch (e) {
    throw new DefinitionError([`not valid YAML or JSON: ${(e as Error).message.split("\n")[0]}`]);
  }
}

export function isPrivateAddress(ip: string): boolean {
  if (isIP(ip) === 4) {
    const [a, b] = ip.split(".").map(Number);
    return a === 10 || a === 127 || a === 0 || (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b < 128);
  }
  const v6 = ip.toLowerCase();
  if (v6.startsWith("::ffff:")) return isPrivateAddress(v6.slice(7));
  return v6 === "::1" || v6 === "::" || v6.startsWith("fc") || v6.startsWith("fd") || v6.startsWith("fe80");
}

async function fetchText(url: URL, opts: LoadOptions): Promise<string> {
  if (!opts.allowPrivateUrls) {
    const host = url.hostname.replace(/^\[|\]$/g, "");
    const addrs = isIP(host) ? [{ address: host }] : await lookup(host, { all: true }).catch(() => []);
    if (addrs.length === 0) throw new DefinitionError([`cannot resolve the workflow URL's host '${host}'`]);
    if (addrs.some((a) => isPrivateAddress(a.address))) {
      throw new DefinitionError([`workflow URL ${url.origin} is on a private network (set WORKFLOW_ALLOW_PRIVATE_URLS=true to allow)`]);
    }
  }
  // redirects could lead into the private network: not followed
  const res = await fetch(url, { redirect: "error", signal: AbortSignal.timeout(20_000) }).catch((e: Error) => {
    throw new DefinitionError([`cannot fetch workflow ${url.href}: ${e.message}`]);
  });
  if (!res.ok) throw new DefinitionError([`cannot fetch workflow ${url.href}: HTTP ${res.status}`]);
  const text = await res.text();
  if (text.length > (opts.maxBytes ?? MAX_BYTES)) throw new DefinitionError([`workflow ${url.href} is larger than ${opts.maxBytes ?? MAX_BYTES} bytes`]);
  return text;
}

/** Text of a definition named by URL or path. */
export async function readSource(urlOrPath: string, opts: LoadOptions = {}): Promise<string> {
  let url: URL | undefined;
  try {
    url = new URL(urlOrPath);
  } catch {
    url = undefined;
  }
  if (url && (url.protocol === "http:" || url.protocol === "https:")) return fetchText(url, opts);
  const path = url?.protocol === "file:" ? fileURLToPath(url) : urlOrPath;
  if (url && url.protocol !== "file:" && !/^[a-zA-Z]:$/.test(url.protocol)) {
    throw new DefinitionError([`unsupported workflow URL scheme '${url.protocol}' (http, https, file or a path)`]);
  }
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    throw new DefinitionError([`cannot read workflow file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`]);
  }
}

export interface Source {
  data?: string | object;
  url?: string;
}

/** Parsed (not yet validated) definition from inline data or a URL/path. */
export async function loadSource(src: Source, opts: LoadOptions = {}): Promise<unknown> {
  if (src.data !== undefined && src.data !== "") return typeof src.data === "string" ? parseDefinition(src.data) : src.data;
  if (src.url) return parseDefinition(await readSource(src.url, opts));
  throw new DefinitionError(["no workflow given: set workflow_data or workflow_url"]);
}
