/**
 * The shape shared by every machine of the decision core:
 *   step(state, event, now) -> { state, actions }
 * Machines are pure: no I/O, no timers, no reading of a clock. Time comes in as `now`
 * (milliseconds on the member's own clock); effects go out as actions that a
 * driver (the agent, or the simulator) carries out.
 */

/** Why something happened: a stable code (logs, API, metrics labels, tests) and a sentence for people. */
export interface Reason {
  code: string;
  text: string;
}

export interface Step<S, A> {
  state: S;
  actions: A[];
}

export type StepFn<S, E, A> = (state: S, event: E, now: number) => Step<S, A>;

export function reason(code: string, text: string): Reason {
  return { code, text };
}
