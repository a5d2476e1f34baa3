#!/usr/bin/env python3
"""Hugging Face transformers anchor for `gpg-rl bench --anchors` (runs inside the anchors chroot,
../shared/anchors/run.sh). The same model folder gpg-rl benchmarks (same weights), loaded with
transformers' own Qwen2ForCausalLM (AutoModelForCausalLM), timed the way a TRL user runs it:

  train:  forward + backward of the GPG loss  -(logp * A * mask).sum() / mask.sum()  on B x T
          random ids (the first T/4 targets are prompt, as gpg-rl's bench), no optimizer step.
          Log-probs as TRL's GRPOTrainer computes them: logits only for the completion positions
          (`logits_to_keep`) and `selective_log_softmax` (gather - logsumexp, row by row).
          `--dtype bfloat16`: torch.autocast(cpu, bf16) with float32 weights, as Trainer(bf16=True).
  decode: model.generate on B/G distinct prompts of P random ids with num_return_sequences=G
          (HF has no prefix sharing), sampling at temperature 1 over the full vocabulary
          (top_k 0, top_p 1), exactly N new tokens (no eos); generated tokens / total time
          (prefill included).

Prints one JSON line. Threads: torch.set_num_threads(--threads). BLAS: the chroot's OpenMP
OpenBLAS (reported as `blas`).
"""
import argparse, json, os, time

import torch
from transformers import AutoModelForCausalLM


def selective_log_softmax(logits, index):
    # trl/trainer/utils.py selective_log_softmax (float32 branch): loop over rows to bound memory
    selected = torch.gather(logits, dim=-1, index=index.unsqueeze(-1)).squeeze(-1)
    lse = torch.stack([torch.logsumexp(row, dim=-1) for row in logits])
    return selected - lse


def blas_name():
    link = "/etc/alternatives/libblas.so.3-x86_64-linux-gnu"
    try:
        return os.path.realpath(link)
    except OSError:
        return None


def median(xs):
    return sorted(xs)[len(xs) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--mode", choices=["train", "decode"], required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--new", type=int, default=256)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=3, help="at most this many timed runs ...")
    ap.add_argument("--budget", type=float, default=120, help="... and no new one after this many seconds")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    import transformers

    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32, attn_implementation="sdpa")
    V = model.config.vocab_size
    out = dict(
        impl="transformers",
        arch=type(model).__name__,
        torch=torch.__version__,
        transformers=transformers.__version__,
        threads=torch.get_num_threads(),
        blas=blas_name(),
        openmp="OpenMP" in torch.__config__.parallel_info(),
        mode=a.mode,
        dtype=a.dtype,
        params=sum(p.numel() for p in model.parameters()),
    )
    if a.mode == "train":
        model.train()
        B, T = a.batch, a.seq
        P = T // 4
        ids = torch.randint(0, V, (B, T))
        attn = torch.ones(B, T, dtype=torch.long)
        adv = torch.randn(B)
        K = T - P - 1  # completion targets P+1 .. T-1, as gpg-rl bench selects them

        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.dtype == "bfloat16"):
                logits = model(input_ids=ids, attention_mask=attn, logits_to_keep=K + 1).logits
            logits = logits[:, :-1].float()  # predictions for targets T-K .. T-1
            lp = selective_log_softmax(logits, ids[:, -K:])
            loss = (-lp * adv[:, None]).sum() / lp.numel()
            loss.backward()
            model.zero_grad(set_to_none=True)

        step()  # warm-up
        ts = []
        t0 = time.perf_counter()
        while len(ts) < max(1, a.repeats):
            t = time.perf_counter()
            step()
            ts.append(time.perf_counter() - t)
            if time.perf_counter() - t0 >= a.budget:
                break
        s = median(ts)
        out.update(batch=B, seq=T, seconds=s, runs=len(ts), tokens_per_s=B * T / s)
    else:
        model.eval()
        G = a.group
        if a.batch % G:
            raise SystemExit(f"--batch {a.batch} must be a multiple of --group {G}")
        ids = torch.randint(0, V, (a.batch // G, a.prompt))
        attn = torch.ones_like(ids)
        gc = model.generation_config
        gc.eos_token_id = None  # exactly --new tokens per sequence
        gc.pad_token_id = 0

        def gen(n):
            return model.generate(
                input_ids=ids,
                attention_mask=attn,
                do_sample=True,
                temperature=1.0,
                top_k=0,
                top_p=1.0,
                max_new_tokens=n,
                min_new_tokens=n,
                num_return_sequences=G,
                generation_config=gc,
            )

        gen(2)  # warm-up
        ts = []
        tokens = 0
        t0 = time.perf_counter()
        while len(ts) < max(1, a.repeats):
            t = time.perf_counter()
            o = gen(a.new)
            ts.append(time.perf_counter() - t)
            tokens = (o.shape[1] - a.prompt) * o.shape[0]
            if time.perf_counter() - t0 >= a.budget:
                break
        s = median(ts)
        out.update(batch=a.batch, prompt=a.prompt, new=a.new, group=G, seconds=s, runs=len(ts), tokens=tokens, tokens_per_s=tokens / s)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
