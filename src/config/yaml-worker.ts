// Worker thread body of parseTextOffLoop (yaml.ts): parses one text and posts back the value and
// the issues. It runs with the same loader flags as the main thread (execArgv is inherited).

import { parentPort, workerData } from 'node:worker_threads';
import { Issues } from './fields.ts';
import { parseText } from './yaml.ts';

const { text, label } = workerData as { text: string; label: string };
const issues = new Issues();
const value = parseText(text, issues, label);
parentPort?.postMessage({ value, issues: issues.list });
