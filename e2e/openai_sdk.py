"""The official `openai` Python SDK used as a customer uses it against /v1 of the stack.

One scenario per run: `python openai_sdk.py SCENARIO`. Environment: IAF_BASE_URL (the /v1 URL),
IAF_API_KEY, IAF_MODEL (a chat model), IAF_EMBED_MODEL (an embedding model). Prints one JSON
object: what the client got (and what it sent, when the test compares it with what the upstream
received). Started by gateway-rest/tests/api/clients.rs, which asserts on both sides; a client
error ends the run non-zero with the error's class, status and body.
"""

import json
import os
import sys

import openai
from openai import OpenAI
from pydantic import BaseModel

client = OpenAI(
    base_url=os.environ["IAF_BASE_URL"],
    api_key=os.environ["IAF_API_KEY"],
    max_retries=0,
    timeout=30,
)
MODEL = os.environ.get("IAF_MODEL", "")
EMBED_MODEL = os.environ.get("IAF_EMBED_MODEL", "")

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}


def get_weather(city, unit="c"):
    return {"city": city, "temperature": 21, "unit": unit}


def tool_loop():
    """The cookbook's agent loop: the model asks for a tool, the client runs it and sends the
    result back (the assistant message as the SDK returned it, then a `tool` message)."""
    messages = [{"role": "user", "content": "What is the weather in Algiers?"}]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL], tool_choice="auto")
    msg = first.choices[0].message
    messages.append(msg)
    results = []
    for call in msg.tool_calls or []:
        result = get_weather(**json.loads(call.function.arguments))
        results.append(result)
        messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])
    return {
        "tools_sent": [WEATHER_TOOL],
        "first_finish_reason": first.choices[0].finish_reason,
        "tool_calls": [
            {"id": c.id, "name": c.function.name, "arguments": c.function.arguments} for c in msg.tool_calls or []
        ],
        "tool_results": [json.dumps(r) for r in results],
        "final_content": second.choices[0].message.content,
        "final_finish_reason": second.choices[0].finish_reason,
    }


def stream_tools():
    """Streamed tool calls, reassembled by index from their deltas by hand (as agent frameworks
    do) and by the SDK's own stream helper."""
    messages = [{"role": "user", "content": "Weather in Algiers and in Oran?"}]
    stream = client.chat.completions.create(
        model=MODEL,
        messages=messages,
        tools=[WEATHER_TOOL],
        stream=True,
        stream_options={"include_usage": True},
    )
    calls = {}
    finish = None
    usage = None
    chunks = 0
    for chunk in stream:
        chunks += 1
        if chunk.usage is not None:
            usage = chunk.usage.total_tokens
        for choice in chunk.choices:
            for d in choice.delta.tool_calls or []:
                c = calls.setdefault(d.index, {"id": None, "name": "", "arguments": ""})
                if d.id:
                    c["id"] = d.id
                if d.function and d.function.name:
                    c["name"] += d.function.name
                if d.function and d.function.arguments:
                    c["arguments"] += d.function.arguments
            if choice.finish_reason:
                finish = choice.finish_reason
    with client.chat.completions.stream(model=MODEL, messages=messages, tools=[WEATHER_TOOL]) as s:
        final = s.get_final_completion()
    return {
        "tools_sent": [WEATHER_TOOL],
        "chunks": chunks,
        "tool_calls": [calls[i] for i in sorted(calls)],
        "finish_reason": finish,
        "usage_total_tokens": usage,
        "helper_tool_calls": [
            {"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
            for c in final.choices[0].message.tool_calls or []
        ],
        "helper_finish_reason": final.choices[0].finish_reason,
    }


class CalendarEvent(BaseModel):
    name: str
    date: str
    participants: list[str]


def parse():
    """Structured outputs with a Pydantic model (`.parse()` sends a strict json_schema)."""
    # The SDK moved `.parse()` out of `beta` in 2.x; older ones only have the beta one.
    completions = client.chat.completions
    if not hasattr(completions, "parse"):
        completions = client.beta.chat.completions
    r = completions.parse(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Extract the event."},
            {"role": "user", "content": "Alice and Bob go to the science fair on Friday."},
        ],
        response_format=CalendarEvent,
    )
    msg = r.choices[0].message
    return {
        "parsed": msg.parsed.model_dump() if msg.parsed is not None else None,
        "refusal": msg.refusal,
        "pydantic_schema": CalendarEvent.model_json_schema(),
    }


