// Load + validate + run: what the runner, the CLI and the tests share.
import { DefinitionError } from "./errors.js";
import { WorkflowRun, type Outcome, type RunOptions } from "./engine.js";
import type { JobHost } from "./host.js";
import { loadSource, type LoadOptions, type Source } from "./load.js";
import { childLists, validateDefinition, type Def, type TaskItem } from "./validate.js";

/** Runner / worker names of run tasks that are literals (expressions are checked when they run). */
function namedTargets(list: TaskItem[], at: string, out: [kind: "runner" | "worker", name: string, at: string][]): void {
  list.forEach((item, i) => {
    const [name, task] = Object.entries(item)[0];
    const here = `${at}/${i}/${name}`;
    const r = task.run as Def | undefined;
    const literal = (v: unknown) => typeof v === "string" && !v.trim().startsWith("$");
    if (r?.runner && literal(r.runner.name)) out.push(["runner", r.runner.name, `${here}/run/runner/name`]);
    if (r?.worker && literal(r.worker.name)) out.push(["worker", r.worker.name, `${here}/run/worker/name`]);
    if (literal(r?.function?.runnerName)) out.push(["runner", r!.function.runnerName, `${here}/run/function/runnerName`]);
    if (literal(r?.function?.workerName)) out.push(["worker", r!.function.workerName, `${here}/run/function/workerName`]);
    for (const [l, lat] of childLists(task, here)) namedTargets(l, lat, out);
  });
}

/** Loads and validates a definition; with a host, literal runner/worker names must exist. */
export async function prepareWorkflow(src: Source, opts: LoadOptions & { host?: JobHost } = {}): Promise<Def> {
  const def = await validateDefinition(await loadSource(src, opts));
  if (opts.host?.exists) {
    const targets: [kind: "runner" | "worker", name: string, at: string][] = [];
    namedTargets(def.do, "/do", targets);
    const problems: string[] = [];
    for (const [kind, name, at] of targets) if (!(await opts.host.exists(kind, name))) problems.push(`${at}: no ${kind} named '${name}'`);
    if (problems.length) throw new DefinitionError(problems);
  }
  return def;
}

export async function runWorkflow(def: Def, opts: RunOptions & { loadOptions?: LoadOptions } = {}): Promise<Outcome> {
  const loadNested = opts.loadNested ?? ((src: Source) => prepareWorkflow(src, { ...opts.loadOptions, host: opts.host }));
  return new WorkflowRun(def, { ...opts, loadNested }).run();
}

export type { Outcome, RunOptions };
