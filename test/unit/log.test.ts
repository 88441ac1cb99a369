import { describe, expect, it } from 'vitest';
import { createMemoryLogger, maskCurp, maskEmail, maskPhone } from '../../server/log.js';

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
