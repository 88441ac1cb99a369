/**
 * Fault injection for the provider simulators: how a real provider (or the network and proxies in front of it) fails,
 * on demand and deterministically, so that tests and people trying the sandbox can watch the BFF cope.
 *
 * Every simulator mounts `createFaults(...).router` first. It serves the control endpoints and applies the rules:
 *
 *   GET    <mount>/_faults               → {rules: [{…rule, seen, hits}]}
 *   PUT    <mount>/_faults {rules:[…]}   replaces the rules (validated; 400 otherwise), counters from zero
 *   DELETE <mount>/_faults               no rules any more; faults in progress end (see clear())
 *
 * A rule: `{match: {method?, path?, kasuFunction?}, fault, rate = 1, times?, ms?, status?, body?, chunk?}`.
 * - `match.path` is the path below the simulator's mount (`/api/2.0/payments`), exact, or a prefix when it ends in
 *   `*` (`/api/2.0/payments/*`); the query string is not part of it. `match.method` is compared case-insensitively.
 *   `match.kasuFunction` is KASU's `tipo_peticion` from the JSON body (only the KASU simulator reads it).
 * - Rules are tried in order; the first that matches a call and fires on it applies. A rule counts the calls it
 *   matches (`seen` = n) and fires on call n when floor(n·rate) > floor((n−1)·rate): rate 1 every call, 0.5 every
 *   second one, 0.25 every fourth, 0 never. Deterministic, no randomness. After `times` hits a rule stops.
 * - Faults:
 *   latency    waits `ms` (default 1000), then the simulator handles the call as usual. It is handled even if the
 *              client gave up meanwhile: a late answer, the provider did the work.
 *   status     answers `status` (default 503) with the provider's own error body (or `body`). Not handled.
 *   timeout    never answers: the connection stays open until the client gives up (at most `ms`, default and
 *              maximum 10 minutes, then it is destroyed). Not handled.
 *   reset      destroys the connection (TCP reset) without answering. Not handled.
 *   malformed  200 with `content-type: application/json` and a body that is not JSON (default `<html>gateway</html>`,
 *              or `body`). Not handled.
 *   truncated  200 whose Content-Length announces the whole of a valid-looking JSON (or `body`), half of it sent,
 *              then the connection destroyed. Not handled.
 *   slow       the simulator handles the call; its real answer is sent with its headers at once and its body
 *              `chunk` bytes (default 4) every `ms` (default 200). A client whose body timeout is shorter gives up
 *              after the provider did the work (an answer lost on the way back).
 * Every timer is unref'd and every held connection is let go when its client leaves, on `close()` at the latest.
 * Clearing the rules also ends the faults in progress: a latency goes on at once, a drip sends the rest of its
 * answer, a held connection is closed (the network is fine again). `close()` destroys them.
 */
import type { IncomingMessage } from 'node:http';
import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';
import { z } from 'zod';

