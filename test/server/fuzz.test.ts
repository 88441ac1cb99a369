/**
 * Fuzzing every endpoint of the BFF with fast-check: every API v1 endpoint of `shared/contract.ts` (ENDPOINTS), the
 * admin API and Khipu's notifications get generated bodies, query strings, ids and headers — arbitrary JSON, wrong
 * types, huge strings, unicode (lone surrogates, NUL), prototype-pollution keys, deep nesting, broken JSON, odd
 * content types. For every answer: never a 5xx, every error in our envelope, and a refused request stores nothing.
 * PGlite only (speed). Reproduce a failure with FUZZ_SEED=<seed printed by fast-check>.
 */
import fc from 'fast-check';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateCheckoutResponseSchema, ENDPOINTS, ErrorBodySchema, type Endpoint } from '../../shared/contract.js';
import { SANDBOX_ADMIN_TOKEN } from '../../server/config.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const RUNS = 100;
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
const assertOptions = { numRuns: RUNS, ...(SEED !== undefined ? { seed: SEED } : {}) };

// ---------- generators ----------

/** encodeURIComponent that does not throw on lone surrogates (they become U+FFFD, as a browser would send them). */
const encode = (text: string) => encodeURIComponent(text.replace(/[\ud800-\udfff]/gu, '\ufffd'));

/** An object as the ordered entries it is written with, so keys such as "__proto__" reach the wire as they are. */
class Entries {
  constructor(readonly entries: Array<[string, unknown]>) {}
}
function serialize(value: unknown): string {
  if (value instanceof Entries) return `{${value.entries.map(([k, v]) => `${JSON.stringify(k)}:${serialize(v)}`).join(',')}}`;
  if (Array.isArray(value)) return `[${value.map(serialize).join(',')}]`;
  return JSON.stringify(value) ?? 'null';
}

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__'];
/** Values that are valid somewhere (so some requests get past validation), mixed into the nasty ones. */
const PLAUSIBLE = [
  'Funerario', 'Universidad', 'Retiro', 'email', 'khipu', 'card', 'CMX', 'MEX', '03940', '50000', 'cliente@example.mx', '5512345678',
  '+52 55 1234 5678', 'https://partner.example', 'https://partner.example/', 'CAMC880526HMCBNR04', 'Bawdf', '1.3', 'registered',
  '2026-11-01', '2026-11-23', '2026-11-23T00:00:00Z', true, false, 1, 3, 12, 1000, 'tok_abc', '4242', 'visa',
];
/** Strings made of control characters, NUL, lone surrogates, combining marks, emoji and plain letters. */
const controlString = fc.string({
  unit: fc.constantFrom('\u0000', '\u0001', '\n', '\r', '\t', '\u007f', '\u0085', '\u2028', '\ud800', '\u0301', '🙂', 'a', 'é', '%', '&', '='),
  maxLength: 12,
});
const nastyScalar = fc.oneof(
  fc.string(),
  controlString,
  controlString,
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(
    '', ' ', '\u0000', 'a\u0000b', '\ud800', '\udfff\ud800', '🙂', '\u202e', 'Ω'.repeat(300), '<script>alert(1)</script>',
    "' OR 1=1 --", '../../etc/passwd', '%00', '%E0%A4%A', 'NaN', '1e309', '-0', '9007199254740993', '{}', '[]', 'null',
  ),
  fc.constantFrom(-1, 0, -0, 1.5, 2 ** 53, -(2 ** 31), 1e308, Number.MAX_SAFE_INTEGER + 2),
  fc.integer({ min: 1_000, max: 20_000 }).map((n) => 'x'.repeat(n)),
  fc.constantFrom(...PLAUSIBLE),
);

/** Property names used anywhere in a zod schema (from its JSON Schema). */
function keysOf(schema: z.ZodType | undefined): string[] {
  if (!schema) return [];
  const keys = new Set<string>();
  const walk = (node: unknown) => {
    if (!node || typeof node !== 'object') return;
    const { properties } = node as { properties?: Record<string, unknown> };
    if (properties) for (const key of Object.keys(properties)) keys.add(key);
    for (const child of Object.values(node)) walk(child);
  };
  walk(z.toJSONSchema(schema, { unrepresentable: 'any', io: 'input' }));
  return [...keys];
}

