// Key naming shared by the Redis adapters. Keys that one Lua script touches together share a hash tag
// (`{...}`), so they live in one Redis Cluster slot.

export const DEFAULT_PREFIX = "jobworkerp";

/** `prefix:{tag}`: every key built on this base hashes to the same cluster slot. */
export const slotBase = (prefix: string, tag: string): string => `${prefix}:{${tag}}`;
