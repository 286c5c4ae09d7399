// The Vercel AI SDK (`ai` with `@ai-sdk/openai`) used as a customer uses it against /v1.
//
// One scenario per run: `node ai_sdk.mjs SCENARIO`. Environment: IAF_BASE_URL (the /v1 URL),
// IAF_API_KEY, IAF_MODEL (a chat model), IAF_EMBED_MODEL (an embedding model). Prints one JSON
// object for gateway-rest/tests/api/clients.rs; a client error ends the run non-zero with the
// error's name, status and body.
//
// @ai-sdk/openai's default model factory (`openai(id)`) calls OpenAI's Responses API
// (/v1/responses); OpenAI-compatible endpoints are used through its Chat Completions factory,
// `createOpenAI({ baseURL, apiKey }).chat(id)`, as the SDK documents. The `responses` scenario
// records what a customer who keeps the default gets.
import { createOpenAI } from "@ai-sdk/openai";
import { embed, generateObject, generateText, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";

const provider = createOpenAI({
  baseURL: process.env.IAF_BASE_URL,
  apiKey: process.env.IAF_API_KEY,
});
const MODEL = process.env.IAF_MODEL ?? "";
const EMBED_MODEL = process.env.IAF_EMBED_MODEL ?? "";
// The SDK retries failed calls twice by default; the tests want to see each call once.
const common = { maxRetries: 0 };

// A 1x1 PNG (one red pixel).
const PNG_DATA_URL =
  "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

const weather = tool({
  description: "Current weather in a city",
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => ({ city, temperature: 21 }),
});

const scenarios = {
  // generateText with a tool: the SDK runs the tool and calls the model again with its result
  // (two steps).
  async generate_text_tool() {
    const r = await generateText({
      ...common,
      model: provider.chat(MODEL),
      tools: { weather },
      stopWhen: stepCountIs(3),
      prompt: "What is the weather in Annaba?",
    });
    return {
      text: r.text,
      finish_reason: r.finishReason,
      steps: r.steps.length,
      tool_calls: r.steps.flatMap((s) =>
        s.toolCalls.map((c) => ({ id: c.toolCallId, name: c.toolName, input: c.input })),
      ),
      tool_results: r.steps.flatMap((s) =>
        s.toolResults.map((t) => ({ id: t.toolCallId, output: t.output })),
      ),
      usage: r.totalUsage,
    };
  },

  // streamText with a tool: the tool call arrives as streamed deltas, the SDK runs it and
  // streams the second step's text.
  async stream_text_tool() {
    const r = streamText({
      ...common,
      model: provider.chat(MODEL),
      tools: { weather },
      stopWhen: stepCountIs(3),
      prompt: "What is the weather in Annaba?",
      onError: () => {},
    });
    const errors = [];
    let inputDeltas = 0;
    for await (const part of r.fullStream) {
      if (part.type === "tool-input-delta") inputDeltas += 1;
      if (part.type === "error") errors.push(String(part.error?.message ?? part.error));
    }
    const steps = await r.steps;
    return {
      text: await r.text,
      steps: steps.length,
      tool_input_deltas: inputDeltas,
      errors,
      tool_calls: steps.flatMap((s) =>
        s.toolCalls.map((c) => ({ id: c.toolCallId, name: c.toolName, input: c.input })),
      ),
      tool_results: steps.flatMap((s) =>
        s.toolResults.map((t) => ({ id: t.toolCallId, output: t.output })),
      ),
    };
  },

  // A stream that breaks after its first tokens: the SDK must surface an error part, not end as
  // if the answer were complete.
  async stream_error() {
    const r = streamText({
      ...common,
      model: provider.chat(MODEL),
      prompt: "Tell me a story",
      onError: () => {},
    });
    const pieces = [];
    const errors = [];
    // The failure comes as an error part, or thrown out of the stream (a connection cut).
    try {
      for await (const part of r.fullStream) {
        if (part.type === "text-delta") pieces.push(part.text);
        if (part.type === "error") errors.push(String(part.error?.message ?? JSON.stringify(part.error)));
      }
    } catch (e) {
      errors.push(`thrown ${e.name}: ${e.message}`);
    }
    let finish;
    try {
      finish = await r.finishReason;
    } catch (e) {
      finish = `threw: ${e.name}`;
    }
    return { pieces, errors, finish_reason: finish };
  },

  async stream_text() {
    const r = streamText({
      ...common,
      model: provider.chat(MODEL),
      system: "You are terse.",
      prompt: "Say hello",
      onError: () => {},
    });
    const pieces = [];
    for await (const piece of r.textStream) pieces.push(piece);
    return {
      pieces,
      text: pieces.join(""),
      finish_reason: await r.finishReason,
      usage: await r.usage,
    };
  },

  async generate_object() {
    const schema = z.object({
      name: z.string(),
      ingredients: z.array(z.object({ item: z.string(), grams: z.number() })),
    });
    const r = await generateObject({
      ...common,
      model: provider.chat(MODEL),
      schemaName: "recipe",
      schema,
      prompt: "A recipe for chakhchoukha",
    });
    return { object: r.object, finish_reason: r.finishReason };
  },

  // An image part given as a data URL (the SDK sends it as an image_url part).
  async image() {
    const r = await generateText({
      ...common,
      model: provider.chat(MODEL),
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "What colour is this pixel?" },
            { type: "image", image: PNG_DATA_URL },
          ],
        },
      ],
    });
    return { text: r.text, image_sent: PNG_DATA_URL };
  },

  async embed() {
    const value = "Le RAG en darija";
    const r = await embed({ ...common, model: provider.embedding(EMBED_MODEL), value });
    return { value, embedding: r.embedding, usage: r.usage };
  },

  // The provider's default factory: the Responses API.
  async responses() {
    try {
      const r = await generateText({ ...common, model: provider(MODEL), prompt: "Hello" });
      return { called: true, text: r.text };
    } catch (e) {
      return {
        called: false,
        error: e.name,
        status: e.statusCode ?? null,
        url: e.url ?? null,
        body: e.responseBody ?? null,
        message: e.message,
      };
    }
  },
};

const name = process.argv[2];
if (!(name in scenarios)) {
  console.error(`usage: node ai_sdk.mjs {${Object.keys(scenarios).join("|")}}`);
  process.exit(2);
}
try {
  console.log(JSON.stringify(await scenarios[name]()));
} catch (e) {
  console.log(
    JSON.stringify({
      error: e.name,
      status: e.statusCode ?? null,
      url: e.url ?? null,
      body: e.responseBody ?? null,
      message: e.message,
      cause: e.cause ? String(e.cause) : null,
    }),
  );
  process.exit(1);
}
