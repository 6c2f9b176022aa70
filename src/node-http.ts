// node:http's exports, taken without its ES module facade. `import { x } from 'node:http'` makes
// Node build a module namespace that reads every export once, and on Node 22+ node:http exports
// WebSocket, CloseEvent and MessageEvent as lazy getters that load the bundled undici: about
// 7 MiB of resident memory in every process that imports node:http this way, for nothing Vigil
// uses. process.getBuiltinModule returns the CommonJS exports object, whose getters stay unread.
// Import the names from here; types still come from 'node:http' (`import type` is erased).

import type * as NodeHttp from 'node:http';

const http = process.getBuiltinModule('node:http') as typeof NodeHttp;

export const { Agent, request, createServer, STATUS_CODES, validateHeaderName, validateHeaderValue } = http;
