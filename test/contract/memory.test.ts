// The port contracts against the in-process adapters (embedded mode).
import { MemoryJobQueue } from "../../worker-container/src/adapters/memory/job_queue.js";
import { MemoryJobState } from "../../worker-container/src/adapters/memory/job_state.js";
import { MemoryResultBus } from "../../worker-container/src/adapters/memory/result_bus.js";
import { describeJobQueueContract, describeWaitForWorkWakes } from "./job_queue.contract.js";
import { describeJobStateContract } from "./job_state.contract.js";
import { describeResultBusContract } from "./result_bus.contract.js";

describeJobQueueContract("memory", async ({ leaseMs }) => new MemoryJobQueue(leaseMs));
describeWaitForWorkWakes("memory", async () => new MemoryJobQueue());
describeJobStateContract("memory", async () => new MemoryJobState());
describeResultBusContract("memory", async () => new MemoryResultBus());
