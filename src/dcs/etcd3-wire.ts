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
