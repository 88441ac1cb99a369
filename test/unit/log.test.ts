import { describe, expect, it } from 'vitest';
import { createLogger, createMemoryLogger, maskCurp, maskEmail, maskPhone, pinoLogger, redact, REDACT_PATHS } from '../../server/log.js';

describe('logger', () => {
  it('when fields name a CURP, email, phone, name or secret, then they are masked', () => {
    const log = createMemoryLogger();
    log.info('registration', {
      curp: 'CAMC880526HMCBNR04', email: 'ana.perez@example.mx', telefono: 5512345678, nombre: 'ANA PEREZ',
      headers: { authorization: 'Bearer abc', 'x-other': 'ok' }, firma_KEY: 'deadbeef',
    });
    const line = log.lines[0]!;
    expect(line).not.toMatch(/CAMC880526HMCBNR04|ana\.perez|5512345678|ANA PEREZ|Bearer abc|deadbeef/);
    const record = JSON.parse(line);
    expect(record).toMatchObject({ curp: 'CAMC**************', email: 'a***@example.mx', telefono: '********78', nombre: '[name]' });
    expect(record.headers).toEqual({ authorization: '[redacted]', 'x-other': 'ok' });
  });

  it('when a CURP or email appears inside free text or an error message, then it is masked there too', () => {
    const log = createMemoryLogger();
    log.error('lookup of CAMC880526HMCBNR04 failed for ana@example.mx', { error: new Error('no REAE060617MMCYLVA4') });
    expect(log.lines[0]).not.toMatch(/CAMC880526HMCBNR04|REAE060617MMCYLVA4|ana@example\.mx/);
    expect(log.lines[0]).toContain('REAE**************');
  });

  it('when masking helpers are used directly, then they keep only a hint', () => {
    expect(maskCurp('CAMC880526HMCBNR04')).toBe('CAMC**************');
    expect(maskEmail('x@y.mx')).toBe('x***@y.mx');
    expect(maskPhone('5512345678')).toBe('********78');
  });
});

describe('logger on pino', () => {
  it('when a line is written, then it is one JSON object with level name, ISO time and msg, and the fields', () => {
    const log = createMemoryLogger();
    log.child({ requestId: 'req-1' }).child({ component: 'test' }).warn('careful', { n: 1, when: new Date(0) });
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]).not.toContain('\n');
    const record = JSON.parse(log.lines[0]!);
    expect(record).toEqual({ level: 'warn', time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/), msg: 'careful', requestId: 'req-1', component: 'test', n: 1, when: '1970-01-01T00:00:00.000Z' });
    expect(Object.keys(record)).not.toContain('pid');
  });

  it('when the level is above a call, then nothing is written; written lines go to the given writer', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'warn', write: (line) => lines.push(line), base: { service: 'x' } });
    log.debug('no');
    log.info('no');
    log.error('yes');
    expect(lines.map((line) => JSON.parse(line))).toEqual([expect.objectContaining({ level: 'error', msg: 'yes', service: 'x' })]);
  });

  it('when a field is named level, time or msg, then it is kept beside pino’s own instead of a duplicate key', () => {
    const log = createMemoryLogger();
    log.info('real', { level: 'fake', msg: 'fake', time: 'fake' });
    expect(log.lines[0]!.match(/"level":/g)).toHaveLength(1);
    expect(JSON.parse(log.lines[0]!)).toMatchObject({ level: 'info', msg: 'real', level_: 'fake', msg_: 'fake', time_: 'fake' });
  });

  it('when phones, credentials or token-shaped words appear in free text, then they are masked; ids and references are not', () => {
    const log = createMemoryLogger();
    const token = 'Xk3_9fQ2-LmN8pR4sT6vW1yZ0aB5cD7eF9gH2jK4mN6';
    log.error(`call 5512345678 or +525512345678 with Bearer abc.def and ${token}`, {
      error: new Error(`KASU said no to ${token}`),
      url: `https://x.example/pay?token=${token}`,
      requestId: '123e4567-e89b-12d3-a456-426614174000',
      reference: 'KC-1234567890', at: 1732345678901, note: 'reconciliation-completed-for-the-whole-period',
    });
    const line = log.lines[0]!;
    expect(line).not.toMatch(/5512345678|abc\.def/);
    expect(line).not.toContain(token);
    expect(line).toContain('********78');
    expect(line).toContain('Bearer [redacted]');
    const record = JSON.parse(line);
    expect(record).toMatchObject({
      requestId: '123e4567-e89b-12d3-a456-426614174000', reference: 'KC-1234567890', at: 1732345678901,
      note: 'reconciliation-completed-for-the-whole-period',
    });
  });

  it('when keys name tokens, secrets, names or contact data in any spelling, then they are masked at any depth', () => {
    const log = createMemoryLogger();
    log.info('x', {
      deep: { deeper: { cardToken: 'tok', notification_token: 'n', webhookSecret: 's', customer_name: 'ANA PEREZ', payerEmail: 'ana@example.mx', phoneNumber: '5512345678', curpUsed: 'CAMC880526HMCBNR04' } },
    });
    const record = JSON.parse(log.lines[0]!);
    expect(record.deep.deeper).toEqual({
      cardToken: '[redacted]', notification_token: '[redacted]', webhookSecret: '[redacted]', customer_name: '[name]',
      payerEmail: 'a***@example.mx', phoneNumber: '********78', curpUsed: 'CAMC**************',
    });
  });

  it('when our masking is bypassed at a known path, then pino’s redact censors it anyway', () => {
    expect(REDACT_PATHS).toEqual(expect.arrayContaining(['authorization', '*.authorization', 'headers.authorization', '*.token']));
    const lines: string[] = [];
    pinoLogger('info', (line) => lines.push(line)).info(
      { headers: { authorization: 'Bearer raw', cookie: 'sid=raw' }, token: 'raw', call: { secret: 'raw', privateKey: 'raw' }, ok: 'kept' }, 'unmasked',
    );
    expect(lines[0]).not.toContain('raw');
    expect(JSON.parse(lines[0]!)).toMatchObject({
      headers: { authorization: '[redacted]', cookie: '[redacted]' }, token: '[redacted]', call: { secret: '[redacted]', privateKey: '[redacted]' }, ok: 'kept',
    });
    expect(redact({ headers: { authorization: 'Bearer x' } })).toEqual({ headers: { authorization: '[redacted]' } });
  });
});
