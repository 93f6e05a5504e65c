// Plain, printable views of the API's messages, with runner-specific bytes (settings, args, results)
// decoded through the served proto texts.
import { type DescEnum, type DescMessage, type MessageShape, toJson } from "@bufbuild/protobuf";
import { ResultStatus, RunnerTypeSchema } from "../../gen/jobworkerp/data/common_pb.js";
import { type Job, JobSchema } from "../../gen/jobworkerp/data/job_pb.js";
import { type JobResult, JobResultSchema } from "../../gen/jobworkerp/data/job_result_pb.js";
import type { Runner } from "../../gen/jobworkerp/data/runner_pb.js";
import { type Worker, WorkerSchema } from "../../gen/jobworkerp/data/worker_pb.js";
import { type Catalog, decodeOrRaw, methodOf } from "./catalog.js";
import type { Row } from "./output.js";

/** Flag values of an enum: proto names (PRIORITY_HIGH) and short names (HIGH). */
export function enumValues(e: DescEnum): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of e.values) {
    out[v.name] = v.number;
    out[v.localName.toUpperCase()] = v.number;
  }
  return out;
}

export function enumName(e: DescEnum, n: number | undefined): string | undefined {
  return n === undefined ? undefined : (e.value[n]?.name ?? String(n));
}

/** Proto3 JSON with the proto field names and every field shown. */
export function plain<D extends DescMessage>(schema: D, msg: MessageShape<D>): Row {
  return toJson(schema, msg, { useProtoFieldName: true, alwaysEmitImplicit: true }) as Row;
}

const idOf = (x: unknown) => (x as { value?: string } | undefined)?.value;

export async function workerView(catalog: Catalog, w: Worker): Promise<Row> {
  const p = plain(WorkerSchema, w);
  const data = (p.data ?? {}) as Row;
  let runner: Runner | undefined;
  try {
    runner = await catalog.runnerOfWorker(w);
  } catch {
    /* runner gone: show the raw settings */
  }
  return {
    id: idOf(p.id),
    ...data,
    runner_id: idOf(data.runner_id),
    runner: runner?.data?.name,
    retry_policy: data.retry_policy,
    runner_settings: decodeOrRaw(runner?.data?.runnerSettingsProto, w.data?.runnerSettings ?? new Uint8Array()),
  };
}

export function runnerView(r: Runner, detail: boolean): Row {
  const schemas = r.data?.methodProtoMap?.schemas ?? {};
  const row: Row = {
    id: r.id?.value.toString(),
    name: r.data?.name,
    runner_type: enumName(RunnerTypeSchema, r.data?.runnerType),
    methods: Object.keys(schemas).join(","),
    description: r.data?.description,
  };
  if (detail) {
    row.definition = r.data?.definition || undefined;
    row.runner_settings_proto = r.data?.runnerSettingsProto;
    row.method_proto_map = Object.fromEntries(
      Object.entries(schemas).map(([k, m]) => [
        k,
        { args_proto: m.argsProto, result_proto: m.resultProto, description: m.description, output_type: m.outputType, require_client_stream: m.requireClientStream },
      ]),
    );
  }
  return row;
}

/** The served proto text of a worker's method (args or result), or undefined when it cannot be found. */
export async function methodProto(catalog: Catalog, workerId: bigint | undefined, using: string | undefined, which: "argsProto" | "resultProto"): Promise<string | undefined> {
  if (workerId === undefined) return undefined;
  try {
    const runner = await catalog.runnerOfWorker(await catalog.worker({ id: workerId }));
    return methodOf(runner, using).schema[which];
  } catch {
    return undefined;
  }
}

export async function jobView(catalog: Catalog, j: Job): Promise<Row> {
  const p = plain(JobSchema, j);
  const data = (p.data ?? {}) as Row;
  const argsProto = await methodProto(catalog, j.data?.workerId?.value, j.data?.using, "argsProto");
  return { id: idOf(p.id), ...data, worker_id: idOf(data.worker_id), args: decodeOrRaw(argsProto, j.data?.args ?? new Uint8Array()), metadata: p.metadata };
}

/** A result's output: the decoded result message on success, the error text otherwise. */
export function outputOf(r: JobResult, resultProto: string | undefined): unknown {
  const bytes = r.data?.output?.items ?? new Uint8Array();
  if ((r.data?.status ?? ResultStatus.SUCCESS) !== ResultStatus.SUCCESS) return Buffer.from(bytes).toString("utf8");
  return decodeOrRaw(resultProto, bytes);
}

export async function resultView(catalog: Catalog, r: JobResult, known?: { argsProto?: string; resultProto?: string }): Promise<Row> {
  const p = plain(JobResultSchema, r);
  const data = (p.data ?? {}) as Row;
  const wid = r.data?.workerId?.value;
  const argsProto = known?.argsProto ?? (await methodProto(catalog, wid, r.data?.using, "argsProto"));
  const resultProto = known?.resultProto ?? (await methodProto(catalog, wid, r.data?.using, "resultProto"));
  return {
    id: idOf(p.id),
    ...data,
    job_id: idOf(data.job_id),
    worker_id: idOf(data.worker_id),
    args: decodeOrRaw(argsProto, r.data?.args ?? new Uint8Array()),
    output: outputOf(r, resultProto),
  };
}
