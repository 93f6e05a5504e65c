// NOOP runner: returns at once, doing no work. Only for benchmarks and tests (it measures the system around a
// job, not a job): registered only when JOBWORKERP_ENABLE_NOOP_RUNNER=true (cli/config.ts, cli/compose.ts).
//
// NoopResult{payload = 1} has the same wire shape as NoopArgs{payload = 1}, so the result is the args bytes
// themselves: no decode, no encode, no copy. (The front has already checked that the args decode as NoopArgs.)
import { RunnerType } from "../../gen/jobworkerp/data/common_pb.js";
import { StreamingOutputType } from "../../gen/jobworkerp/data/runner_pb.js";
import { NoopArgsSchema } from "../../gen/jobworkerp/runner/noop_args_pb.js";
import { NoopResultSchema } from "../../gen/jobworkerp/runner/noop_result_pb.js";
import { protoText } from "../proto_text.js";
import type { RunnerDefinition, RunnerInstance } from "../runner.js";

/** Far from jobworkerp's built-in ids (1..8, 32768..) and from ids its runner table hands out to plugins. */
export const NOOP_RUNNER_ID = 65000n;

const instance: RunnerInstance = {
  run: (args) => Promise.resolve(args),
};

export const noopRunner: RunnerDefinition = {
  id: NOOP_RUNNER_ID,
  name: "NOOP",
  description: "Does nothing and returns the args' payload unchanged (benchmarks and tests only).",
  runnerType: RunnerType.PLUGIN,
  settingsProto: "",
  methods: {
    run: {
      argsProto: protoText("jobworkerp/runner/noop_args.proto"),
      resultProto: protoText("jobworkerp/runner/noop_result.proto"),
      argsSchema: NoopArgsSchema,
      resultSchema: NoopResultSchema,
      description: "Return at once with the args' payload.",
      outputType: StreamingOutputType.NON_STREAMING,
    },
  },
  // No settings and no state: one shared instance.
  async create() {
    return instance;
  },
};
