#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx), so `npx jobworkerp` works right after `npm install`.
import { register } from "tsx/esm/api";

register();
await import("../worker-container/src/cli/main.ts");
