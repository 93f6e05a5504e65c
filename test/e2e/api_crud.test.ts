// RunnerService, WorkerService CRUD, JobService / JobProcessingStatusService on pending jobs, WorkerInstanceService.
import protobuf from "protobufjs";
import { describe, expect, it } from "vitest";
import {
  COMMAND_RUNNER_ID,
  DEFAULT_CHANNEL,
  HTTP_REQUEST_RUNNER_ID,
  type JobAndStatus,
  collect,
  decodeHttpSettings,
  encodeCommandArgs,
  encodeHttpSettings,
  shArgs,
} from "../helpers/client.js";
import { createCommandWorker, uniqueName, useServer } from "../helpers/fixture.js";
import { isScalable } from "../helpers/server.js";

const fx = useServer({
  env: { WORKER_CHANNELS: "crud_ch", WORKER_CHANNEL_CONCURRENCIES: "2", WORKER_DEFAULT_CONCURRENCY: "3" },
});

describe("RunnerService", () => {
  it("FindListBy lists COMMAND and HTTP_REQUEST with their method protos", async () => {
    const runners = await collect(fx.api.runner.FindListBy({}));
    const byId = new Map(runners.map((r) => [r.id.value, r]));
    const cmd = byId.get(String(COMMAND_RUNNER_ID));
    const http = byId.get(String(HTTP_REQUEST_RUNNER_ID));
    expect(cmd?.data.name).toBe("COMMAND");
    expect(cmd?.data.runner_type).toBe("COMMAND");
    expect(http?.data.name).toBe("HTTP_REQUEST");
    expect(http?.data.runner_type).toBe("HTTP_REQUEST");

    const cmdRun = cmd!.data.method_proto_map?.schemas.run;
    expect(cmdRun, "COMMAND method_proto_map.schemas.run").toBeDefined();
    expect(cmdRun!.args_proto).toContain("message CommandArgs");
    expect(cmdRun!.result_proto).toContain("message CommandResult");
    expect(cmdRun!.output_type).toBe("BOTH");
    expect(cmd!.data.runner_settings_proto, "COMMAND has no settings").toBe("");

    const httpRun = http!.data.method_proto_map?.schemas.run;
    expect(httpRun!.args_proto).toContain("message HttpRequestArgs");
    expect(httpRun!.result_proto).toContain("message HttpResponseResult");
    expect(http!.data.runner_settings_proto).toContain("HttpRequestRunnerSettings");

    // a client compiles the served text: it must parse and be wire-compatible with proto/jobworkerp/runner
    const served = protobuf.parse(cmdRun!.args_proto, { keepCase: true }).root.lookupType("CommandArgs");
    const mine = encodeCommandArgs({ command: "echo", args: ["a", "b"], treat_nonzero_as_error: true, stdin: "in" });
    const decoded = served.toObject(served.decode(mine), { defaults: false });
    expect(decoded).toEqual({ command: "echo", args: ["a", "b"], treat_nonzero_as_error: true, stdin: "in" });
    const settingsType = protobuf.parse(http!.data.runner_settings_proto, { keepCase: true }).root.lookupType("HttpRequestRunnerSettings");
    const settings = Buffer.from(settingsType.encode(settingsType.fromObject({ base_url: "http://x" })).finish());
    expect(decodeHttpSettings(settings).base_url).toBe("http://x");
  });

  it("FindListBy / CountBy filter by runner type; Find(1) works; Find(999) has no data; FindByName", async () => {
    const onlyHttp = await collect(fx.api.runner.FindListBy({ runner_types: ["HTTP_REQUEST"] }));
    expect(onlyHttp.map((r) => r.id.value)).toEqual([String(HTTP_REQUEST_RUNNER_ID)]);
    const count = await fx.api.runner.CountBy({ runner_types: ["COMMAND"] });
    expect(Number(count.response.total)).toBe(1);
    const total = Number((await fx.api.runner.CountBy({})).response.total);
    expect(total).toBe((await collect(fx.api.runner.FindListBy({ limit: 1000 }))).length);

    const one = await fx.api.runner.Find({ value: COMMAND_RUNNER_ID });
    expect(one.response.data?.id.value).toBe("1");
    expect(one.response.data?.data.name).toBe("COMMAND");
    const missing = await fx.api.runner.Find({ value: 999 });
    expect(missing.response.data).toBeUndefined();
    const byName = await fx.api.runner.FindByName({ name: "HTTP_REQUEST" });
    expect(byName.response.data?.id.value).toBe("2");
    expect((await fx.api.runner.FindByName({ name: "NO_SUCH_RUNNER" })).response.data).toBeUndefined();
  });
});

