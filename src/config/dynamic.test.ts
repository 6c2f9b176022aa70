import { test } from 'node:test';
import assert from 'node:assert/strict';
import { effectiveDynamicConfig, enforceTtlRule, validateDynamicConfig } from './dynamic.ts';

test('defaults for an absent or empty dynamic configuration', () => {
  for (const raw of [undefined, {}]) {
    const { config, warnings } = effectiveDynamicConfig(raw);
    assert.deepEqual(warnings, []);
    assert.equal(config.ttl, 30);
    assert.equal(config.loop_wait, 10);
    assert.equal(config.retry_timeout, 10);
    assert.equal(config.maximum_lag_on_failover, 1048576);
    assert.equal(config.primary_start_timeout, 300);
    assert.equal(config.primary_stop_timeout, 0);
    assert.equal(config.check_timeline, false);
    assert.equal(config.postgresql.use_slots, true);
    assert.equal(config.postgresql.use_pg_rewind, false);
    assert.equal(config.synchronous_mode, false);
    assert.equal(config.failsafe_mode, false);
    assert.equal('pause' in config, false);
  }
});

// [ttl, loop_wait, retry_timeout] in -> [loop_wait, retry_timeout] out (patroni-behavior.md 1.1).
const ttlRule: Array<[number, number, number, number, number]> = [
  [30, 10, 10, 10, 10], // exactly at the limit: unchanged
  [30, 15, 10, 10, 10], // shrink loop_wait
  [20, 10, 10, 1, 9], // 1 + 2*10 > 20: loop_wait 1, retry_timeout (20-1)//2
  [25, 10, 10, 5, 10],
  [21, 5, 10, 1, 10], // loop_wait shrinks to exactly 1
  [5, 1, 1, 1, 1],
  [5, 2, 3, 1, 2],
];
for (const [ttl, lw, rt, elw, ert] of ttlRule) {
  test(`ttl rule: ttl ${ttl}, loop_wait ${lw}, retry_timeout ${rt} -> ${elw}, ${ert}`, () => {
    assert.deepEqual(enforceTtlRule(ttl, lw, rt), { loop_wait: elw, retry_timeout: ert });
    const { config, warnings } = effectiveDynamicConfig({ ttl, loop_wait: lw, retry_timeout: rt });
    assert.equal(config.loop_wait, elw);
    assert.equal(config.retry_timeout, ert);
    assert.ok(config.loop_wait + 2 * config.retry_timeout <= config.ttl);
    const adjusted = warnings.find((w) => w.includes('must not exceed ttl'));
    if (elw === lw && ert === rt) assert.equal(adjusted, undefined);
    else {
      assert.ok(adjusted, `expected an adjustment warning, got ${JSON.stringify(warnings)}`);
      assert.match(adjusted, new RegExp(`\\(${lw} \\+ 2\\*${rt} > ${ttl}\\)`));
      assert.match(adjusted, new RegExp(`loop_wait ${elw} and retry_timeout ${ert}`));
    }
  });
}

