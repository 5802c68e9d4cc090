import { MemoryKeyValue } from "../../src/kv/memory-kv.js";
import { describeKeyValue } from "./key-value.contract.js";

describeKeyValue("in-memory (embedded)", {
  async open({ maxEntries, maxAgeMs }) {
    return new MemoryKeyValue({ maxEntries, maxAgeMs, maxValueBytes: 64 * 1024 });
  },
  notifiesExpiry: true,
  deliversEveryChange: true,
});