describe("WorkerService CRUD", () => {
  it("Create, Find, FindByName, Update, UpsertByName, Delete", async () => {
    const name = uniqueName("crud");
    const data = {
      name,
      description: "first",
      runner_id: { value: COMMAND_RUNNER_ID },
      retry_policy: { type: "CONSTANT", interval: 250, max_interval: 1000, max_retry: 2, basis: 1.5 },
      periodic_interval: 0,
      channel: "crud_ch",
      queue_type: "WITH_BACKUP",
      response_type: "DIRECT",
      store_success: true,
      store_failure: false,
      use_static: false,
      broadcast_results: true,
    };
    const { response: created } = await fx.api.worker.Create(data);
    const id = created.id.value;
    expect(Number(id)).toBeGreaterThan(0);

    const found = (await fx.api.worker.Find({ value: id })).response.data!;
    expect(found.id.value).toBe(id);
    expect(found.data).toMatchObject({ ...data, runner_id: { value: "1" } });
    expect(found.data.retry_policy?.basis).toBeCloseTo(1.5);
    const byName = (await fx.api.worker.FindByName({ name })).response.data!;
    expect(byName.id.value).toBe(id);

    const updated = await fx.api.worker.Update({
      id: { value: id },
      data: { ...data, description: "second", response_type: "NO_RESULT", store_failure: true },
    });
    expect(updated.response.is_success).toBe(true);
    const after = (await fx.api.worker.Find({ value: id })).response.data!;
    expect(after.data.description).toBe("second");
    expect(after.data.response_type).toBe("NO_RESULT");
    expect(after.data.store_failure).toBe(true);

    // UpsertByName: existing name updates in place, a new name creates
    const up1 = await fx.api.worker.UpsertByName({ ...data, description: "third" });
    expect(up1.response.id.value).toBe(id);
    expect((await fx.api.worker.Find({ value: id })).response.data?.data.description).toBe("third");
    const newName = uniqueName("upsert-new");
    const up2 = await fx.api.worker.UpsertByName({ ...data, name: newName, description: "fresh" });
    expect(up2.response.id.value).not.toBe(id);
    expect((await fx.api.worker.FindByName({ name: newName })).response.data?.data.description).toBe("fresh");

    const del = await fx.api.worker.Delete({ value: id });
    expect(del.response.is_success).toBe(true);
    expect((await fx.api.worker.Find({ value: id })).response.data).toBeUndefined();
    expect((await fx.api.worker.FindByName({ name })).response.data).toBeUndefined();
    await fx.api.worker.Delete({ value: up2.response.id.value });
  });

  it("HTTP_REQUEST worker keeps its runner_settings bytes", async () => {
    const settings = encodeHttpSettings({ base_url: "http://127.0.0.1:1/base" });
    const { response } = await fx.api.worker.Create({
      name: uniqueName("http-settings"),
      runner_id: { value: HTTP_REQUEST_RUNNER_ID },
      runner_settings: settings,
    });
    const w = (await fx.api.worker.Find(response.id)).response.data!;
    expect(decodeHttpSettings(w.data.runner_settings).base_url).toBe("http://127.0.0.1:1/base");
  });

  it("FindList with filters, CountBy, FindChannelList", async () => {
    const prefix = uniqueName("flt");
    const ids = {
      a: await createCommandWorker(fx.api, { name: `${prefix}-a`, channel: "crud_ch" }),
      b: await createCommandWorker(fx.api, { name: `${prefix}-b`, channel: "crud_ch", periodic_interval: 60_000 }),
      c: await createCommandWorker(fx.api, { name: `${prefix}-c` }),
    };
    const http = (
      await fx.api.worker.Create({
        name: `${prefix}-http`,
        runner_id: { value: HTTP_REQUEST_RUNNER_ID },
        runner_settings: encodeHttpSettings({ base_url: "http://127.0.0.1:1" }),
      })
    ).response.id.value;
    const names = async (req: Record<string, unknown>) =>
      (await collect(fx.api.worker.FindList({ name_filter: prefix, ...req }))).map((w) => w.data.name).sort();
    const count = async (req: Record<string, unknown>) =>
      Number((await fx.api.worker.CountBy({ name_filter: prefix, ...req })).response.total);

    expect(await names({})).toEqual([`${prefix}-a`, `${prefix}-b`, `${prefix}-c`, `${prefix}-http`]);
    expect(await count({})).toBe(4);
    expect(await names({ channel: "crud_ch" })).toEqual([`${prefix}-a`, `${prefix}-b`]);
    expect(await count({ channel: "crud_ch" })).toBe(2);
    expect(await names({ runner_types: ["HTTP_REQUEST"] })).toEqual([`${prefix}-http`]);
    expect(await count({ runner_types: ["COMMAND"] })).toBe(3);
    expect(await names({ runner_ids: [{ value: HTTP_REQUEST_RUNNER_ID }] })).toEqual([`${prefix}-http`]);
    expect(await count({ runner_ids: [{ value: COMMAND_RUNNER_ID }] })).toBe(3);
    expect(await names({ is_periodic: true })).toEqual([`${prefix}-b`]);
    expect(await count({ is_periodic: false })).toBe(3);
    expect(await names({ limit: 2, sort_by: "WORKER_SORT_FIELD_NAME", ascending: true })).toEqual([`${prefix}-a`, `${prefix}-b`]);
    const desc = (await collect(fx.api.worker.FindList({ name_filter: prefix, sort_by: "WORKER_SORT_FIELD_NAME", ascending: false }))).map(
      (w) => w.data.name,
    );
    expect(desc).toEqual([`${prefix}-http`, `${prefix}-c`, `${prefix}-b`, `${prefix}-a`]);
    expect(await names({ limit: 2, offset: 2, sort_by: "WORKER_SORT_FIELD_NAME", ascending: true })).toEqual([
      `${prefix}-c`,
      `${prefix}-http`,
    ]);

    const { response } = await fx.api.worker.FindChannelList({});
    const chans = new Map(response.channels.map((c) => [c.name, c]));
    expect(chans.get(DEFAULT_CHANNEL)?.concurrency, `channels: ${JSON.stringify(response.channels)}`).toBe(3);
    expect(chans.get("crud_ch")?.concurrency).toBe(2);
    const onCrud = Number((await fx.api.worker.CountBy({ channel: "crud_ch" })).response.total);
    expect(Number(chans.get("crud_ch")?.worker_count)).toBe(onCrud);

    for (const id of [...Object.values(ids), http]) await fx.api.worker.Delete({ value: id });
    expect(await count({})).toBe(0);
  });
});

