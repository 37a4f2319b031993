"""parse_exposition over /metrics text as the real exporters publish it, quirks included.

Each fixture is a short excerpt of published output, with its source:

- dcgm-exporter's README quick start (github.com/NVIDIA/dcgm-exporter, README.md, every
  release from 2.x to 4.x shows it): every `# HELP`/`# TYPE` pair first, the samples after
  them, a space after each label comma, and DCGM's "blank" sentinel (a field the GPU does
  not report, here the memory temperature) written as the raw int64 9223372036854775794;
- vLLM's production-metrics page (github.com/vllm-project/vllm, docs/usage/metrics.md): a
  histogram whose family name itself ends in `_total` (`vllm:iteration_tokens_total`), `_sum`
  before the buckets, `le` sorted before `model_name`;
- vLLM v1 in single-process mode: a capture of v0.10.2 (ai-dynamo/dynamo's vLLM metrics
  list) records a `_created` series beside every counter and histogram; the lines here are
  written as prometheus_client's `generate_latest` writes them (checked against it), with
  vLLM's names and help texts.
"""

from __future__ import annotations

from collectors import ScrapedSample, parse_exposition

NOW = 1_767_000_000.0

DCGM_README = """\
# HELP DCGM_FI_DEV_SM_CLOCK SM clock frequency (in MHz).
# TYPE DCGM_FI_DEV_SM_CLOCK gauge
# HELP DCGM_FI_DEV_MEM_CLOCK Memory clock frequency (in MHz).
# TYPE DCGM_FI_DEV_MEM_CLOCK gauge
# HELP DCGM_FI_DEV_MEMORY_TEMP Memory temperature (in C).
# TYPE DCGM_FI_DEV_MEMORY_TEMP gauge
DCGM_FI_DEV_SM_CLOCK{gpu="0", UUID="GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e52"} 139
DCGM_FI_DEV_MEM_CLOCK{gpu="0", UUID="GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e52"} 405
DCGM_FI_DEV_MEMORY_TEMP{gpu="0", UUID="GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e52"} \
9223372036854775794
"""

VLLM_DOCS = """\
# HELP vllm:iteration_tokens_total Histogram of number of tokens per engine_step.
# TYPE vllm:iteration_tokens_total histogram
vllm:iteration_tokens_total_sum{model_name="unsloth/Llama-3.2-1B-Instruct"} 0.0
vllm:iteration_tokens_total_bucket{le="1.0",model_name="unsloth/Llama-3.2-1B-Instruct"} 3.0
vllm:iteration_tokens_total_bucket{le="8.0",model_name="unsloth/Llama-3.2-1B-Instruct"} 3.0
vllm:iteration_tokens_total_bucket{le="16.0",model_name="unsloth/Llama-3.2-1B-Instruct"} 3.0
"""

VLLM_SINGLE_PROCESS = """\
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{engine="0",model_name="Qwen/Qwen3-0.6B"} 42.0
# HELP vllm:prompt_tokens_created Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_created gauge
vllm:prompt_tokens_created{engine="0",model_name="Qwen/Qwen3-0.6B"} 1.7600244587366743e+09
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.001",model_name="Qwen/Qwen3-0.6B"} 0.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="Qwen/Qwen3-0.6B"} 2.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="Qwen/Qwen3-0.6B"} 2.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="Qwen/Qwen3-0.6B"} 0.0731
# HELP vllm:time_to_first_token_seconds_created Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds_created gauge
vllm:time_to_first_token_seconds_created{engine="0",model_name="Qwen/Qwen3-0.6B"} \
1.7600244587367e+09
"""


def test_dcgm_exporter_readme_headers_first_spaces_and_the_blank_sentinel() -> None:
    gpu = {"gpu": "0", "UUID": "GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e52"}
    assert parse_exposition(DCGM_README, default_timestamp_s=NOW) == [
        ScrapedSample("DCGM_FI_DEV_SM_CLOCK", gpu, 139.0, NOW),
        ScrapedSample("DCGM_FI_DEV_MEM_CLOCK", gpu, 405.0, NOW),
        # DCGM's blank is kept as the number it is; a rule must filter it (`< 1e9`), as
        # dashboards built on dcgm-exporter do.
        ScrapedSample("DCGM_FI_DEV_MEMORY_TEMP", gpu, 9223372036854775794.0, NOW),
    ]


def test_vllm_docs_histogram_named_total() -> None:
    model = {"model_name": "unsloth/Llama-3.2-1B-Instruct"}
    assert parse_exposition(VLLM_DOCS, default_timestamp_s=NOW) == [
        ScrapedSample("vllm:iteration_tokens_total_sum", model, 0.0, NOW),
        ScrapedSample("vllm:iteration_tokens_total_bucket", {"le": "1.0", **model}, 3.0, NOW),
        ScrapedSample("vllm:iteration_tokens_total_bucket", {"le": "8.0", **model}, 3.0, NOW),
        ScrapedSample("vllm:iteration_tokens_total_bucket", {"le": "16.0", **model}, 3.0, NOW),
    ]


def test_vllm_single_process_created_series_are_kept_as_their_own_series() -> None:
    engine = {"engine": "0", "model_name": "Qwen/Qwen3-0.6B"}
    assert parse_exposition(VLLM_SINGLE_PROCESS, default_timestamp_s=NOW) == [
        ScrapedSample("vllm:prompt_tokens_total", engine, 42.0, NOW),
        ScrapedSample("vllm:prompt_tokens_created", engine, 1760024458.7366743, NOW),
        ScrapedSample(
            "vllm:time_to_first_token_seconds_bucket", {**engine, "le": "0.001"}, 0.0, NOW
        ),
        ScrapedSample(
            "vllm:time_to_first_token_seconds_bucket", {**engine, "le": "+Inf"}, 2.0, NOW
        ),
        ScrapedSample("vllm:time_to_first_token_seconds_count", engine, 2.0, NOW),
        ScrapedSample("vllm:time_to_first_token_seconds_sum", engine, 0.0731, NOW),
        ScrapedSample("vllm:time_to_first_token_seconds_created", engine, 1760024458.7367, NOW),
    ]
