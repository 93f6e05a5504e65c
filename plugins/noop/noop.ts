// The no-op PLUGIN runner, for benchmarks: returns its args' payload at once. It measures what the plugin
// machinery (a worker thread per instance, messages across it) adds to a job, next to the built-in NOOP runner.
// NoopPluginResult has the same wire shape as NoopPluginArgs, so the args bytes are the result: no codec needed.
import type { Plugin } from "../../worker-container/src/runners/plugin/contract.js";

const argsProto = `syntax = "proto3";
package jobworkerp.plugins.noop;

message NoopPluginArgs {
  bytes payload = 1;
}
`;
const resultProto = `syntax = "proto3";
package jobworkerp.plugins.noop;

message NoopPluginResult {
  bytes payload = 1;
}
`;

const plugin: Plugin = {
  name: "NoopPlugin",
  description: "Does nothing and returns the args' payload (benchmarks).",
  settingsProto: "",
  methods: { run: { argsProto, resultProto, description: "Return the payload at once.", outputType: "NON_STREAMING" } },
  async create() {
    return { run: async (args) => args };
  },
};

export default plugin;
