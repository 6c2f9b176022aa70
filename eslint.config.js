import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // The decision core is pure: no IO, no clock, no adapters.
    files: ['src/core/**/*.ts'],
    ignores: ['src/core/**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['node:*', 'fs', 'http', 'child_process', 'net'], message: 'src/core is pure: no IO.' },
          { group: ['**/dcs/**', '**/postgres/**', '**/agent/**', '**/api/**', '**/cli/**', '**/fence/**', '**/sim/**'], message: 'src/core must not depend on adapters, the fencer or the simulator.' },
        ],
      }],
      'no-restricted-properties': ['error',
        { object: 'Date', property: 'now', message: 'Time is an input of the core.' },
        { object: 'Math', property: 'random', message: 'Randomness is an input of the core.' },
      ],
    },
  },
  {
    // The fencer is a leaf: the agent drives it; it knows nothing of the agent, the DCS,
    // PostgreSQL's controller, the REST API, the CLI, the core or the simulator.
    files: ['src/fence/**/*.ts', 'src/fence/**/*.mjs'],
    ignores: ['src/fence/**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['**/agent/**', '**/dcs/**', '**/postgres/**', '**/api/**', '**/cli/**', '**/core/**', '**/sim/**'], message: 'src/fence must not depend on the rest of the agent.' },
        ],
      }],
    },
  },
  {
    // The fence deadline rule is pure, as the core: the agent's fencing policy and the simulator use it.
    files: ['src/fence/deadline.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['node:*', 'fs', 'http', 'child_process', 'net'], message: 'src/fence/deadline.ts is pure: no IO.' },
          { group: ['**/agent/**', '**/dcs/**', '**/postgres/**', '**/api/**', '**/cli/**', '**/core/**', '**/sim/**'], message: 'src/fence must not depend on the rest of the agent.' },
        ],
      }],
      'no-restricted-properties': ['error',
        { object: 'Date', property: 'now', message: 'Time is an input of the fence deadline rule.' },
        { object: 'Math', property: 'random', message: 'Randomness is an input of the fence deadline rule.' },
      ],
    },
  },
  {
    // The node driver reaches the world only through its ports (src/agent/ports.ts), so that the
    // simulator runs it on a simulated clock: no IO, no clock, no timers of its own. The agent
    // (agent.ts) and the production ports (real-ports.ts) are the exceptions.
    files: ['src/agent/**/*.ts'],
    ignores: ['src/agent/**/*.test.ts', 'src/agent/agent.ts', 'src/agent/real-ports.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['node:*', 'fs', 'http', 'child_process', 'net'], message: 'the node driver does IO through its ports only.' },
          { group: ['**/sim/**', '**/cli/**'], message: 'the node driver must not depend on the simulator or the CLI.' },
        ],
      }],
      'no-restricted-properties': ['error',
        { object: 'Date', property: 'now', message: 'Time comes from the Clock port.' },
        { object: 'performance', property: 'now', message: 'Time comes from the Clock port.' },
        { object: 'Math', property: 'random', message: 'The driver is deterministic.' },
      ],
      'no-restricted-globals': ['error',
        { name: 'setTimeout', message: 'Wait with the Clock port.' },
        { name: 'setInterval', message: 'Wait with the Clock port.' },
        { name: 'setImmediate', message: 'Wait with the Clock port.' },
      ],
    },
  },
);
