#!/usr/bin/env node
// The CLI is TypeScript run through tsx, like the services; this shim makes it a plain binary.
import { register } from "tsx/esm/api";

register();
await import("../src/main.ts");
