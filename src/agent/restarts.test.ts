import { test } from 'node:test';
import assert from 'node:assert/strict';

import { restartRefusal } from './restarts.ts';

const replica = { inRecovery: true, pendingRestart: false, serverVersionNum: 150004 };

test('a restart request without filters applies', () => {
  assert.equal(restartRefusal({}, replica), undefined);
});

test('the role filter: replica or primary as PostgreSQL runs now', () => {
  assert.equal(restartRefusal({ role: 'replica' }, replica), undefined);
  assert.equal(restartRefusal({ role: 'primary' }, replica), 'role replica does not match primary');
  assert.equal(restartRefusal({ role: 'replica' }, { ...replica, inRecovery: false }), 'role primary does not match replica');
});

test('restart_pending: only when a restart is pending', () => {
  assert.equal(restartRefusal({ restart_pending: true }, replica), 'no restart is pending');
  assert.equal(restartRefusal({ restart_pending: true }, { ...replica, pendingRestart: true }), undefined);
  assert.equal(restartRefusal({ restart_pending: false }, replica), undefined);
});

test('postgres_version: only when the running server is older (major.minor from 10 on, three parts before)', () => {
  assert.equal(restartRefusal({ postgres_version: '15.5' }, replica), undefined);
  assert.equal(restartRefusal({ postgres_version: '15.4' }, replica), 'running version is not lower than 15.4');
  assert.equal(restartRefusal({ postgres_version: '15.3' }, replica), 'running version is not lower than 15.3');
  assert.equal(restartRefusal({ postgres_version: '9.6.24' }, { ...replica, serverVersionNum: 90620 }), undefined);
  // The running version is unknown (PostgreSQL did not answer): refused.
  assert.equal(restartRefusal({ postgres_version: '16.0' }, { ...replica, serverVersionNum: undefined }), 'running version is not lower than 16.0');
});