# A 1x1 PNG (one red pixel).
PNG_DATA_URI = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


def image(detail="low"):
    """A vision request: a text part and an image part given as a data URI, with `detail`."""
    image_url = {"url": PNG_DATA_URI}
    if detail:
        image_url["detail"] = detail
    content = [
        {"type": "text", "text": "What colour is this pixel?"},
        {"type": "image_url", "image_url": image_url},
    ]
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}])
    return {"content_sent": content, "content": r.choices[0].message.content, "finish_reason": r.choices[0].finish_reason}


def image_no_detail():
    """The same image part without `detail` (what most client code sends)."""
    return image(detail=None)


def embeddings():
    """Embeddings as the SDK asks for them by default (it sends `encoding_format: base64` when
    the caller sets none, and decodes), then with floats asked explicitly, then shortened."""
    inputs = ["Le RAG en darija", "Embeddings at IAFactory"]
    default = client.embeddings.create(model=EMBED_MODEL, input=inputs)
    floats = client.embeddings.create(model=EMBED_MODEL, input=inputs, encoding_format="float")
    short = client.embeddings.create(model=EMBED_MODEL, input=inputs[0], dimensions=4)

    def vectors(r):
        return [[float(x) for x in d.embedding] for d in sorted(r.data, key=lambda d: d.index)]

    return {
        "inputs": inputs,
        "default": vectors(default),
        "float": vectors(floats),
        "short": vectors(short),
        "model": default.model,
        "usage_prompt_tokens": default.usage.prompt_tokens,
    }


def models():
    """The models a key can call, one model by id, and an unknown id."""
    listed = [m.id for m in client.models.list()]
    chat = client.models.retrieve(MODEL)
    embed = client.models.retrieve(EMBED_MODEL)
    try:
        client.models.retrieve("no-such-model")
        unknown = "no error"
    except openai.NotFoundError as e:
        unknown = {"status": e.status_code, "code": e.code, "type": e.type}
    return {
        "listed": listed,
        "chat": {"id": chat.id, "object": chat.object, "owned_by": chat.owned_by},
        "embed": {"id": embed.id, "object": embed.object, "owned_by": embed.owned_by},
        "unknown": unknown,
    }


def upstream_error():
    """A provider's refusal reaches the SDK's typed error with the provider's own code and param
    (the SDK user branches on `e.code`)."""
    try:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "long " * 50}])
        return {"raised": None}
    except openai.APIStatusError as e:
        return {
            "raised": type(e).__name__,
            "status": e.status_code,
            "code": e.code,
            "param": e.param,
            "type": e.type,
            "message": e.message,
        }


def stream_plain():
    """The quickstart's streaming loop, which reads `chunk.choices[0]` of every chunk: it breaks
    (IndexError) if the stream carries a usage chunk (no choices) the client did not ask for."""
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Say hello"}], stream=True
    )
    text = ""
    usage_chunks = 0
    for chunk in stream:
        if chunk.usage is not None:
            usage_chunks += 1
        text += chunk.choices[0].delta.content or ""
    return {"text": text, "usage_chunks": usage_chunks}


def stream_error():
    """A stream that breaks after the first tokens must end in an error the SDK raises, never in a
    silently shortened answer."""
    pieces = []
    try:
        stream = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Tell me a story"}], stream=True
        )
        for chunk in stream:
            for c in chunk.choices:
                if c.delta.content:
                    pieces.append(c.delta.content)
        return {"pieces": pieces, "raised": None}
    except openai.APIError as e:
        return {"pieces": pieces, "raised": type(e).__name__, "message": e.message, "body": e.body}


SCENARIOS = {
    f.__name__: f
    for f in [tool_loop, stream_tools, parse, image, image_no_detail, embeddings, models, upstream_error, stream_plain, stream_error]
}


def main():
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name not in SCENARIOS:
        sys.exit(f"usage: openai_sdk.py {{{'|'.join(SCENARIOS)}}}")
    try:
        out = SCENARIOS[name]()
    except openai.APIStatusError as e:
        print(json.dumps({"error": type(e).__name__, "status": e.status_code, "body": e.body, "message": str(e)}))
        sys.exit(1)
    except Exception as e:  # the test shows the client's own failure, whatever it is
        print(json.dumps({"error": type(e).__name__, "message": str(e)}))
        sys.exit(1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
