/** The models the `sim` command knows by name. */
import type { SimModel } from '../process.js';
import { SKYHA_VARIANTS, skyhaModel, type SkyhaVariant } from './skyha.js';
import { TOY_VARIANTS, toyLeaseModel, type ToyVariant } from './toy-lease.js';

export const MODEL_NAMES: readonly string[] = [
  ...SKYHA_VARIANTS.map((v) => (v === 'correct' ? 'skyha' : `skyha:${v}`)),
  ...TOY_VARIANTS.map((v) => (v === 'correct' ? 'toy-lease' : `toy-lease:${v}`)),
];

/** The model called `name`, or undefined. */
export function modelByName(name: string): SimModel<unknown> | undefined {
  if (name === 'skyha') return skyhaModel('correct') as SimModel<unknown>;
  const s = /^skyha:(.+)$/.exec(name);
  if (s && (SKYHA_VARIANTS as readonly string[]).includes(s[1] as string)) return skyhaModel(s[1] as SkyhaVariant) as SimModel<unknown>;
  if (name === 'toy-lease') return toyLeaseModel('correct') as SimModel<unknown>;
  const m = /^toy-lease:(.+)$/.exec(name);
  if (m && (TOY_VARIANTS as readonly string[]).includes(m[1] as string)) return toyLeaseModel(m[1] as ToyVariant) as SimModel<unknown>;
  return undefined;
}
