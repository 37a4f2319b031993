"""The OpenAI-compatible wire format of a node: request bodies, responses, SSE chunks, errors.

Bodies are validated strictly (a string is not a number, a bool is not an int); the first
problem becomes a 400 whose `param` names the field. Unknown fields are ignored, as vLLM does;
a few known ones this server cannot honour (`n` > 1, `echo`, `logprobs`, `suffix`, `best_of`
> 1) are refused rather than silently dropped.
"""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import JSONResponse

ErrorType = Literal["invalid_request_error", "not_found_error", "server_error"]

SSE_DONE = b"data: [DONE]\n\n"

_M = TypeVar("_M", bound=BaseModel)


class ApiError(Exception):
    """An error answer in OpenAI's shape."""

    def __init__(
        self, status_code: int, message: str, *, type: ErrorType = "invalid_request_error",
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.type = type
        self.param = param

    def body(self) -> dict[str, Any]:
        return error_body(self.message, type=self.type, param=self.param)


def error_body(
    message: str, *, type: ErrorType = "invalid_request_error", param: str | None = None
) -> dict[str, Any]:
    """`{"error": {"message", "type", "param", "code": null}}`, as OpenAI answers errors."""
    return {"error": {"message": message, "type": type, "param": param, "code": None}}


def parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return data


_TYPE_TAGS = {"str", "int", "float", "bool", "list", "dict", "none"}


def _param_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif "[" in part or part in _TYPE_TAGS or part.startswith(("function-", "literal")):
            continue  # pydantic's union/validator tags, not fields
        else:
            path += f".{part}" if path else part
    return path


def validate(model: type[_M], data: dict[str, Any]) -> _M:
    try:
        return model.model_validate(data, strict=True)
    except ValidationError as exc:
        error = exc.errors()[0]
        param = _param_path(tuple(error["loc"])) or None
        message = error["msg"] if error["type"] != "missing" else "this field is required"
        raise ApiError(400, f"{param}: {message}" if param else message, param=param) from None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    n: int | None = Field(default=None, ge=1, le=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    logprobs: Any = None

    def stop_strings(self) -> tuple[str, ...]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stops) > 4:
            raise ApiError(400, "stop: at most 4 stop strings", param="stop")
        if any(not s for s in stops):
            raise ApiError(400, "stop: stop strings must not be empty", param="stop")
        return tuple(stops)

    def check_supported(self) -> None:
        if self.logprobs not in (None, False, 0):
            raise ApiError(400, "logprobs: not supported by this server", param="logprobs")


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    echo: bool | None = False
    suffix: str | None = None
    best_of: int | None = Field(default=None, ge=1, le=1)

    def prompt_text(self) -> str:
        if isinstance(self.prompt, list):
            if len(self.prompt) != 1:
                raise ApiError(400, "prompt: a list prompt must hold exactly one string",
                               param="prompt")
            return self.prompt[0]
        return self.prompt

    def check_supported(self) -> None:
        super().check_supported()
        if self.echo:
            raise ApiError(400, "echo: not supported by this server", param="echo")
        if self.suffix:
            raise ApiError(400, "suffix: not supported by this server", param="suffix")


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)

    def prompt_text(self) -> str:
        return chat_template([(m.role, m.text()) for m in self.messages])


def chat_template(messages: list[tuple[str, str]]) -> str:
    """The simple template the node's model sees: one `<|role|>` block per message, then the
    assistant's turn is opened."""
    turns = "".join(f"<|{'system' if role == 'developer' else role}|>\n{text}\n"
                    for role, text in messages)
    return turns + "<|assistant|>\n"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def completion_body(
    request_id: str, created: int, model: str, text: str, finish_reason: str | None,
    usage_: dict[str, int] | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": request_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
        ],
    }
    if usage_ is not None:
        body["usage"] = usage_
    return body


def chat_body(
    request_id: str, created: int, model: str, text: str, finish_reason: str,
    usage_: dict[str, int],
) -> dict[str, Any]:
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage_,
    }


def chat_chunk(
    request_id: str, created: int, model: str, delta: dict[str, Any], finish_reason: str | None
) -> dict[str, Any]:
    return {
        "id": request_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        ],
    }


def usage_chunk(
    request_id: str, created: int, model: str, obj: str, usage_: dict[str, int]
) -> dict[str, Any]:
    """The extra last chunk of `stream_options.include_usage`: no choices, the usage."""
    return {"id": request_id, "object": obj, "created": created, "model": model,
            "choices": [], "usage": usage_}


def models_body(model: str, created: int, max_model_len: int) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {
                "id": model,
                "object": "model",
                "created": created,
                "owned_by": "inferops",
                "root": model,
                "max_model_len": max_model_len,
            }
        ],
    }


def openai_error(status_code: int, message: str, error_type: str, *,
                 param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> JSONResponse:
    """An error in OpenAI's shape, as the nodes answer theirs."""
    return JSONResponse(
        {"error": {"message": message, "type": error_type, "param": param, "code": code}},
        status_code=status_code, headers=headers,
    )
