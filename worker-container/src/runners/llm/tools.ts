// Tools the LLM runner can offer a model besides the client's own: the server's workers and runners.
// The runner sees only this interface; core/functions.ts implements it over the System.

export interface ToolSpec {
  /** Function name as the model sees it (OpenAI: [A-Za-z0-9_-]{1,64}). */
  name: string;
  description: string;
  /** JSON Schema of the arguments object. */
  parameters: Record<string, unknown>;
}

export interface ToolListOptions {
  useRunners: boolean;
  useWorkers: boolean;
  functionSetName?: string;
}

export interface ToolCallOutcome {
  /** JSON text of the tool's result. */
  result: string;
  /** Id of the job that ran the tool. */
  jobId?: bigint;
}

export interface ToolHost {
  list(opts: ToolListOptions): Promise<ToolSpec[]>;
  /** Runs the tool; rejects with an Error whose message says why it failed. */
  call(name: string, argsJson: string, signal: AbortSignal, onStarted?: (jobId: bigint) => void): Promise<ToolCallOutcome>;
}

/**
 * A ToolHost bound after construction: the runner registry is built before the System whose workers
 * and runners the tools run on, so the composition root binds the real host once the System exists.
 */
export class LateBoundToolHost implements ToolHost {
  private host?: ToolHost;

  bind(host: ToolHost): void {
    this.host = host;
  }

  private target(): ToolHost {
    if (!this.host) throw new Error("server tools are not available in this process");
    return this.host;
  }

  list(opts: ToolListOptions): Promise<ToolSpec[]> {
    return this.target().list(opts);
  }

  call(name: string, argsJson: string, signal: AbortSignal, onStarted?: (jobId: bigint) => void): Promise<ToolCallOutcome> {
    return this.target().call(name, argsJson, signal, onStarted);
  }
}
