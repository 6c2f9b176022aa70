// A guard around node-postgres's protocol parser. The parser throws from inside the socket's
// 'data' event when the server sends a message it does not know, notably an authentication request
// for GSSAPI (7) or SSPI (9), which a pg_hba.conf `gss` line causes: uncaught, that exception
// would end the whole agent. With the guard, an exception thrown while a connection's socket
// delivers data destroys that socket with the exception instead, so the connection attempt fails
// with it (and errors.ts wrapPgError names the GSSAPI case). Installed once, on import.

import pg from 'pg';

type Emitter = { emit: (event: string | symbol, ...args: unknown[]) => boolean; destroy: (err?: Error) => void };
type ConnectionProto = { attachListeners: (stream: Emitter) => void; __vigilGuarded?: true };

const proto = (pg as unknown as { Connection: { prototype: ConnectionProto } }).Connection.prototype;
if (proto.__vigilGuarded !== true) {
  const attach = proto.attachListeners;
  proto.attachListeners = function (this: unknown, stream: Emitter): void {
    const emit = stream.emit.bind(stream);
    stream.emit = (event: string | symbol, ...args: unknown[]): boolean => {
      if (event !== 'data') return emit(event, ...args);
      try {
        return emit(event, ...args);
      } catch (err) {
        stream.destroy(err instanceof Error ? err : new Error(String(err)));
        return false;
      }
    };
    attach.call(this, stream);
  };
  proto.__vigilGuarded = true;
}
