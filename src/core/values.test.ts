import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isPaused, isTrue, parseBool } from './values.ts';

test('parseBool: Patroni parse_bool, case-insensitive, booleans and the numbers 1/0', () => {
  const table: [unknown, boolean | undefined][] = [
    [true, true], [false, false], [1, true], [0, false],
    ['true', true], ['TRUE', true], ['True', true], ['yes', true], ['YES', true], ['on', true], ['On', true], ['1', true],
    ['false', false], ['FALSE', false], ['no', false], ['No', false], ['off', false], ['OFF', false], ['0', false],
    // Not booleans for Patroni: other spellings, padding, other numbers, null, containers.
    ['y', undefined], ['t', undefined], ['n', undefined], ['f', undefined], ['', undefined], [' true', undefined], ['true ', undefined],
    ['enabled', undefined], [2, undefined], [-1, undefined], [0.5, undefined], [Number.NaN, undefined],
    [null, undefined], [undefined, undefined], [['1'], undefined], [{}, undefined],
  ];
  for (const [v, want] of table) assert.equal(parseBool(v), want, JSON.stringify(v) ?? String(v));
});

test('isTrue: only what parseBool reads as true', () => {
  for (const v of [true, 1, 'on', 'Yes']) assert.equal(isTrue(v), true, String(v));
  for (const v of [false, 0, 'off', 'y', 't', 2, null, undefined, 'garbage']) assert.equal(isTrue(v), false, String(v));
});

test('isPaused: the pause key of a dynamic configuration, read by parseBool', () => {
  const table: [Record<string, unknown> | undefined, boolean][] = [
    [undefined, false], [{}, false], [{ pause: null }, false],
    [{ pause: true }, true], [{ pause: 'true' }, true], [{ pause: 'on' }, true], [{ pause: 'YES' }, true], [{ pause: 1 }, true],
    [{ pause: false }, false], [{ pause: 'off' }, false], [{ pause: 0 }, false],
    // Spellings Patroni does not read as true: not paused.
    [{ pause: 'y' }, false], [{ pause: 't' }, false], [{ pause: 'paused' }, false],
  ];
  for (const [config, want] of table) assert.equal(isPaused(config), want, JSON.stringify(config));
});
