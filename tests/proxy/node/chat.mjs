// An app that only changed its base URL: the openai npm package through the llmscope capture proxy.
// Prints the answers as JSON lines so the test can compare them with what llmscope stored.
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.PROXY_URL + "/v1",
  apiKey: "sk-node-provider-key",
  defaultHeaders: { traceparent: process.env.TRACEPARENT, "x-llmscope-session-id": "node-session" },
  maxRetries: 0,
});

const completion = await client.chat.completions.create({
  model: "gpt-4o-mini",
  messages: [{ role: "user", content: "Hello from Node" }],
});
console.log(JSON.stringify({ kind: "chat", id: completion.id, usage: completion.usage }));

const stream = await client.chat.completions.create({
  model: "gpt-4o-mini",
  messages: [{ role: "user", content: "Stream from Node" }],
  stream: true,
  stream_options: { include_usage: true },
});
let usage = null;
let id = null;
for await (const chunk of stream) {
  id = chunk.id;
  if (chunk.usage) usage = chunk.usage;
}
console.log(JSON.stringify({ kind: "stream", id, usage }));
