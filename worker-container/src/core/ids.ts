// Snowflake ids as jobworkerp-rs makes them: (ms since the Twitter epoch) << 22 | node(10 bits) << 12 | sequence(12 bits).
import { networkInterfaces } from "node:os";

const EPOCH = 1288834974657n;

export class SnowflakeGenerator {
  private lastMs = -1n;
  private sequence = 0n;

  constructor(private readonly node: bigint = nodeFromHostIp()) {
    if (node < 0n || node > 1023n) throw new RangeError(`snowflake node must be 0..1023, got ${node}`);
  }

  next(): bigint {
    let now = BigInt(Date.now());
    if (now < this.lastMs) now = this.lastMs; // clock went back: stay monotonic
    if (now === this.lastMs) {
      this.sequence = (this.sequence + 1n) & 0xfffn;
      if (this.sequence === 0n) now = this.lastMs + 1n; // 4096 ids in one ms: borrow the next ms
    } else {
      this.sequence = 0n;
    }
    this.lastMs = now;
    return ((now - EPOCH) << 22n) | (this.node << 12n) | this.sequence;
  }
}

/** Lower 10 bits of the first non-internal IPv4 address; random when there is none. */
export function nodeFromHostIp(): bigint {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family === "IPv4" && !a.internal) {
        const [, , c, d] = a.address.split(".").map(Number);
        return BigInt(((c << 8) | d) & 0x3ff);
      }
    }
  }
  return BigInt(Math.floor(Math.random() * 1024));
}

/** Unix ms embedded in a snowflake id. */
export const snowflakeTime = (id: bigint): number => Number((id >> 22n) + EPOCH);
