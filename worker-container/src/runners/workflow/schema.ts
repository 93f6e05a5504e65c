// JSON Schema (2020-12) of our dialect: Serverless Workflow 1.0 as jobworkerp runs it, plus its extensions.
// The document and each task type have their own schema, so an error names the task and the field rather than
// the whole `oneOf` of task types (the walker in validate.ts picks the type by its key first).
type S = Record<string, unknown>;

const str: S = { type: "string" };
const bool: S = { type: "boolean" };
const obj: S = { type: "object" };
const exprOrObj: S = { type: ["string", "object", "array", "number", "boolean", "null"] };
const taskList: S = {
  type: "array",
  items: { type: "object", minProperties: 1, maxProperties: 1 },
};
const duration: S = {
  oneOf: [
    { type: "string", pattern: "^P" },
    {
      type: "object",
      minProperties: 1,
      additionalProperties: false,
      properties: { days: { type: "number" }, hours: { type: "number" }, minutes: { type: "number" }, seconds: { type: "number" }, milliseconds: { type: "number" } },
    },
  ],
};
const timeout: S = { oneOf: [{ type: "object", required: ["after"], additionalProperties: false, properties: { after: duration } }, str] };
const schemaDef: S = { type: "object", additionalProperties: false, properties: { format: str, document: obj, resource: obj } };
const input: S = { type: "object", additionalProperties: false, properties: { schema: schemaDef, from: exprOrObj } };
const output: S = { type: "object", additionalProperties: false, properties: { schema: schemaDef, as: exprOrObj } };
const exportDef: S = { type: "object", additionalProperties: false, properties: { schema: schemaDef, as: exprOrObj } };
const error: S = {
  type: "object",
  required: ["type", "status"],
  additionalProperties: false,
  properties: { type: str, status: { type: ["integer", "string"] }, title: str, detail: str, instance: str },
};
const authPolicy: S = {
  type: "object",
  additionalProperties: false,
  properties: {
    basic: { type: "object", required: ["username", "password"], properties: { username: str, password: str }, additionalProperties: false },
    bearer: { type: "object", required: ["token"], properties: { token: str }, additionalProperties: false },
    use: str,
  },
};
const retryPolicy: S = {
  type: "object",
  additionalProperties: false,
  properties: {
    when: str,
    exceptWhen: str,
    delay: duration,
    backoff: {
      type: "object",
      minProperties: 1,
      maxProperties: 1,
      additionalProperties: false,
      properties: { constant: obj, linear: obj, exponential: obj },
    },
    limit: {
      type: "object",
      additionalProperties: false,
      properties: {
        attempt: { type: "object", additionalProperties: false, properties: { count: { type: "integer", minimum: 0 }, duration } },
        duration,
      },
    },
    jitter: { type: "object", required: ["from", "to"], additionalProperties: false, properties: { from: duration, to: duration } },
  },
};
const workerOptions: S = {
  type: "object",
  additionalProperties: false,
  properties: {
    channel: str,
    queueType: { enum: ["NORMAL", "WITH_BACKUP", "DB_ONLY"] },
    responseType: { enum: ["NO_RESULT", "DIRECT"] },
    storeSuccess: bool,
    storeFailure: bool,
    useStatic: bool,
    retry: retryPolicy,
    broadcastResults: bool,
  },
};

/** Fields every task may have. */
const base: S = {
  if: { type: ["string", "boolean"] },
  input,
  output,
  export: exportDef,
  timeout,
  then: str,
  metadata: obj,
  checkpoint: bool,
};

const task = (props: S, required: string[]): S => ({ type: "object", required, additionalProperties: false, properties: { ...base, ...props } });

const runVariants: S = {
  runner: {
    type: "object",
    required: ["name", "arguments"],
    additionalProperties: false,
    properties: { name: str, arguments: exprOrObj, settings: exprOrObj, options: workerOptions, using: str },
  },
  worker: { type: "object", required: ["name", "arguments"], additionalProperties: false, properties: { name: str, arguments: exprOrObj, using: str } },
  function: {
    type: "object",
    required: ["arguments"],
    additionalProperties: false,
    properties: { runnerName: str, workerName: str, arguments: exprOrObj, settings: exprOrObj, options: workerOptions, using: str },
  },
  shell: {
    oneOf: [
      str,
      {
        type: "object",
        required: ["command"],
        additionalProperties: false,
        properties: {
          command: str,
          arguments: { type: ["object", "array"] },
          args: { type: "array", items: str },
          environment: obj,
          workingDir: str,
          withMemoryMonitoring: bool,
          treatNonzeroAsError: bool,
          successExitCodes: { type: "array", items: { type: "integer" } },
        },
      },
    ],
  },
  script: {
    type: "object",
    required: ["language"],
    additionalProperties: false,
    properties: {
      language: { enum: ["python", "Python", "python3"] },
      code: str,
      source: { type: "object", required: ["endpoint"], properties: { endpoint: exprOrObj } },
      arguments: { type: ["object", "array", "string"] },
      environment: obj,
    },
  },
  workflow: {
    type: "object",
    additionalProperties: false,
    properties: { workflowData: { type: ["string", "object"] }, workflowUrl: str, input: exprOrObj, executionId: str },
  },
};