// raw -> expected [ttl, loop_wait, retry_timeout], and a warning that must appear (regexp).
const bounds: Array<[string, Record<string, unknown>, [number, number, number], RegExp | undefined]> = [
  ['ttl below Vigil minimum raised', { ttl: 2 }, [5, 1, 2], /ttl: 2 is below the minimum 5/],
  ['ttl below Patroni minimum accepted with warning', { ttl: 10, loop_wait: 2, retry_timeout: 3 }, [10, 2, 3], /ttl: 10 is below Patroni's documented minimum 20/],
  ['retry_timeout below Patroni minimum warns', { ttl: 20, loop_wait: 1, retry_timeout: 2 }, [20, 1, 2], /retry_timeout: 2 is below Patroni's documented minimum 3/],
  ['loop_wait 0 raised to 1', { loop_wait: 0 }, [30, 1, 10], /loop_wait: 0 is below the minimum 1/],
  ['retry_timeout 0 raised to 1', { retry_timeout: 0, loop_wait: 5 }, [30, 5, 1], /retry_timeout: 0 is below the minimum 1/],
  ['numeric strings accepted', { ttl: '40', loop_wait: '5', retry_timeout: '10' }, [40, 5, 10], undefined],
  ['wrong type falls back to default', { ttl: 'abc' }, [30, 10, 10], /ttl: expected an integer, got "abc"; using the default 30/],
  ['list falls back to default', { loop_wait: [1] }, [30, 10, 10], /loop_wait: expected an integer/],
  ['nulls are absent, silently', { ttl: null, loop_wait: null, retry_timeout: null }, [30, 10, 10], undefined],
];
for (const [name, raw, [ttl, lw, rt], warning] of bounds) {
  test(`bounds: ${name}`, () => {
    const { config, warnings: w, errors } = effectiveDynamicConfig(raw);
    const warnings = [...w, ...errors];
    assert.deepEqual([config.ttl, config.loop_wait, config.retry_timeout], [ttl, lw, rt]);
    if (warning) assert.ok(warnings.some((w) => warning.test(w)), `no warning matching ${warning}: ${JSON.stringify(warnings)}`);
    else assert.deepEqual(warnings, []);
  });
}

test('legacy master_start_timeout and master_stop_timeout', () => {
  const { config } = effectiveDynamicConfig({ master_start_timeout: 60, master_stop_timeout: 5 });
  assert.equal(config.primary_start_timeout, 60);
  assert.equal(config.primary_stop_timeout, 5);
  assert.equal('master_start_timeout' in config, false);
  // The new name wins over the legacy one.
  assert.equal(effectiveDynamicConfig({ primary_start_timeout: 10, master_start_timeout: 60 }).config.primary_start_timeout, 10);
});

test('booleans, synchronous_mode, pause and unknown keys', () => {
  const { config, warnings } = effectiveDynamicConfig({
    check_timeline: 'on',
    synchronous_mode: 'quorum',
    pause: true,
    failsafe_mode: 'yes',
    custom_key: { a: 1 },
    postgresql: { use_slots: 'off', use_pg_rewind: true, parameters: { max_connections: 200 }, pg_hba: ['local all all trust'] },
  });
  assert.deepEqual(warnings, []);
  assert.equal(config.check_timeline, true);
  assert.equal(config.synchronous_mode, 'quorum');
  assert.equal(config.pause, true);
  assert.equal(config.failsafe_mode, true);
  assert.deepEqual(config.custom_key, { a: 1 });
  assert.equal(config.postgresql.use_slots, false);
  assert.equal(config.postgresql.use_pg_rewind, true);
  assert.deepEqual(config.postgresql.parameters, { max_connections: 200 });
  assert.deepEqual(config.postgresql.pg_hba, ['local all all trust']);
  assert.equal(effectiveDynamicConfig({ synchronous_mode: 'on' }).config.synchronous_mode, true);
});

test('garbage is tolerated with warnings, never thrown', () => {
  const cases: unknown[] = [
    null,
    'a string',
    [1, 2],
    42,
    { postgresql: 'nope' },
    { postgresql: { use_slots: 'maybe', parameters: [1], pg_hba: 'host all all' } },
    { synchronous_mode: 'sometimes', check_timeline: {}, maximum_lag_on_failover: 'x', member_slots_ttl: 'forever' },
  ];
  for (const raw of cases) {
    const { config, warnings: w, errors } = effectiveDynamicConfig(raw as Record<string, unknown>);
    const warnings = [...w, ...errors];
    assert.equal(config.ttl, 30);
    assert.equal(typeof config.postgresql, 'object');
    if (raw !== null) assert.ok(warnings.length > 0, `expected warnings for ${JSON.stringify(raw)}`);
  }
  const { config, warnings } = effectiveDynamicConfig({ postgresql: { use_slots: 'maybe', parameters: [1], pg_hba: 'host all all' } });
  assert.equal(config.postgresql.use_slots, true);
  assert.equal(config.postgresql.parameters, null);
  assert.equal(config.postgresql.pg_hba, undefined);
  assert.deepEqual(effectiveDynamicConfig({ postgresql: { pg_ident: ['m a b'] } }).config.postgresql.pg_ident, ['m a b']);
  assert.equal(effectiveDynamicConfig({ postgresql: { pg_ident: 'm a b' } }).config.postgresql.pg_ident, undefined);
  assert.ok(warnings.some((w) => w.startsWith('postgresql.use_slots: expected a boolean')));
});

test('member_slots_ttl accepts units', () => {
  assert.equal(effectiveDynamicConfig({ member_slots_ttl: '30min' }).config.member_slots_ttl, 1800);
  assert.equal(effectiveDynamicConfig({ member_slots_ttl: '2h' }).config.member_slots_ttl, 7200);
  assert.equal(effectiveDynamicConfig({ member_slots_ttl: 0 }).config.member_slots_ttl, 0);
});

// validateDynamicConfig: raw -> expected error strings (exact set).
const validation: Array<[string, unknown, string[]]> = [
  ['valid', { ttl: 30, loop_wait: 10, retry_timeout: 10, postgresql: { use_pg_rewind: true, parameters: { max_connections: 100 } } }, []],
  ['empty', {}, []],
  ['low values are not errors', { ttl: 1, loop_wait: 1 }, []],
  ['not a mapping', [1], ['expected a mapping, got [1]']],
  ['wrong types', { ttl: 'x', loop_wait: true, check_timeline: 'maybe' }, [
    'ttl: expected an integer, got "x"',
    'loop_wait: expected an integer, got true',
    'check_timeline: expected a boolean, got "maybe"',
  ]],
  ['zero and negative', { ttl: 0, maximum_lag_on_failover: -5 }, [
    'ttl: must be between 1 and 86400, got 0',
    'maximum_lag_on_failover: must be between 0 and 9007199254740991, got -5',
  ]],
  ['parameter ranges', { postgresql: { parameters: { max_connections: 0, max_wal_senders: 'ten', work_mem: '4MB' } } }, [
    'postgresql.parameters.max_connections: must be an integer between 1 and 262143, got 0',
    'postgresql.parameters.max_wal_senders: must be an integer between 0 and 262143, got "ten"',
  ]],
  ['standby_cluster port', { standby_cluster: { host: 'x', port: 70000 } }, [
    'standby_cluster.port: expected a port 1-65535, got 70000',
  ]],
  ['standby_cluster fields', { standby_cluster: { host: 1, restore_command: ['x'], recovery_min_apply_delay: {}, create_replica_methods: 'basebackup' } }, [
    'standby_cluster.host: expected a string, got 1',
    'standby_cluster.restore_command: expected a string, got ["x"]',
    'standby_cluster.recovery_min_apply_delay: expected a number or a string, got {}',
    'standby_cluster.create_replica_methods: expected a list of method names, got "basebackup"',
  ]],
  ['synchronous_mode', { synchronous_mode: 'both' }, ['synchronous_mode: expected on, off or quorum, got "both"']],
  ['pg_hba', { postgresql: { pg_hba: [1] } }, [
    'postgresql.pg_hba: expected a list of strings, got [1]',
  ]],
  ['recovery_conf', { postgresql: { recovery_conf: { restore_command: 'cp %f %p', recovery_min_apply_delay: ['x'] } } }, [
    'postgresql.recovery_conf.recovery_min_apply_delay: expected a scalar value, got ["x"]',
  ]],
  ['recovery_conf not a mapping', { postgresql: { recovery_conf: 'x' } }, [
    'postgresql.recovery_conf: expected a mapping of recovery settings, got "x"',
  ]],
  ['slots', { slots: { s1: { type: 'logical' }, s2: null, s3: { type: 'weird' } } }, [
    'slots.s1: a logical slot needs database and plugin',
    'slots.s3.type: expected physical or logical, got "weird"',
  ]],
  ['keys Patroni has that Vigil implements', {
    standby_cluster: { host: 'a' }, ignore_slots: [{ name: 'x' }], permanent_slots: {}, primary_stop_timeout: 30, primary_race_backoff: 5,
    postgresql: { pg_ident: ['m u u'], recovery_conf: {}, parameters_primary: {}, pg_hba_replica: [], use_pg_rewind: true },
  }, [
  ]],
];
for (const [name, raw, expected] of validation) {
  test(`validateDynamicConfig: ${name}`, () => {
    assert.deepEqual(validateDynamicConfig(raw), expected);
  });
}
