// One Python virtual environment per distinct settings (version + packages), built once and shared by every job
// and worker of the process — and by other processes using the same directory: a venv is built in place (its
// scripts hold absolute paths, so it cannot be built elsewhere and renamed) by whoever takes its lock directory
// (mkdir is atomic); the others wait for its `.ready` marker.
//
// Layout: <baseDir>/py<version>-<hash of the settings>/ with `.ready` written last; <dir>.lock while building.
// Built with uv when available (uv_path, or `uv` on PATH), else with `python3.X -m venv` + pip.
import { createHash } from "node:crypto";
import { access, mkdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { RunnerError } from "../runner.js";
import { capture, tail } from "./exec.js";
import { fetchText } from "./fetch_text.js";

export interface VenvSpec {
  /** "", "3", "3.11" or "3.11.7". */
  pythonVersion: string;
  uvPath?: string;
  packages: string[];
  requirementsUrl?: string;
}

export interface Venv {
  dir: string;
  python: string;
}

const VERSION_RE = /^\d+(\.\d+){0,2}$/;
const READY = ".ready";
// pip's self-check and prompts only slow down or hang an unattended install.
const PIP_FLAGS = ["--disable-pip-version-check", "--no-input"];

const exists = (p: string) => access(p).then(() => true, () => false);
const venvOf = (dir: string): Venv => ({ dir, python: join(dir, "bin", "python") });

export class VenvCache {
  private building = new Map<string, Promise<Venv>>();
  /** How many venvs this process has built (not found ready on disk). */
  builtCount = 0;

  constructor(
    readonly baseDir: string,
    private readonly setupTimeoutMs = 15 * 60_000,
  ) {}

  /** The venv for `spec`, building it on first use; concurrent callers share one build. */
  get(spec: VenvSpec): Promise<Venv> {
    if (spec.pythonVersion && !VERSION_RE.test(spec.pythonVersion)) {
      return Promise.reject(new RunnerError("FATAL_ERROR", `python_version must look like "3.11", got ${JSON.stringify(spec.pythonVersion)}`));
    }
    const key = cacheKey(spec);
    let p = this.building.get(key);
    if (!p) {
      p = this.getOrBuild(key, spec);
      this.building.set(key, p);
      // A failed build is tried again by the next job (the failure may be transient).
      p.catch(() => this.building.delete(key));
    }
    return p;
  }

  private async getOrBuild(key: string, spec: VenvSpec): Promise<Venv> {
    const dir = join(this.baseDir, key);
    const lock = `${dir}.lock`;
    await mkdir(this.baseDir, { recursive: true });
    const deadline = Date.now() + this.setupTimeoutMs;
    for (;;) {
      if (await exists(join(dir, READY))) return venvOf(dir);
      if (await takeLock(lock, this.setupTimeoutMs)) break;
      if (Date.now() > deadline) throw new RunnerError("ERROR_AND_RETRY", `timed out waiting for another process to build ${dir}`);
      await sleep(200); // another process is building it
    }
    try {
      if (await exists(join(dir, READY))) return venvOf(dir); // finished just before we took the lock
      await rm(dir, { recursive: true, force: true }); // leftovers of a build that died
      // Not tied to any one job's signal: other jobs may be waiting for the same venv.
      try {
        await build(dir, spec, AbortSignal.timeout(this.setupTimeoutMs));
      } catch (e) {
        await rm(dir, { recursive: true, force: true }); // a failed build leaves nothing half-made
        throw e;
      }
      await writeFile(join(dir, READY), JSON.stringify(spec));
      this.builtCount++;
      return venvOf(dir);
    } finally {
      await rm(lock, { recursive: true, force: true });
    }
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** mkdir is atomic: true when this caller created the lock. A lock older than a whole build is a dead builder's. */
async function takeLock(lock: string, staleMs: number): Promise<boolean> {
  try {
    await mkdir(lock);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    const age = await stat(lock).then((st) => Date.now() - st.mtimeMs, () => 0);
    if (age > staleMs) await rm(lock, { recursive: true, force: true });
    return false;
  }
}

export function cacheKey(spec: VenvSpec): string {
  const h = createHash("sha256")
    .update(JSON.stringify([spec.pythonVersion, spec.packages, spec.requirementsUrl ?? null]))
    .digest("hex")
    .slice(0, 20);
  return `py${spec.pythonVersion || "3"}-${h}`;
}

async function build(dir: string, spec: VenvSpec, signal: AbortSignal): Promise<void> {
  const requirements = spec.requirementsUrl ? await fetchText(spec.requirementsUrl, "requirements_url", signal) : undefined;
  const reqFile = join(dir, "requirements.txt");
  if (requirements !== undefined) await writeFile(reqFile, requirements);
  const installArgs = requirements !== undefined ? ["-r", reqFile] : spec.packages;
  const python = venvOf(dir).python;

  const uv = await findUv(spec.uvPath, signal);
  if (uv) {
    const made = await capture(uv, ["venv", "--quiet", ...(spec.pythonVersion ? ["--python", spec.pythonVersion] : []), dir], signal);
    if (made.exitCode !== 0) {
      throw new RunnerError("FATAL_ERROR", `python ${spec.pythonVersion || "3"} is not available (uv venv failed): ${tail(made.stderr || made.stdout)}`);
    }
    if (installArgs.length > 0) await install(uv, ["pip", "install", "--python", python, ...installArgs], signal);
    return;
  }

  const interpreter = await findInterpreter(spec.pythonVersion, signal);
  const made = await capture(interpreter, ["-m", "venv", ...(installArgs.length > 0 ? [] : ["--without-pip"]), dir], signal);
  if (made.exitCode !== 0) throw new RunnerError("FATAL_ERROR", `${interpreter} -m venv failed: ${tail(made.stderr || made.stdout)}`);
  if (installArgs.length > 0) await install(python, ["-m", "pip", "install", ...PIP_FLAGS, ...installArgs], signal);
}

/** Package installs that fail are reported with the installer's own explanation; not retried (usually a bad name). */
async function install(command: string, args: string[], signal: AbortSignal): Promise<void> {
  const r = await capture(command, args, signal);
  if (r.exitCode !== 0) throw new RunnerError("FATAL_ERROR", `package install failed: ${tail(r.stderr || r.stdout)}`);
}

/** uv_path when set (must work), else `uv` if it is on PATH, else undefined. */
async function findUv(uvPath: string | undefined, signal: AbortSignal): Promise<string | undefined> {
  const candidate = uvPath || "uv";
  try {
    const r = await capture(candidate, ["--version"], signal);
    if (r.exitCode === 0) return candidate;
  } catch (e) {
    if (!(e instanceof RunnerError) || e.kind !== "FATAL_ERROR") throw e;
  }
  if (uvPath) throw new RunnerError("FATAL_ERROR", `uv_path does not run: ${uvPath}`);
  return undefined;
}

/** `python3.X` (or python3) on PATH whose version matches the requested one. */
async function findInterpreter(version: string, signal: AbortSignal): Promise<string> {
  const parts = version ? version.split(".") : ["3"];
  const command = parts.length === 1 ? `python${parts[0]}` : `python${parts[0]}.${parts[1]}`;
  const unavailable = (why: string) => new RunnerError("FATAL_ERROR", `python ${version || "3"} is not available: ${why}`);
  let r;
  try {
    r = await capture(command, ["-c", "import sys; print('.'.join(map(str, sys.version_info[:3])))"], signal);
  } catch (e) {
    if (e instanceof RunnerError && e.kind === "FATAL_ERROR") throw unavailable(`${command} not found on PATH`);
    throw e;
  }
  if (r.exitCode !== 0) throw unavailable(`${command} failed: ${tail(r.stderr || r.stdout, 300)}`);
  const actual = r.stdout.trim();
  // "3.11.7" satisfies "3", "3.11" and "3.11.7".
  if (!`${actual}.`.startsWith(`${parts.join(".")}.`)) throw unavailable(`${command} is ${actual}`);
  return command;
}
