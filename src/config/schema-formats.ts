/**
 * The formats the config schema uses beyond JSON Schema's own, without
 * ajv: the schema's validator is generated code (see schema-compile.ts)
 * that imports them from here.
 */
import { isIP } from 'node:net';

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** ajv's format definitions (the generated code calls `formats.NAME.validate`). */
export const formats = {
  // Digits and dots only is meant as an IPv4 address (300.1.1.1 is not a host name).
  host: { type: 'string' as const, validate: (s: string): boolean => isIP(s) !== 0 || (HOSTNAME.test(s) && !/^[0-9.]+$/.test(s)) },
};
