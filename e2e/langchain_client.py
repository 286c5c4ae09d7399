"""LangChain's OpenAI integration (`langchain-openai`) used as a customer uses it against /v1.

One scenario per run: `python langchain_client.py SCENARIO`. Environment: IAF_BASE_URL (the /v1
URL), IAF_API_KEY, IAF_MODEL (a chat model), IAF_EMBED_MODEL (an embedding model), and
TIKTOKEN_CACHE_DIR (tiktoken's vocabulary, written by scripts/test-setup.sh: the run is offline).
Prints one JSON object for gateway-rest/tests/api/clients.rs; a client error ends the run non-zero
with the error's class, status and body.
"""

import json
import os
import sys

import openai
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from pydantic import BaseModel, Field

BASE_URL = os.environ["IAF_BASE_URL"]
API_KEY = os.environ["IAF_API_KEY"]
MODEL = os.environ.get("IAF_MODEL", "")
EMBED_MODEL = os.environ.get("IAF_EMBED_MODEL", "")


def chat():
    return ChatOpenAI(model=MODEL, base_url=BASE_URL, api_key=API_KEY, max_retries=0, timeout=30)


@tool
def get_weather(city: str) -> str:
    """Current weather in a city."""
    return json.dumps({"city": city, "temperature": 21})


def bind_tools():
    """One agent turn: the model asks for the tool, LangChain runs it, the result goes back as a
    ToolMessage, the model answers."""
    llm = chat().bind_tools([get_weather])
    messages = [HumanMessage("What is the weather in Oran?")]
    ai = llm.invoke(messages)
    messages.append(ai)
    results = []
    for call in ai.tool_calls:
        result = get_weather.invoke(call["args"])
        results.append(result)
        messages.append(ToolMessage(result, tool_call_id=call["id"]))
    final = llm.invoke(messages)
    return {
        "tool_calls": [{"id": c["id"], "name": c["name"], "args": c["args"]} for c in ai.tool_calls],
        "first_finish_reason": ai.response_metadata.get("finish_reason"),
        "tool_results": results,
        "final_content": final.content,
        "final_finish_reason": final.response_metadata.get("finish_reason"),
    }


def stream_tools():
    """Streamed tool calls: LangChain adds up the chunks' tool_call_chunks into whole calls."""
    llm = chat().bind_tools([get_weather])
    gathered = None
    chunks = 0
    for chunk in llm.stream("Weather in Algiers and in Oran?"):
        chunks += 1
        gathered = chunk if gathered is None else gathered + chunk
    return {
        "chunks": chunks,
        "tool_calls": [{"id": c["id"], "name": c["name"], "args": c["args"]} for c in gathered.tool_calls],
        "invalid_tool_calls": [dict(c) for c in gathered.invalid_tool_calls],
        "finish_reason": gathered.response_metadata.get("finish_reason"),
    }


# A 1x1 PNG (one red pixel).
PNG_DATA_URI = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


def image():
    """A multimodal HumanMessage: a text block and an image_url block with a data URI."""
    msg = HumanMessage(
        content=[
            {"type": "text", "text": "What colour is this pixel?"},
            {"type": "image_url", "image_url": {"url": PNG_DATA_URI}},
        ]
    )
    r = chat().invoke([msg])
    return {"content": r.content, "image_sent": PNG_DATA_URI}


class Movie(BaseModel):
    """A film, as extracted from the text."""

    title: str = Field(description="The film's title")
    year: int = Field(description="Year of release")
    director: str


PROMPT = "Chronicle of the Years of Fire, directed by Mohammed Lakhdar-Hamina, 1975."


def structured_default():
    """`with_structured_output(Model)` in its default mode (json_schema response_format)."""
    movie = chat().with_structured_output(Movie).invoke(PROMPT)
    return {"movie": movie.model_dump() if movie is not None else None}


def structured_function_calling():
    """`with_structured_output(Model, method="function_calling")`: a forced tool call. The issue
    saw it return None with no error when tools were dropped."""
    movie = chat().with_structured_output(Movie, method="function_calling").invoke(PROMPT)
    return {"movie": movie.model_dump() if movie is not None else None}


def embeddings():
    """`OpenAIEmbeddings.embed_documents` as customers call it: it tokenizes with tiktoken and
    sends token ids, not text."""
    import tiktoken

    texts = ["Le RAG en darija", "Embeddings at IAFactory"]
    emb = OpenAIEmbeddings(model=EMBED_MODEL, base_url=BASE_URL, api_key=API_KEY, max_retries=0, timeout=30)
    vectors = emb.embed_documents(texts)
    # The same tokenizer LangChain picked (an unknown model name falls back to cl100k_base).
    try:
        enc = tiktoken.encoding_for_model(EMBED_MODEL)
    except KeyError:
        enc = tiktoken.get_encoding("cl100k_base")
    return {
        "texts": texts,
        "token_ids": [enc.encode(t) for t in texts],
        "vectors": vectors,
        "query": emb.embed_query(texts[0]),
    }


SCENARIOS = {
    f.__name__: f
    for f in [bind_tools, stream_tools, image, structured_default, structured_function_calling, embeddings]
}


def main():
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name not in SCENARIOS:
        sys.exit(f"usage: langchain_client.py {{{'|'.join(SCENARIOS)}}}")
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
