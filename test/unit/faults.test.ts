/**
 * The simulators' fault layer (server/sandbox/faults.ts) on a tiny Express app over real HTTP: what a client sees
 * for each fault, the deterministic rate arithmetic, matching, `times`, the control endpoints, and clean-up.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createFaults, faultFires, faultMatches, kasuFunctionOf, type FaultLayer, type FaultRuleInput } from '../../server/sandbox/faults.js';

type Outcome = {
  status?: number;
  headers?: Record<string, string | string[] | undefined>;
  text?: string;
  /** undici's error code (or name) when the call failed, before or after the headers. */
  error?: string;
  /** When the headers arrived, and when everything was over. */
  headersMs?: number;
  ms: number;
};

describe('fault injection layer', () => {
  let server: Server;
  let url = '';
  let layer: FaultLayer;
  let agent: Agent;
  /** What reached the app's handlers. */
  const handled: string[] = [];
  const LONG_ANSWER = { ok: true, text: 'x'.repeat(40) };

  beforeAll(async () => {
    const json = express.json({ limit: '64kb' });
    layer = createFaults({
      jsonBody: json,
      errorBody: (status) => ({ code: status, description: 'provider error shape' }),
    });
    const app = express();
    app.use(layer.router);
    app.use(json);
    app.post('/', (req, res) => {
      handled.push(`POST / ${kasuFunctionOf(req.body) ?? '-'}`);
      res.json({ ok: true, function: kasuFunctionOf(req.body) ?? null });
    });
    app.get('/items/:id', (req, res) => {
      handled.push(`GET /items/${req.params.id}`);
      res.json({ ...LONG_ANSWER, id: req.params.id });
    });
    app.get('/other', (_req, res) => {
      handled.push('GET /other');
      res.json({ other: true });
    });
    server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    agent = new Agent({ connections: 8 });
  });

  afterEach(() => {
    layer.controller.clear();
    handled.length = 0;
  });

  afterAll(async () => {
    layer.close();
    await agent.close();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  });

  async function send(
    path: string,
    options: { method?: string; body?: unknown; headersTimeout?: number; bodyTimeout?: number } = {},
  ): Promise<Outcome> {
    const started = performance.now();
    const outcome: Outcome = { ms: 0 };
    try {
      const response = await request(`${url}${path}`, {
        method: (options.method ?? 'GET') as 'GET',
        headers: options.body === undefined ? {} : { 'content-type': 'application/json' },
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
        dispatcher: agent,
        headersTimeout: options.headersTimeout ?? 5_000,
        bodyTimeout: options.bodyTimeout ?? 5_000,
      });
      outcome.status = response.statusCode;
      outcome.headers = response.headers;
      outcome.headersMs = performance.now() - started;
      outcome.text = await response.body.text();
    } catch (error) {
      outcome.error = (error as { code?: string }).code ?? (error as Error).name;
    }
    outcome.ms = performance.now() - started;
    return outcome;
  }

  const put = (rules: FaultRuleInput[]) => layer.controller.set(rules);

  describe('the rate arithmetic', () => {
    const firing = (rate: number, calls: number) => Array.from({ length: calls }, (_, i) => i + 1).filter((n) => faultFires(n, rate));

    it('when the rate is 1, 0.5, 0.25, 1/3 or 0, then it fires on every, every second, every fourth, every third, no call', () => {
      expect(firing(1, 5)).toEqual([1, 2, 3, 4, 5]);
      expect(firing(0.5, 8)).toEqual([2, 4, 6, 8]);
      expect(firing(0.25, 8)).toEqual([4, 8]);
      expect(firing(1 / 3, 9)).toEqual([3, 6, 9]);
      expect(firing(0, 100)).toEqual([]);
    });

    it('when the rate is r, then n calls fire floor(n·r) times, whatever floating point does with r', () => {
      for (const rate of [0.1, 0.29, 0.3, 0.7, 0.9, 0.01, 0.57]) {
        for (const calls of [1, 7, 10, 99, 100, 1000]) {
          expect(firing(rate, calls).length, `rate ${rate}, ${calls} calls`).toBe(Math.floor(Math.round(calls * rate * 1e6) / 1e6));
        }
      }
    });
  });

  describe('matching', () => {
    const call = { method: 'post', path: '/api/2.0/payments/abc', kasuFunction: 'new_service' };

    it('when a rule names a method, an exact path, a prefix or a KASU function, then only those calls match', () => {
      expect(faultMatches({}, call)).toBe(true);
      expect(faultMatches({ method: 'POST' }, call)).toBe(true);
      expect(faultMatches({ method: 'GET' }, call)).toBe(false);
      expect(faultMatches({ path: '/api/2.0/payments/abc' }, call)).toBe(true);
      expect(faultMatches({ path: '/api/2.0/payments' }, call)).toBe(false);
      expect(faultMatches({ path: '/api/2.0/payments*' }, call)).toBe(true);
      expect(faultMatches({ path: '/api/2.0/payments/*' }, call)).toBe(true);
      expect(faultMatches({ path: '/api/2.0/banks*' }, call)).toBe(false);
      expect(faultMatches({ path: '*' }, call)).toBe(true);
      expect(faultMatches({ kasuFunction: 'new_service' }, call)).toBe(true);
      expect(faultMatches({ kasuFunction: 'token_full' }, call)).toBe(false);
      expect(faultMatches({ kasuFunction: 'token_full' }, { method: 'POST', path: '/' })).toBe(false);
      expect(faultMatches({ method: 'POST', path: '/api/*', kasuFunction: 'new_service' }, call)).toBe(true);
    });

    it('when KASU functions are read from bodies, then only a non-empty string tipo_peticion of an object counts', () => {
      expect(kasuFunctionOf({ tipo_peticion: 'token_full' })).toBe('token_full');
      expect(kasuFunctionOf({ tipo_peticion: '' })).toBeUndefined();
      expect(kasuFunctionOf({ tipo_peticion: 3 })).toBeUndefined();
      expect(kasuFunctionOf('tipo_peticion')).toBeUndefined();
      expect(kasuFunctionOf(undefined)).toBeUndefined();
    });

    it('when calls go through HTTP, then the rule applies to its method, path and KASU function only', async () => {
      put([
        { match: { method: 'POST', kasuFunction: 'new_service' }, fault: 'status', status: 500 },
        { match: { path: '/items/*' }, fault: 'status', status: 502 },
      ]);
      expect((await send('/', { method: 'POST', body: { tipo_peticion: 'token_full' } })).status).toBe(200);
      expect((await send('/', { method: 'POST', body: { tipo_peticion: 'new_service' } })).status).toBe(500);
      expect((await send('/items/7')).status).toBe(502);
      expect((await send('/other')).status).toBe(200);
      // The layer parsed the JSON body for matching; the app's own parser did not need to read it again.
      expect(handled).toEqual(['POST / token_full', 'GET /other']);
      expect(layer.controller.rules().map(({ seen, hits }) => ({ seen, hits }))).toEqual([
        { seen: 1, hits: 1 },
        { seen: 1, hits: 1 },
      ]);
    });

    it('when rules overlap, then the first that fires applies and a later one only sees calls the earlier let through', async () => {
      put([
        { match: { path: '/other' }, fault: 'status', status: 500, rate: 0.5 },
        { match: { path: '/other' }, fault: 'status', status: 503 },
      ]);
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await send('/other')).status);
      expect(statuses).toEqual([503, 500, 503, 500]);
      expect(layer.controller.hits()).toEqual([2, 2]);
      expect(layer.controller.rules().map((rule) => rule.seen)).toEqual([4, 2]);
    });

    it('when a rule has a rate and a number of times, then it hits the calls the arithmetic says, then stops', async () => {
      put([{ match: { path: '/other' }, fault: 'status', rate: 0.5, times: 2 }]);
      const statuses = [];
      for (let i = 0; i < 8; i++) statuses.push((await send('/other')).status);
      expect(statuses).toEqual([200, 503, 200, 503, 200, 200, 200, 200]);
      expect(layer.controller.rules()[0]).toMatchObject({ seen: 4, hits: 2, times: 2, rate: 0.5 });
    });
  });

  describe('what a client sees', () => {
    it('when the fault is latency, then the answer is the normal one, that much later', async () => {
      put([{ match: { path: '/items/*' }, fault: 'latency', ms: 150 }]);
      const outcome = await send('/items/1');
      expect(outcome.status).toBe(200);
      expect(JSON.parse(outcome.text!)).toEqual({ ...LONG_ANSWER, id: '1' });
      expect(outcome.ms).toBeGreaterThanOrEqual(140);
      expect(handled).toEqual(['GET /items/1']);
    });

    it('when the client gives up during the latency, then the provider still does the work, late', async () => {
      // undici's header and body timeouts tick every ~500 ms: a 50 ms one fires within a second.
      put([{ match: { path: '/items/*' }, fault: 'latency', ms: 1_500 }]);
      const outcome = await send('/items/2', { headersTimeout: 50 });
      expect(outcome.error).toBe('UND_ERR_HEADERS_TIMEOUT');
      expect(handled).toEqual([]);
      await expect.poll(() => handled, { timeout: 2_000 }).toEqual(['GET /items/2']);
    });

    it('when the fault is a status, then it is answered with the provider error shape, and the provider does nothing', async () => {
      put([{ match: { path: '/items/*' }, fault: 'status', status: 502 }, { match: { path: '/other' }, fault: 'status', body: '{"raw":1}' }]);
      const outcome = await send('/items/3');
      expect(outcome.status).toBe(502);
      expect(outcome.headers?.['content-type']).toMatch(/^application\/json/);
      expect(JSON.parse(outcome.text!)).toEqual({ code: 502, description: 'provider error shape' });
      const raw = await send('/other');
      expect([raw.status, raw.text]).toEqual([503, '{"raw":1}']);
      expect(handled).toEqual([]);
    });

    it('when the fault is timeout, then nothing is answered until the client gives up, and the connection is let go', async () => {
      put([{ match: { path: '/items/*' }, fault: 'timeout' }]);
      const connections = () => new Promise<number>((resolve) => server.getConnections((_error, count) => resolve(count)));
      const before = await connections();
      const own = new Agent();
      const started = performance.now();
      const failed = await request(`${url}/items/4`, { dispatcher: own, headersTimeout: 200 }).then(
        () => 'answered',
        (error: { code?: string }) => error.code,
      );
      expect(failed).toBe('UND_ERR_HEADERS_TIMEOUT');
      expect(performance.now() - started).toBeGreaterThanOrEqual(190);
      expect(handled).toEqual([]);
      // The client closed its connection; the server's side goes too (nothing held, nothing leaks).
      await expect.poll(connections, { timeout: 2_000 }).toBeLessThanOrEqual(before);
      await own.close();
    });

    it('when a timeout has a limit in ms, then the connection is destroyed after it', async () => {
      put([{ match: { path: '/items/*' }, fault: 'timeout', ms: 100 }]);
      const outcome = await send('/items/5', { headersTimeout: 5_000 });
      expect(outcome.error).toMatch(/^(UND_ERR_SOCKET|ECONNRESET)$/);
      expect(outcome.ms).toBeGreaterThanOrEqual(90);
      expect(outcome.ms).toBeLessThan(2_000);
    });

    it('when the fault is reset, then the connection is destroyed without an answer', async () => {
      put([{ match: { method: 'POST' }, fault: 'reset' }]);
      const outcome = await send('/', { method: 'POST', body: { tipo_peticion: 'new_service' } });
      expect(outcome.status).toBeUndefined();
      expect(outcome.error).toMatch(/^(UND_ERR_SOCKET|ECONNRESET)$/);
      expect(handled).toEqual([]);
    });

    it('when the fault is malformed, then a 200 says JSON but is not', async () => {
      put([{ match: { path: '/items/*' }, fault: 'malformed' }, { match: { path: '/other' }, fault: 'malformed', body: '{"unexpected":true}' }]);
      const outcome = await send('/items/6');
      expect(outcome.status).toBe(200);
      expect(outcome.headers?.['content-type']).toMatch(/^application\/json/);
      expect(outcome.text).toBe('<html>gateway</html>');
      expect(() => JSON.parse(outcome.text!)).toThrow();
      expect((await send('/other')).text).toBe('{"unexpected":true}');
      expect(handled).toEqual([]);
    });

    it('when the fault is truncated, then a 200 announces more than it sends, and the body never completes', async () => {
      put([{ match: { path: '/items/*' }, fault: 'truncated' }]);
      const outcome = await send('/items/7');
      expect(outcome.status).toBe(200);
      expect(Number(outcome.headers?.['content-length'])).toBeGreaterThan(20);
      expect(outcome.text).toBeUndefined();
      expect(outcome.error).toMatch(/^(UND_ERR_SOCKET|UND_ERR_RES_CONTENT_LENGTH_MISMATCH|ECONNRESET)$/);
      expect(handled).toEqual([]);
    });

    it('when a truncated body is given, then half of it arrives', async () => {
      const body = JSON.stringify({ ok: true, data: 'y'.repeat(200) });
      put([{ match: { path: '/items/*' }, fault: 'truncated', body }]);
      const received: Buffer[] = [];
      const response = await request(`${url}/items/8`, { dispatcher: agent });
      expect(response.headers['content-length']).toBe(String(body.length));
      await expect((async () => {
        for await (const chunk of response.body) received.push(chunk as Buffer);
      })()).rejects.toThrow();
      expect(Buffer.concat(received).toString()).toBe(body.slice(0, Math.floor(body.length / 2)));
    });

    it('when the fault is slow, then the headers come at once and the real answer a few bytes every ms', async () => {
      put([{ match: { path: '/items/*' }, fault: 'slow', ms: 20, chunk: 16 }]);
      const outcome = await send('/items/9');
      const expected = JSON.stringify({ ...LONG_ANSWER, id: '9' });
      expect(outcome.status).toBe(200);
      expect(outcome.text).toBe(expected);
      expect(outcome.headers?.['content-length']).toBe(String(expected.length));
      const chunks = Math.ceil(expected.length / 16);
      expect(outcome.headersMs).toBeLessThan(20 * chunks);
      expect(outcome.ms).toBeGreaterThanOrEqual(20 * chunks - 10);
      expect(handled).toEqual(['GET /items/9']);
    });

    it('when a slow answer drips slower than the client body timeout, then the client gives up after the work was done', async () => {
      // A body timeout fires within a second (undici ticks every ~500 ms): drip slower than that.
      put([{ match: { path: '/items/*' }, fault: 'slow', ms: 1_200 }]);
      const outcome = await send('/items/10', { bodyTimeout: 100 });
      expect(outcome.status).toBe(200);
      expect(outcome.error).toBe('UND_ERR_BODY_TIMEOUT');
      expect(outcome.ms).toBeLessThan(1_200);
      expect(handled).toEqual(['GET /items/10']);
    });
  });

  describe('control endpoints', () => {
    const control = async (method: string, body?: unknown) => {
      const response = await fetch(`${url}/_faults`, {
        method,
        ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) }),
      });
      return { status: response.status, body: (await response.json()) as any };
    };

    it('when rules are PUT, then they are answered with their defaults and counters, GET shows the hits, DELETE ends them', async () => {
      expect(await control('GET')).toEqual({ status: 200, body: { rules: [] } });
      const put = await control('PUT', { rules: [{ match: { method: 'get', path: '/items/*' }, fault: 'status', status: 500, rate: 0.5 }] });
      expect(put).toEqual({
        status: 200,
        body: { rules: [{ match: { method: 'GET', path: '/items/*' }, fault: 'status', status: 500, rate: 0.5, seen: 0, hits: 0 }] },
      });
      expect((await send('/items/1')).status).toBe(200);
      expect((await send('/items/2')).status).toBe(500);
      expect((await control('GET')).body.rules[0]).toMatchObject({ seen: 2, hits: 1 });
      expect(layer.controller.hits()).toEqual([1]);
      expect(await control('DELETE')).toEqual({ status: 200, body: { rules: [] } });
      expect((await send('/items/3')).status).toBe(200);
    });

    it('when a rule is not valid, then PUT answers 400 and the rules stay as they were', async () => {
      put([{ fault: 'latency', ms: 1 }]);
      for (const body of [
        { rules: [{ fault: 'explode' }] },
        { rules: [{ fault: 'status', rate: 2 }] },
        { rules: [{ fault: 'status', status: 200 }] },
        { rules: [{ fault: 'timeout', ms: 10_000_000 }] },
        { rules: [{ fault: 'status', match: { path: 'no-slash' } }] },
        { rules: [{ fault: 'status', mathc: {} }] },
        { rule: [] },
        '{not json',
      ]) {
        const answer = await control('PUT', body);
        expect(answer.status, JSON.stringify(body)).toBe(400);
        expect(answer.body.error.code).toBe('VALIDATION_FAILED');
      }
      expect((await control('POST', { rules: [] })).status).toBe(405);
      expect(layer.controller.rules()).toEqual([{ match: {}, fault: 'latency', ms: 1, rate: 1, seen: 0, hits: 0 }]);
      expect(() => layer.controller.set([{ fault: 'nope' } as unknown as FaultRuleInput])).toThrow();
    });

    it('when every call is faulted, then the control endpoints still answer', async () => {
      put([{ match: { path: '/*' }, fault: 'reset' }, { fault: 'reset' }]);
      expect((await control('GET')).status).toBe(200);
      expect((await control('DELETE')).body).toEqual({ rules: [] });
    });

    it('when the layer is reset, then it goes back to its initial rules with fresh counters', async () => {
      const own = createFaults({ rules: [{ match: { path: '/x' }, fault: 'reset' }] });
      own.controller.add({ fault: 'latency' });
      expect(own.controller.rules()).toHaveLength(2);
      own.controller.reset();
      expect(own.controller.rules()).toEqual([{ match: { path: '/x' }, fault: 'reset', rate: 1, seen: 0, hits: 0 }]);
      own.close();
      expect(own.controller.rules()).toEqual([]);
    });
  });

  it('when the rules are cleared during faults in progress, then a wait goes on, a drip sends the rest and a held connection closes', async () => {
    put([
      { match: { path: '/items/1' }, fault: 'latency', ms: 60_000 },
      { match: { path: '/items/2' }, fault: 'slow', ms: 60_000, chunk: 4 },
      { match: { path: '/other' }, fault: 'timeout' },
    ]);
    const started = performance.now();
    const calls = [send('/items/1', { headersTimeout: 30_000 }), send('/items/2', { bodyTimeout: 120_000 }), send('/other', { headersTimeout: 30_000 })];
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(handled).toEqual(['GET /items/2']);
    layer.controller.clear();
    const [late, slow, held] = await Promise.all(calls);
    expect(JSON.parse(late!.text!)).toEqual({ ...LONG_ANSWER, id: '1' });
    expect(JSON.parse(slow!.text!)).toEqual({ ...LONG_ANSWER, id: '2' });
    expect(held!.error).toMatch(/^(UND_ERR_SOCKET|ECONNRESET)$/);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('when the layer is closed, then held connections and pending waits are let go at once', async () => {
    const json = express.json();
    const own = createFaults({ rules: [{ match: { path: '/hold' }, fault: 'timeout' }, { match: { path: '/wait' }, fault: 'latency', ms: 60_000 }], jsonBody: json });
    const app = express();
    app.use(own.router);
    app.get(['/hold', '/wait'], (_req, res) => void res.json({ late: true }));
    const other = createServer(app);
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
    const started = performance.now();
    const calls = ['/hold', '/wait'].map((path) =>
      request(`${base}${path}`, { dispatcher: agent, headersTimeout: 30_000 }).then(
        () => 'answered',
        (error: { code?: string }) => error.code,
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    own.close();
    const outcomes = await Promise.all(calls);
    expect(outcomes.every((code) => code === 'UND_ERR_SOCKET' || code === 'ECONNRESET'), String(outcomes)).toBe(true);
    expect(performance.now() - started).toBeLessThan(5_000);
    await new Promise<void>((resolve) => other.close(() => resolve()));
  });
});
