// Entry of a plugin's worker thread. Threads do not inherit the tsx loader of the main thread, so register it
// first: plugins and the thread host (thread.ts) may be TypeScript.
import { register } from "tsx/esm/api";

register();
await import("./thread.ts");
