/**
 * The gate's own judgement of one backend, from the requests it forwards —
 * besides what the cluster says. Two things make a backend worth avoiding
 * before its checkers or membership notice:
 * - `failing`: `errorLimit` connection-level failures in a row (refused,
 *   reset, connect timeout, closed before answering);
 * - `slow`: the p99 of its recent times to response headers is above
 *   `slowP99` (the seed's "failover on high latency").
 * A failing or slow backend gets no new requests except one trial every
 * `trialEvery` ms: a failing one is fine again after one answer, a slow one
 * after `recoverAfter` trials in a row under the bound.
 *
 * The p99 is recomputed at most every 16 samples or 100 ms, by sorting a
 * copy of at most `samples` numbers: exact over the window, and cheap per
 * request (a histogram would be cheaper still but coarse at the bound).
 */

export interface ObservedHealthConfig {
  readonly errorLimit: number;
  readonly trialEvery: number;
  readonly slowP99?: number;
  readonly samples: number;
  readonly window: number;
  readonly minSamples: number;
  readonly recoverAfter: number;
}

export type Observed = 'ok' | 'failing' | 'slow';

const RECOMPUTE_EVERY = 16;
const RECOMPUTE_AFTER_MS = 100;

export class ObservedHealth {
  onChange?: (from: Observed, to: Observed, why: string) => void;
  private current: Observed = 'ok';
  private failures = 0;
  private goodTrials = 0;
  private lastTrial = -Infinity;
  private readonly latency: Float64Array;
  private readonly at: Float64Array;
  private next = 0;
  private count = 0;
  private sinceCompute = 0;
  private lastCompute = -Infinity;
  private cachedN = 0;

  constructor(
    private readonly config: ObservedHealthConfig,
    private readonly now: () => number,
  ) {
    this.latency = new Float64Array(config.samples);
    this.at = new Float64Array(config.samples);
  }

  get state(): Observed {
    return this.current;
  }

  success(latency: number): void {
    const now = this.now();
    this.failures = 0;
    if (this.current === 'failing') {
      this.clearSamples();
      this.record(latency, now);
      return this.set('ok', `answered again (in ${Math.round(latency)} ms)`);
    }
    const bound = this.config.slowP99;
    if (this.current === 'slow') {
      // Only trials reach a slow backend: judge them one by one.
      if (bound !== undefined && latency > bound) {
        this.goodTrials = 0;
        return;
      }
      if (++this.goodTrials >= this.config.recoverAfter) {
        this.clearSamples();
        this.set('ok', `${this.goodTrials} trials in a row answered within slow_p99 ${bound} ms`);
      }
      return;
    }
    this.record(latency, now);
    if (bound === undefined) return;
    if (++this.sinceCompute < RECOMPUTE_EVERY && now - this.lastCompute < RECOMPUTE_AFTER_MS) return;
    const p99 = this.compute(now);
    if (p99 !== undefined && p99 > bound) {
      const n = this.cachedN;
      this.clearSamples();
      this.goodTrials = 0;
      this.set('slow', `p99 ${Math.round(p99)} ms over ${n} requests > slow_p99 ${bound} ms`);
    }
  }

  failure(): void {
    this.goodTrials = 0;
    if (++this.failures >= this.config.errorLimit && this.current !== 'failing') {
      this.set('failing', `${this.failures} connection failures in a row`);
    }
  }

  /** The cluster vouches for the backend again (it was down and its checkers passed): start from a clean judgement. */
  reset(why: string): void {
    this.failures = 0;
    this.goodTrials = 0;
    this.clearSamples();
    this.set('ok', why);
  }

  admitTrial(): boolean {
    if (this.current === 'ok') return false;
    const now = this.now();
    if (now - this.lastTrial < this.config.trialEvery) return false;
    this.lastTrial = now;
    return true;
  }

  p99(): number | undefined {
    return this.compute(this.now());
  }

  private record(latency: number, now: number): void {
    this.latency[this.next] = latency;
    this.at[this.next] = now;
    this.next = (this.next + 1) % this.config.samples;
    if (this.count < this.config.samples) this.count++;
  }

  private clearSamples(): void {
    this.count = 0;
    this.next = 0;
    this.cachedN = 0;
  }

  private compute(now: number): number | undefined {
    this.sinceCompute = 0;
    this.lastCompute = now;
    const fresh: number[] = [];
    for (let i = 0; i < this.count; i++) if (now - this.at[i]! <= this.config.window) fresh.push(this.latency[i]!);
    this.cachedN = fresh.length;
    if (fresh.length < this.config.minSamples) return undefined;
    fresh.sort((a, b) => a - b);
    return fresh[Math.ceil(0.99 * fresh.length) - 1]!;
  }

  private set(to: Observed, why: string): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    this.lastTrial = this.now();
    this.onChange?.(from, to, why);
  }
}
