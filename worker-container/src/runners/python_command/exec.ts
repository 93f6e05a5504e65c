// Runs a helper program (interpreter probe, venv creation, package install) to completion and captures its output,
// through the COMMAND runner's process helper (own process group, killed on abort).
import { create } from "@bufbuild/protobuf";
import { CommandArgsSchema } from "../../gen/jobworkerp/runner/command_args_pb.js";
import { startProcess } from "../command/process.js";

export interface Captured {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function capture(command: string, args: string[], signal: AbortSignal, env?: NodeJS.ProcessEnv): Promise<Captured> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const proc = await startProcess(
    create(CommandArgsSchema, { command, args }),
    signal,
    { onStdout: (b) => out.push(b), onStderr: (b) => err.push(b) },
    { env },
  );
  const { exitCode } = await proc.done;
  return { exitCode, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") };
}

/** The last lines of a tool's output, for error messages. */
export const tail = (s: string, chars = 1500) => s.trim().slice(-chars);
