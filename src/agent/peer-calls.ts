/**
 * Calls from one member to another over their link, with an answer: the API
 * of any node gathers the others' status, and passes a barrier or a restart
 * to the node it concerns. The link is mutual TLS between members of the
 * cluster, so a call needs no other credentials; the caller's API checked
 * the person's role before calling. An unanswered call fails at its timeout.
 */
import type { ControlReply, ControlRequest } from './control-socket.js';
import type { MemberStatusReport } from './status.js';

export type PeerCall = { op: 'status' } | { op: 'control'; request: ControlRequest };

export interface PeerCallMessage {
  type: 'peer-call';
  id: number;
  call: PeerCall;
}

export interface PeerReplyMessage {
  type: 'peer-reply';
  id: number;
  ok: boolean;
  value?: MemberStatusReport | ControlReply;
  error?: string;
}

export type PeerCallsMessage = PeerCallMessage | PeerReplyMessage;

export class PeerCalls {
  private nextId = 1;
  private readonly waiting = new Map<number, { from: string; resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  constructor(
    private readonly send: (to: string, message: PeerCallsMessage) => boolean,
    private readonly answer: (from: string, call: PeerCall) => Promise<MemberStatusReport | ControlReply>,
  ) {}

  call(to: string, call: { op: 'status' }, timeoutMs: number): Promise<MemberStatusReport>;
  call(to: string, call: { op: 'control'; request: ControlRequest }, timeoutMs: number): Promise<ControlReply>;
  call(to: string, call: PeerCall, timeoutMs: number): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`no answer from ${to} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, { from: to, resolve, reject, timer });
      if (!this.send(to, { type: 'peer-call', id, call })) {
        clearTimeout(timer);
        this.waiting.delete(id);
        reject(new Error(`no link to ${to}`));
      }
    });
  }

  onMessage(from: string, message: PeerCallsMessage): void {
    if (message.type === 'peer-reply') {
      const w = this.waiting.get(message.id);
      if (!w || w.from !== from) return;
      this.waiting.delete(message.id);
      clearTimeout(w.timer);
      if (message.ok) w.resolve(message.value);
      else w.reject(new Error(message.error ?? `${from} failed the call`));
      return;
    }
    void this.answer(from, message.call).then(
      (value) => this.send(from, { type: 'peer-reply', id: message.id, ok: true, value }),
      (err: Error) => this.send(from, { type: 'peer-reply', id: message.id, ok: false, error: err.message }),
    );
  }

  close(): void {
    for (const [id, w] of this.waiting) {
      clearTimeout(w.timer);
      w.reject(new Error('the member is stopping'));
      this.waiting.delete(id);
    }
  }
}