describe("JobService and JobProcessingStatusService on pending jobs", () => {
  it("jobs on a channel nobody serves stay PENDING and are visible to Find/FindList/Count/FindQueueList/FindListWithProcessingStatus", async () => {
    const workerId = await createCommandWorker(fx.api, { channel: "nobody_serves_this" });
    const before = Number((await fx.api.job.Count({})).response.total);
    const enq = async (priority: string, n: number) =>
      (
        await fx.api.job.Enqueue({
          worker_id: { value: workerId },
          args: shArgs(`echo ${n}`),
          priority,
          timeout: 5000,
        })
      ).response.id.value;
    const ids = [await enq("PRIORITY_LOW", 1), await enq("PRIORITY_MEDIUM", 2), await enq("PRIORITY_HIGH", 3)];
    expect(new Set(ids).size).toBe(3);

    const job = (await fx.api.job.Find({ value: ids[2] })).response.data!;
    expect(job.id.value).toBe(ids[2]);
    expect(job.data.worker_id.value).toBe(workerId);
    expect(job.data.priority).toBe("PRIORITY_HIGH");
    expect(job.data.timeout).toBe("5000");
    expect(Buffer.compare(job.data.args, shArgs("echo 3"))).toBe(0);
    expect(Number(job.data.enqueue_time)).toBeGreaterThan(Date.now() - 60_000);
    expect((await fx.api.job.Find({ value: "1" })).response.data).toBeUndefined();

    const listed = (await collect(fx.api.job.FindList({ limit: 1000 }))).map((j) => j.id.value);
    expect(listed).toEqual(expect.arrayContaining(ids));
    expect(Number((await fx.api.job.Count({})).response.total)).toBe(before + 3);

    const hasAll = (rows: JobAndStatus[]) => {
      const m = new Map(rows.map((r) => [r.job.id.value, r.status]));
      return ids.map((id) => m.get(id));
    };
    const queue = await collect(fx.api.job.FindQueueList({ channel: "nobody_serves_this", limit: 100 }));
    expect(hasAll(queue)).toEqual(["PENDING", "PENDING", "PENDING"]);
    const pending = await collect(fx.api.job.FindListWithProcessingStatus({ status: "PENDING", limit: 1000 }));
    expect(hasAll(pending)).toEqual(["PENDING", "PENDING", "PENDING"]);
    const running = await collect(fx.api.job.FindListWithProcessingStatus({ status: "RUNNING", limit: 1000 }));
    expect(running.filter((r) => ids.includes(r.job.id.value))).toEqual([]);

    for (const id of ids) expect((await fx.api.jobStatus.Find({ value: id })).response.status).toBe("PENDING");
    expect((await fx.api.jobStatus.Find({ value: "1" })).response.status).toBeUndefined();
    const all = new Map((await collect(fx.api.jobStatus.FindAll({}))).map((r) => [r.id.value, r.status]));
    expect(ids.map((id) => all.get(id))).toEqual(["PENDING", "PENDING", "PENDING"]);

    // Delete a pending job: gone everywhere
    expect((await fx.api.job.Delete({ value: ids[0] })).response.is_success).toBe(true);
    expect((await fx.api.job.Find({ value: ids[0] })).response.data).toBeUndefined();
    expect(Number((await fx.api.job.Count({})).response.total)).toBe(before + 2);
    const queue2 = await collect(fx.api.job.FindQueueList({ channel: "nobody_serves_this", limit: 100 }));
    expect(queue2.map((r) => r.job.id.value)).not.toContain(ids[0]);
    for (const id of ids.slice(1)) await fx.api.job.Delete({ value: id });
  });
});

