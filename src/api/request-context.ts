import type { ProblemCode } from "../errors/problem-types.js";

/** What a request did, gathered for its one log line. */
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
  /** Pixels decoded (width × height × frames) and written, for metering. */
  inPixels?: number;
  outPixels?: number;
  timings?: Record<string, number>;
}

declare module "fastify" {
  interface FastifyReply {
    imgfleet: RequestFacts;
  }
}
