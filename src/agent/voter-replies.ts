/**
 * When a voter's reply may leave. What a voter answers rests on what it
 * stored, so a reply waits for the state write before it — except a
 * renewal's grant, whose promise is already on disk: it may go at once if it
 * names only what the disk holds for certain (the record and highest epoch
 * durably written). The reply naming the state still being written follows
 * once it is; the holder commits a record only on replies that name it.
 *
 * Behind a busy disk one state write took 1.5 s; renewals waiting for it let
 * the primary's lease run out.
 */
import type { LeaseReply } from '../logic/lease/messages.js';
import type { VoterDisk } from '../logic/lease/voter.js';

export interface ReplyPlan {
  /** Send this now (a copy of the reply naming the durable state), if anything. */
  readonly now?: LeaseReply;
  /** Send the reply itself once the voter's latest write is durable. */
  readonly afterWrite: boolean;
}

export function planVoterReply(reply: LeaseReply, durable: VoterDisk | undefined): ReplyPlan {
  if (!reply.granted || !reply.promise || reply.amnesiac) return { afterWrite: true };
  const d = durable?.modules[reply.module];
  if (!durable || durable.amnesiac || !d || d.amnesiac || d.promise?.holder !== reply.promise.holder || d.promise.epoch !== reply.promise.epoch) return { afterWrite: true };
  const now: LeaseReply = { ...reply, maxEpoch: d.maxEpoch };
  if (d.record) now.record = d.record;
  else delete now.record;
  const same = JSON.stringify(now.record) === JSON.stringify(reply.record) && now.maxEpoch === reply.maxEpoch;
  return { now, afterWrite: !same };
}
