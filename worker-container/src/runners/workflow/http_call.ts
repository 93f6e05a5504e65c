// `call: http`: method, endpoint (a URI template filled from the input, or an expression), headers, query,
// body, basic/bearer authentication (inline or a use.authentications name), output content/response/raw.
import { WorkflowError } from "./errors.js";
import { evalTemplate, type Vars } from "./expressions.js";
import type { Def } from "./validate.js";

const DETAIL_CHARS = 500;

/** RFC 6570 simple expansion `{name}` from the input's fields (then context variables). */
function expandUri(uri: string, input: unknown, vars: Vars): string {
  return uri.replace(/\{([A-Za-z_][\w.]*)\}/g, (_, name: string) => {
    let v: unknown = name.split(".").reduce<unknown>((o, k) => (o && typeof o === "object" ? (o as Record<string, unknown>)[k] : undefined), input);
    if (v === undefined) v = vars[name];
    return v === undefined || v === null ? "" : encodeURIComponent(typeof v === "string" ? v : JSON.stringify(v));
  });
}

function authHeader(auth: unknown, named: Record<string, Def>, input: unknown, vars: Vars, at: string): string | undefined {
  if (auth === undefined) return undefined;
  let policy = typeof auth === "string" ? named[auth] : (auth as Def);
  if (policy?.use) policy = named[policy.use];
  if (!policy) throw WorkflowError.of("configuration", "unknown authentication", `no authentication named '${typeof auth === "string" ? auth : (auth as Def).use}'`, at);
  const p = evalTemplate(policy, input, vars) as Def;
  if (p.basic) return `Basic ${Buffer.from(`${p.basic.username}:${p.basic.password}`).toString("base64")}`;
  if (p.bearer) return `Bearer ${p.bearer.token}`;
  throw WorkflowError.of("configuration", "unsupported authentication", "only basic and bearer are supported", at);
}

export async function callHttp(w: Def, input: unknown, vars: Vars, named: Record<string, Def>, signal: AbortSignal, at: string): Promise<unknown> {
  const method = String(evalTemplate(w.method ?? "get", input, vars)).toUpperCase();
  const ep = typeof w.endpoint === "string" ? { uri: w.endpoint } : (w.endpoint as Def);
  const rawUri = evalTemplate(ep.uri, input, vars);
  let url: URL;
  try {
    url = new URL(expandUri(String(rawUri), input, vars));
  } catch {
    throw WorkflowError.of("configuration", "bad endpoint", `not a URL: ${JSON.stringify(rawUri)}`, at);
  }
  const query = w.query === undefined ? {} : (evalTemplate(w.query, input, vars) as Record<string, unknown>);
  for (const [k, v] of Object.entries(query ?? {})) url.searchParams.append(k, typeof v === "string" ? v : JSON.stringify(v));
  const headers: Record<string, string> = {};
  const h = w.headers === undefined ? {} : (evalTemplate(w.headers, input, vars) as Record<string, unknown>);
  for (const [k, v] of Object.entries(h ?? {})) headers[k.toLowerCase()] = String(v);
  const auth = authHeader(ep.authentication, named, input, vars, at);
  if (auth) headers.authorization = auth;
  let body: string | undefined;
  if (w.body !== undefined) {
    const b = evalTemplate(w.body, input, vars);
    if (typeof b === "string") body = b;
    else {
      body = JSON.stringify(b);
      headers["content-type"] ??= "application/json";
    }
  }
  let res: Response;
  try {
    res = await fetch(url, { method, headers, body, signal, redirect: w.redirect ? "follow" : "manual" });
  } catch (e) {
    if (signal.aborted) throw signal.reason;
    throw WorkflowError.of("communication", "HTTP request failed", `${method} ${url.href}: ${(e as Error).cause ?? (e as Error).message}`, at);
  }
  const bytes = Buffer.from(await res.arrayBuffer());
  const text = bytes.toString("utf8");
  if (res.status < 200 || res.status >= 300) {
    const err = WorkflowError.of("communication", "HTTP error", `${method} ${url.href} answered ${res.status}: ${text.slice(0, DETAIL_CHARS)}`, at);
    err.shape.status = res.status;
    throw err;
  }
  const isJson = /[/+]json\b/i.test(res.headers.get("content-type") ?? "");
  let content: unknown = text;
  if (isJson && text.length) {
    try {
      content = JSON.parse(text);
    } catch {
      content = text;
    }
  }
  switch (w.output ?? "content") {
    case "raw":
      return bytes.toString("base64");
    case "response":
      return { request: { method, uri: url.href, headers }, statusCode: res.status, headers: Object.fromEntries(res.headers), content };
    default:
      return content;
  }
}
