import type { ProblemCode } from "../errors/problem-types.js";

/**
 * What a request did, gathered for its one log line. Only for the log:
 * billing never reads it (see `billWork` in metering.ts), so a field here
 * can be renamed without changing what anyone pays.
 */
export interface RequestFacts {
  problem?: ProblemCode;
  tenant?: string;
  key?: string;
  inBytes?: number;
  outBytes?: number;
  inFormat?: string;
  outFormat?: string;
  inSize?: string;
  outSize?: string;
  /** Pixels decoded (width × height × frames) and written. */
  inPixels?: number;
  outPixels?: number;
  timings?: Record<string, number>;
}

declare module "fastify" {
  interface FastifyReply {
    imgfleet: RequestFacts;
  }
}
