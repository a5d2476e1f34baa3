/**
 * TRL portability: every field of TRL's GRPOConfig (with the TrainingArguments it extends; the list
 * and defaults in test/fixtures/trl/grpo-config-fields.json come from the TRL and transformers
 * sources) either works, warns once that it has no effect, or is refused with one line naming it.
 * Then the meanings: `--from-trl` applies TRL's defaults (dapo = token mean without dynamic
 * sampling, beta 0, epsilon_high = epsilon, scale_rewards group, bf16 on), `bnpo` is an alias in
 * plain recipes, and TRL's strategy fields map onto ours.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateConfig } from '../../src/rl/recipe.ts';
import { TRL_FIELDS } from '../../src/rl/trl.ts';
import { ConfigError } from '../../src/errors.ts';
import { learningRateAt } from '../../src/train/schedule.ts';

const fixture = JSON.parse(
  readFileSync(join(import.meta.dirname, '..', 'fixtures', 'trl', 'grpo-config-fields.json'), 'utf8'),
) as { fields: Record<string, unknown> };
const base = { model_name_or_path: 'builtin:tiny', dataset: { path: 'builtin:arithmetic' }, output_dir: 'runs/trl' };

type Outcome = { kind: 'ok' } | { kind: 'warn'; lines: string[] } | { kind: 'refused'; lines: string[] };
function outcome(over: Record<string, unknown>, trl: boolean): Outcome {
  const warnings: string[] = [];
  try {
    validateConfig({ ...base, ...over }, 'cfg.yaml', { trl, warn: (l) => warnings.push(l) });
  } catch (e) {
    assert.ok(e instanceof ConfigError, `${JSON.stringify(over)}: ${(e as Error).message}`);
    return { kind: 'refused', lines: (e as Error).message.split('\n') };
  }
  return warnings.length ? { kind: 'warn', lines: warnings } : { kind: 'ok' };
}
/** A value different from TRL's default, of the same type. */
function probe(d: unknown): unknown {
  if (typeof d === 'boolean') return !d;
  if (typeof d === 'number') return Number.isInteger(d) ? d + 3 : d / 2;
  if (typeof d === 'string') return d === '' ? 'probe' : `${d}_probe`;
  if (Array.isArray(d)) return ['probe'];
  return 7; // a None default: most such fields take a number or a string when set
}

describe('TRL GRPOConfig, field by field', () => {
  const names = Object.keys(fixture.fields);
  test('the list is the whole config (165 fields) and each has an entry in rl/trl.ts', () => {
    assert.equal(names.length, 165);
    const missing = names.filter((n) => !(n in TRL_FIELDS));
    assert.deepEqual(missing, []);
  });

  test("every field at TRL's default is accepted by --from-trl (gradient_checkpointing warns: issue 12)", () => {
    for (const n of names) {
      const o = outcome({ [n]: fixture.fields[n] }, true);
      if (n === 'gradient_checkpointing') {
        assert.equal(o.kind, 'warn', n);
        continue;
      }
      assert.equal(o.kind, 'ok', `${n}=${JSON.stringify(fixture.fields[n])}: ${JSON.stringify(o)}`);
    }
  });

  test('set to another value, every field works, warns once naming it, or is refused in one line naming it', () => {
    const tally = { ok: 0, warn: 0, refused: 0 };
    for (const n of names) {
      const v = probe(fixture.fields[n]);
      const o = outcome({ [n]: v }, true);
      tally[o.kind]++;
      const e = TRL_FIELDS[n]!;
      if (o.kind === 'warn') {
        assert.equal(o.lines.length, 1, `${n}: ${o.lines.join(' | ')}`);
        assert.match(o.lines[0]!, new RegExp(`^cfg\\.yaml: ${n}: has no effect in gpg-rl \\(`), n);
        assert.equal(e.kind, 'inert', n);
      } else if (o.kind === 'refused') {
        const own = o.lines.filter((l) => l.includes(n));
        assert.ok(own.length >= 1, `${n}=${JSON.stringify(v)}: ${o.lines.join(' | ')}`);
        assert.ok(e.kind !== 'inert', `${n} is inert but was refused`);
      } else assert.ok(e.kind !== 'refuse', `${n}=${JSON.stringify(v)} should have been refused`);
    }
    // each outcome occurs: the table is not one blanket rule
    assert.ok(tally.ok > 10 && tally.warn > 40 && tally.refused > 15, JSON.stringify(tally));
  });

  test('in a plain recipe the same names are accepted too (not "unknown field")', () => {
    for (const n of names) {
      const o = outcome({ [n]: fixture.fields[n] }, false);
      if (o.kind === 'refused') assert.ok(!o.lines.some((l) => l.includes('unknown field')), `${n}: ${o.lines[0]}`);
    }
  });
});

