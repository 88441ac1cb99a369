import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../server/config.js';

describe('configuration', () => {
  it('when nothing is set, then sandbox mode on the embedded database with the built-in simulators', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ mode: 'sandbox', port: 8080, database: { kind: 'pglite', dataDir: './.data', vacuumIntervalHours: 6 } });
    expect(config.kasu.baseUrl).toBeNull();
    expect(config.kasu.user).toBe('Api_KASU_Sandbox');
  });

  it('when DATABASE_URL is set, then PostgreSQL replaces the embedded database', () => {
    expect(loadConfig({ DATABASE_URL: 'postgres://u@db/kasu' }).database).toEqual({ kind: 'postgres', url: 'postgres://u@db/kasu' });
  });

  it('when DATA_DIR_VACUUM_HOURS is set, then it is read, within 1 to 168 hours (a longer timer would overflow)', () => {
    expect(loadConfig({ DATA_DIR_VACUUM_HOURS: '24' }).database).toMatchObject({ kind: 'pglite', vacuumIntervalHours: 24 });
    for (const wrong of ['0', '169', '1.5']) {
      expect(() => loadConfig({ DATA_DIR_VACUUM_HOURS: wrong }), wrong).toThrow(/DATA_DIR_VACUUM_HOURS/);
    }
  });

  it('when several values are wrong, then one error lists every problem', () => {
    let error: unknown;
    try {
      loadConfig({ MODE: 'prod', PORT: 'abc', DATABASE_URL: 'mysql://x', INSTALMENT_OPTIONS: '1,x' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    for (const key of ['MODE', 'PORT', 'DATABASE_URL', 'INSTALMENT_OPTIONS']) expect(problems).toContain(key);
  });

  it('when live mode lacks real credentials, then it refuses to start, naming each missing one', () => {
    let error: unknown;
    try {
      loadConfig({ MODE: 'live', KASU_PRIVATE_KEY: 'ef235aacf90d9f4aadd8c92e4b2562e1d9eb97f0' });
    } catch (caught) {
      error = caught;
    }
    const problems = (error as ConfigError).problems.join('\n');
    for (const key of ['PUBLIC_URL', 'ADMIN_TOKEN', 'KASU_BASE_URL', 'KASU_USER', 'ALLOWED_ORIGINS']) expect(problems).toContain(key);
    expect(problems).toMatch(/KASU_PRIVATE_KEY is the sandbox value/);
    expect(problems).not.toContain('ef235aacf90d9f4aadd8c92e4b2562e1d9eb97f0');
  });

  it('when live mode has everything, then it starts with the given provider', () => {
    const config = loadConfig({
      MODE: 'live', PUBLIC_URL: 'https://pagos.example.mx', ADMIN_TOKEN: 'x'.repeat(32), ALLOWED_ORIGINS: 'https://a.mx, https://b.mx',
      KASU_BASE_URL: 'https://apimarket.kasu.com.mx/api/Registro_V1', KASU_USER: 'partner', KASU_PRIVATE_KEY: 'real-key',
    });
    expect(config.allowedOrigins).toEqual(['https://a.mx', 'https://b.mx']);
    expect(config.kasu.baseUrl).toBe('https://apimarket.kasu.com.mx/api/Registro_V1');
  });

  const live = {
    MODE: 'live', PUBLIC_URL: 'https://pagos.example.mx', ADMIN_TOKEN: 'x'.repeat(32), ALLOWED_ORIGINS: 'https://a.mx',
    KASU_BASE_URL: 'https://apimarket.kasu.com.mx/api/Registro_V1', KASU_USER: 'partner', KASU_PRIVATE_KEY: 'real-key',
  };
  const problemsOf = (env: Record<string, string>) => {
    try {
      loadConfig(env);
      return '';
    } catch (error) {
      return (error as ConfigError).problems.join('\n');
    }
  };

  it('when sandbox mode has no ADMIN_TOKEN, then the public sandbox token; live mode refuses that token', () => {
    expect(loadConfig({}).adminToken).toBe('sandbox-admin-token-not-for-production');
    expect(problemsOf({ ...live, ADMIN_TOKEN: 'sandbox-admin-token-not-for-production' })).toMatch(/ADMIN_TOKEN is the sandbox value/);
  });

  it('when Tupay is configured, then its reconciliation settings are read; live mode without its keys leaves Tupay out', () => {
    expect(loadConfig({}).tupay).toMatchObject({ baseUrl: null, utcOffset: '+00:00', paidStatuses: ['COMPLETED', 'APPROVED', 'EARLY_RELEASED'] });
    expect(loadConfig(live).tupay).toBeNull();
    const config = loadConfig({
      ...live, TUPAY_ACCESS_KEY: 'api@shop.mx', TUPAY_SECRET_KEY: 'secret', TUPAY_UTC_OFFSET: '-05:00',
      TUPAY_PAID_STATUSES: 'completed, approved', RECONCILIATION_LOOKBACK_DAYS: '45', RECONCILIATION_HOUR: '3',
    });
    expect(config.tupay).toMatchObject({ baseUrl: 'https://merchants-api.tupayonline.com', utcOffset: '-05:00', paidStatuses: ['COMPLETED', 'APPROVED'] });
    expect(config.reconciliation).toEqual({ lookbackDays: 45, dailyHour: 3 });
    const problems = problemsOf({ TUPAY_ACCESS_KEY: 'api@shop.mx', TUPAY_UTC_OFFSET: 'Lima', RECONCILIATION_LOOKBACK_DAYS: '90', MODE: 'live' });
    for (const key of ['TUPAY_SECRET_KEY', 'TUPAY_UTC_OFFSET', 'RECONCILIATION_LOOKBACK_DAYS']) expect(problems).toContain(key);
  });
});