describe("WorkerInstanceService", () => {
  it("reports this all-in-one process with its channels", async () => {
    const count = (await fx.api.workerInstance.Count({})).response;
    expect(Number(count.total)).toBeGreaterThanOrEqual(1);
    expect(Number(count.active)).toBeGreaterThanOrEqual(1);
    const instances = await collect(fx.api.workerInstance.FindList({}));
    expect(instances.length).toBeGreaterThanOrEqual(1);
    // Embedded, this all-in-one process is the instance and carries every channel. Scalable: the test harness
    // splits the configured channels over its two worker processes (the default channel on one, crud_ch on the
    // other), so the two instances together carry them.
    if (isScalable()) expect(instances.length, "one instance per worker process").toBe(2);
    const carriers = isScalable() ? instances : [instances[0]];
    const chans = new Map<string, number>();
    for (const i of carriers) for (const c of i.data.channels) chans.set(c.name, (chans.get(c.name) ?? 0) + c.concurrency);
    expect(chans.get("crud_ch")).toBe(2);
    expect(chans.get(DEFAULT_CHANNEL)).toBe(3);
    const one = (await fx.api.workerInstance.Find(instances[0].id)).response;
    expect(one.id.value).toBe(instances[0].id.value);
    const ic = (await fx.api.workerInstance.FindChannelList({})).response.channels;
    expect(ic.find((c) => c.name === "crud_ch")?.total_concurrency).toBe(2);
  });
});