/** JSON-ish values whose objects use `keys` (the endpoint's own field names), prototype keys and random ones. */
function shapedValue(keys: string[]) {
  const key = fc.oneof(
    { weight: 4, arbitrary: keys.length ? fc.constantFrom(...keys) : fc.string() },
    { weight: 1, arbitrary: fc.constantFrom(...PROTO_KEYS) },
    { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
  );
  return fc.letrec<{ value: unknown; object: Entries }>((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, nastyScalar, tie('object'), fc.array(tie('value'), { maxLength: 4 })),
    object: fc.array(fc.tuple(key, tie('value')), { maxLength: 6 }).map((entries) => new Entries(entries)),
  })).object;
}

const deepNesting = fc.oneof(
  fc.integer({ min: 10, max: 3_000 }).map((depth) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`),
  fc.integer({ min: 10, max: 7_000 }).map((depth) => `${'['.repeat(depth)}${']'.repeat(depth)}`),
  fc.tuple(fc.constantFrom('contact', 'address', 'consents', 'card', 'curp', 'product', 'from'), fc.integer({ min: 10, max: 2_000 }))
    .map(([key, depth]) => `{"${key}":${'{"email":'.repeat(depth)}"x"${'}'.repeat(depth)}}`),
);
const rawBody = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.constantFrom(
    '', '{', '}', 'null', 'true', '0', '"str"', '[]', '{}', '{"a":1,}', '{"curp":"CAMC880526HMCBNR04"', '\u0000',
    '{"__proto__":{"polluted":true}}', '{"constructor":{"prototype":{"polluted":true}}}',
    '{"__proto__":{"curp":"CAMC880526HMCBNR04","product":"Funerario","paymentMethod":"email"}}',
  ),
  fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value) ?? 'null'),
  fc.integer({ min: 15_000, max: 40_000 }).map((n) => JSON.stringify({ curp: 'C'.repeat(n) })),
);
const CONTENT_TYPES = [
  'application/json', 'application/json', 'application/json', 'application/json; charset=utf-8', 'application/json; charset=latin1',
  'text/plain', 'application/x-www-form-urlencoded', 'application/vnd.api+json', 'multipart/form-data; boundary=x', undefined,
] as const;

/** Every path to a leaf of a JSON value (["address", "street"], …). */
function leafPaths(value: unknown, path: string[] = []): string[][] {
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([key, child]) => leafPaths(child, [...path, key]));
  return [path];
}
const REMOVE = Symbol('remove');
/** Characters that break storage, encodings or parsers when slipped into an otherwise valid text (NUL first). */
const INJECTED = fc.oneof(
  { weight: 3, arbitrary: fc.constant('\u0000') },
  { weight: 1, arbitrary: fc.constantFrom('\ud800', '\udc00', '\u202e', '\n', '\r\n', '🙂', "'", '"', '\\', '%00', '\u0085', '\ufeff') },
);
/**
 * A valid body with one leaf replaced by a nasty value, removed, a character injected into it, or a prototype key
 * added beside it.
 */
function mutatedExample(example: Record<string, unknown>): fc.Arbitrary<string> {
  const paths = leafPaths(example);
  const toEntries = (object: Record<string, unknown>): Entries => new Entries(Object.entries(object).map(([k, v]) =>
    [k, v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Entries) ? toEntries(v as Record<string, unknown>) : v]));
  const withLeaf = (path: string[], change: (old: unknown) => unknown) => {
    const copy = structuredClone(example) as Record<string, unknown>;
    let parent = copy;
    for (const key of path.slice(0, -1)) parent = parent[key] as Record<string, unknown>;
    const last = path.at(-1)!;
    const value = change(parent[last]);
    if (value === REMOVE) delete parent[last];
    else parent[last] = value;
    return serialize(toEntries(copy));
  };
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant(JSON.stringify(example)) },
    {
      weight: 4,
      arbitrary: fc.tuple(fc.constantFrom(...paths), fc.oneof({ weight: 4, arbitrary: nastyScalar }, fc.constant(REMOVE), shapedValue([])))
        .map(([path, value]) => withLeaf(path, () => value)),
    },
    {
      weight: 4,
      arbitrary: fc.tuple(fc.constantFrom(...paths), INJECTED, fc.nat()).map(([path, char, at]) => withLeaf(path, (old) => {
        const text = String(old);
        const i = at % (text.length + 1);
        return `${text.slice(0, i)}${char}${text.slice(i)}`;
      })),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.constantFrom(...PROTO_KEYS), shapedValue([])).map(([key, value]) =>
        `{${JSON.stringify(key)}:${serialize(value)},${JSON.stringify(example).slice(1)}`),
    },
  );
}

/** Valid bodies of the endpoints that take one, mutated by the fuzzer to reach the checks behind validation. */
const EXAMPLES: Record<string, Record<string, unknown>> = {
  'POST /v1/checkouts': { curp: 'CAMC880526HMCBNR04' },
  'PATCH /v1/checkouts/{id}': {
    contact: { email: 'cliente@example.mx', phone: '5512345678' },
    address: { street: 'Calle 5', number: '10', neighborhood: 'Centro', municipality: 'Toluca', postalCode: '50000', state: 'MEX' },
    consents: { terms: true, privacy: true, trust: true },
  },
  'POST /v1/checkouts/{id}/quote': { product: 'Funerario' },
  'POST /v1/checkouts/{id}/card-session': { origin: 'https://partner.example' },
  'POST /v1/checkouts/{id}/submit': {
    paymentMethod: 'card', card: { token: 'tok_fuzz', last4: '4242', brand: 'visa' }, recurringConsent: true,
    khipuBankId: 'Bawdf', returnUrl: 'https://partner.example/',
  },
  'POST /admin/payments/{id}/refund': { amount: 100 },
  'POST /admin/reconciliations': { from: '2026-11-01', to: '2026-11-02', sync: false },
};

type Body = { body: string; contentType: string | undefined };
function bodyFor(keys: string[], example?: Record<string, unknown>): fc.Arbitrary<Body> {
  const json = fc.constant('application/json');
  const anyType = fc.constantFrom(...CONTENT_TYPES);
  return fc.oneof(
    { weight: example ? 5 : 0, arbitrary: fc.record({ body: example ? mutatedExample(example) : fc.constant('{}'), contentType: json }) },
    { weight: 3, arbitrary: fc.record({ body: shapedValue(keys).map(serialize), contentType: fc.oneof(json, anyType) }) },
    { weight: 2, arbitrary: fc.record({ body: rawBody, contentType: anyType }) },
    { weight: 1, arbitrary: fc.record({ body: deepNesting, contentType: json }) },
  );
}
/** A form body (Khipu's notifications are forms): mostly both fields present, with nasty values. */
const formValue = fc.oneof(fc.constantFrom('1.3', 'x', ''), nastyScalar.map(String));
const formBody: fc.Arbitrary<Body> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ api: formValue, token: formValue, extra: fc.array(fc.tuple(fc.string(), formValue), { maxLength: 2 }) })
    .map(({ api, token, extra }) => ({
      body: [['api_version', api], ['notification_token', token], ...extra].map(([k, v]) => `${encode(k!)}=${encode(v!)}`).join('&'),
      contentType: 'application/x-www-form-urlencoded',
    })) },
  fc.array(fc.tuple(fc.oneof(fc.constantFrom('api_version', 'notification_token', ...PROTO_KEYS, 'a[b]', 'a[]'), fc.string()), nastyScalar.map(String)), { maxLength: 5 })
    .map((pairs) => ({ body: pairs.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&'), contentType: 'application/x-www-form-urlencoded' })),
  bodyFor(['api_version', 'notification_token']),
);

const QUERY_KEYS = ['status', 'limit', 'before', 'after', 'category', 'now', 'sync', '__proto__', 'constructor', 'limit[]', 'a[b]', 'status[0]'];
const query = fc.oneof(
  fc.constant(''),
  fc.array(fc.tuple(fc.oneof(fc.constantFrom(...QUERY_KEYS), fc.string({ maxLength: 10 })), fc.oneof(nastyScalar.map(String), fc.constantFrom('%', '%E0%A4%A', '%00', '%FF', '-1', '1e9'))), { maxLength: 5 })
    .chain((pairs) => fc.boolean().map((raw) => pairs
      .map(([k, v]) => (raw ? `${k}=${v}`.replace(/#/g, '%23') : `${encode(k)}=${encode(v)}`))
      .join('&'))),
).map((q) => (q ? `?${q.slice(0, 6_000)}` : ''));

const pathSegment = (valid: string[]) => fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...valid) },
  { weight: 2, arbitrary: fc.string({ maxLength: 60 }).filter((s) => s.length > 0).map(encode) },
  { weight: 1, arbitrary: fc.constantFrom('%', '%E0%A4%A', '%00', '%FF', '..', '%2e%2e', '%2F', 'x'.repeat(3_000), '__proto__', 'constructor') },
);
const printable = (max: number) => fc.stringMatching(new RegExp(`^[!-~]{0,${max}}$`));

// ---------- the server and the invariants ----------

let server: TestServer;
/** A checkout the fuzzer may change (PATCH, quote…), and one it may only submit (never complete: nothing registers). */
let target: { id: string; token: string };
let submitTarget: { id: string; token: string };
let prototypeBefore: string[];

beforeAll(async () => {
  prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort();
  server = await startTestServer({ backgroundJobs: false });
  const create = async () => {
    const response = await fetch(`${server.url}/v1/checkouts`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ curp: 'CAMC880526HMCBNR04' }),
    });
    const { checkout, token } = CreateCheckoutResponseSchema.parse(await response.json());
    return { id: checkout.id, token };
  };
  target = await create();
  submitTarget = await create();
});
afterAll(async () => {
  await server?.close();
});

async function snapshot(): Promise<string> {
  const { rows } = await server.db.query(
    `SELECT (SELECT count(*) FROM checkouts)::int AS checkouts, (SELECT count(*) FROM orders)::int AS orders,
            (SELECT count(*) FROM payments)::int AS payments, (SELECT count(*) FROM consent_events)::int AS consent_events,
            (SELECT row_to_json(c)::text FROM checkouts c WHERE id = $1) AS target,
            (SELECT row_to_json(c)::text FROM checkouts c WHERE id = $2) AS submit_target`,
    [target.id, submitTarget.id],
  );
  return JSON.stringify(rows[0]);
}

type Request = { method: string; path: string; headers: Record<string, string>; body?: Body };

const statuses = new Map<number, number>();
/** The stored data after the previous request (requests are sequential and background jobs are off). */
let last: string | undefined;

/** Sends one generated request and checks the invariants. */
async function check(request: Request): Promise<void> {
  const before = (last ??= await snapshot());
  const headers: Record<string, string> = { ...request.headers };
  if (request.body?.contentType) headers['content-type'] = request.body.contentType;
  const response = await fetch(`${server.url}${request.path}`, {
    method: request.method, headers, ...(request.body ? { body: request.body.body } : {}),
  });
  const text = await response.text();
  statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
  const what = `${request.method} ${request.path.slice(0, 200)} → ${response.status} ${text.slice(0, 300)}`;
  last = await snapshot();
  expect(response.status, what).toBeLessThan(500);
  if (response.status >= 400) {
    expect(response.headers.get('content-type'), what).toMatch(/^application\/json/);
    expect(ErrorBodySchema.safeParse(JSON.parse(text)).success, what).toBe(true);
    expect(last, `${what}: a refused request changed stored data`).toBe(before);
  }
}

// ---------- the endpoints ----------

type Target = {
  name: string;
  /** More runs for bodies worth mutating (a valid example exists). */
  runs?: number;
  method: string;
  path: fc.Arbitrary<string>;
  headers: fc.Arbitrary<Record<string, string>>;
  body?: fc.Arbitrary<Body>;
};

const bearer = (valid: string) => fc.oneof(
  { weight: 4, arbitrary: fc.constant({ authorization: `Bearer ${valid}` }) },
  { weight: 1, arbitrary: fc.constant({}) },
  { weight: 1, arbitrary: printable(120).map((t) => ({ authorization: `Bearer ${t}` })) },
  { weight: 1, arbitrary: printable(120).map((t) => ({ authorization: t })) },
);

function v1Target(endpoint: Endpoint): Target {
  const forSubmit = endpoint.path.endsWith('/submit');
  const checkout = () => (forSubmit ? submitTarget : target);
  const path = fc.tuple(pathSegment(['{id}']), endpoint.method === 'get' ? query : fc.constant(''))
    .map(([id, q]) => endpoint.path.replace('{id}', id === '{id}' ? checkout().id : id) + q);
  const auth = endpoint.auth === 'checkout'
    ? fc.constant(null).chain(() => bearer(checkout().token))
    : fc.oneof(fc.constant({}), printable(80).map((t) => ({ authorization: `Bearer ${t}` })));
  const headers = fc.tuple(
    auth,
    endpoint.idempotent
      ? fc.oneof(fc.constant({ 'idempotency-key': 'fuzz-key-0001' }), printable(300).map((k) => ({ 'idempotency-key': k })), fc.constant({}))
      : fc.constant({}),
    fc.oneof(fc.constant({}), fc.constantFrom('en', 'es-MX', 'xx', '*').map((l) => ({ 'accept-language': l }))),
  ).map((parts) => Object.assign({}, ...parts) as Record<string, string>);
  return {
    name: `${endpoint.method.toUpperCase()} ${endpoint.path}`,
    method: endpoint.method.toUpperCase(),
    path,
    headers,
    ...(endpoint.method === 'get' ? {} : { body: bodyFor(keysOf(endpoint.request), EXAMPLES[`${endpoint.method.toUpperCase()} ${endpoint.path}`]) }),
    ...(EXAMPLES[`${endpoint.method.toUpperCase()} ${endpoint.path}`] ? { runs: 2 * RUNS } : {}),
  };
}

const adminAuth = bearer(SANDBOX_ADMIN_TOKEN);
const ids = pathSegment(['pay_x', 'sub_x', 'rep_x', 'KC-FUZZ0001', '1']);
const admin = (method: string, template: string, options: { query?: boolean; body?: fc.Arbitrary<Body>; names?: string[] } = {}): Target => ({
  name: `${method} ${template}`,
  method,
  path: fc.tuple(options.names ? pathSegment(options.names) : ids, options.query ? query : fc.constant(''))
    .map(([segment, q]) => template.replace(/\{[a-z]+\}/, segment) + q),
  headers: adminAuth,
  ...(options.body ? { body: options.body } : {}),
});

const TARGETS: Target[] = [
  ...ENDPOINTS.map(v1Target),
  admin('GET', '/admin/orders', { query: true }),
  admin('GET', '/admin/orders/{reference}'),
  admin('POST', '/admin/payments/{id}/refund', { body: bodyFor(['amount'], EXAMPLES['POST /admin/payments/{id}/refund']) }),
  admin('DELETE', '/admin/payments/{id}'),
  admin('POST', '/admin/payments/{id}/confirm', { body: bodyFor([]) }),
  admin('POST', '/admin/payment-reviews/khipu/{id}/refund', { body: bodyFor([]) }),
  admin('POST', '/admin/jobs/{name}/run', { query: true, names: ['khipu-poll', 'webhooks'] }),
  admin('GET', '/admin/subscriptions', { query: true }),
  admin('GET', '/admin/subscriptions/{id}/charges'),
  admin('POST', '/admin/subscriptions/{id}/cancel'),
  admin('POST', '/admin/reconciliations', { body: bodyFor(['from', 'to', 'sync'], EXAMPLES['POST /admin/reconciliations']) }),
  admin('GET', '/admin/reconciliations', { query: true }),
  admin('GET', '/admin/reconciliations/{id}'),
  admin('GET', '/admin/reconciliations/{id}/lines', { query: true }),
  admin('GET', '/admin/reconciliations/{id}/report.csv'),
  { name: 'POST /webhooks/khipu', method: 'POST', path: query.map((q) => `/webhooks/khipu${q}`), headers: fc.constant({}), body: formBody },
];

describe('fuzzing every endpoint (PGlite)', () => {
  it('covers every endpoint of the contract', () => {
    expect(TARGETS.map((t) => t.name)).toEqual(expect.arrayContaining(ENDPOINTS.map((e) => `${e.method.toUpperCase()} ${e.path}`)));
  });

  for (const endpoint of TARGETS) {
    it(`when ${endpoint.name} gets ${endpoint.runs ?? RUNS} generated requests, then no 5xx, every error in the envelope, nothing stored from a refused one`, async () => {
      const request = fc.record({ path: endpoint.path, headers: endpoint.headers, body: endpoint.body ?? fc.constant(undefined) });
      await fc.assert(
        fc.asyncProperty(request, async ({ path, headers, body }) => {
          await check({ method: endpoint.method, path, headers, ...(body ? { body } : {}) });
        }),
        { ...assertOptions, numRuns: endpoint.runs ?? RUNS },
      );
    }, 60_000);
  }

  it('when the fuzzing is over, then no prototype was polluted and the server still answers', async () => {
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeBefore);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const health = await fetch(`${server.url}/readyz`);
    expect(health.status).toBe(200);
    await health.text();
    // The answers were varied: successes, validation errors, auth failures, too large…
    expect([...statuses.keys()]).toEqual(expect.arrayContaining([200, 400, 401, 404, 413]));
  });
});
