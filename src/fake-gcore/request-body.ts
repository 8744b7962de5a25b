// The JSON object a request to the fake carries, read for both of its kinds of
// request: a control request (a slip answered 400) and an API request whose
// body the contract describes (answered 422, as Gcore's validation does).
import type { IncomingMessage } from 'node:http';

export type JsonObject = Record<string, unknown>;

/** The body as a JSON object (an empty body is an empty object); anything else is `fail`ed with what was wrong. */
export async function readJsonObject(req: IncomingMessage, fail: (message: string) => Error): Promise<JsonObject> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  let body: unknown;
  try {
    body = text === '' ? {} : JSON.parse(text);
  } catch {
    throw fail(`body: not JSON (got ${JSON.stringify(text.slice(0, 100))})`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw fail('body: must be a JSON object');
  return body as JsonObject;
}