export const FAULT_KINDS = ['latency', 'status', 'timeout', 'reset', 'malformed', 'truncated', 'slow'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** The longest wait a rule can ask for, and how long `timeout` holds a connection at most. */
export const MAX_FAULT_MS = 600_000;
const MAX_RULES = 100;
/** Against floating point: 0.29 · 100 is 28.999999999999996. */
const EPSILON = 1e-9;

export const FaultRuleSchema = z.strictObject({
  match: z
    .strictObject({
      method: z.string().trim().regex(/^[A-Za-z]+$/, 'an HTTP method').transform((method) => method.toUpperCase()).optional(),
      path: z.string().max(500).refine((path) => path.startsWith('/') || path === '*', 'a path below the mount, starting with /').optional(),
      kasuFunction: z.string().trim().min(1).max(100).optional(),
    })
    .default({}),
  fault: z.enum(FAULT_KINDS),
  rate: z.number().min(0).max(1).default(1),
  times: z.number().int().positive().optional(),
  ms: z.number().int().min(0).max(MAX_FAULT_MS).optional(),
  status: z.number().int().min(400).max(599).optional(),
  body: z.string().max(65_536).optional(),
  chunk: z.number().int().min(1).max(65_536).optional(),
});

export const FaultRulesSchema = z.array(FaultRuleSchema).max(MAX_RULES);

/** A rule as written (defaults may be left out). */
export type FaultRuleInput = z.input<typeof FaultRuleSchema>;
/** A rule with its defaults. */
export type FaultRule = z.output<typeof FaultRuleSchema>;
/** A rule and its counters: calls it matched (`seen`) and calls it faulted (`hits`). */
export type FaultRuleState = FaultRule & { seen: number; hits: number };

export type FaultController = {
  /** Replaces every rule (validated: throws a ZodError for a bad one); counters start from zero. */
  set(rules: FaultRuleInput[]): FaultRuleState[];
  /** Appends one rule after the others. */
  add(rule: FaultRuleInput): FaultRuleState[];
  /** No rules any more, and faults in progress end now: waits go on, drips send the rest, held connections close. */
  clear(): void;
  /** Back to the rules the simulator was created with, counters from zero. */
  reset(): void;
  /** The rules with their counters (copies). */
  rules(): FaultRuleState[];
  /** Calls faulted by each rule, in rule order. */
  hits(): number[];
};

export type FaultLayerOptions = {
  /** Initial rules (e.g. from the simulator's `faults` option). */
  rules?: FaultRuleInput[];
  /** The provider's own error body for `status` faults; default `{error: {code: 'SANDBOX_FAULT', message}}`. */
  errorBody?: (status: number) => unknown;
  /**
   * KASU: the simulator's own JSON body parser, run before matching when a rule names a `kasuFunction` (the parser
   * marks the body read, so the simulator's parser does not read it twice).
   */
  jsonBody?: RequestHandler;
  /** What `truncated` sends half of when the rule has no `body`. */
  truncatedBody?: string;
};

export type FaultLayer = {
  /** Mount first: the control endpoints at /_faults, then the faults themselves. */
  router: Router;
  controller: FaultController;
  /** Lets go of every held connection and timer. */
  close(): void;
};

/** Whether a rule with `rate` fires on the n-th call it matches (n from 1): floor(n·rate) > floor((n−1)·rate). */
export function faultFires(n: number, rate: number): boolean {
  if (n < 1 || rate <= 0) return false;
  return Math.floor(n * rate + EPSILON) > Math.floor((n - 1) * rate + EPSILON);
}

/** Whether a rule's `match` covers a call. */
export function faultMatches(
  match: FaultRule['match'],
  call: { method: string; path: string; kasuFunction?: string | undefined },
): boolean {
  if (match.method !== undefined && match.method !== call.method.toUpperCase()) return false;
  if (match.path !== undefined) {
    const prefix = match.path.endsWith('*') ? match.path.slice(0, -1) : null;
    if (prefix === null ? call.path !== match.path : !call.path.startsWith(prefix)) return false;
  }
  if (match.kasuFunction !== undefined && match.kasuFunction !== call.kasuFunction) return false;
  return true;
}

/** KASU's function of a request, found as kasu-sandbox.ts finds it: `tipo_peticion` of a JSON object body. */
export function kasuFunctionOf(body: unknown): string | undefined {
  const fn = typeof body === 'object' && body !== null ? (body as Record<string, unknown>).tipo_peticion : undefined;
  return typeof fn === 'string' && fn ? fn : undefined;
}

const DEFAULT_MALFORMED = '<html>gateway</html>';
const DEFAULT_TRUNCATED = JSON.stringify({
  ok: true,
  status: 'done',
  message: 'Operación realizada',
  data: [
    { id: 300000001, amount: 1234.5, currency: 'MXN', status: 'COMPLETED', lastChangeDate: '2026-01-01 10:00:00' },
    { id: 300000002, amount: 99.99, currency: 'MXN', status: 'PENDING', lastChangeDate: '2026-01-01 10:05:00' },
  ],
});

type Slot = { rule: FaultRule; seen: number; hits: number };

export function createFaults(options: FaultLayerOptions = {}): FaultLayer {
  const initial = FaultRulesSchema.parse(options.rules ?? []);
  let slots: Slot[] = [];
  /** Faults in progress (held connections, waits, drips): clear() heals them, close() kills them. */
  const pending = new Set<{ heal(): void; kill(): void }>();

  const load = (rules: FaultRule[]) => {
    slots = rules.map((rule) => ({ rule, seen: 0, hits: 0 }));
  };
  load(initial);

  const snapshot = (): FaultRuleState[] =>
    slots.map((slot) => ({ ...structuredClone(slot.rule), seen: slot.seen, hits: slot.hits }));

  const controller: FaultController = {
    set(rules) {
      load(FaultRulesSchema.parse(rules));
      return snapshot();
    },
    add(rule) {
      if (slots.length >= MAX_RULES) throw new RangeError(`at most ${MAX_RULES} fault rules`);
      slots.push({ rule: FaultRuleSchema.parse(rule), seen: 0, hits: 0 });
      return snapshot();
    },
    clear() {
      slots = [];
      for (const entry of [...pending]) entry.heal();
    },
    reset() {
      load(initial);
    },
    rules: snapshot,
    hits: () => slots.map((slot) => slot.hits),
  };

  /** The first rule that matches this call and fires on it (counting the call for each rule it reaches). */
  function pick(call: { method: string; path: string; kasuFunction?: string | undefined }): FaultRule | null {
    for (const slot of slots) {
      if (slot.rule.times !== undefined && slot.hits >= slot.rule.times) continue;
      if (!faultMatches(slot.rule.match, call)) continue;
      slot.seen += 1;
      if (faultFires(slot.seen, slot.rule.rate)) {
        slot.hits += 1;
        return slot.rule;
      }
    }
    return null;
  }

  /**
   * A fault in progress: after `ms`, `done`. clear() heals it at once (`heal`: the network is fine again), close()
   * kills it (`kill`: the connection goes). Returns a function that forgets it (its client left).
   */
  function hold(ms: number, done: () => void, kill: () => void, heal: () => void = kill): () => void {
    const entry = { heal: () => finish(heal), kill: () => finish(kill) };
    const forget = (): void => {
      clearTimeout(timer);
      pending.delete(entry);
    };
    const finish = (then: () => void): void => {
      forget();
      then();
    };
    const timer = setTimeout(() => finish(done), ms);
    timer.unref();
    pending.add(entry);
    return forget;
  }

  /** Runs `then` once the request body has been read (answering before that could turn a close into a reset). */
  function afterBody(req: IncomingMessage, then: () => void): void {
    if (req.complete || req.readableEnded) {
      then();
      return;
    }
    req.once('end', then);
    req.once('error', () => req.socket.destroy());
    req.resume();
  }

  function reset(req: IncomingMessage): void {
    const socket = req.socket;
    if (typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
    else socket.destroy();
  }

  function apply(rule: FaultRule, req: Request, res: Response, next: NextFunction): void {
    switch (rule.fault) {
      case 'latency':
        // Not cut short when the client leaves: the provider still does the work, late.
        hold(rule.ms ?? 1_000, next, () => req.socket.destroy(), next);
        return;
      case 'status': {
        const status = rule.status ?? 503;
        afterBody(req, () => {
          res.status(status).set('X-Sandbox-Fault', 'status');
          if (rule.body !== undefined) res.type('application/json').send(rule.body);
          else res.json(options.errorBody ? options.errorBody(status) : { error: { code: 'SANDBOX_FAULT', message: `Injected ${status}` } });
        });
        return;
      }
      case 'timeout': {
        const forget = hold(rule.ms ?? MAX_FAULT_MS, () => req.socket.destroy(), () => req.socket.destroy());
        res.once('close', forget);
        req.resume();
        return;
      }
      case 'reset':
        reset(req);
        return;
      case 'malformed':
        afterBody(req, () => {
          res.status(200).set({ 'Content-Type': 'application/json', 'X-Sandbox-Fault': 'malformed' }).end(rule.body ?? DEFAULT_MALFORMED);
        });
        return;
      case 'truncated': {
        const full = Buffer.from(rule.body ?? options.truncatedBody ?? DEFAULT_TRUNCATED);
        const half = full.subarray(0, Math.max(1, Math.floor(full.length / 2)));
        afterBody(req, () => {
          res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(full.length), 'X-Sandbox-Fault': 'truncated' });
          res.write(half, () => req.socket.destroy());
        });
        return;
      }
      case 'slow':
        drip(res, rule.ms ?? 200, rule.chunk ?? 4);
        next();
        return;
    }
  }

  /** Lets the simulator write its answer into a buffer, then sends the headers and the body a few bytes at a time. */
  function drip(res: Response, everyMs: number, size: number): void {
    const chunks: Buffer[] = [];
    const collect = (chunk: unknown, encoding: unknown): void => {
      if (chunk === undefined || chunk === null || typeof chunk === 'function') return;
      if (typeof chunk === 'string') chunks.push(Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8'));
      else if (chunk instanceof Uint8Array) chunks.push(Buffer.from(chunk));
    };
    const write = res.write;
    const end = res.end;
    res.write = ((chunk: unknown, encoding?: unknown, callback?: unknown) => {
      collect(chunk, encoding);
      const done = typeof encoding === 'function' ? encoding : callback;
      if (typeof done === 'function') queueMicrotask(() => (done as () => void)());
      return true;
    }) as Response['write'];
    res.end = ((chunk?: unknown, encoding?: unknown, callback?: unknown) => {
      collect(chunk, encoding);
      res.write = write;
      res.end = end;
      const done = [chunk, encoding, callback].find((item) => typeof item === 'function') as (() => void) | undefined;
      const body = Buffer.concat(chunks);
      if (!res.headersSent) {
        res.setHeader('Content-Length', String(body.length));
        res.setHeader('X-Sandbox-Fault', 'slow');
        res.flushHeaders();
      }
      let offset = 0;
      let forget: () => void = () => {};
      const left = (): void => forget();
      const rest = (): void => {
        res.off('close', left);
        if (!res.destroyed) res.end(body.subarray(offset), done);
      };
      const tick = (): void => {
        if (res.destroyed) return;
        if (offset + size >= body.length) {
          rest();
          return;
        }
        res.write(body.subarray(offset, offset + size));
        offset += size;
        forget = hold(everyMs, tick, () => res.destroy(), rest);
      };
      res.once('close', left);
      forget = hold(everyMs, tick, () => res.destroy(), rest);
      return res;
    }) as Response['end'];
  }

  const middleware: RequestHandler = (req, res, next) => {
    if (slots.length === 0) {
      next();
      return;
    }
    const decide = (): void => {
      const rule = pick({ method: req.method, path: req.path, kasuFunction: kasuFunctionOf(req.body) });
      if (rule) apply(rule, req, res, next);
      else next();
    };
    const needsBody = options.jsonBody !== undefined && slots.some((slot) => slot.rule.match.kasuFunction !== undefined);
    if (needsBody) {
      options.jsonBody!(req, res, (error?: unknown) => {
        if (error) next(error);
        else decide();
      });
      return;
    }
    decide();
  };

  const control = express.Router();
  control.use(express.json({ limit: '256kb' }));
  control.get('/', (_req, res) => {
    res.json({ rules: snapshot() });
  });
  control.put('/', (req, res) => {
    const parsed = z.strictObject({ rules: FaultRulesSchema }).safeParse(req.body);
    if (!parsed.success) {
      res.status(400).json({ error: { code: 'VALIDATION_FAILED', message: z.prettifyError(parsed.error) } });
      return;
    }
    load(parsed.data.rules);
    res.json({ rules: snapshot() });
  });
  control.delete('/', (_req, res) => {
    controller.clear();
    res.json({ rules: snapshot() });
  });
  control.all('/', (_req, res) => {
    res.set('Allow', 'GET, PUT, DELETE').status(405).json({ error: { code: 'METHOD_NOT_ALLOWED', message: 'GET, PUT or DELETE' } });
  });
  control.use((error: { type?: string; status?: number }, _req: Request, res: Response, next: NextFunction) => {
    if (typeof error.type === 'string' && error.type.startsWith('entity.')) {
      res.status(400).json({ error: { code: 'VALIDATION_FAILED', message: 'The body is not valid JSON' } });
      return;
    }
    next(error);
  });

  const router = express.Router();
  router.use('/_faults', control);
  router.use(middleware);

  return {
    router,
    controller,
    close() {
      slots = [];
      for (const entry of [...pending]) entry.kill();
    },
  };
}
