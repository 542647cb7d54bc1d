/**
 * Waiting in real time for a condition, with a deadline: the only way tests
 * and benchmarks wait for processes (never a fixed sleep as synchronisation).
 */

export class DeadlineError extends Error {}

/**
 * Polls `condition` every `every` ms until it returns a truthy value (which is
 * returned) or `deadline` ms pass (then throws, naming `what` and the last
 * value or error seen).
 */
export async function waitFor<T>(what: string, condition: () => T | Promise<T>, options: { deadline?: number; every?: number } = {}): Promise<NonNullable<T>> {
  const deadline = options.deadline ?? 10_000;
  const every = options.every ?? 20;
  const end = performance.now() + deadline;
  let last: unknown;
  for (;;) {
    try {
      const v = await condition();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (err) {
      last = err;
    }
    if (performance.now() >= end) {
      const seen = last instanceof Error ? last.message : JSON.stringify(last);
      throw new DeadlineError(`timed out after ${deadline} ms waiting for ${what} (last seen: ${seen})`);
    }
    await new Promise((r) => setTimeout(r, every));
  }
}

/**
 * The other half of waitFor: asserts that `check` holds throughout a window
 * (it is called every `every` ms for `duration` ms and must not throw or
 * return false). For "nothing changes while the fault lasts" and "this does
 * not arrive": a window of observation, not a wait standing in for a condition.
 */
export async function holdsFor(what: string, check: () => boolean | void | Promise<boolean | void>, options: { duration: number; every?: number }): Promise<void> {
  const every = options.every ?? 20;
  const end = performance.now() + options.duration;
  for (;;) {
    if ((await check()) === false) throw new Error(`${what}: stopped holding ${Math.round(options.duration - (end - performance.now()))} ms into the ${options.duration} ms window`);
    if (performance.now() >= end) return;
    await new Promise((r) => setTimeout(r, every));
  }
}
