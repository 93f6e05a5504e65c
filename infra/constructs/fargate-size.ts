// Fargate accepts only certain CPU/memory pairs; a channel with another pair would fail at deploy time, minutes
// in. Checked at synth instead, with the pairs that would fit.
const RANGES: Record<number, { min: number; max: number; step: number }> = {
  256: { min: 1024, max: 2048, step: 1024 }, // and 512, below
  512: { min: 1024, max: 4096, step: 1024 },
  1024: { min: 2048, max: 8192, step: 1024 },
  2048: { min: 4096, max: 16_384, step: 1024 },
  4096: { min: 8192, max: 30_720, step: 1024 },
  8192: { min: 16_384, max: 61_440, step: 4096 },
  16_384: { min: 32_768, max: 122_880, step: 8192 },
};

/** Why `cpu`/`memoryMiB` is not a Fargate task size, or undefined when it is. */
export function fargateSizeProblem(cpu: number, memoryMiB: number): string | undefined {
  const r = RANGES[cpu];
  if (!r) return `cpu ${cpu} is not a Fargate size (one of ${Object.keys(RANGES).join(", ")})`;
  if (cpu === 256 && memoryMiB === 512) return undefined;
  const ok = memoryMiB >= r.min && memoryMiB <= r.max && (memoryMiB - r.min) % r.step === 0;
  return ok ? undefined : `memoryMiB ${memoryMiB} does not fit cpu ${cpu} on Fargate (${r.min}..${r.max} in steps of ${r.step}${cpu === 256 ? ", or 512" : ""})`;
}
