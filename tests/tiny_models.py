"""Tiny random models for every supported task, built with transformers in seconds."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "hello",
    "world",
    "paris",
    "is",
    "capital",
    "of",
    "france",
    "who",
    "wrote",
    "this",
    "book",
    "ada",
    "lovelace",
    "lives",
    "in",
    "london",
    "berlin",
    "apple",
    "google",
    "a",
    "an",
    "and",
    "to",
    "river",
    "bank",
    "today",
    "near",
    "good",
    "bad",
    "great",
    "terrible",
    "movie",
    "was",
    "it",
]


def _vocab_file(folder: Path) -> Path:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = list("abcdefghijklmnopqrstuvwxyz0123456789.,?!'")
    pieces = [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    vocab = list(dict.fromkeys(specials + WORDS + letters + pieces))
    path = folder / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n")
    return path


def bert_tokenizer(folder: Path) -> object:
    """A WordPiece tokenizer over a small vocabulary, saved as tokenizer.json."""
    from transformers import BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizerFast(vocab_file=str(_vocab_file(folder)), do_lower_case=True)
    tokenizer.save_pretrained(str(folder))
    return tokenizer


def _bert_config(vocab_size: int, **kwargs: object) -> object:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=128,
        **kwargs,
    )


def build_encoder(folder: Path, task: str) -> Path:
    """A tiny BERT for an encoder task, with its tokenizer (and ST files for embeddings)."""
    import torch
    import transformers

    torch.manual_seed(0)
    tokenizer = bert_tokenizer(folder)
    vocab = len(tokenizer)  # type: ignore[arg-type]
    if task == "sentence-similarity":
        model = transformers.BertModel(_bert_config(vocab))
        model.save_pretrained(str(folder))
        (folder / "modules.json").write_text(
            json.dumps(
                [
                    {
                        "idx": 0,
                        "name": "0",
                        "path": "",
                        "type": "sentence_transformers.models.Transformer",
                    },
                    {
                        "idx": 1,
                        "name": "1",
                        "path": "1_Pooling",
                        "type": "sentence_transformers.models.Pooling",
                    },
                    {
                        "idx": 2,
                        "name": "2",
                        "path": "2_Normalize",
                        "type": "sentence_transformers.models.Normalize",
                    },
                ]
            )
        )
        (folder / "1_Pooling").mkdir()
        (folder / "1_Pooling" / "config.json").write_text(
            json.dumps(
                {
                    "word_embedding_dimension": 32,
                    "pooling_mode_cls_token": False,
                    "pooling_mode_mean_tokens": True,
                    "pooling_mode_max_tokens": False,
                    "pooling_mode_mean_sqrt_len_tokens": False,
                }
            )
        )
        (folder / "2_Normalize").mkdir()
        (folder / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": 64, "do_lower_case": False})
        )
        return folder
    labels = {
        "text-classification": ["negative", "neutral", "positive"],
        "token-classification": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"],
    }.get(task)
    kwargs: dict[str, object] = {}
    if labels:
        kwargs = {
            "id2label": dict(enumerate(labels)),
            "label2id": {label: i for i, label in enumerate(labels)},
        }
    cls = {
        "text-classification": transformers.BertForSequenceClassification,
        "token-classification": transformers.BertForTokenClassification,
        "question-answering": transformers.BertForQuestionAnswering,
        "fill-mask": transformers.BertForMaskedLM,
        "feature-extraction": transformers.BertModel,
    }[task]
    model = cls(_bert_config(vocab, **kwargs))
    model.save_pretrained(str(folder))
    return folder


def bpe_tokenizer(folder: Path) -> object:
    """A byte-level BPE tokenizer trained on a few sentences, with an end-of-text token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator([" ".join(WORDS)] * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        model_input_names=["input_ids", "attention_mask"],
    )
    fast.save_pretrained(str(folder))
    return fast


def build_decoder(folder: Path, kind: str = "gpt2") -> Path:
    """A tiny GPT-2 or Llama-style causal LM with a BPE tokenizer."""
    import torch
    import transformers

    torch.manual_seed(0)
    tokenizer = bpe_tokenizer(folder)
    vocab = len(tokenizer)  # type: ignore[arg-type]
    eos = tokenizer.eos_token_id  # type: ignore[attr-defined]
    if kind == "gpt2":
        config = transformers.GPT2Config(
            vocab_size=vocab,
            n_positions=128,
            n_embd=32,
            n_layer=2,
            n_head=2,
            bos_token_id=eos,
            eos_token_id=eos,
        )
        model = transformers.GPT2LMHeadModel(config)
    else:
        config = transformers.LlamaConfig(
            vocab_size=vocab,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=128,
            bos_token_id=eos,
            eos_token_id=eos,
        )
        model = transformers.LlamaForCausalLM(config)
    model.save_pretrained(str(folder))
    return folder


