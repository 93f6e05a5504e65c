// Checks a parsed definition before anything runs: the JSON Schema of our dialect (per task type, so messages
// name the task), unknown task types, jq / Liquid syntax, `then` targets, and cycles through `then` that
// nothing can leave. Every problem names its JSON pointer.
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import { DefinitionError } from "./errors.js";
import { isJq, isLiquid, jqBody, jqSyntaxProblem, liquidSyntaxProblem, ensureJq } from "./expressions.js";
import { documentSchema, TASK_TYPES, taskSchemas } from "./schema.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Def = Record<string, any>;
export type TaskItem = Record<string, Def>;

const ajv = new Ajv2020({ allErrors: true, strict: false });
const validateDocument = ajv.compile(documentSchema);
const validators = new Map<string, ValidateFunction>(Object.entries(taskSchemas).map(([k, s]) => [k, ajv.compile(s)]));

const FLOW = new Set(["continue", "exit", "end", "wait"]);
const UNSUPPORTED: Record<string, string> = {
  listen: "'listen' tasks are not supported",
  emit: "'emit' tasks are not supported",
};

function ajvProblems(errors: ErrorObject[] | null | undefined, at: string): string[] {
  const out = new Set<string>();
  for (const e of errors ?? []) {
    // the branches of a oneOf each complain; their summary says enough
    if (e.keyword === "oneOf" && e.params?.passingSchemas === null) continue;
    const where = `${at}${e.instancePath}` || "/";
    if (e.keyword === "additionalProperties") out.add(`${where}: unknown field '${e.params.additionalProperty}'`);
    else if (e.keyword === "enum") out.add(`${where}: must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`);
    else out.add(`${where}: ${e.message}`);
  }
  return [...out];
}

/** The type of a task: the first task-type key it has. */
export function taskType(task: Def): string | undefined {
  return TASK_TYPES.find((t) => t in task && !(t === "do" && "for" in task));
}

/** Every task list inside a task, with the pointer of the list. */
export function childLists(task: Def, at: string): [TaskItem[], string][] {
  const type = taskType(task);
  const out: [TaskItem[], string][] = [];
  if (type === "do" || type === "for") out.push([task.do, `${at}/do`]);
  if (type === "try") {
    out.push([task.try, `${at}/try`]);
    if (Array.isArray(task.catch?.do)) out.push([task.catch.do, `${at}/catch/do`]);
  }
  if (type === "fork") out.push([task.fork.branches, `${at}/fork/branches`]);
  return out.filter(([l]) => Array.isArray(l));
}

/** Fields that are jq by definition (checked even without `${}`), relative to the task. */
function expressionFields(task: Def, type: string): [unknown, string][] {
  const f: [unknown, string][] = [
    [task.if, "if"],
    [task.input?.from, "input/from"],
    [task.output?.as, "output/as"],
    [task.export?.as, "export/as"],
  ];
  if (type === "for") f.push([task.for?.in, "for/in"], [task.while, "while"]);
  if (type === "switch" && Array.isArray(task.switch)) {
    task.switch.forEach((c: Def, i: number) => {
      const [name, body] = Object.entries(c)[0] ?? [];
      if (name) f.push([(body as Def)?.when, `switch/${i}/${name}/when`]);
    });
  }
  if (type === "try") f.push([task.catch?.when, "catch/when"], [task.catch?.exceptWhen, "catch/exceptWhen"]);
  return f.filter(([v]) => typeof v === "string");
}

function checkExpression(text: string, at: string, byDefinition: boolean, problems: string[]): void {
  if (isLiquid(text)) {
    const body = text.trim().slice(3, -1);
    const p = liquidSyntaxProblem(body);
    if (p) problems.push(`${at}: bad Liquid template: ${p}`);
  } else if (isJq(text) || byDefinition) {
    const p = jqSyntaxProblem(jqBody(text));
    if (p) problems.push(`${at}: bad jq expression: ${p}`);
  }
}

/** `${…}` / `$${…}` strings anywhere under a value. */
function scanStrings(v: unknown, at: string, problems: string[], skip: Set<unknown>): void {
  if (skip.has(v)) return;
  if (typeof v === "string") checkExpression(v, at, false, problems);
  else if (Array.isArray(v)) v.forEach((x, i) => scanStrings(x, `${at}/${i}`, problems, skip));
  else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) scanStrings(x, `${at}/${escape(k)}`, problems, skip);
}

