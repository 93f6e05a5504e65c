// Embedded mode has one process: it always leads.
import type { LeaderLock } from "../../core/ports.js";

export class MemoryLeaderLock implements LeaderLock {
  async acquire(): Promise<boolean> {
    return true;
  }
  async renew(): Promise<boolean> {
    return true;
  }
  async release(): Promise<void> {}
}
