// DOCKER runner: runs a command in a container through a ContainerEngine (the Docker Engine API at
// DOCKER_HOST, which Podman also serves). Without use_static each job gets a one-shot container that is
// removed afterwards; with use_static each pooled instance keeps one container and execs the jobs in it.
import { RunnerType } from "../../gen/jobworkerp/data/common_pb.js";
import { StreamingOutputType } from "../../gen/jobworkerp/data/runner_pb.js";
import { DockerArgsSchema } from "../../gen/jobworkerp/runner/docker_args_pb.js";
import { DockerResultSchema } from "../../gen/jobworkerp/runner/docker_result_pb.js";
import { DockerRunnerSettingsSchema } from "../../gen/jobworkerp/runner/docker_settings_pb.js";
import { protoText } from "../proto_text.js";
import { RunnerError, type CreateOptions, type RunnerDefinition } from "../runner.js";
import { DockerodeEngine } from "./dockerode_engine.js";
import type { ContainerEngine } from "./engine.js";
import { OneShotInstance } from "./one_shot.js";
import { runLimit } from "./run_limit.js";
import { StaticInstance } from "./static_instance.js";
import { checkSettings, decode } from "./spec.js";

export const DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock";

/** The DOCKER runner over `engine` (default: the Docker Engine API at `dockerHost`). */
export function dockerRunner(opts: { dockerHost?: string; engine?: ContainerEngine } = {}): RunnerDefinition {
  let engine = opts.engine;
  // Created on first use: a server without any DOCKER worker never touches the socket.
  const getEngine = (): ContainerEngine => (engine ??= new DockerodeEngine(opts.dockerHost || DEFAULT_DOCKER_HOST));
  return {
    id: 4n,
    name: "DOCKER",
    description: "Runs a command in a container (Docker Engine API at DOCKER_HOST); returns exit code, stdout and stderr.",
    runnerType: RunnerType.DOCKER,
    settingsProto: protoText("jobworkerp/runner/docker_settings.proto"),
    settingsSchema: DockerRunnerSettingsSchema,
    methods: {
      run: {
        argsProto: protoText("jobworkerp/runner/docker_args.proto"),
        resultProto: protoText("jobworkerp/runner/docker_result.proto"),
        argsSchema: DockerArgsSchema,
        resultSchema: DockerResultSchema,
        description: "Run the container (or, for use_static workers, exec in the worker's container) and collect its output.",
        outputType: StreamingOutputType.NON_STREAMING,
      },
    },
    async create(bytes: Uint8Array, createOpts?: CreateOptions) {
      const settings = checkSettings(decode(DockerRunnerSettingsSchema, bytes, "DockerRunnerSettings"));
      if (!createOpts?.useStatic || getEngine().oneShotOnly) return new OneShotInstance(getEngine(), settings);
      if (!settings.image) {
        throw new RunnerError("FATAL_ERROR", "a use_static DOCKER worker needs its image in the settings (from_image or repo/tag)");
      }
      const inst = new StaticInstance(getEngine(), settings, settings.image);
      const limit = runLimit(new AbortController().signal, 0);
      try {
        await inst.ensureContainer(limit);
      } finally {
        limit.dispose();
      }
      return inst;
    },
  };
}
