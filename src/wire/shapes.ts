import { z } from "zod";
import { PROBLEM_TYPES, type ProblemCode } from "../errors/problem-types.js";
import { OUTPUT_FORMATS } from "../image/formats.js";

/**
 * Pieces two protocols share: what a worker reports about the image it
 * wrote and the problem it failed with, both in the worker process's frames
 * and in the data-path outcome between nodes.
 */

const PROBLEM_CODES = Object.keys(PROBLEM_TYPES) as [ProblemCode, ...ProblemCode[]];

/** A problem by its registered code: an unknown code cannot be answered to a client. */
export const WireProblemWire = z.object({ code: z.enum(PROBLEM_CODES), detail: z.string() });

/** Tolerant (unknown fields dropped): further fields can only describe the image further. */
export const OutputInfoWire = z.object({
  format: z.enum(OUTPUT_FORMATS),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  bytes: z.number().int().nonnegative(),
  pages: z.number().int().positive(),
});

/** A duration, byte or pixel count: finite and not negative. */
export const countWire = z.number().finite().nonnegative();
