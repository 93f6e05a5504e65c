// Separates <think>…</think> sections (reasoning models served without a reasoning field) from the answer,
// across streamed pieces: a tag split between two pieces is held back until it is complete.
const OPEN = "<think>";
const CLOSE = "</think>";

/** Length of the longest suffix of `s` that is a proper prefix of `tag`. */
function partialTag(s: string, tag: string): number {
  for (let n = Math.min(tag.length - 1, s.length); n > 0; n--) if (s.endsWith(tag.slice(0, n))) return n;
  return 0;
}

export class ThinkSplitter {
  private buf = "";
  private inThink = false;

  feed(piece: string): { text: string; reasoning: string } {
    this.buf += piece;
    let text = "";
    let reasoning = "";
    for (;;) {
      const tag = this.inThink ? CLOSE : OPEN;
      const i = this.buf.indexOf(tag);
      if (i >= 0) {
        if (this.inThink) reasoning += this.buf.slice(0, i);
        else text += this.buf.slice(0, i);
        this.buf = this.buf.slice(i + tag.length);
        this.inThink = !this.inThink;
        continue;
      }
      const keep = partialTag(this.buf, tag);
      const out = this.buf.slice(0, this.buf.length - keep);
      this.buf = this.buf.slice(this.buf.length - keep);
      if (this.inThink) reasoning += out;
      else text += out;
      return { text, reasoning };
    }
  }

  flush(): { text: string; reasoning: string } {
    const rest = this.buf;
    this.buf = "";
    return this.inThink ? { text: "", reasoning: rest } : { text: rest, reasoning: "" };
  }
}

/** Whole-text form: answer and reasoning, trimmed of the whitespace the tags leave around. */
export function splitThink(text: string): { text: string; reasoning: string } {
  const s = new ThinkSplitter();
  const a = s.feed(text);
  const b = s.flush();
  return { text: (a.text + b.text).trim(), reasoning: (a.reasoning + b.reasoning).trim() };
}
