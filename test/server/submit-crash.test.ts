/**
 * Submit survives crashes on PostgreSQL: a real BFF process (server/main.ts) is SIGKILLed at a random point of a
 * submit, 20 times, and the customer retries the same submit (same Idempotency-Key) on the restarted process until
 * it gets a final answer. KASU is a standalone simulator in the test process behind a front that adds 80 ms each way,
 * so that a kill lands before the claim, during the KASU call (before KASU registered, or after, with its answer
 * lost), or after the commit. Then KASU's registrations are compared with our orders: nothing registered twice,
 * every registered order has KASU's policy, `needs_review` only where KASU did register, and nothing lost. The last
 * tests reproduce a crash after KASU registered: the retry puts the order in review (never ALREADY_REGISTERED).
 *
 * A claim left by a dead process is taken over once it is STALE_CLAIM_SECONDS (120 s) old
 * (server/checkouts/checkout-service.ts); instead of waiting, the test ages the dead process's claim by ten minutes
 * before the customer retries (the customer coming back later). The reproduction retries once before that, to show
 * what the customer gets meanwhile: SUBMIT_IN_PROGRESS, retryable (after the 15 s a submit waits for another).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDatabase, type TestDatabase } from '../support/databases.js';
import {
  describeAnswer, isFinal, killAll, prepareCheckout, sleep, slot, startBff, startKasuFront, submitOnce, submitUntilFinal,
  type BffProcess, type KasuFront, type Slot, type SubmitAnswer,
} from '../support/processes.js';

const ROUNDS = 20;
const KASU_DELAY_MS = 80;
const MAX_KILL_DELAY_MS = 300;
const PAY_LATER = { paymentMethod: 'email' };

type Phase =
  | 'answered before the kill'
  | 'killed before the claim'
  | 'killed after the claim, KASU not registered'
  | 'killed after KASU registered, answer lost'
  | 'killed after the commit, answer lost';

type Round = {
  slot: Slot;
  checkoutId: string;
  killAfterMs: number;
  phase: Phase;
  first: SubmitAnswer;
  answers: SubmitAnswer[];
};

type Stored = {
  id: string; status: string; order_status: string | null; policy: string | null; last_error: string | null;
  registration_attempts: number | null; orders: number;
};

describe('submit across SIGKILLs of the BFF on PostgreSQL', () => {
  let t: TestDatabase;
  let kasu: KasuFront;

  beforeAll(async () => {
    t = await openTestDatabase('postgres');
    // 20 rounds and the reproduction below need more (CURP, product) pairs than one sandbox registry holds.
    kasu = await startKasuFront({ registries: 2, delayMs: KASU_DELAY_MS });
  });
  afterAll(async () => {
    await killAll();
    await kasu?.close();
    await t?.drop();
  });

  const bff = () => startBff({ schema: t.schema!, env: { KASU_BASE_URL: kasu.url } });

  async function stored(ids: string[]): Promise<Map<string, Stored>> {
    const { rows } = await t.db.query<Stored>(
      `SELECT c.id, c.status, o.status AS order_status, o.policy, o.last_error, o.registration_attempts,
              (SELECT count(*)::int FROM orders x WHERE x.checkout_id = c.id) AS orders
       FROM checkouts c LEFT JOIN orders o ON o.checkout_id = c.id WHERE c.id = ANY($1)`,
      [ids],
    );
    return new Map(rows.map((row) => [row.id, row]));
  }

  const registrationsOf = (s: Slot) =>
    kasu.registries[s.registry]!.registrations.filter((r) => r.curp === s.curp && r.product === s.product);

  /** The claim of a process that is dead, aged past STALE_CLAIM_SECONDS: the customer comes back later. */
  async function ageDeadClaim(checkoutId: string): Promise<boolean> {
    const { rowCount } = await t.db.query(
      `UPDATE checkouts SET submit_claimed_at = submit_claimed_at - interval '10 minutes' WHERE id = $1 AND status = 'registering'`,
      [checkoutId],
    );
    return rowCount === 1;
  }

  const rounds: Round[] = [];

  it(`when the BFF is SIGKILLed at a random point of a submit and the customer retries on the restarted one, ${ROUNDS} times, then nothing is registered twice and every registration is ours`, async () => {
    const started = performance.now();
    let current = await bff();
    // The restart is spawned during the round, so that the customer's retry does not wait for a whole start-up.
    let next = bff();
    for (let round = 0; round < ROUNDS; round++) {
      const s = slot(round);
      const checkout = await prepareCheckout(current.url, s);
      const key = `crash-round-${round}`;
      const killAfterMs = Math.floor(Math.random() * (MAX_KILL_DELAY_MS + 1));
      const firstPromise = submitOnce(current.url, checkout, key, PAY_LATER, s.index);
      await sleep(killAfterMs);
      await current.kill();
      const first = await firstPromise;
      await kasu.settled(); // what was sent to KASU has reached it
      const after = (await stored([checkout.id])).get(checkout.id)!;
      const phase: Phase = first.status !== 0 ? 'answered before the kill'
        : after.status === 'open' ? 'killed before the claim'
        : after.status === 'registered' ? 'killed after the commit, answer lost'
        : registrationsOf(s).length ? 'killed after KASU registered, answer lost'
        : 'killed after the claim, KASU not registered';
      current = await next;
      next = bff();
      const answers: SubmitAnswer[] = [];
      // Aged again if a retry still meets the claim (a claim the dead process sent just before dying, committed late).
      for (let visit = 0; visit < 3 && !isFinal(answers.at(-1) ?? first); visit++) {
        await ageDeadClaim(checkout.id);
        answers.push(...(await submitUntilFinal(() => current.url, checkout, key, PAY_LATER, { index: s.index, attempts: 5 })));
      }
      rounds.push({ slot: s, checkoutId: checkout.id, killAfterMs, phase, first, answers });
    }
    await current.stop();
    await (await next).stop();
    const elapsed = Math.round(performance.now() - started);

    const rows = await stored(rounds.map((r) => r.checkoutId));
    const outcome = rounds.map((r) => {
      const row = rows.get(r.checkoutId)!;
      const registrations = registrationsOf(r.slot);
      const last = r.answers.at(-1) ?? r.first;
      return { ...r, row, registrations, last };
    });
    const count = (values: string[]) =>
      Object.entries(values.reduce<Record<string, number>>((acc, v) => ({ ...acc, [v]: (acc[v] ?? 0) + 1 }), {}))
        .map(([k, v]) => `${k}: ${v}`).join(', ');
    console.log(
      `submit-crash: ${ROUNDS} rounds in ${elapsed} ms (kills after 0–${MAX_KILL_DELAY_MS} ms, KASU +${KASU_DELAY_MS} ms each way)\n` +
      `  where the kill landed: ${count(outcome.map((o) => o.phase))}\n` +
      `  checkouts at the end: ${count(outcome.map((o) => `${o.row.status}/${o.row.order_status ?? 'no order'}`))}\n` +
      `  final answers: ${count(outcome.map((o) => describeAnswer(o.last)))}\n` +
      `  KASU new_service calls: ${count(kasu.calls.filter((c) => c.fn === 'new_service').map((c) => `${c.status}${c.answerLost ? ' (caller already gone)' : ''}`))}`,
    );
    for (const o of outcome.filter((x) => x.row.status !== 'registered')) {
      console.log(`  round ${o.slot.index} (${o.phase}, killed at ${o.killAfterMs} ms): checkout ${o.row.status}, order ${o.row.order_status} ` +
        `${o.row.last_error ?? ''}, KASU registrations ${o.registrations.length}, answers ${[o.first, ...o.answers].map(describeAnswer).join(' → ')}`);
    }

    expect(rounds).toHaveLength(ROUNDS);
    // Every checkout has at most one order.
    expect(outcome.filter((o) => o.row.orders > 1)).toEqual([]);
    // KASU registered each (CURP, product) at most once, and only ours.
    for (const registry of kasu.registries) {
      const pairs = registry.registrations.map((r) => `${r.curp}/${r.product}`);
      expect(pairs.length).toBe(new Set(pairs).size);
    }
    const ours = new Set(outcome.map((o) => `${o.slot.registry}/${o.slot.curp}/${o.slot.product}`));
    const all = kasu.registries.flatMap((registry, n) => registry.registrations.map((r) => `${n}/${r.curp}/${r.product}`));
    expect(all.filter((pair) => !ours.has(pair))).toEqual([]);
    // Every registered order has KASU's registration, with KASU's policy number.
    for (const o of outcome.filter((x) => x.row.order_status === 'registered')) {
      expect(o.row.status).toBe('registered');
      expect(o.registrations).toHaveLength(1);
      expect(o.row.policy).toBe(o.registrations[0]!.policy);
    }
    // needs_review only where KASU did register (an answer that died with the process), and never a guessed policy.
    for (const o of outcome.filter((x) => x.row.status === 'needs_review')) {
      expect(o.phase).toBe('killed after KASU registered, answer lost');
      expect(o.registrations).toHaveLength(1);
      expect(o.row.policy).toBeNull();
    }
    // Nothing lost: registered, needs_review, or open with a retryable error and nothing at KASU. (A crash during the
    // KASU call used to end as someone else's ALREADY_REGISTERED: the interrupted attempt now counts as unknown.)
    const lost = outcome.filter((o) =>
      !(o.row.status === 'registered' && o.row.order_status === 'registered')
      && o.row.status !== 'needs_review'
      && !(o.row.status === 'open' && o.registrations.length === 0 && o.last.body?.error?.retryable === true));
    expect(lost.map((o) => ({ round: o.slot.index, phase: o.phase, row: o.row, last: describeAnswer(o.last) }))).toEqual([]);
  }, 180_000);

  let reproduction: { inProgress: SubmitAnswer; final: SubmitAnswer; row: Stored; registrations: number } | null = null;

  it('when the BFF dies after KASU registered but before its answer arrived, then a retry meanwhile is told SUBMIT_IN_PROGRESS (retryable), and once the claim is taken over KASU still holds one registration and no policy is guessed', async () => {
    const s = slot(ROUNDS);
    let first: BffProcess = await bff();
    const checkout = await prepareCheckout(first.url, s);
    const held = kasu.holdNextRegistrationAnswer();
    const submitted = submitOnce(first.url, checkout, 'reproduction', PAY_LATER, s.index);
    const release = await held; // KASU has registered; its answer is on its way back
    const restarted = bff();
    await first.kill();
    release();
    expect((await submitted).status).toBe(0);
    expect(registrationsOf(s)).toHaveLength(1);
    first = await restarted;

    // Within STALE_CLAIM_SECONDS the dead process's claim holds: the customer is told to retry (after 15 s).
    const inProgress = await submitOnce(first.url, checkout, 'reproduction', PAY_LATER, s.index);
    expect(inProgress.status).toBe(409);
    expect(inProgress.body.error).toMatchObject({ code: 'SUBMIT_IN_PROGRESS', retryable: true });

    expect(await ageDeadClaim(checkout.id)).toBe(true);
    const answers = await submitUntilFinal(() => first.url, checkout, 'reproduction', PAY_LATER, { index: s.index });
    await first.stop();
    const row = (await stored([checkout.id])).get(checkout.id)!;
    reproduction = { inProgress, final: answers.at(-1)!, row, registrations: registrationsOf(s).length };
    console.log(`submit-crash reproduction: answers ${[inProgress, ...answers].map(describeAnswer).join(' → ')}; checkout ${row.status}, ` +
      `order ${row.order_status} (${row.last_error}), attempts ${row.registration_attempts}, policy ${row.policy}, KASU registrations ${reproduction.registrations}`);
    expect(isFinal(reproduction.final)).toBe(true);
    expect(reproduction.registrations).toBe(1);
    expect(row.policy).toBeNull(); // no guessed policy
  }, 60_000);

  // BUG (server/checkouts/checkout-service.ts, recordFailedAttempt; server/checkouts/checkout-store.ts,
  // upsertOrderForAttempt): a process killed during the KASU call leaves the order 'registering' with last_error NULL
  // (recordFailedAttempt never ran). The retry that takes the stale claim over counts attempt 2, hears KASU's 412, and
  // `hadUnknownOutcome` (attempts > 1 && last_error starts with 'unknown:') is false: the order is marked
  // 'rejected:ALREADY_REGISTERED', the checkout reopened, and the customer told ALREADY_REGISTERED (final, saved for
  // the key) although KASU holds OUR registration: the policy is lost. The fix: treat an attempt found still
  // 'registering' (a dead process's) as an unknown outcome, e.g. in upsertOrderForAttempt
  // `last_error = CASE WHEN orders.status = 'registering' THEN 'unknown:INTERRUPTED' ELSE orders.last_error END`.
  // Then flip this to `it`.
  it('when the BFF dies after KASU registered but before its answer arrived, then the retry puts the order in review instead of answering ALREADY_REGISTERED', () => {
    expect(reproduction).not.toBeNull();
    expect(reproduction!.final.status).toBe(409);
    expect(reproduction!.final.body.error.code).toBe('REGISTRATION_NEEDS_REVIEW');
    expect(reproduction!.row).toMatchObject({ status: 'needs_review', order_status: 'needs_review' });
  });
});
