// Workflow errors in the Serverless Workflow 1.0 shape {type, status, title?, detail?, instance?}, with the
// spec's error type URIs and status codes.

const BASE = "https://serverlessworkflow.io/spec/1.0.0/errors/";

export const ErrorKinds = {
  configuration: 400,
  validation: 400,
  expression: 400,
  authentication: 401,
  authorization: 403,
  timeout: 408,
  communication: 500,
  runtime: 500,
} as const;
export type ErrorKind = keyof typeof ErrorKinds;

export interface WorkflowErrorShape {
  type: string;
  status: number;
  title?: string;
  detail?: string;
  instance?: string;
}

export class WorkflowError extends Error {
  constructor(public shape: WorkflowErrorShape) {
    super(shape.detail ? `${shape.title ?? shape.type}: ${shape.detail}` : (shape.title ?? shape.type));
    this.name = "WorkflowError";
  }

  static of(kind: ErrorKind, title: string, detail?: string, instance?: string): WorkflowError {
    return new WorkflowError({ type: BASE + kind, status: ErrorKinds[kind], title, detail, instance });
  }

  /** The error object as JSON (undefined fields left out). */
  toJSON(): WorkflowErrorShape {
    return Object.fromEntries(Object.entries(this.shape).filter(([, v]) => v !== undefined)) as unknown as WorkflowErrorShape;
  }
}

export const errorType = (kind: ErrorKind) => BASE + kind;

/** Wraps anything thrown inside a task into a WorkflowError whose instance is the task's pointer. */
export function asWorkflowError(e: unknown, instance: string, kind: ErrorKind = "runtime"): WorkflowError {
  if (e instanceof WorkflowError) {
    if (e.shape.instance === undefined) e.shape.instance = instance;
    return e;
  }
  const msg = e instanceof Error ? e.message : String(e);
  return WorkflowError.of(kind, kind === "runtime" ? "task failed" : `${kind} error`, msg, instance);
}

/** Raised when a definition is rejected before it runs. */
export class DefinitionError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid workflow definition: ${problems.join("; ")}`);
    this.name = "DefinitionError";
  }
}
