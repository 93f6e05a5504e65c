// `worker-instance list`: the worker processes registered with the system and their channels.
import { WorkerInstanceSchema } from "../../../gen/jobworkerp/data/worker_instance_pb.js";
import { WorkerInstanceService } from "../../../gen/jobworkerp/service/worker_instance_pb.js";
import { parseFlags, str } from "../args.js";
import type { Group } from "../context.js";
import { plain } from "../views.js";

const LIST_USAGE = "usage: jobworkerp worker-instance list [--channel NAME] [--active-only] [--json]";

export const workerInstanceCommands: Group = {
  summary: "worker instances (the processes that run jobs)",
  commands: {
    list: {
      summary: "list worker instances",
      usage: LIST_USAGE,
      async run(argv, { conn, print }) {
        const v = parseFlags(argv, { channel: { type: "string", short: "c" }, "active-only": { type: "boolean" } }, LIST_USAGE);
        const rows = [];
        for await (const w of conn.stream(WorkerInstanceService, "findList", { channel: str(v, "channel"), activeOnly: v["active-only"] ? true : undefined })) {
          const p = plain(WorkerInstanceSchema, w);
          const d = (p.data ?? {}) as Record<string, unknown>;
          const ms = (x: unknown) => (print.json ? x : new Date(Number(x)).toISOString());
          rows.push({
            id: (p.id as { value?: string } | undefined)?.value,
            ...d,
            channels: print.json ? d.channels : w.data?.channels.map((c) => `${c.name}:${c.concurrency}`).join(","),
            registered_at: ms(d.registered_at),
            last_heartbeat: ms(d.last_heartbeat),
          });
        }
        print.list(rows, ["id", "ip_address", "hostname", "channels", "registered_at", "last_heartbeat"]);
      },
    },
  },
};
