// Splits a child's output stream into lines ("\n", an optional "\r" before it is dropped). Bytes are joined
// before decoding, so a UTF-8 character split across reads stays whole. A line longer than `maxBytes` is
// reported through `onOverflow` (the child is misbehaving) instead of growing without bound.
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxBytes: number,
    private readonly onOverflow: () => void,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      const whole = this.parts.length === 0 ? piece : Buffer.concat([...this.parts, piece]);
      this.parts = [];
      this.size = 0;
      start = nl + 1;
      const end = whole.length > 0 && whole[whole.length - 1] === 13 ? whole.length - 1 : whole.length;
      this.onLine(whole.toString("utf8", 0, end));
    }
    if (start < chunk.length) {
      this.parts.push(chunk.subarray(start));
      this.size += chunk.length - start;
      if (this.size > this.maxBytes) {
        this.parts = [];
        this.size = 0;
        this.onOverflow();
      }
    }
  }

  /** The unterminated rest, if any (the stream ended). */
  end(): void {
    if (this.size > 0) this.push(Buffer.from("\n"));
  }
}

/** The last `max` characters written, for error messages. */
export class Tail {
  private text = "";
  constructor(private readonly max = 2000) {}
  add(s: string): void {
    this.text = (this.text + s).slice(-this.max);
  }
  get value(): string {
    return this.text.trim();
  }
}
