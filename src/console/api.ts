/**
 * The console's calls to the member that served it: JSON requests with the
 * signed-in token, and the event stream read with fetch (EventSource cannot
 * send an Authorization header), resumed from the last event id it saw.
 */
export interface Session {
  user: string;
  role: 'monitor' | 'control' | 'admin';
  member: string;
  cluster: string;
}

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class Api {
  constructor(private readonly token: string) {}

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(path, {
      method,
      headers: { Authorization: `Bearer ${this.token}`, Accept: 'application/json', ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    if (!res.ok) {
      const message = (parsed as { error?: { message?: string } } | undefined)?.error?.message ?? `HTTP ${res.status}`;
      throw new ApiFailure(res.status, message);
    }
    return parsed as T;
  }

  /** Streams events until `signal` aborts; reconnects after a loss, from the last id seen. */
  async events(onEvent: (e: ClusterEvent) => void, onState: (connected: boolean) => void, signal: AbortSignal): Promise<void> {
    let last = 0;
    while (!signal.aborted) {
      try {
        const res = await fetch(`/v1/events?after=${last}`, { headers: { Authorization: `Bearer ${this.token}`, Accept: 'text/event-stream' }, signal });
        if (!res.ok || !res.body) throw new ApiFailure(res.status, `HTTP ${res.status}`);
        onState(true);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('');
            if (!data) continue;
            const e = JSON.parse(data) as ClusterEvent;
            last = Math.max(last, e.id);
            onEvent(e);
          }
        }
      } catch {
        // Lost: say so, wait, try again.
      }
      onState(false);
      if (!signal.aborted) await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

export interface ClusterEvent {
  id: number;
  seq: number;
  at: string;
  member: string;
  module?: string;
  reason: string;
  text: string;
}

export interface ModuleOnNode {
  node: string;
  answered: boolean;
  role?: string;
  epoch?: number;
  app?: { status: string; pid?: number; health: string };
  checkers?: Array<{ name: string; status: string; detail?: string }>;
  restarts?: { inWindow: number; max: number; givenUp: boolean };
  health?: { code: number; why: string };
  stopped?: { by: string; at: string };
  inSync?: string[];
  secondaries?: Array<{ node: string; connected: boolean; inSync: boolean; lagChanges: number; lagBytes: number; lagMs: number }>;
  leaseLeftMs?: number;
  gate?: { engine: string; port: number; requests: number; failed: number; retries: number; backends: Array<{ node: string; health: string; admin: string; observed: string; requests: number; errors: number; p99?: number }> };
  replication?: { readOnly: { readOnly: boolean; reason?: string }; resyncsSent: { running: Array<{ to: string; done: number; paths: number; bytes: number }> }; broken?: string; suspects?: number; pending?: number; overflows?: number };
}

export interface Cluster {
  cluster: string;
  profile: string;
  members: Array<{ name: string; role: 'node' | 'witness'; labels: Record<string, string>; answered: boolean; error?: string; seenAliveBy: string[]; seenDeadBy: string[] }>;
  modules: Array<{ name: string; kind: 'farm' | 'mirror'; epoch: number; leaseHolder?: string; leaseLeftMs?: number; nodes: ModuleOnNode[] }>;
}
