import { MemoryJobQueue } from "../../src/queue/memory-queue.js";
import { describeJobQueue } from "./job-queue.contract.js";

describeJobQueue("in-memory FIFO", async (options) => new MemoryJobQueue(options));