describe("TRL's meanings", () => {
  test("--from-trl: TRL's defaults (dapo = token mean only, beta 0, epsilon_high = epsilon, group scaling, bf16)", () => {
    const c = validateConfig({ ...base }, 'cfg.yaml', { trl: true });
    assert.equal(c.loss_type, 'dapo');
    assert.equal(c.dynamic_sampling, false);
    assert.equal(c.epsilon_high, c.epsilon);
    assert.equal(c.beta, 0);
    assert.equal(c.scale_rewards, true);
    assert.equal(c.bf16, true);
    assert.equal(c.logging_steps, 10);
    assert.equal(c.per_device_train_batch_size, 8);
    assert.equal(c.num_train_epochs, 3);
    assert.equal(c.log_completions, false);
    const fp = validateConfig({ ...base, fp16: false, bf16: false, loss_type: 'grpo' }, 'cfg.yaml', { trl: true });
    assert.equal(fp.bf16, false);
    assert.equal(fp.beta, 0); // TRL's grpo default beta is 0, ours 0.04
    const dr = validateConfig({ ...base, loss_type: 'dr_grpo', epsilon_high: 0.28 }, 'cfg.yaml', { trl: true });
    assert.equal(dr.scale_rewards, true); // TRL scales by the group std unless told not to
    assert.equal(dr.epsilon_high, 0.28);
    const mapping: string[] = [];
    validateConfig({ ...base, dataset_name: 'builtin:arithmetic', eval_strategy: 'steps' }, 'cfg.yaml', {
      trl: true,
      onTrl: (t) => mapping.push(...t.mapping),
    });
    assert.ok(
      mapping.some((l) => l.startsWith('dapo: token-level mean over the step batch')),
      mapping.join(' | '),
    );
    assert.ok(mapping.includes('dataset_name → dataset.path'));
  });

  test('loss types we do not have are refused in one line; bnpo is an alias in plain recipes', () => {
    for (const t of ['cispo', 'sapo', 'luspo']) {
      const o = outcome({ loss_type: t }, true);
      assert.equal(o.kind, 'refused');
      assert.equal((o as { lines: string[] }).lines.length, 1);
      assert.match(
        (o as { lines: string[] }).lines[0]!,
        new RegExp(`^cfg\\.yaml: loss_type: ${t.toUpperCase()} .*not implemented`),
      );
    }
    const b = validateConfig({ ...base, loss_type: 'bnpo' });
    assert.equal(b.loss_type, 'dapo');
    assert.equal(b.dynamic_sampling, false);
    assert.equal(b.epsilon_high, b.epsilon);
    assert.equal(validateConfig({ ...base, loss_type: 'dapo' }).dynamic_sampling, true); // our dapo keeps DAPO's parts
  });

  test('scale_rewards strings, strategies, warmup_steps, constant_with_warmup', () => {
    assert.equal(validateConfig({ ...base, scale_rewards: 'group' }).scale_rewards, true);
    assert.equal(validateConfig({ ...base, loss_type: 'grpo', scale_rewards: 'none' }).scale_rewards, false);
    assert.throws(
      () => validateConfig({ ...base, scale_rewards: 'batch' }),
      /config: scale_rewards: batch \(TRL: divide by the reward std over the whole batch\) is not implemented/,
    );
    assert.equal(validateConfig({ ...base, eval_steps: 5, eval_strategy: 'no' }).eval_steps, 0);
    assert.equal(validateConfig({ ...base, save_strategy: 'no' }).save_steps, 0);
    assert.throws(
      () => validateConfig({ ...base, save_strategy: 'epoch' }),
      /save_strategy: "epoch" is not implemented/,
    );
    assert.equal(validateConfig({ ...base, lr_scheduler_type: 'constant_with_warmup' }).lr_scheduler_type, 'constant');
    const w = validateConfig({ ...base, warmup_steps: 2, lr_scheduler_type: 'constant', learning_rate: 1 });
    const o = {
      learningRate: 1,
      warmupRatio: w.warmup_ratio,
      warmupSteps: w.warmup_steps,
      scheduler: w.lr_scheduler_type,
    };
    assert.deepEqual(
      [0, 1, 2, 3].map((k) => learningRateAt(k, 10, o)),
      [1 / 3, 2 / 3, 1, 1],
    );
    const warned: string[] = [];
    validateConfig({ ...base, push_to_hub: true, use_vllm: true }, 'r.yaml', { warn: (l) => warned.push(l) });
    assert.deepEqual(
      warned.map((l) => l.split(' (')[0]),
      ['r.yaml: push_to_hub: has no effect in gpg-rl', 'r.yaml: use_vllm: has no effect in gpg-rl'],
    );
  });
});
