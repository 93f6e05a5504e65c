// Example PLUGIN runner: greets someone. Settings carry the greeting, args the name, the result the message;
// streaming yields the message word by word (one HelloResult per word).
//
// A plugin is an ES module whose default export follows worker-container/src/runners/plugin/contract.ts:
// bytes in, bytes out, with the .proto texts clients use to encode settings/args and decode results.
// Put it (or its folder) in PLUGINS_RUNNER_DIR and it becomes a runner named "HelloPlugin" at start-up.
import protobuf from "protobufjs";
import type { Plugin, PluginRunContext } from "../../worker-container/src/runners/plugin/contract.js";

const settingsProto = `syntax = "proto3";
package jobworkerp.plugins.hello;

// Worker settings of HelloPlugin.
message HelloSettings {
  // Greeting word (default "Hello").
  string greeting = 1;
}
`;
const argsProto = `syntax = "proto3";
package jobworkerp.plugins.hello;

message HelloArgs {
  // Whom to greet.
  string name = 1;
}
`;
const resultProto = `syntax = "proto3";
package jobworkerp.plugins.hello;

// The whole greeting, or one word of it when streaming.
message HelloResult {
  string message = 1;
}
`;

const root = new protobuf.Root();
for (const text of [settingsProto, argsProto, resultProto]) protobuf.parse(text, root, { keepCase: true });
const Settings = root.lookupType("jobworkerp.plugins.hello.HelloSettings");
const Args = root.lookupType("jobworkerp.plugins.hello.HelloArgs");
const Result = root.lookupType("jobworkerp.plugins.hello.HelloResult");

const encodeResult = (message: string) => Result.encode(Result.create({ message })).finish();

const plugin: Plugin = {
  name: "HelloPlugin",
  description: "Greets a name with the worker's greeting (example plugin; streams word by word).",
  settingsProto,
  methods: {
    run: { argsProto, resultProto, description: "Say hello to args.name.", outputType: "BOTH" },
  },
  async create(settingsBytes) {
    const settings = Settings.decode(settingsBytes) as unknown as { greeting: string };
    const greeting = settings.greeting || "Hello";
    const message = (args: Uint8Array) => {
      const { name } = Args.decode(args) as unknown as { name: string };
      if (!name) throw Object.assign(new Error("args.name is empty"), { kind: "FATAL_ERROR" });
      return `${greeting}, ${name}!`;
    };
    return {
      async run(args) {
        return encodeResult(message(args));
      },
      async *runStream(args, ctx: PluginRunContext) {
        for (const word of message(args).split(" ")) {
          if (ctx.signal.aborted) return;
          yield encodeResult(word);
        }
      },
    };
  },
};

export default plugin;
