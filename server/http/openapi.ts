import { z } from 'zod';
import { ENDPOINTS, ErrorBodySchema, IDEMPOTENCY_KEY_HEADER } from '../../shared/contract.js';
import { ERRORS } from '../../shared/errors.js';

/** OpenAPI 3.1 document generated from the shared contract, so the docs cannot drift from the code. */
export function openApiDocument(serverUrl: string): Record<string, unknown> {
  const schema = (type: z.ZodType, io: 'input' | 'output') => z.toJSONSchema(type, { io, unrepresentable: 'any' });
  const paths: Record<string, Record<string, unknown>> = {};
  for (const endpoint of ENDPOINTS) {
    const parameters: unknown[] = [];
    if (endpoint.path.includes('{id}')) parameters.push({ name: 'id', in: 'path', required: true, schema: { type: 'string' } });
    if (endpoint.idempotent) {
      parameters.push({
        name: IDEMPOTENCY_KEY_HEADER, in: 'header', required: true, schema: { type: 'string', minLength: 8, maxLength: 255 },
        description: 'One key per purchase attempt; repeating the request with the same key returns the same answer.',
      });
    }
    paths[endpoint.path] ??= {};
    paths[endpoint.path]![endpoint.method] = {
      summary: endpoint.summary,
      ...(endpoint.auth === 'checkout' ? { security: [{ checkoutToken: [] }] } : {}),
      parameters,
      ...(endpoint.request
        ? { requestBody: { required: true, content: { 'application/json': { schema: schema(endpoint.request, 'input') } } } }
        : {}),
      responses: {
        [String(endpoint.status)]: { description: 'Success', content: { 'application/json': { schema: schema(endpoint.response, 'output') } } },
        default: { description: 'Error envelope', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'kasu-checkout BFF', version: '1.0.0',
      description: `Error codes: ${Object.entries(ERRORS).map(([code, e]) => `${code} (${e.status}${e.retryable ? ', retryable' : ''})`).join(', ')}.`,
    },
    servers: [{ url: serverUrl }],
    paths,
    components: {
      securitySchemes: { checkoutToken: { type: 'http', scheme: 'bearer', description: 'The token returned by POST /v1/checkouts.' } },
      schemas: { Error: schema(ErrorBodySchema, 'output') },
    },
  };
}
