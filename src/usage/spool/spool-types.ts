/*
 * The spool's options and the records of its index, shared by the spool and
 * its segment files (each imports these, neither imports the other).
 */

export interface SpoolOptions {
  dir: string;
  /** Goes into UsageBatch.node. */
  node: string;
  /** The bound `full` checks. */
  maxBytes: number;
  /** After a seal, if the current segment is at least this big, the next batch opens a new segment. */
  segmentBytes: number;
  /** always: after every record and seal; seal: after each seal (and the directory on segment changes); never. */
  fsync: "always" | "seal" | "never";
  /** For tests. */
  now?: () => number;
}

/** Where a sealed batch lies: frames [start, end) of segment `segment`. */
export interface BatchRef {
  id: string;
  segment: number;
  start: number;
  end: number;
  sealedAt: number;
  records: number;
}

/** What `open` had to repair, for a log line. */
export interface SpoolRecovery {
  truncatedBytes: number;
  repairedSegments: string[];
  recoveredBatch: BatchRef | null;
  droppedEmptyBatch: boolean;
}
