/**
 * Start-time fair queueing between tenants, by measured cost. Each tenant
 * has a virtual time: the CPU its jobs have cost, in ms. The next job comes
 * from the waiting tenant with the least virtual time, so a tenant whose
 * jobs cost 10 s each gets one job for every ~500 of a tenant whose jobs
 * cost 20 ms, and neither waits behind the other's backlog.
 *
 * A job's cost is known only when it ends, so dispatch charges an estimate
 * (the tenant's recent average) and the end corrects it: a tenant sending
 * a burst of expensive jobs is charged for them as they are handed out, not
 * only after the first ones finish.
 */

/** Estimated cost of a tenant's first job: a typical small resize. */
const FIRST_ESTIMATE_MS = 50;
/** Weight of the newest job in a tenant's average cost. */
const AVERAGE_WEIGHT = 0.3;
/**
 * The most a tenant returning from idle may be behind the system's virtual
 * time: past spending costs it priority for a while, not for good.
 */
const MAX_DEBT_MS = 60_000;
/** Tenants remembered without work waiting or running; the least recently active are forgotten. */
const MAX_IDLE_TENANTS = 10_000;

interface Account {
  virtualMs: number;
  averageMs: number;
  /** Jobs handed out and not yet ended. */
  running: number;
  waiting: number;
}

export class FairShare {
  readonly #accounts = new Map<string, Account>();
  /** The system's virtual time: the start (virtual time before its charge) of the latest job handed out. */
  #clockMs = 0;

  /**
   * A job of `tenant` joined the queue. A tenant returning from idle starts
   * at the system's virtual time: no credit saved up while it was away, no
   * debt from other tenants' backlogs, and at most MAX_DEBT_MS of its own.
   */
  joined(tenant: string): void {
    const account = this.#account(tenant);
    if (account.waiting === 0 && account.running === 0) {
      const clock = this.#clockMs;
      account.virtualMs = Math.min(Math.max(account.virtualMs, clock), clock + MAX_DEBT_MS);
    }
    account.waiting++;
  }

  /**
   * Of `tenants` (each with a job waiting, oldest first), the one to serve
   * next: the least virtual time; on a tie the one with fewer jobs on
   * workers (a tenant just back from idle goes before one with a backlog),
   * then the oldest.
   */
  pick(tenants: Iterable<string>): string | undefined {
    let best: string | undefined;
    let bestKey: [number, number] = [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY];
    for (const tenant of tenants) {
      const account = this.#accounts.get(tenant);
      const key: [number, number] = [account?.virtualMs ?? 0, account?.running ?? 0];
      if (key[0] < bestKey[0] || (key[0] === bestKey[0] && key[1] < bestKey[1]))
        [best, bestKey] = [tenant, key];
    }
    return best;
  }

  /** A job left the queue for a worker; returns the estimate charged, which `ended` corrects. */
  dispatched(tenant: string): number {
    const account = this.#account(tenant);
    account.waiting = Math.max(0, account.waiting - 1);
    account.running++;
    this.#clockMs = Math.max(this.#clockMs, account.virtualMs);
    account.virtualMs += account.averageMs;
    return account.averageMs;
  }

  /** The job ended (or went back to the queue, `costMs` 0); replaces its estimate by what it cost. */
  ended(tenant: string, estimateMs: number, costMs: number | undefined): void {
    const account = this.#account(tenant);
    account.running = Math.max(0, account.running - 1);
    if (costMs === undefined) {
      account.virtualMs -= estimateMs;
      return;
    }
    account.virtualMs += costMs - estimateMs;
    account.averageMs += AVERAGE_WEIGHT * (costMs - account.averageMs);
    this.#forgetIdle();
  }

  /** Virtual time of `tenant`, for tests and diagnostics. */
  virtualMs(tenant: string): number {
    return this.#accounts.get(tenant)?.virtualMs ?? 0;
  }

  #account(tenant: string): Account {
    let account = this.#accounts.get(tenant);
    if (!account) {
      account = { virtualMs: this.#clockMs, averageMs: FIRST_ESTIMATE_MS, running: 0, waiting: 0 };
      this.#accounts.set(tenant, account);
    } else {
      // Map order is the least recently active first: move this one to the end.
      this.#accounts.delete(tenant);
      this.#accounts.set(tenant, account);
    }
    return account;
  }

  #forgetIdle(): void {
    if (this.#accounts.size <= MAX_IDLE_TENANTS) return;
    for (const [tenant, account] of this.#accounts) {
      if (this.#accounts.size <= MAX_IDLE_TENANTS) return;
      if (account.waiting === 0 && account.running === 0) this.#accounts.delete(tenant);
    }
  }
}
