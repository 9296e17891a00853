// A Vercel AI SDK app as a user writes one: experimental_telemetry on, the OTel Node SDK exporting
// OTLP/HTTP (protobuf) to llmscope. It calls the simulated provider (SIM_URL) and prints, as one JSON
// line, the trace id and what the provider answered each model call (the test's truth).
import { trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, jsonSchema, stepCountIs, streamText, tool } from 'ai';

const sim = process.env.SIM_URL;
const sdk = new NodeSDK({
  resource: resourceFromAttributes({ 'service.name': 'vercel-ai-app' }),
  traceExporter: new OTLPTraceExporter({ url: process.env.OTLP_TRACES_URL }),
});
sdk.start();

const openai = createOpenAI({ baseURL: `${sim}/v1`, apiKey: 'k' });
const anthropic = createAnthropic({ baseURL: `${sim}/v1`, apiKey: 'k' });
const SYSTEM = 'You are a careful assistant for a parcel company. Answer in one short sentence, politely.';
const QUESTION = 'Where is my parcel?';
const telemetry = { isEnabled: true, functionId: 'parcel-bot', metadata: { sessionId: 'sess-vercel', userId: 'user-7' } };
const cached = { anthropic: { cacheControl: { type: 'ephemeral' } } };
const locate = tool({
  description: 'Where a parcel is now',
  inputSchema: jsonSchema({ type: 'object', properties: { id: { type: 'string' } }, required: ['id'] }),
  execute: async ({ id }) => ({ id, where: 'depot' }),
});

// The provider's own counts, from its raw usage (OTel semantics: input includes cache reads and writes).
function truth(label, provider, model, step, stream) {
  const raw = step.usage.raw ?? {};
  let input, read, write, output;
  if (provider === 'anthropic') {
    read = raw.cache_read_input_tokens ?? 0;
    write = raw.cache_creation_input_tokens ?? 0;
    input = raw.input_tokens + read + write;
    output = raw.output_tokens;
  } else if ('prompt_tokens' in raw) { // chat completions
    read = raw.prompt_tokens_details?.cached_tokens ?? 0;
    write = 0;
    input = raw.prompt_tokens;
    output = raw.completion_tokens;
  } else { // responses
    read = raw.input_tokens_details?.cached_tokens ?? 0;
    write = 0;
    input = raw.input_tokens;
    output = raw.output_tokens;
  }
  return { label, provider, model, input, output, read, write, response_id: step.response.id, stream };
}

const calls = [];
const tools = [];
const root = trace.getTracer('interop-app');
const traceId = await root.startActiveSpan('interop-root', async (span) => {
  const messages = [
    { role: 'system', content: SYSTEM, providerOptions: cached },
    { role: 'user', content: QUESTION },
  ];
  for (const label of ['responses', 'responses (cache read)']) {
    const r = await generateText({
      model: openai('gpt-4o-mini'), messages, allowSystemInMessages: true, experimental_telemetry: telemetry,
    });
    calls.push(truth(label, 'openai', 'gpt-4o-mini', r.steps[0], false));
  }
  for (const label of ['messages stream (cache write)', 'messages stream (cache read)']) {
    const r = streamText({
      model: anthropic('claude-sonnet-4-6'), messages, allowSystemInMessages: true, experimental_telemetry: telemetry,
    });
    for await (const _ of r.textStream) { /* consume */ }
    calls.push(truth(label, 'anthropic', 'claude-sonnet-4-6', (await r.steps)[0], true));
  }
  const run = await generateText({
    model: openai.chat('gpt-4o-mini'),
    system: SYSTEM,
    prompt: 'Where is parcel 12?',
    tools: { locate },
    stopWhen: stepCountIs(3),
    experimental_telemetry: telemetry,
  });
  run.steps.forEach((step, i) => {
    calls.push(truth(`chat with tools, step ${i + 1}`, 'openai', 'gpt-4o-mini', step, false));
    for (const call of step.toolCalls) tools.push({ id: call.toolCallId, name: call.toolName });
  });
  span.end();
  return span.spanContext().traceId;
});
await sdk.shutdown();
process.stdout.write(JSON.stringify({ trace_id: traceId, calls, tools }) + '\n');
