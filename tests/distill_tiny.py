"""A tiny Qwen2-architecture model with a tokenizer trained here, for real training jobs in
seconds: no hub, no packaged weights. The tokenizer is a byte-level BPE learnt from `chains`
text, with a Qwen-style chat template, so the transformers backend loads the folder like any
other model folder."""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def corpus() -> list[str]:
    from harness.tasks import get_task
    from harness.tasks.base import DataSource

    task = get_task("chains:depth=1-3,n=2")
    out = []
    for p in task.load(DataSource(None, hub=False)).problems:
        out.append(task.prompt(p, "r1")[0].content)
        out.append(f"<think>\n{p.reference}\n</think>\n\nThe answer is \\boxed{{{p.answer}}}.")
    return out


def tiny_model(folder: Path, vocab: int = 400, hidden: int = 32, layers: int = 2) -> Path:
    """Write a tiny random Qwen2 model and its tokenizer into `folder`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, Qwen2Config

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus(), trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
    )
    tok.chat_template = CHAT_TEMPLATE
    config = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        bos_token_id=None,
    )
    import torch

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder
