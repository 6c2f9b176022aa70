// The JSON shapes etcd's gRPC gateway answers with (proto3: int64 as strings, defaults omitted).

export interface Header { revision?: string }
export interface KvJson { key?: string; value?: string; mod_revision?: string; create_revision?: string; lease?: string }
export interface RangeResponse { header?: Header; kvs?: KvJson[] }
export interface TxnResponse { succeeded?: boolean; responses?: { response_txn?: { succeeded?: boolean } }[] }
export interface GrantResponse { ID?: string; TTL?: string }
export interface KeepaliveResponse { result?: { ID?: string; TTL?: string } }
export interface ErrorBody { error?: unknown; message?: string; code?: number }
export interface AuthResponse { token?: string }
export interface MemberListResponse { members?: { clientURLs?: string[] }[] }
export interface TimeToLiveResponse { ID?: string; TTL?: string; grantedTTL?: string }

/**
 * The take-over Txn (issue 13, docs/guarantees.md 7.2 step 5), keys and values already base64:
 * compare the leader key's mod_revision and lease and the sync key's mod_revision; on success put
 * both (the leader key bound to `session`). One revision, all or nothing.
 */
export function takeOverTxn(
  keys: { leader: string; sync: string },
  expect: { leaderVersion: string; leaderSession: string; syncVersion: string },
  values: { leader: string; sync: string },
  session: string,
): Record<string, unknown> {
  return {
    compare: [
      { key: keys.leader, target: 'MOD', result: 'EQUAL', mod_revision: expect.leaderVersion },
      { key: keys.leader, target: 'LEASE', result: 'EQUAL', lease: expect.leaderSession },
      { key: keys.sync, target: 'MOD', result: 'EQUAL', mod_revision: expect.syncVersion },
    ],
    success: [{ request_put: { key: keys.leader, value: values.leader, lease: session } }, { request_put: { key: keys.sync, value: values.sync } }],
  };
}
