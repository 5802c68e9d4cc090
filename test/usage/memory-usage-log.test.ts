import { MemoryUsageLog } from "../../src/usage/memory-usage-log.js";
import { describeUsageLog } from "./usage-log.contract.js";

describeUsageLog("in-memory (embedded)", {
  async open({ capacity }) {
    return new MemoryUsageLog({ capacity });
  },
  freesRoomAfterAck: false,
});
