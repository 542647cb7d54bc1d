/**
 * Virtual time. The simulator keeps one global timeline in integer
 * microseconds; members never see it. Each member reads its own local clock,
 * in milliseconds like the decision core's `now`:
 *
 *   local(g) = (g × (1 + drift) + offset) / 1000        (g in µs, local in ms)
 *
 * `drift` is the clock's rate error (1e-4 = 100 ppm fast; negative = slow) and
 * `offset` an arbitrary starting point, so members cannot compare absolute
 * times. Local clocks are monotonic; they never jump.
 */

export const US_PER_MS = 1000;

/** Milliseconds (possibly fractional) to integer microseconds. */
export function msToUs(ms: number): number {
  return Math.round(ms * US_PER_MS);
}

/** Integer microseconds to milliseconds. */
export function usToMs(us: number): number {
  return us / US_PER_MS;
}

/** `12345678` µs → `"12345.678"` (ms with three decimals), exact. */
export function formatUs(us: number): string {
  const ms = Math.floor(us / US_PER_MS);
  const frac = us - ms * US_PER_MS;
  return `${ms}.${String(frac).padStart(3, '0')}`;
}

export class LocalClock {
  private rate: number;
  private offsetUs: number;

  constructor(drift = 0, offsetUs = 0) {
    this.rate = 1 + drift;
    this.offsetUs = offsetUs;
  }

  get drift(): number {
    return this.rate - 1;
  }

  /** The local time in ms at global time `globalUs`. */
  localMs(globalUs: number): number {
    return (globalUs * this.rate + this.offsetUs) / US_PER_MS;
  }

  /**
   * The first global microsecond, not before `notBeforeUs`, at which this
   * clock reads at least `localMs`: a timer set for `localMs` fires then.
   */
  globalUsAt(localMs: number, notBeforeUs: number): number {
    if (!Number.isFinite(localMs)) throw new RangeError(`a local time must be a finite number of ms, got ${localMs}`);
    let g = Math.ceil((localMs * US_PER_MS - this.offsetUs) / this.rate);
    if (g < notBeforeUs) g = notBeforeUs;
    // Correct floating-point rounding in either direction.
    while (this.localMs(g) < localMs) g++;
    while (g > notBeforeUs && this.localMs(g - 1) >= localMs) g--;
    return g;
  }

  /** Changes the rate at global time `atUs`, keeping the reading continuous (a reboot does not step a monotonic clock backwards). */
  setDrift(atUs: number, drift: number): void {
    const reading = atUs * this.rate + this.offsetUs;
    this.rate = 1 + drift;
    this.offsetUs = reading - atUs * this.rate;
  }
}

/** Anything the scheduler orders: by time, then by the order it was scheduled in. */
export interface Scheduled {
  at: number;
  seq: number;
}

/**
 * A binary min-heap on (at, seq). `seq` is assigned on push from a counter, so
 * two events at the same microsecond come out in the order they were
 * scheduled: the tie-break is deterministic.
 */
export class EventQueue<E extends Scheduled> {
  private heap: E[] = [];
  private nextSeq = 0;

  get size(): number {
    return this.heap.length;
  }

  push(e: E): void {
    e.seq = this.nextSeq++;
    const h = this.heap;
    let i = h.length;
    h.push(e);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = h[p] as E;
      if (parent.at < e.at || (parent.at === e.at && parent.seq < e.seq)) break;
      h[i] = parent;
      i = p;
    }
    h[i] = e;
  }

  peek(): E | undefined {
    return this.heap[0];
  }

  pop(): E | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined || h.length === 0) return top;
    const n = h.length;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      let child = h[l] as E;
      if (r < n) {
        const right = h[r] as E;
        if (right.at < child.at || (right.at === child.at && right.seq < child.seq)) {
          c = r;
          child = right;
        }
      }
      if (last.at < child.at || (last.at === child.at && last.seq < child.seq)) break;
      h[i] = child;
      i = c;
    }
    h[i] = last;
    return top;
  }

  /** Every queued event, in no particular order. */
  items(): readonly E[] {
    return this.heap;
  }
}
