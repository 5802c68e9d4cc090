#!/usr/bin/env -S node --initial-old-space-size=64
// The flag: see src/app/heap-flags.ts (SERVER_HEAP_FLAGS); a test keeps the two in step.
import "../dist/cli/main.js";