export const taskSchemas: Record<string, S> = {
  do: task({ do: taskList }, ["do"]),
  for: task(
    {
      for: { type: "object", required: ["in"], additionalProperties: false, properties: { each: str, in: str, at: str } },
      while: str,
      inParallel: bool,
      onError: { enum: ["continue", "break"] },
      do: taskList,
    },
    ["for", "do"],
  ),
  fork: task(
    { fork: { type: "object", required: ["branches"], additionalProperties: false, properties: { branches: taskList, compete: bool } } },
    ["fork"],
  ),
  raise: task({ raise: { type: "object", required: ["error"], additionalProperties: false, properties: { error } } }, ["raise"]),
  call: task(
    {
      call: { enum: ["http", "grpc"] },
      with: {
        type: "object",
        additionalProperties: false,
        properties: {
          method: str,
          endpoint: {
            oneOf: [str, { type: "object", required: ["uri"], additionalProperties: false, properties: { uri: str, authentication: authPolicy } }],
          },
          headers: exprOrObj,
          query: exprOrObj,
          body: exprOrObj,
          output: { enum: ["content", "response", "raw"] },
          redirect: bool,
          // grpc
          proto: obj,
          service: obj,
          arguments: exprOrObj,
        },
      },
    },
    ["call", "with"],
  ),
  run: task(
    {
      run: {
        type: "object",
        minProperties: 1,
        additionalProperties: false,
        properties: { ...runVariants, await: bool, return: { enum: ["stdout", "stderr", "code", "all", "none"] } },
      },
      useStreaming: bool,
    },
    ["run"],
  ),
  set: task({ set: { oneOf: [{ type: "object", minProperties: 1 }, str] } }, ["set"]),
  switch: task(
    {
      switch: {
        type: "array",
        minItems: 1,
        items: {
          type: "object",
          minProperties: 1,
          maxProperties: 1,
          additionalProperties: { type: "object", required: ["then"], additionalProperties: false, properties: { when: { type: ["string", "boolean"] }, then: str } },
        },
      },
    },
    ["switch"],
  ),
  try: task(
    {
      try: taskList,
      catch: {
        type: "object",
        additionalProperties: false,
        properties: {
          errors: {
            type: "object",
            additionalProperties: false,
            properties: {
              with: {
                type: "object",
                additionalProperties: false,
                properties: { type: str, status: { type: "integer" }, instance: str, title: str, details: str, detail: str },
              },
            },
          },
          as: str,
          when: str,
          exceptWhen: str,
          retry: { oneOf: [retryPolicy, str] },
          do: taskList,
        },
      },
    },
    ["try", "catch"],
  ),
  wait: task({ wait: duration }, ["wait"]),
};

export const TASK_TYPES = Object.keys(taskSchemas);

const NAME_RE = "^[a-z0-9](-?[a-z0-9])*$";
export const documentSchema: S = {
  type: "object",
  required: ["document", "do"],
  additionalProperties: false,
  properties: {
    document: {
      type: "object",
      required: ["dsl", "namespace", "name", "version"],
      additionalProperties: false,
      properties: {
        dsl: { type: "string", pattern: "^\\d+\\.\\d+\\.\\d+" },
        namespace: { type: "string", pattern: NAME_RE },
        name: { type: "string", pattern: NAME_RE },
        version: { type: "string", pattern: "^\\d+\\.\\d+\\.\\d+" },
        title: str,
        summary: str,
        tags: obj,
        metadata: obj,
      },
    },
    input,
    use: {
      type: "object",
      additionalProperties: false,
      properties: {
        authentications: { type: "object", additionalProperties: authPolicy },
        secrets: { type: "array", items: str },
        timeouts: { type: "object", additionalProperties: timeout },
      },
    },
    do: taskList,
    timeout,
    output,
    checkpointing: { type: "object", required: ["enabled"], additionalProperties: false, properties: { enabled: bool, storage: { enum: ["memory", "redis"] } } },
  },
};
