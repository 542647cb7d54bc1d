/**
 * Errors with stable codes. Users, scripts and tests match on `code`, never on
 * the message. Every code lives in this one table, with the exit code the CLI
 * uses when such an error ends a command; docs/errors.md is checked against it.
 */

export const EXIT_OK = 0;
export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;

export const ERROR_CODES = {
  SKYHA_ERR_USAGE_BAD_ARGUMENT: { exit: EXIT_USAGE, what: 'A command was called with a missing, unknown or malformed argument or option.' },
  SKYHA_ERR_CONFIG_READ: { exit: EXIT_USAGE, what: 'The config file could not be read (missing, unreadable, not a file).' },
  SKYHA_ERR_CONFIG_SYNTAX: { exit: EXIT_USAGE, what: 'The config file is not well-formed YAML.' },
  SKYHA_ERR_CONFIG_SCHEMA: { exit: EXIT_USAGE, what: 'A key of the config file has a wrong type or value, is unknown, or is missing.' },
  SKYHA_ERR_CONFIG_RULE: { exit: EXIT_USAGE, what: 'The config file breaks a cross-field rule (unique names, timings, quorum, ports, references).' },
  SKYHA_ERR_CONFIG_TLS: { exit: EXIT_USAGE, what: 'TLS material named by the config is missing, unreadable, malformed or not signed by the cluster CA.' },
  SKYHA_ERR_CONFIG_UNKNOWN_MEMBER: { exit: EXIT_USAGE, what: 'A command named a node or witness that the config file does not define.' },
  SKYHA_ERR_INIT_EXISTS: { exit: EXIT_USAGE, what: '`skyha init` would overwrite existing files and --force was not given.' },
  SKYHA_ERR_INIT_WRITE: { exit: EXIT_RUNTIME, what: '`skyha init` could not write its files; nothing was left behind.' },
  SKYHA_ERR_COORD_HELD: { exit: EXIT_RUNTIME, what: 'The lease of a module is held by another member; try again after it ends or is released.' },
  SKYHA_ERR_COORD_NO_MAJORITY: { exit: EXIT_RUNTIME, what: 'A majority of voters did not answer in time; no lease was taken.' },
  SKYHA_ERR_COORD_NOT_IN_SYNC: { exit: EXIT_RUNTIME, what: 'This node is not in the module\'s committed in-sync set, so it may not become primary without --force.' },
  SKYHA_ERR_COORD_UNKNOWN_STATE: { exit: EXIT_RUNTIME, what: 'Too few voters remember the module\'s record to tell who is in sync.' },
  SKYHA_ERR_COORD_NOT_HOLDER: { exit: EXIT_RUNTIME, what: 'The call needs the lease (renew, commit the in-sync set, transfer) but this member does not hold it.' },
  SKYHA_ERR_STATE: { exit: EXIT_RUNTIME, what: 'A member\'s state file (data_dir/state.json) is unreadable, of an unknown format or of another member; it is left untouched.' },
  SKYHA_ERR_LISTEN: { exit: EXIT_RUNTIME, what: 'The agent or witness could not listen on its link or API port (in use, or an address it does not have).' },
  SKYHA_ERR_CONTROL_UNREACHABLE: { exit: EXIT_RUNTIME, what: 'A command for the local agent (`skyha barrier`) found no agent answering on a control socket on this machine.' },
  SKYHA_ERR_CONTROL_REFUSED: { exit: EXIT_RUNTIME, what: 'The local agent refused a command on its control socket; the message says why.' },
  SKYHA_ERR_API_UNREACHABLE: { exit: EXIT_RUNTIME, what: 'A command over the REST API (`skyha status`, `switchover`, `failover`, `drain`, `ready`, `maint`, `restart`, `stop`, `start`, `events`) reached no member of the cluster.' },
  SKYHA_ERR_API_DENIED: { exit: EXIT_RUNTIME, what: 'The REST API refused the credentials (401: none, unknown token, certificate not signed by the cluster CA) or the role (403: the user\'s role does not allow the action); nothing was changed.' },
  SKYHA_ERR_API_REFUSED: { exit: EXIT_RUNTIME, what: 'A member refused an action over the REST API (unknown module or node, a module of the wrong kind, no primary known); the message quotes its reason. Nothing was changed.' },
  SKYHA_ERR_STATUS_UNREACHABLE: { exit: EXIT_RUNTIME, what: '`skyha status` reached no member of the cluster.' },
  SKYHA_ERR_HAPROXY: { exit: EXIT_RUNTIME, what: 'The HAProxy gate engine failed: its config was refused, it did not start or answer on its runtime socket, or a runtime command was refused; the message quotes HAProxy.' },
  SKYHA_ERR_REPLICATION_RECORD: { exit: EXIT_RUNTIME, what: 'A change record from a primary is malformed or names a path outside the replicated directories; it is refused, nothing is written.' },
  SKYHA_ERR_REPLICATION_APPLY: { exit: EXIT_RUNTIME, what: 'A secondary could not apply a change record (disk full, permissions, I/O error); the change is not acknowledged and the secondary falls out of sync.' },
  SKYHA_ERR_REPLICATION_WATCH: { exit: EXIT_RUNTIME, what: 'The change watcher of a mirror module (python3 with inotify) could not start, exited, or did not answer a barrier\'s sentinel in time.' },
  SKYHA_ERR_BARRIER: { exit: EXIT_RUNTIME, what: 'A barrier did not complete: it timed out, no secondary is in sync, or no agent on this machine is the module\'s primary; the message says which. It never returns early.' },
  SKYHA_ERR_SWITCHOVER_FAILED: { exit: EXIT_RUNTIME, what: 'A switchover did not happen: the primary refused it (the target is not an in-sync, live secondary), or no new primary ran within the timeout; the message says which. The old primary keeps serving.' },
  SKYHA_ERR_FAILOVER_FAILED: { exit: EXIT_RUNTIME, what: 'A forced failover did not make the named node primary within the timeout (no majority of voters reachable, or the node is out of service); the message says what the cluster reported.' },
  SKYHA_ERR_DEMO: { exit: EXIT_RUNTIME, what: '`skyha demo` could not start (a port it needs is taken, its directory is not a demo\'s, a demo already runs there, a member exited at start) or no demo answered `--kill`, `--start` or `--stop`; the message says which.' },
  SKYHA_ERR_INTERNAL: { exit: EXIT_RUNTIME, what: 'A bug in skyha: an unexpected error. Please report it with the log.' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class SkyhaError extends Error {
  readonly code: ErrorCode;
  /** Extra lines shown under the message, e.g. every config error found. */
  readonly details: readonly string[];

  constructor(code: ErrorCode, message: string, options: { details?: readonly string[]; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SkyhaError';
    this.code = code;
    this.details = options.details ?? [];
  }

  get exitCode(): number {
    return ERROR_CODES[this.code].exit;
  }
}

export function isSkyhaError(err: unknown): err is SkyhaError {
  return err instanceof SkyhaError;
}
