/**
 * What API keys cost: imgfleet with auth.mode=keys (a tenant's key sent with
 * every request) against the matrix's imgfleet (auth.mode=none), both metering.
 */
import { startAuthenticatedImgfleet, UNBOUNDED_TENANT } from "./auth-server.js";
import { type ComparisonResult, comparisonResult, type Feature, medianOf } from "./comparison.js";
import { type BenchConfig, COMPARISON_WORKLOADS, corpusFile } from "./config.js";
import type { RunningServer } from "./servers.js";
import type { AuthExtra, Workload } from "./types.js";

const say = (text: string) => process.stdout.write(`${text}\n`);

function authFeature(workload: Workload, rounds: number): Feature<AuthExtra> {
  return {
    phase: "auth",
    workload,
    rounds,
    labels: { baseline: "no-auth", variant: "auth" },
    extra: (kept) => ({
      authStepMs: medianOf(
        kept.flatMap((r) => (r.variant.serverTimings ? [r.variant.serverTimings.auth] : [])),
      ),
    }),
  };
}

export type AuthResult = ComparisonResult<AuthExtra> & { tenantLimits: typeof UNBOUNDED_TENANT };

/**
 * A second imgfleet, with API keys, started only now so that it sits idle
 * through nothing the ceiling phase measures; then both alternated.
 */
export async function authPhase(config: BenchConfig, withoutAuth: RunningServer): Promise<AuthResult> {
  const workload = COMPARISON_WORKLOADS.auth;
  say(`\nauth phase: ${workload.id}, ${config.authRounds} rounds of (without auth, with auth)`);
  const withAuth = await startAuthenticatedImgfleet(workload, corpusFile(config, workload));
  say(`imgfleet-auth pid ${withAuth.pid} at ${withAuth.url} (auth.mode=keys, one tenant, one API key)`);
  const servers = { baseline: withoutAuth, variant: withAuth };
  const result = await comparisonResult(config, servers, authFeature(workload, config.authRounds));
  return { ...result, tenantLimits: UNBOUNDED_TENANT };
}