def build_vit(folder: Path) -> Path:
    """A tiny ViT image classifier with its image processor."""
    import torch
    import transformers

    torch.manual_seed(0)
    labels = ["cat", "dog", "bird", "fish"]
    config = transformers.ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    transformers.ViTForImageClassification(config).save_pretrained(str(folder))
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(str(folder))
    return folder


def build_cross_encoder(folder: Path) -> Path:
    """A tiny BERT cross-encoder: one relevance logit for a (query, passage) pair."""
    import torch
    import transformers

    torch.manual_seed(1)
    tokenizer = bert_tokenizer(folder)
    config = _bert_config(len(tokenizer), num_labels=1)  # type: ignore[arg-type]
    transformers.BertForSequenceClassification(config).save_pretrained(str(folder))
    return folder


#: A ChatML template with tool use, as Qwen2.5's (system default, tool calls, tool
#: responses, the generation prompt), plus a raise_exception for an empty conversation.
CHATML_TEMPLATE = """{%- if not messages %}
    {{- raise_exception('A conversation needs at least one message.') }}
{%- endif %}
{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

CHAT_WORDS = [
    "system",
    "user",
    "assistant",
    "tool",
    "tools",
    "tool_call",
    "tool_response",
    "name",
    "arguments",
    "function",
    "description",
    "parameters",
    "weather",
    "city",
    "You",
    "are",
    "helpful",
]


def chat_tokenizer(folder: Path, *, template: str | None = CHATML_TEMPLATE) -> object:
    """A byte-level BPE tokenizer with ChatML's special tokens and (by default) a chat
    template, saved where transformers saves them (``chat_template.jinja``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator([" ".join(WORDS + CHAT_WORDS)] * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        model_input_names=["input_ids", "attention_mask"],
    )
    if template is not None:
        fast.chat_template = template
    fast.save_pretrained(str(folder))
    return fast


def _qwen2(tokenizer: object, folder: Path) -> object:
    import transformers

    vocab = len(tokenizer)  # type: ignore[arg-type]
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")  # type: ignore[attr-defined]
    end = tokenizer.convert_tokens_to_ids("<|endoftext|>")  # type: ignore[attr-defined]
    config = transformers.Qwen2Config(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        eos_token_id=im_end,
        bos_token_id=end,
    )
    model = transformers.Qwen2ForCausalLM(config)
    # Chat models end a turn on either token, as Qwen2's generation_config.json says.
    model.generation_config = transformers.GenerationConfig(
        eos_token_id=[im_end, end], bos_token_id=end, pad_token_id=end
    )
    return model


def build_chat_decoder(folder: Path) -> Path:
    """A tiny random Qwen2 chat model: ChatML template with tools, two end-of-turn ids."""
    import torch

    torch.manual_seed(0)
    model = _qwen2(chat_tokenizer(folder), folder)
    model.save_pretrained(str(folder))  # type: ignore[attr-defined]
    return folder


def build_scripted_decoder(folder: Path, prompt: str, continuation: str) -> Path:
    """A tiny Qwen2 chat model whose greedy answer to ``prompt`` is ``continuation`` and
    then <|im_end|>: its layers add nothing, so each token's logits depend on the token
    alone, and the LM head maps each token of the script to the next one."""
    import torch

    torch.manual_seed(0)
    tokenizer = chat_tokenizer(folder)
    model = _qwen2(tokenizer, folder)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
    script = tokenizer(continuation, add_special_tokens=False)["input_ids"]  # type: ignore[operator]
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")  # type: ignore[attr-defined]
    chain = [prompt_ids[-1], *script, im_end]
    sources = chain[:-1]
    if len(set(sources)) != len(sources):
        raise ValueError(f"The script repeats a token: {continuation!r} cannot be scripted.")
    with torch.no_grad():
        for layer in model.model.layers:  # type: ignore[attr-defined]
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embeddings = model.model.embed_tokens.weight  # type: ignore[attr-defined]
        head = model.lm_head.weight  # type: ignore[attr-defined]
        head.zero_()
        for source, target in itertools.pairwise(chain):
            row = embeddings[source]
            head[target] += 5 * row / row.pow(2).mean().sqrt()  # RMSNorm's output, scaled
    model.save_pretrained(str(folder))  # type: ignore[attr-defined]
    return folder
