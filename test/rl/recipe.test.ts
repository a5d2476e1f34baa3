/**
 * Recipe loading and config validation: defaults per loss_type (DESIGN §5), one line per bad field,
 * --set overrides, path rules, cross-field checks, and every shipped recipe validates.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/errors.ts';
import { ConfigIssuesError, loadRecipe, parseSet, validateConfig } from '../../src/rl/recipe.ts';
import { describeConfig, FIELDS, DATASET_FIELDS, LOSS_TYPES, rewardFuncName } from '../../src/rl/config.ts';

const RECIPES = new URL('../../recipes/', import.meta.url).pathname;
const FIXTURE_MODEL = new URL('../../../shared/fixtures/hf-reference/qwen2-tiny', import.meta.url).pathname;
const base = { model_name_or_path: 'builtin:tiny', dataset: { path: 'builtin:arithmetic' } };

function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    assert.ok(e instanceof ConfigIssuesError);
    return e.issues;
  }
  assert.fail('expected a ConfigError');
}

function tmpRecipe(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'gpg-recipe-'));
  const p = join(dir, 'recipe.yaml');
  writeFileSync(p, text);
  return p;
}

describe('config defaults per loss_type (DESIGN §5)', () => {
  test('gpg', () => {
    const c = validateConfig(base);
    assert.equal(c.loss_type, 'gpg');
    assert.equal(c.scale_rewards, false);
    assert.equal(c.adjust_gd, true);
    assert.equal(c.min_inverse_alpha, 0.5);
    assert.equal(c.beta, 0);
    assert.equal(c.dynamic_sampling, false);
    assert.equal(c.max_resample_rounds, 20);
  });
  test('grpo', () => {
    const c = validateConfig({ ...base, loss_type: 'grpo' });
    assert.deepEqual(
      [c.scale_rewards, c.adjust_gd, c.min_inverse_alpha, c.beta, c.epsilon, c.epsilon_high],
      [true, false, null, 0.04, 0.2, 0.2],
    );
  });
  test('dapo', () => {
    const c = validateConfig({ ...base, loss_type: 'dapo' });
    assert.deepEqual(
      [c.scale_rewards, c.beta, c.epsilon, c.epsilon_high, c.dynamic_sampling],
      [true, 0, 0.2, 0.28, true],
    );
  });
  test('dr_grpo', () => {
    const c = validateConfig({ ...base, loss_type: 'dr_grpo' });
    assert.deepEqual(
      [c.scale_rewards, c.beta, c.epsilon, c.epsilon_high, c.dynamic_sampling],
      [false, 0, 0.2, 0.2, false],
    );
  });
  test('a recipe value overrides the per-loss default; epsilon_high follows epsilon when unset', () => {
    const c = validateConfig({ ...base, loss_type: 'grpo', beta: 0, scale_rewards: false, epsilon: 0.3 });
    assert.deepEqual([c.beta, c.scale_rewards, c.epsilon_high], [0, false, 0.3]);
  });
  test('gpg with adjust_gd off has no β_th resampling by default (gpg_no_age)', () => {
    const c = validateConfig({ ...base, adjust_gd: false });
    assert.equal(c.min_inverse_alpha, null);
  });
});

describe('validation errors: one line per bad field', () => {
  test('num_generations < 2 gives the exact line', () => {
    assert.deepEqual(
      issuesOf(() => validateConfig({ ...base, num_generations: 1, per_device_train_batch_size: 2 }, 'recipe.yaml')),
      ['recipe.yaml: num_generations: must be ≥ 2 (got 1)'],
    );
  });
  test('every bad field is reported, unknown keys with a did-you-mean', () => {
    const lines = issuesOf(() =>
      validateConfig(
        {
          ...base,
          lerning_rate: 1,
          temperature: 'hot',
          loss_type: 'reinforce',
          dataset: { path: 'builtin:arithmetic', promt_field: 'q' },
          dataset_name: 'x',
          reward_funcs: ['accuracy', 'speed'],
        },
        'r.yaml',
      ),
    );
    assert.deepEqual(lines.sort(), [
      'r.yaml: dataset.promt_field: unknown field (did you mean dataset.prompt_field?)',
      'r.yaml: dataset_name: unknown field (did you mean dataset.path?)',
      'r.yaml: lerning_rate: unknown field (did you mean learning_rate?)',
      `r.yaml: loss_type: must be one of ${LOSS_TYPES.join('|')} (got "reinforce")`,
      'r.yaml: reward_funcs.1: must be one of accuracy|format|cosine|gsm8k or { path, export } (a JS/TS module and its export) (got "speed")',
      'r.yaml: temperature: must be a number (got "hot")',
    ]);
  });
  test('the message: summary first line, then one line per field', () => {
    try {
      validateConfig({ ...base, top_k: -1, max_steps: 1.5 }, 'r.yaml');
      assert.fail('no error');
    } catch (e) {
      const lines = (e as Error).message.split('\n');
      assert.equal(
        lines[0],
        'r.yaml: 2 invalid fields: top_k: must be ≥ 0 (got -1); max_steps: must be an integer (got 1.5)',
      );
      assert.deepEqual(lines.slice(1), [
        'r.yaml: top_k: must be ≥ 0 (got -1)',
        'r.yaml: max_steps: must be an integer (got 1.5)',
      ]);
    }
  });
  test('required fields', () => {
    assert.deepEqual(issuesOf(() => validateConfig({ dataset: {} }, 'r.yaml')).sort(), [
      'r.yaml: dataset.path: required; set it in the recipe or with --set dataset.path=…',
      'r.yaml: model_name_or_path: required; set it in the recipe or with --set model_name_or_path=…',
    ]);
  });
  test('cross-field checks give the values and the fix', () => {
    const lines = issuesOf(() =>
      validateConfig({ ...base, per_device_train_batch_size: 12, num_generations: 8 }, 'r.yaml'),
    );
    assert.deepEqual(lines, [
      'r.yaml: per_device_train_batch_size: must be divisible by num_generations (12 % 8 = 4); it counts completions, so use 8 or 16',
    ]);
    const l2 = issuesOf(() =>
      validateConfig({ ...base, loss_type: 'grpo', adjust_gd: true, min_inverse_alpha: 0.6 }, 'r.yaml'),
    );
    assert.equal(l2.length, 2);
    assert.match(l2[0]!, /^r\.yaml: adjust_gd: is GPG's α and applies only to loss_type gpg \(got loss_type grpo\)/);
    assert.match(l2[1]!, /^r\.yaml: min_inverse_alpha: is GPG's β_th/);
    assert.match(
      issuesOf(() => validateConfig({ ...base, num_iterations: 2 }, 'r'))[0]!,
      /num_iterations: must be 1 for loss_type gpg \(got 2\)/,
    );
    assert.match(
      issuesOf(() => validateConfig({ ...base, loss_type: 'dapo', epsilon: 0.3, epsilon_high: 0.25 }, 'r'))[0]!,
      /epsilon_high: must be ≥ epsilon \(got epsilon_high 0.25 < epsilon 0.3\)/,
    );
    assert.match(issuesOf(() => validateConfig({ ...base, beta: 0.1 }, 'r'))[0]!, /beta: must be 0 for loss_type gpg/);
    assert.match(
      issuesOf(() => validateConfig({ ...base, reward_funcs: ['format', 'cosine'], reward_weights: [1] }, 'r'))[0]!,
      /reward_weights: has 1 entries but reward_funcs has 2/,
    );
    assert.match(
      issuesOf(() => validateConfig({ ...base, adjust_gd: false, min_inverse_alpha: 0.5 }, 'r'))[0]!,
      /min_inverse_alpha: needs adjust_gd: true/,
    );
    assert.match(
      issuesOf(() => validateConfig({ ...base, dynamic_sampling: true }, 'r'))[0]!,
      /dynamic_sampling: and min_inverse_alpha \(0.5\) both resample/,
    );
  });
  test('missing files are reported; builtin: values are not checked', () => {
    const lines = issuesOf(() =>
      validateConfig(
        {
          model_name_or_path: 'nope-model',
          dataset: { path: 'nope.jsonl' },
          reward_funcs: [{ path: 'nope.mjs', export: 'r' }],
        },
        'r.yaml',
        { baseDir: '/tmp/x' },
      ),
    );
    assert.deepEqual(lines.map((l) => l.split(':').slice(0, 2).join(':')).sort(), [
      'r.yaml: dataset.path',
      'r.yaml: model_name_or_path',
      'r.yaml: reward_funcs.0.path',
    ]);
    assert.match(
      lines.find((l) => l.includes('dataset.path'))!,
      /file not found: \/tmp\/x\/nope\.jsonl/,
    );
    // checkModel: false (gpg-rl train --dry-run) lets a missing model folder pass
    assert.doesNotThrow(() =>
      validateConfig({ model_name_or_path: 'nope-model', dataset: { path: 'builtin:arithmetic' } }, 'r', {
        checkModel: false,
      }),
    );
  });
});

describe('loadRecipe', () => {
  test('paths relative to the recipe folder; --set overrides with dotted keys and YAML values', () => {
    const p = tmpRecipe(
      'model_name_or_path: m\ndataset:\n  path: data/train.jsonl\n  prompt_field: question\nnum_generations: 4\nper_device_train_batch_size: 8\n',
    );
    const dir = join(p, '..');
    mkdirSync(join(dir, 'm'));
    mkdirSync(join(dir, 'data'));
    writeFileSync(join(dir, 'data', 'train.jsonl'), '{"question":"1+1","answer":"2"}\n');
    const c = loadRecipe(p, [
      'max_steps=3',
      'dataset.limit=10',
      'bf16=true',
      'reward_funcs=[accuracy, format]',
      'output_dir=runs/x',
    ]);
    assert.equal(c.model_name_or_path, join(dir, 'm'));
    assert.equal(c.dataset.path, join(dir, 'data', 'train.jsonl'));
    assert.equal(c.dataset.prompt_field, 'question');
    assert.deepEqual([c.max_steps, c.dataset.limit, c.bf16, c.output_dir], [3, 10, true, 'runs/x']);
    assert.deepEqual(c.reward_funcs, ['accuracy', 'format']);
    assert.equal(loadRecipe(p).output_dir, 'runs/recipe', "a recipe's default run folder is runs/<recipe name>");
  });
  test('bad --set lines and recipe errors are reported together, --set ones named as such', () => {
    const p = tmpRecipe(
      'model_name_or_path: builtin:tiny\ndataset: { path: builtin:arithmetic }\nnum_generations: 1\n',
    );
    const lines = issuesOf(() => loadRecipe(p, ['max_stepz=3', 'oops', 'temperature=abc']));
    assert.deepEqual(
      lines.sort(),
      [
        '--set max_stepz: unknown field (did you mean max_steps?)',
        '--set oops: expected key=value (e.g. --set max_steps=3)',
        '--set temperature: must be a number (got "abc")',
        `${p}: num_generations: must be ≥ 2 (got 1)`,
      ].sort(),
    );
  });
  test('YAML syntax errors carry line and column; a missing recipe is one line', () => {
    const p = tmpRecipe('model_name_or_path: [a\nfoo: : :\n');
    const lines = issuesOf(() => loadRecipe(p));
    assert.match(lines[0]!, new RegExp(`^${p.replace(/[.]/g, '\\.')}:\\d+:\\d+: YAML syntax error`));
    assert.throws(
      () => loadRecipe('/nonexistent/r.yaml'),
      (e: Error) => e instanceof ConfigError && /recipe not found/.test(e.message),
    );
    assert.throws(() => loadRecipe(tmpRecipe('- a\n- b\n')), /a recipe must be a YAML mapping/);
  });
  test('parseSet', () => {
    assert.deepEqual(parseSet('a.b=3'), { key: ['a', 'b'], value: 3 });
    assert.deepEqual(parseSet('x=hello world'), { key: ['x'], value: 'hello world' });
    assert.deepEqual(parseSet('x=null'), { key: ['x'], value: null });
    assert.throws(() => parseSet('=3'), /expected key=value/);
  });
});

describe('shipped recipes', () => {
  const files = readdirSync(RECIPES).filter((f) => f.endsWith('.yaml'));
  test('the four recipes exist', () => {
    for (const f of ['demo.yaml', 'gsm8k.yaml', 'math-zero-rl.yaml', 'distill-1.5b.yaml'])
      assert.ok(files.includes(f), f);
  });
  for (const f of files) {
    test(`${f} validates (model pointed at a fixture with --set)`, () => {
      const c = loadRecipe(join(RECIPES, f), [`model_name_or_path=${FIXTURE_MODEL}`]);
      assert.equal(c.per_device_train_batch_size % c.num_generations, 0);
      // and as `--dry-run` would: model folder not required
      assert.doesNotThrow(() => loadRecipe(join(RECIPES, f), [], { checkModel: false }));
    });
  }
  test('recipe contents match the paper settings', () => {
    const z = loadRecipe(join(RECIPES, 'math-zero-rl.yaml'), [], { checkModel: false });
    assert.deepEqual(
      [
        z.loss_type,
        z.num_generations,
        z.learning_rate,
        z.lr_scheduler_type,
        z.temperature,
        z.max_prompt_length,
        z.max_completion_length,
        z.min_inverse_alpha,
        z.scale_rewards,
      ],
      ['gpg', 8, 1e-6, 'constant', 1, 768, 2048, 0.5, false],
    );
    assert.deepEqual(z.reward_funcs, ['accuracy']);
    const d = loadRecipe(join(RECIPES, 'distill-1.5b.yaml'), [], { checkModel: false });
    assert.deepEqual(
      [
        d.reward_funcs,
        d.reward_weights,
        d.num_generations,
        d.temperature,
        d.max_prompt_length,
        d.max_completion_length,
      ],
      [['format', 'cosine'], [1, 2], 6, 0.7, 512, 3584],
    );
  });
});

describe('describeConfig', () => {
  test('documents every field with its type and default', () => {
    const text = describeConfig();
    for (const k of Object.keys(FIELDS)) assert.match(text, new RegExp(`^  ${k} \\(`, 'm'), k);
    for (const k of Object.keys(DATASET_FIELDS)) assert.match(text, new RegExp(`^  dataset\\.${k} \\(`, 'm'), k);
    assert.match(
      text,
      /scale_rewards \(bool \| string; default per loss_type: gpg false, grpo true, dapo true, dr_grpo false(, \w+ (true|false))*\)/,
    );
    assert.match(text, /num_generations \(int; default 8\)/);
    for (const f of Object.values(FIELDS)) assert.ok(f.doc.length > 5);
  });
  test('rewardFuncName', () => {
    assert.equal(rewardFuncName('accuracy'), 'accuracy');
    assert.equal(rewardFuncName({ path: '/x/my_reward.mjs', export: 'default' }), 'my_reward');
    assert.equal(rewardFuncName({ path: '/x/r.mjs', export: 'lengthBonus' }), 'lengthBonus');
  });
});