const escape = (k: string) => k.replace(/~/g, "~0").replace(/\//g, "~1");

function checkList(list: TaskItem[], at: string, problems: string[]): void {
  const names: string[] = [];
  list.forEach((item, i) => {
    const [name, task] = Object.entries(item)[0];
    names.push(name);
    const here = `${at}/${i}/${escape(name)}`;
    if (!task || typeof task !== "object" || Array.isArray(task)) {
      problems.push(`${here}: a task must be an object`);
      return;
    }
    const unsupported = Object.keys(UNSUPPORTED).find((k) => k in task);
    const type = taskType(task);
    if (!type) {
      problems.push(
        unsupported
          ? `${here}: ${UNSUPPORTED[unsupported]}`
          : `${here}: unknown task type (fields: ${Object.keys(task).join(", ") || "none"}); expected one of ${TASK_TYPES.join(", ")}`,
      );
      return;
    }
    const validate = validators.get(type)!;
    if (!validate(task)) {
      problems.push(...ajvProblems(validate.errors, here));
      return;
    }
    if (type === "run" && task.useStreaming === true && task.run?.await === false) problems.push(`${here}: useStreaming cannot be combined with await: false`);
    // a resumed run continues in the root list; inner lists (for items, branches, try) have no resumable state
    if (task.checkpoint === true && at !== "/do") problems.push(`${here}/checkpoint: checkpoints are supported on top-level tasks only`);
    for (const [v, rel] of expressionFields(task, type)) checkExpression(v as string, `${here}/${rel}`, true, problems);
    // free-form values: nested lists are walked below with their own pointers
    const lists = childLists(task, here);
    scanStrings(task, here, problems, new Set<unknown>([...lists.map(([l]) => l), ...expressionFields(task, type).map(([v]) => v)]));
    for (const [l, lat] of lists) checkList(l, lat, problems);
  });
  list.forEach((item, i) => {
    const [name, task] = Object.entries(item)[0];
    const targets: [unknown, string][] = [[task?.then, "then"]];
    if (Array.isArray(task?.switch)) {
      task.switch.forEach((c: Def, j: number) => {
        const [cn, body] = Object.entries(c ?? {})[0] ?? [];
        targets.push([(body as Def)?.then, `switch/${j}/${cn}/then`]);
      });
    }
    for (const [t, rel] of targets) {
      if (typeof t !== "string" || FLOW.has(t) || isJq(t) || isLiquid(t)) continue;
      if (!names.includes(t)) problems.push(`${at}/${i}/${escape(name)}/${rel}: no task named '${t}' in this list`);
    }
  });
  const cycle = unconditionalCycle(list, names);
  if (cycle) problems.push(`${at}: the tasks ${cycle.map((n) => `'${n}'`).join(" → ")} loop forever through 'then'`);
}

/**
 * A cycle through `then` that no condition can leave: every task on it has no `if`, is not a switch, and its
 * `then` is a literal (or absent: the next task). Such a workflow never ends.
 */
function unconditionalCycle(list: TaskItem[], names: string[]): string[] | undefined {
  const next = (i: number): number | undefined => {
    const task = Object.values(list[i])[0];
    if (!task || task.if !== undefined || "switch" in task || "raise" in task) return undefined;
    const t = task.then;
    if (t === undefined || t === "continue") return i + 1 < list.length ? i + 1 : undefined;
    if (typeof t !== "string" || FLOW.has(t)) return undefined;
    const j = names.indexOf(t);
    return j >= 0 ? j : undefined;
  };
  for (let start = 0; start < list.length; start++) {
    const seen: number[] = [];
    let i: number | undefined = start;
    while (i !== undefined && !seen.includes(i)) {
      seen.push(i);
      i = next(i);
    }
    if (i !== undefined) return [...seen.slice(seen.indexOf(i)), i].map((k) => names[k]);
  }
  return undefined;
}

/** Throws DefinitionError listing every problem. */
export async function validateDefinition(def: unknown): Promise<Def> {
  await ensureJq();
  if (!validateDocument(def)) throw new DefinitionError(ajvProblems(validateDocument.errors, ""));
  const d = def as Def;
  const problems: string[] = [];
  for (const [v, at] of [
    [d.input?.from, "/input/from"],
    [d.output?.as, "/output/as"],
  ] as const) {
    if (typeof v === "string") checkExpression(v, at, true, problems);
    else if (v !== undefined) scanStrings(v, at, problems, new Set());
  }
  checkList(d.do, "/do", problems);
  if (problems.length) throw new DefinitionError(problems);
  return d;
}
