// A progress spinner on stderr while the CLI waits (DIRECT results, listens, streams); only on a terminal,
// so pipes and logs never see escape codes.
const FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

export interface Spinner {
  /** Erases the spinner (call before writing to stdout, and when done). */
  stop(): void;
}

export function startSpinner(text: string, stream: NodeJS.WriteStream = process.stderr): Spinner {
  if (!stream.isTTY) return { stop() {} };
  let i = 0;
  let shown = false;
  const draw = () => {
    stream.write(`\r${FRAMES[i++ % FRAMES.length]} ${text}`);
    shown = true;
  };
  const timer = setInterval(draw, 100);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      if (shown) stream.write("\r\x1b[K");
      shown = false;
    },
  };
}
