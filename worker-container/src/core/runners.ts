// The runner catalogue: built-in runner definitions by id, and their wire form (Runner messages with proto texts).
import { create } from "@bufbuild/protobuf";
import {
  MethodProtoMapSchema,
  MethodSchemaSchema,
  RunnerSchema,
  StreamingOutputType,
  type Runner,
} from "../gen/jobworkerp/data/runner_pb.js";
import type { MethodDefinition, RunnerDefinition } from "../runners/runner.js";
import { invalid } from "./errors.js";
import type { RunnerRow } from "./ports.js";

export const DEFAULT_METHOD = "run";

export class RunnerRegistry {
  private byId = new Map<bigint, RunnerDefinition>();

  constructor(definitions: RunnerDefinition[]) {
    for (const d of definitions) this.byId.set(d.id, d);
  }

  get(id: bigint): RunnerDefinition | undefined {
    return this.byId.get(id);
  }

  /** Rows to seed into the store's runner table. */
  builtinRows(createdAt: number): RunnerRow[] {
    return [...this.byId.values()].map((d) => ({
      id: d.id,
      name: d.name,
      description: d.description,
      runnerType: d.runnerType,
      definition: `builtin${d.id}`,
      createdAt,
    }));
  }

  /** The wire form of a runner row: proto texts are computed from the implementation, never stored. */
  toMessage(row: RunnerRow): Runner {
    const def = this.byId.get(row.id);
    const schemas = Object.fromEntries(
      Object.entries(def?.methods ?? {}).map(([name, m]) => [
        name,
        create(MethodSchemaSchema, {
          argsProto: m.argsProto,
          resultProto: m.resultProto,
          description: m.description,
          outputType: m.outputType,
          requireClientStream: m.requireClientStream ?? false,
        }),
      ]),
    );
    return create(RunnerSchema, {
      id: { value: row.id },
      data: {
        name: row.name,
        description: row.description,
        runnerType: row.runnerType,
        runnerSettingsProto: def?.settingsProto ?? "",
        definition: row.definition,
        methodProtoMap: create(MethodProtoMapSchema, { schemas }),
      },
    });
  }
}

/** Resolve `using` against a runner's methods: single-method runners default to their only method. */
export function resolveMethod(def: RunnerDefinition, using: string | undefined): [string, MethodDefinition] {
  const names = Object.keys(def.methods);
  const name = using && using.length > 0 ? using : names.length === 1 ? names[0] : undefined;
  if (name === undefined) {
    throw invalid(`runner ${def.name} has several methods (${names.join(", ")}); set 'using'`);
  }
  const m = def.methods[name];
  if (!m) throw invalid(`runner ${def.name} has no method '${name}' (methods: ${names.join(", ")})`);
  return [name, m];
}

export const canStream = (m: MethodDefinition) =>
  m.outputType === StreamingOutputType.STREAMING || m.outputType === StreamingOutputType.BOTH;
