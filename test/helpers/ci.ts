/**
 * Whether the tests run under CI. CI systems set `CI` to `true`, `1`, `yes`
 * or their own name; any non-empty value counts, except an explicit `false`
 * or `0` (case and surrounding spaces ignored). Under CI a missing system
 * package fails its suite instead of skipping it, and vitest writes the
 * JUnit report `.ci/run` counts.
 */
export function isCI(env: Readonly<Record<string, string | undefined>> = process.env): boolean {
  const value = env.CI?.trim().toLowerCase() ?? "";
  return value !== "" && value !== "false" && value !== "0";
}

/**
 * Options for a vi.waitFor that names no timeout of its own: its default
 * (1 s) is no bound for a loaded 2-core CI machine. (expect.poll's default
 * is raised in vitest.config.ts.)
 */
export const CI_POLL = { timeout: 15_000 } as const;
